package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"mxward/internal/dns"
)

const checkUsage = `usage: mxward check [--config FILE] [--json] [--resolver IP[:PORT]]
       mxward check [--config FILE] [--json] [--connect=false] [--port N] [--resolver IP[:PORT]] DOMAIN

Checks what this host's outbound security rests on: that the configuration loads, and
that each DNS resolver is fit for the configured dns.mode. In mode "validate" a resolver
must pass DNSSEC signatures through (DO+CD) and the trust anchor's zone must validate as
secure; in mode "trust-ad" it must be trusted (loopback or dns.trusted_resolvers) and set
the AD bit, that is, validate. A resolver failing these makes every answer insecure or
bogus: DANE then protects nothing, or mail to DANE domains is deferred.

Exit status: 0 when every resolver is fit, 1 when some are not, 2 when none is.

--resolver (repeatable) uses the given resolvers instead of dns.resolvers, to try one
before configuring it.

With DOMAIN, it checks what delivery to DOMAIN would get instead; see below.
`

// hostCheckJSON is the --json output of `mxward check`; its field names are stable.
type hostCheckJSON struct {
	Config    string              `json:"config"`
	DNSMode   string              `json:"dns_mode"`
	Probe     string              `json:"probe"`
	Resolvers []dns.ResolverCheck `json:"resolvers"`
	Verdict   string              `json:"verdict"` // "ok", "degraded" or "broken"
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf, err := parseCheckArgs(args, stderr)
	if err != nil {
		return err
	}
	if len(cf.rest) == 1 {
		return cmdCheckDomain(ctx, cf, stdout, stderr)
	}
	cfgPath, asJSON := cf.cfgPath, cf.asJSON
	cfg, source, res, err := loadResolver(cfgPath, stderr, cf.resolvers...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := hostCheckJSON{Config: source, DNSMode: string(cfg.DNS.Mode), Probe: res.probe,
		Resolvers: res.CheckResolvers(ctx, res.probe)}
	fit := 0
	for _, c := range out.Resolvers {
		if c.OK {
			fit++
		}
	}
	code := 0
	switch {
	case fit == len(out.Resolvers):
		out.Verdict = "ok"
	case fit > 0:
		out.Verdict, code = "degraded", 1
	default:
		out.Verdict, code = "broken", 2
	}
	if asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "config:   %s\ndns mode: %s (probe %s SOA)\n", out.Config, out.DNSMode, out.Probe)
		for _, c := range out.Resolvers {
			state := "ok"
			if !c.OK {
				state = "FAIL: " + c.Problem
			}
			fmt.Fprintf(stdout, "resolver: %s: %s\n", c.Server, state)
		}
		fmt.Fprintf(stdout, "verdict:  %s\n", out.Verdict)
	}
	if code != 0 {
		return &exitError{code: code, err: fmt.Errorf("check: %d of %d resolvers unfit for dns.mode %q", len(out.Resolvers)-fit, len(out.Resolvers), out.DNSMode)}
	}
	return nil
}
