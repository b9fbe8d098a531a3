package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"mxward/internal/dkim"
)

const dkimUsage = `usage: mxward dkim keygen --domain DOMAIN --selector SELECTOR --out FILE [--algorithm rsa|ed25519]

Generates a DKIM signing key, writes it to FILE (PEM, PKCS#8, mode 0600; an existing
file is never overwritten), and prints the TXT record to publish and the [[dkim]]
entry to add to the configuration. See docs/dkim.md.

  --algorithm rsa      RSA, 2048 bits (the default: every verifier supports it)
  --algorithm ed25519  Ed25519 (RFC 8463): short records, but not yet verified by every
                       receiver; configure it beside an RSA key, not instead of one
`

// cmdDKIM runs "mxward dkim SUBCOMMAND".
func cmdDKIM(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprint(stderr, dkimUsage)
		return &exitError{code: 64, err: errors.New("")}
	}
	fs := flag.NewFlagSet("dkim keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dkimUsage) }
	domain := fs.String("domain", "", "signing domain (d=)")
	selector := fs.String("selector", "", "selector (s=)")
	out := fs.String("out", "", "file to write the private key to")
	algorithm := fs.String("algorithm", "rsa", "rsa or ed25519")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		if err == nil {
			fs.Usage()
		}
		return &exitError{code: 64, err: errors.New("")}
	}
	*domain = strings.ToLower(strings.TrimSuffix(*domain, "."))
	*selector = strings.ToLower(*selector)
	if err := dkim.CheckDomain(*domain); err != nil {
		return &exitError{code: 64, err: fmt.Errorf("dkim keygen: --domain %q: %w", *domain, err)}
	}
	if err := dkim.CheckSelector(*selector); err != nil {
		return &exitError{code: 64, err: fmt.Errorf("dkim keygen: --selector %q: %w", *selector, err)}
	}
	if *out == "" {
		return &exitError{code: 64, err: errors.New("dkim keygen: --out FILE is required")}
	}
	var alg dkim.Algorithm
	switch *algorithm {
	case "rsa", string(dkim.RSASHA256):
		alg = dkim.RSASHA256
	case "ed25519", string(dkim.Ed25519SHA256):
		alg = dkim.Ed25519SHA256
	default:
		return &exitError{code: 64, err: fmt.Errorf("dkim keygen: --algorithm %q is not rsa or ed25519", *algorithm)}
	}

	key, err := dkim.GenerateKey(alg)
	if err != nil {
		return fmt.Errorf("dkim keygen: generate key: %w", err)
	}
	pemData, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("dkim keygen: %w", err)
	}
	record, err := dkim.KeyRecord(key.Public())
	if err != nil {
		return fmt.Errorf("dkim keygen: %w", err)
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return fmt.Errorf("dkim keygen: %w", err)
	}
	if err := writeNewFile(path, pemData); err != nil {
		return fmt.Errorf("dkim keygen: %w", err)
	}
	fmt.Fprintf(stdout, "; the private key is in %s\n; publish this record, wait for its TTL, then add the entry below and restart mxward\n%s IN TXT %s\n\n",
		path, dkim.KeyName(*selector, *domain), dkim.TXTValue(record))
	fmt.Fprintf(stdout, "[[dkim]]\ndomain = %q\nselector = %q\nkey_file = %q\n", *domain, *selector, path)
	return nil
}

// writeNewFile writes data to a file that must not exist yet, readable by its owner
// only, and syncs it: losing a key that was already published would leave a selector
// nobody can sign with.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}
