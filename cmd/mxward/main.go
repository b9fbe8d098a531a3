// Command mxward is a mail transfer agent for the server-to-server hop whose outbound mail
// cannot be silently downgraded.
//
// Usage:
//
//	mxward lab [--json] [--html FILE]
//	mxward serve [--config FILE] [--log-format text|json]
//	mxward sendmail [sendmail options] [recipients...]
//	mxward queue list|show|delete|hold|release [--json] [ID]
//	mxward config check FILE
//	mxward check [--json] [DOMAIN [--connect=false] [--port N]]
//	mxward dns lookup NAME TYPE [--json]
//	mxward mta-sts show|refresh|forget DOMAIN [--json]
//	mxward pin list|show|forget [DOMAIN] [--json]
//	mxward dns-records [--json]
//	mxward tls rollover
//	mxward dkim keygen --domain D --selector S --out FILE [--algorithm rsa|ed25519]
//	mxward version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"mxward/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `usage: mxward <command> [arguments]

commands:
  lab            see what protects mail and what does not: real deliveries through a
                 simulated internet with an attacker on the path (offline, seconds)
  serve          run the mail server (embedded defaults unless --config is given)
  sendmail       submit a message read from standard input (sendmail-compatible)
  queue          list, show, delete, hold or release queued messages
  config check   validate a configuration file without starting
  check          check this host's DNS resolvers for DNSSEC (what DANE rests on), or
                 with DOMAIN what a delivery there would get: MX, TLSA, MTA-STS, a
                 STARTTLS probe of each MX host, and a verdict per threat
  dns lookup     look a name up as delivery does, with its DNSSEC status
  mta-sts        show, refresh or forget a domain's cached MTA-STS policy
  pin            list, show or forget TLS pins (destinations that completed STARTTLS before)
  dns-records    the DNS records to publish: TLSA (current and next key), MX, MTA-STS, TLS-RPT
  tls rollover   switch to the next key once its TLSA record is published
  dkim keygen    generate a DKIM signing key; print its DNS record and [[dkim]] entry
  version        print the version

Run "mxward <command> -h" for a command's options.
`

// exitError carries a process exit status together with the message to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// sendmail compatibility: installed as /usr/sbin/sendmail (a link to mxward), the
	// binary acts as `mxward sendmail`.
	args := os.Args[1:]
	if base := filepath.Base(os.Args[0]); base == "sendmail" || base == "mailq" {
		if base == "mailq" {
			args = append([]string{"queue", "list"}, args...)
		} else {
			args = append([]string{"sendmail"}, args...)
		}
	}
	os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 64
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "sendmail":
		err = cmdSendmail(ctx, args[1:], stdin, stderr)
	case "queue":
		err = cmdQueue(ctx, args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "tls":
		err = cmdTLS(ctx, args[1:], stdout, stderr)
	case "dns-records":
		err = cmdDNSRecords(ctx, args[1:], stdout, stderr)
	case "mta-sts":
		err = cmdMTASTS(ctx, args[1:], stdout, stderr)
	case "dns":
		err = cmdDNS(ctx, args[1:], stdout, stderr)
	case "lab":
		err = cmdLab(ctx, args[1:], stdout, stderr)
	case "dkim":
		err = cmdDKIM(ctx, args[1:], stdout, stderr)
	case "pin":
		err = cmdPin(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "mxward", versionString())
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "mxward: unknown command %q\n\n%s", args[0], usage)
		return 64
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "mxward:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "mxward:", err)
	return 1
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// loadConfig returns the configuration from path; with no path, from $MXWARD_CONFIG, then
// /etc/mxward/mxward.toml if it exists, then the embedded defaults. The second result
// names where it came from, for the log.
func loadConfig(path string) (*config.Config, string, error) {
	if path == "" {
		path = os.Getenv("MXWARD_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat(systemConfig); err == nil {
			path = systemConfig
		}
	}
	c, source := config.Default(), "embedded defaults"
	if path != "" {
		var err error
		if c, err = config.Load(path); err != nil {
			return nil, "", &exitError{code: 78, err: err} // EX_CONFIG
		}
		source = path
	}
	if err := absPaths(c); err != nil {
		return nil, "", err
	}
	return c, source, nil
}

// absPaths makes the paths derived from a relative data_dir absolute, so that they keep
// meaning the same place whatever the process does with its working directory.
func absPaths(c *config.Config) error {
	for _, p := range []*string{&c.DataDir, &c.Local.Maildir, &c.Sendmail.Socket, &c.MTASTS.CacheDir, &c.List.Dir} {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

const systemConfig = "/etc/mxward/mxward.toml"

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return &exitError{code: 64, err: errors.New("usage: mxward config check FILE")}
	}
	c, err := config.Load(args[1])
	if err != nil {
		return &exitError{code: 78, err: err}
	}
	fmt.Fprintf(stdout, "%s: ok (%d listeners, %d local domains, %d users)\n", args[1], len(c.Listeners), len(c.Local.Domains), len(c.Users))
	return nil
}

// commandArgs parses the arguments of a subcommand that takes --config and --json
// (accepted only when withJSON) and exactly n positional arguments, printing usage and
// failing with exit status 64 otherwise.
func commandArgs(name, usage string, args []string, n int, withJSON bool, stderr io.Writer) (cfgPath string, asJSON bool, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfg := fs.String("config", "", "configuration file")
	var js *bool
	if withJSON {
		js = fs.Bool("json", false, "print JSON")
	}
	if rest, err = parseInterspersed(fs, args); err != nil {
		return "", false, nil, err
	}
	if len(rest) != n {
		fs.Usage()
		return "", false, nil, &exitError{code: 64, err: errors.New("")}
	}
	return *cfg, js != nil && *js, rest, nil
}

// parseInterspersed parses flags placed before, between and after the positional
// arguments ("queue list --json" reads as naturally as "queue --json list") and returns
// the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, &exitError{code: 64, err: errors.New("")}
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return rest, nil
}
