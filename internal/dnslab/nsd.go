package dnslab

import (
	"fmt"
	"path/filepath"
	"strings"
)

// nsdConfig returns nsd.conf for an NSD that serves zones (name → zone file in
// dir/zones) on 127.0.0.1:port and keeps every file it writes in dir/nsd. It runs
// as the invoking user, without a database, remote control, zone verifiers or
// response rate limiting: the lab's Unbound sends bursts of queries from one
// address, which RRL would answer with truncated replies.
func nsdConfig(dir string, port int, zones []string) string {
	state := filepath.Join(dir, "nsd")
	var b strings.Builder
	b.WriteString("# Private NSD instance of an mxward DNSSEC lab.\n")
	b.WriteString("server:\n")
	fmt.Fprintf(&b, "\tip-address: 127.0.0.1@%d\n", port)
	fmt.Fprintf(&b, "\tport: %d\n", port)
	b.WriteString("\tdo-ip4: yes\n\tdo-ip6: no\n")
	b.WriteString("\tserver-count: 1\n\treuseport: no\n")
	b.WriteString("\tusername: \"\"\n\tchroot: \"\"\n\tdatabase: \"\"\n")
	fmt.Fprintf(&b, "\tzonesdir: %q\n", filepath.Join(dir, "zones"))
	fmt.Fprintf(&b, "\tzonelistfile: %q\n", filepath.Join(state, "zone.list"))
	fmt.Fprintf(&b, "\txfrdfile: %q\n", filepath.Join(state, "xfrd.state"))
	fmt.Fprintf(&b, "\txfrdir: %q\n", state)
	fmt.Fprintf(&b, "\tpidfile: %q\n", filepath.Join(state, "nsd.pid"))
	fmt.Fprintf(&b, "\tlogfile: %q\n", filepath.Join(state, "nsd.log"))
	b.WriteString("\tverbosity: 1\n\thide-version: yes\n\thide-identity: yes\n")
	b.WriteString("\trrl-ratelimit: 0\n\trrl-whitelist-ratelimit: 0\n")
	b.WriteString("\tzonefiles-check: yes\n\tzonefiles-write: 0\n")
	b.WriteString("remote-control:\n\tcontrol-enable: no\n")
	b.WriteString("verify:\n\tenable: no\n")
	for _, z := range zones {
		fmt.Fprintf(&b, "zone:\n\tname: %q\n\tzonefile: %q\n", z, fileName(z)+".zone")
	}
	return b.String()
}
