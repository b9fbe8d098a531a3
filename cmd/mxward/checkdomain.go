package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"mxward/internal/config"
	"mxward/internal/pin"
	"mxward/internal/policylist"
	"mxward/internal/probe"
	"mxward/internal/tlspolicy"
)

const checkDomainUsage = `usage: mxward check [--config FILE] [--json] [--connect=false] [--port N] [--resolver IP[:PORT]] DOMAIN

Shows what a delivery from this host to DOMAIN would get, and why: the MX records and
their DNSSEC status, each MX host's addresses and TLSA records (usable or not, and why),
the MTA-STS record, policy and cache state, the static policy list entry, the TLS pin
(with pinning enabled), the TLS-RPT record, and what the TLS policy would require of
each host. With --connect (the default) each MX host is probed with STARTTLS on --port
(default 25): the certificate chain, the TLS version, whether DANE matches and whether
the Web PKI verifies the MX name. It ends with a verdict per threat: passive
eavesdropping, STARTTLS stripping, forged MX and forged certificate. The --json schema
is described in docs/check.md.

Exit status: 0 when protected against all four threats, 1 when only opportunistic, 2
when broken: a DANE or MTA-STS enforce domain to which delivery would fail; 75 when no
verdict can be given because no configured resolver passes the self-test of "mxward
check" (DNSSEC statuses would be wrong).
`

// checkFlags are the options of `mxward check`, with or without DOMAIN.
type checkFlags struct {
	cfgPath   string
	asJSON    bool
	connect   bool
	port      int
	resolvers []string
	rest      []string
}

// parseCheckArgs parses the arguments of `mxward check`: flags anywhere, and either no
// positional argument (the resolver self-test) or one (the domain check).
func parseCheckArgs(args []string, stderr io.Writer) (checkFlags, error) {
	var cf checkFlags
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage, "\n", checkDomainUsage) }
	fs.StringVar(&cf.cfgPath, "config", "", "configuration file")
	fs.BoolVar(&cf.asJSON, "json", false, "print JSON")
	fs.BoolVar(&cf.connect, "connect", true, "probe each MX host with STARTTLS")
	fs.IntVar(&cf.port, "port", 25, "SMTP port of the probe")
	fs.Func("resolver", "DNS resolver to use instead of dns.resolvers, as ip or ip:port (repeatable)", func(v string) error {
		addr, err := resolverAddr(v)
		if err != nil {
			return err
		}
		cf.resolvers = append(cf.resolvers, addr)
		return nil
	})
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return cf, err
	}
	if len(rest) > 1 || cf.port <= 0 || cf.port > 65535 {
		fs.Usage()
		return cf, &exitError{code: 64, err: errors.New("")}
	}
	cf.rest = rest
	return cf, nil
}

// cmdCheckDomain is `mxward check DOMAIN`.
func cmdCheckDomain(ctx context.Context, cf checkFlags, stdout, stderr io.Writer) error {
	domain := strings.ToLower(strings.TrimSuffix(cf.rest[0], "."))
	// An internationalized name is checked by its A-labels, as delivery looks it up
	// (RFC 5890).
	a, err := idna.Lookup.ToASCII(domain)
	if err == nil {
		err = checkHostName(a)
	}
	if err != nil {
		return &exitError{code: 64, err: fmt.Errorf("check: %q is not a domain name: %w", cf.rest[0], err)}
	}
	domain = a
	cfg, _, res, err := loadResolver(cf.cfgPath, stderr, cf.resolvers...)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	table, err := tlsPolicies(cfg.Delivery.TLSPolicy)
	if err != nil {
		return fmt.Errorf("delivery.tls_policy: %w", err)
	}
	opts := probe.Options{Domain: domain, Resolver: res, Default: tlspolicy.Level(cfg.Delivery.TLSLevel), Table: table,
		Connect: cf.connect, Port: cf.port, Hostname: cfg.Hostname}
	m, err := newMTASTS(cfg, res, log)
	if err != nil {
		return err
	}
	if m != nil {
		opts.MTASTS = m.Lookup
		opts.STSCache = m.Show
	}
	if opts.List, err = installedList(cfg); err != nil {
		return err
	}
	if cfg.Pinning.Enabled {
		// Read only: check never creates the directory nor records anything.
		pins, err := openPins(cfg, log, false)
		if err != nil {
			return err
		}
		opts.Pins = func(domain string, now time.Time) (pin.Entry, bool, error) {
			if pins == nil {
				return pin.Entry{}, false, nil
			}
			return pins.Lookup(domain, now)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Every verdict rests on DNSSEC statuses: from resolvers that cannot give them (a
	// resolver that strips signatures, one that is down) a DANE domain would look
	// broken and a forged answer could look fine. Refuse to judge rather than mislead.
	if err := resolversFit(ctx, res); err != nil {
		return &exitError{code: 75, err: fmt.Errorf("check %s: %w", domain, err)}
	}
	rep := probe.Check(ctx, opts)
	if cf.asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}

// resolverAddr turns "ip" or "ip:port" into "ip:port".
func resolverAddr(v string) (string, error) {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address or ip:port", v)
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

// checkHostName accepts a host name in A-labels (RFC 1123 §2.1, underscores allowed
// for the service names of test setups), refused before anything is looked up.
func checkHostName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("empty or longer than 253 characters")
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %q is empty or longer than 63 characters", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q has the character %q", l, c)
			}
		}
	}
	return nil
}

// resolversFit runs the resolver self-test and fails when no resolver is fit for the
// configured dns.mode.
func resolversFit(ctx context.Context, res *resolver) error {
	checks := res.CheckResolvers(ctx, res.probe)
	var problems []string
	for _, c := range checks {
		if c.OK {
			return nil
		}
		problems = append(problems, c.Server+": "+c.Problem)
	}
	return fmt.Errorf("no resolver is fit for dns.mode %q, so DNSSEC statuses cannot be trusted and no verdict is given (%s); see `mxward check`, or name a resolver that passes DNSSEC records with --resolver",
		res.mode, strings.Join(problems, "; "))
}

// installedList is the static policy list installed in policy_list.dir, or nil when
// none has been installed. Unlike serve, check never installs policy_list.file.
func installedList(cfg *config.Config) (*policylist.List, error) {
	l, err := policylist.LoadInstalled(cfg.List.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load installed policy list from %s: %w", filepath.Clean(cfg.List.Dir), err)
	}
	return l, nil
}

// printPinning writes the pinning line of a report.
func printPinning(w io.Writer, p probe.Pinning) {
	e := p.Entry
	switch {
	case !p.Enabled:
		fmt.Fprintln(w, "pinning:  disabled here (pinning.enabled = false)")
	case p.Error != "":
		fmt.Fprintf(w, "pinning:  UNREADABLE, delivery applies no pin: %s\n", p.Error)
	case e == nil:
		fmt.Fprintln(w, "pinning:  none (no TLS delivery recorded)")
	case p.State == string(pin.StatePinned):
		fmt.Fprintf(w, "pinning:  pinned: STARTTLS completed %d times since %s, expires %s; mx %s, %s\n",
			e.Count, e.FirstSeen.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339),
			strings.Join(e.MXHosts, " "), strings.Join(e.TLSVersions, " "))
	case p.State == string(pin.StateObserved):
		fmt.Fprintf(w, "pinning:  observed: %d TLS deliveries since %s, not yet pinned (nothing enforced)\n",
			e.Count, e.FirstSeen.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "pinning:  none (the pin expired %s)\n", e.Expires.UTC().Format(time.RFC3339))
	}
}

// printReport writes the human form of a report.
func printReport(w io.Writer, r probe.Report) {
	fmt.Fprintf(w, "domain:   %s\n", r.Domain)
	if r.RouteError != "" {
		fmt.Fprintf(w, "route:    FAILED: %s\n", r.RouteError)
	} else {
		implicit := ""
		if r.ImplicitMX {
			implicit = " (implicit MX: the domain is its own mail host)"
		}
		fmt.Fprintf(w, "MX:       DNSSEC %s%s\n", r.MXStatus, implicit)
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(w, "\nMX %d %s\n", h.Pref, h.Name)
		fmt.Fprintf(w, "  addresses: %s (DNSSEC %s)\n", strings.Join(h.Addrs, " "), h.AddrStatus)
		fmt.Fprintf(w, "  TLSA:      %s", h.TLSA.Outcome)
		if h.TLSA.BaseDomain != "" {
			fmt.Fprintf(w, " at base domain %s", h.TLSA.BaseDomain)
		}
		if h.TLSA.Reason != "" {
			fmt.Fprintf(w, " (%s)", h.TLSA.Reason)
		}
		fmt.Fprintln(w)
		for _, t := range h.TLSA.Records {
			if t.Usable {
				fmt.Fprintf(w, "    usable:   %s\n", t.Record)
			} else {
				fmt.Fprintf(w, "    unusable: %s: %s\n", t.Record, t.Why)
			}
		}
		fmt.Fprintf(w, "  policy:    %s from %s: %s\n", h.Decision.Level, h.Decision.Source, h.Decision.Reason)
		if h.Decision.Defer != "" {
			fmt.Fprintf(w, "  DEFERRED:  %s\n", h.Decision.Defer)
		}
		if p := h.Probe; p != nil {
			fmt.Fprintf(w, "  probe:     %s", p.Addr)
			if p.Error != "" {
				fmt.Fprintf(w, ": %s", p.Error)
			}
			fmt.Fprintln(w)
			if p.STARTTLS {
				fmt.Fprintf(w, "    TLS:     %s\n", p.TLSVersion)
				for i, s := range p.Chain {
					fmt.Fprintf(w, "    cert %d:  %s\n", i, s)
				}
				fmt.Fprintf(w, "    DANE:    %s\n    Web PKI: %s\n", p.DANE, p.WebPKI)
			}
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "\nMX %d %s skipped: %s\n", s.Pref, s.Host, s.Reason)
	}
	fmt.Fprintln(w)
	switch {
	case !r.MTASTS.Enabled:
		fmt.Fprintln(w, "MTA-STS:  disabled here (mta_sts.enabled = false)")
	case r.MTASTS.Mode != "":
		fmt.Fprintf(w, "MTA-STS:  mode %s, id %s (%s), mx %s\n", r.MTASTS.Mode, r.MTASTS.ID, r.MTASTS.Source, strings.Join(r.MTASTS.MX, " "))
	default:
		fmt.Fprintf(w, "MTA-STS:  %s\n", r.MTASTS.Reason)
	}
	if r.MTASTS.Temporary {
		fmt.Fprintln(w, "          UNDETERMINED: the lookup failed and nothing is cached; delivery defers")
	}
	if r.MTASTS.FetchError != "" {
		fmt.Fprintf(w, "          fetch failed: %s\n", r.MTASTS.FetchError)
	}
	if r.MTASTS.Error != "" {
		fmt.Fprintf(w, "          error: %s\n", r.MTASTS.Error)
	}
	if c := r.MTASTS.Cache; c != nil {
		fmt.Fprintf(w, "          cached: id %s, fetched %s, expires %s\n", c.ID, c.Fetched.Format(time.RFC3339), c.Expires.Format(time.RFC3339))
	}
	if r.List != nil {
		fmt.Fprintf(w, "list:     mode %s, min %s, mx %s\n", r.List.Mode, r.List.MinTLS, strings.Join(r.List.MX, " "))
	} else {
		fmt.Fprintln(w, "list:     no entry")
	}
	printPinning(w, r.Pinning)
	switch {
	case r.TLSRPT.Error != "":
		fmt.Fprintf(w, "TLS-RPT:  %s: lookup failed: %s\n", r.TLSRPT.Name, r.TLSRPT.Error)
	case len(r.TLSRPT.Records) == 0:
		fmt.Fprintf(w, "TLS-RPT:  %s: no record\n", r.TLSRPT.Name)
	default:
		for _, t := range r.TLSRPT.Records {
			fmt.Fprintf(w, "TLS-RPT:  %s: %q (DNSSEC %s)\n", r.TLSRPT.Name, t, r.TLSRPT.Status)
		}
	}
	fmt.Fprintln(w)
	for _, t := range r.Threats {
		if t.Protected {
			fmt.Fprintf(w, "%-22s protected by %s\n", t.Threat+":", t.By)
		} else {
			fmt.Fprintf(w, "%-22s NOT protected: %s\n", t.Threat+":", t.Why)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "BROKEN: %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Verdict.Verdict)
}
