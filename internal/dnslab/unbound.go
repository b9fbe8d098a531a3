package dnslab

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// unboundFiles are the paths of a lab Unbound's files, all under dir/unbound.
type unboundFiles struct {
	dir, conf, log, pid, hints, anchor string
}

func newUnboundFiles(dir string) unboundFiles {
	return unboundFilesIn(filepath.Join(dir, "unbound"))
}

// newPlainUnboundFiles returns the paths of the lab's iterating Unbound
// (Options.PlainResolver), all under dir/unbound-plain.
func newPlainUnboundFiles(dir string) unboundFiles {
	return unboundFilesIn(filepath.Join(dir, "unbound-plain"))
}

func unboundFilesIn(d string) unboundFiles {
	return unboundFiles{
		dir:    d,
		conf:   filepath.Join(d, "unbound.conf"),
		log:    filepath.Join(d, "unbound.log"),
		pid:    filepath.Join(d, "unbound.pid"),
		hints:  filepath.Join(d, "root.hints"),
		anchor: filepath.Join(d, "root.ds"),
	}
}

// unboundConfig returns unbound.conf for a validating resolver on 127.0.0.1:port
// that knows only the lab: every lab zone is a stub zone whose server is the
// loopback address in stubs (NSD, or the zone's proxy), "." included, so no query
// can leave loopback or reach the real root. Its only trust anchor is the lab
// root's DS.
//
// The settings that make Unbound's verdicts exact and repeatable:
//   - val-sig-skew-min/max 0: a signature window is judged to the second
//     (RFC 4035 §5.3.1), not with Unbound's default allowance of up to a day.
//   - aggressive-nsec no (RFC 8198) and qname-minimisation no (RFC 9156): each
//     question is answered from the reply to that question, as mxward asks it.
//   - val-nsec3-keysize-iterations spelled out as 150 for all key sizes, the
//     default of Unbound 1.17 and later: above it NSEC3 proofs count as insecure
//     (RFC 9276 §3.2), and the lab's cases rely on that limit.
//   - ede yes: SERVFAILs carry the Extended DNS Error (RFC 8914) saying why.
//   - val-log-level 2 and log-servfail: the log explains every bogus verdict.
func unboundConfig(f unboundFiles, port int, stubs map[string]string) string {
	return unboundConf(f, port, stubs, true)
}

// plainUnboundConfig returns unbound.conf for a resolver that only iterates
// (module-config "iterator"): the same stubs and cache behaviour as the
// validating resolver of unboundConfig, but no trust anchor and no validator.
// It hands out what the servers sent, signatures and proofs included when the
// question has the DO bit (RFC 4035 §3.2.1), and never judges it, so a client
// that validates in-process is measured against a resolver that does no
// validation work on the side.
func plainUnboundConfig(f unboundFiles, port int, stubs map[string]string) string {
	return unboundConf(f, port, stubs, false)
}

func unboundConf(f unboundFiles, port int, stubs map[string]string, validate bool) string {
	var b strings.Builder
	if validate {
		b.WriteString("# Private Unbound instance of an mxward DNSSEC lab.\n")
	} else {
		b.WriteString("# Private iterating (not validating) Unbound instance of an mxward DNSSEC lab.\n")
	}
	b.WriteString("server:\n")
	lines := []string{
		fmt.Sprintf("interface: 127.0.0.1@%d", port),
		fmt.Sprintf("port: %d", port),
		"do-ip4: yes", "do-ip6: no", "do-udp: yes", "do-tcp: yes",
		"access-control: 127.0.0.0/8 allow",
		"outgoing-interface: 127.0.0.1",
		"num-threads: 1", "so-reuseport: no",
		"do-daemonize: no", "use-syslog: no",
		fmt.Sprintf("logfile: %q", f.log),
		"log-time-ascii: yes",
		"verbosity: 1",
		"log-servfail: yes",
		`username: ""`, `chroot: ""`,
		fmt.Sprintf("directory: %q", f.dir),
		fmt.Sprintf("pidfile: %q", f.pid),
		fmt.Sprintf("root-hints: %q", f.hints),
		"trust-anchor-signaling: no", "root-key-sentinel: no",
		"do-not-query-localhost: no",
		"ede: yes",
		"aggressive-nsec: no",
		"qname-minimisation: no",
		"prefetch: no", "prefetch-key: no", "serve-expired: no",
		// Failed hosts are not remembered for long, so one deliberate
		// failure does not spill into the next question.
		"infra-keep-probing: yes", "infra-host-ttl: 60",
		"edns-buffer-size: 1232",
		"hide-identity: yes", "hide-version: yes",
		"statistics-interval: 0",
	}
	if validate {
		lines = append(lines,
			fmt.Sprintf("trust-anchor-file: %q", f.anchor),
			`module-config: "validator iterator"`,
			"val-log-level: 2",
			"val-sig-skew-min: 0", "val-sig-skew-max: 0",
			`val-nsec3-keysize-iterations: "1024 150 2048 150 4096 150"`,
			"harden-dnssec-stripped: yes",
			"val-permissive-mode: no",
			// Nor are bogus answers.
			"val-bogus-ttl: 1",
		)
	} else {
		lines = append(lines, `module-config: "iterator"`)
	}
	for _, line := range lines {
		b.WriteString("\t" + line + "\n")
	}
	zones := slices.Sorted(maps.Keys(stubs))
	// Names such as "test." and "invalid." are local zones of Unbound's by
	// default (RFC 6761 §6); the lab serves them instead.
	for _, z := range zones {
		if z != "." {
			fmt.Fprintf(&b, "\tlocal-zone: %q nodefault\n", z)
		}
	}
	b.WriteString("remote-control:\n\tcontrol-enable: no\n")
	for _, z := range zones {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s\n\tstub-prime: no\n\tstub-first: no\n", z, unboundAddr(stubs[z]))
	}
	return b.String()
}

// rootHints returns the lab's root hints file, which names no server at all.
// Unbound reads root hints before stub zones and ignores a stub for "." once the
// hints have defined the root, and a hints file cannot give a port, so any server
// named here would be asked on port 53. With no NS records the file defines
// nothing (Unbound warns "no NS content"), the stub for "." decides, and Unbound
// never falls back to its compiled-in root servers, which it uses only when
// neither hints nor a stub define the root.
func rootHints() string {
	return "; mxward DNSSEC lab: the root is the stub-zone \".\" in unbound.conf.\n"
}

// unboundAddr turns "127.0.0.1:53" into Unbound's "127.0.0.1@53".
func unboundAddr(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return hostport
	}
	return hostport[:i] + "@" + hostport[i+1:]
}
