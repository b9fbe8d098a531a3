package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mxward/internal/dns"
)

const dnsUsage = `usage: mxward dns lookup [--config FILE] [--json] NAME TYPE

Looks NAME up as mxward's delivery does, with the configured resolvers, and prints the
records, the response code, the DNSSEC status (secure, insecure, bogus, indeterminate)
and the CNAME chain with the status of each link, with any Extended DNS Errors. TYPE is
MX, A, AAAA, TXT or TLSA. The [dns] table of the configuration decides the resolvers and
whether mxward validates DNSSEC itself (mode "validate") or trusts the resolver's AD bit.

Exit status: 0 for an answer (records, NODATA or NXDOMAIN), 75 when the lookup failed
temporarily (SERVFAIL, timeout, bogus), 65 for an invalid name, 64 for bad usage.
`

// lookupJSON is the --json output; its field names are stable.
type lookupJSON struct {
	Name    string      `json:"name"`
	Type    string      `json:"type"`
	Rcode   string      `json:"rcode"`
	Status  string      `json:"status"`
	Records []string    `json:"records"`
	Chain   []chainJSON `json:"chain"`
	// EDE lists Extended DNS Errors (RFC 8914): from the validator or the resolver.
	EDE []dns.EDE `json:"ede"`
	// Reason says why the status is not secure, or why the lookup failed.
	Reason string `json:"reason,omitempty"`
}

type chainJSON struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Status string `json:"status"`
}

func cmdDNS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "lookup" {
		fmt.Fprint(stderr, dnsUsage)
		return &exitError{code: 64, err: errors.New("")}
	}
	cfgPath, asJSON, rest, err := commandArgs("dns lookup", dnsUsage, args[1:], 2, true, stderr)
	if err != nil {
		return err
	}
	name, typ := rest[0], strings.ToUpper(rest[1])
	_, _, res, err := loadResolver(cfgPath, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	out := lookupJSON{Name: dns.Normalize(name), Type: typ, Rcode: "NOERROR", Records: []string{}, Chain: []chainJSON{}, EDE: []dns.EDE{}}
	var ans dns.Answer
	switch typ {
	case "MX":
		r, e := res.LookupMX(ctx, name)
		ans, err = r.Answer, e
		for _, mx := range r.Records {
			out.Records = append(out.Records, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
		}
	case "A", "AAAA":
		r, e := res.LookupIP(ctx, name)
		ans, err = r.Answer, e
		addrs := r.IPv4
		if typ == "AAAA" {
			addrs = r.IPv6
		}
		for _, a := range addrs {
			out.Records = append(out.Records, a.String())
		}
	case "TXT":
		r, e := res.LookupTXT(ctx, name)
		ans, err = r.Answer, e
		out.Records = append(out.Records, r.Records...)
	case "TLSA":
		r, e := res.LookupTLSA(ctx, name)
		ans, err = r.Answer, e
		for _, t := range r.Records {
			out.Records = append(out.Records, fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, hex.EncodeToString(t.Data)))
		}
	default:
		return &exitError{code: 64, err: fmt.Errorf("dns lookup: unsupported type %q (MX, A, AAAA, TXT or TLSA)", rest[1])}
	}
	var failed error
	var te *dns.TemporaryError
	switch {
	case err == nil:
	case dns.IsNXDomain(err):
		out.Rcode = "NXDOMAIN"
	case errors.As(err, &te):
		// A failed lookup is still worth showing: which link failed, and the EDE
		// that says why, is what an operator debugging DANE needs.
		failed = &exitError{code: 75, err: fmt.Errorf("dns lookup %s %s: %w", name, typ, err)}
		out.Rcode = "SERVFAIL"
		switch te.Reason {
		case "bogus":
			out.Status = string(dns.Bogus)
		case "servfail":
			out.Status = string(dns.Indeterminate)
		default:
			out.Rcode, out.Status = strings.ToUpper(te.Reason), string(dns.Indeterminate)
		}
		out.EDE = append(out.EDE, te.EDE...)
		out.Reason = te.Error()
	default:
		return &exitError{code: 65, err: fmt.Errorf("dns lookup %s %s: %w", name, typ, err)}
	}
	if failed == nil {
		out.Status = string(ans.Overall())
		out.EDE = append(out.EDE, ans.EDE...)
		out.Reason = ans.Reason
	}
	for _, l := range ans.Chain {
		out.Chain = append(out.Chain, chainJSON{Name: l.Name, Target: l.Target, Status: string(l.Status)})
	}
	if asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
		return failed
	}
	fmt.Fprintf(stdout, "name:    %s\ntype:    %s\nrcode:   %s\nstatus:  %s\n", out.Name, out.Type, out.Rcode, out.Status)
	if out.Reason != "" {
		fmt.Fprintf(stdout, "reason:  %s\n", out.Reason)
	}
	for _, e := range out.EDE {
		fmt.Fprintf(stdout, "ede:     %d (%s)\n", e.Code, e)
	}
	for _, c := range out.Chain {
		fmt.Fprintf(stdout, "chain:   %s -> %s (%s)\n", c.Name, c.Target, c.Status)
	}
	if failed != nil {
		return failed
	}
	if len(out.Records) == 0 && out.Rcode == "NOERROR" {
		fmt.Fprintln(stdout, "records: none (NODATA)")
	}
	for _, r := range out.Records {
		fmt.Fprintf(stdout, "record:  %s\n", r)
	}
	return nil
}
