// Package route finds the next hops for a destination domain: the hosts to try, in
// order, each with its addresses and the DNSSEC status of everything that led to it
// (RFC 5321 §5.1, RFC 7505, and the DNS half of RFC 7672). Rule ids (MX-xx, DANE-xx)
// refer to the project's reference semantics.
package route

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"mxward/internal/dns"
)

// Family says which address families to use and in what order. Within a family,
// addresses keep the order the resolver returned them in (MX-10).
type Family int

const (
	// PreferIPv6 tries a host's IPv6 addresses before its IPv4 ones (RFC 6724's default).
	PreferIPv6 Family = iota
	// PreferIPv4 tries IPv4 addresses first.
	PreferIPv4
	// IPv4Only never uses IPv6, for hosts without IPv6 connectivity.
	IPv4Only
	// IPv6Only never uses IPv4.
	IPv6Only
)

// DefaultMaxAddresses is the default Options.MaxAddresses, Postfix's
// smtp_mx_address_limit.
const DefaultMaxAddresses = 5

// SelfFunc reports whether an MX host is this server: by its name, or by any of its
// addresses (addrs is nil when the host's addresses could not be looked up).
type SelfFunc func(host string, addrs []netip.Addr) bool

// SelfSet returns a SelfFunc for the configured host names and local listener addresses.
// Names are compared case-insensitively, without trailing dots.
func SelfSet(names []string, addrs []netip.Addr) SelfFunc {
	ns := make(map[string]bool, len(names))
	for _, n := range names {
		ns[dns.Normalize(n)] = true
	}
	as := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		as[a.Unmap().WithZone("")] = true
	}
	return func(host string, addrs []netip.Addr) bool {
		if ns[dns.Normalize(host)] {
			return true
		}
		for _, a := range addrs {
			if as[a.Unmap().WithZone("")] {
				return true
			}
		}
		return false
	}
}

// Options adjust Resolve. The zero value is usable.
type Options struct {
	// Family is the address family preference. Address literals are used as written
	// whatever it says.
	Family Family
	// MaxAddresses limits the addresses in a route, over all its hosts together, as
	// Postfix's smtp_mx_address_limit does: 0 means DefaultMaxAddresses, negative means
	// no limit. RFC 5321 §5.1 allows a limit but wants at least two tried (MX-10).
	MaxAddresses int
	// Self tells whether an MX host is this server (MX-11). nil: never.
	Self SelfFunc
	// Transport returns the next hop the operator configured for a domain, if any:
	// a transport-table entry or the smarthost (see Transports.Lookup). Every failure to
	// route to such a next hop is temporary: it points at local configuration, and mail
	// waits for the operator to fix it rather than bounce.
	Transport func(domain string) (Nexthop, bool)
	// Rand orders MX hosts of equal preference (MX-09). nil: a random source.
	Rand *rand.Rand
	// Logger receives warnings about misconfigured domains. nil: slog.Default().
	Logger *slog.Logger
}

// Route is where to deliver mail for one destination.
type Route struct {
	// Domain is the destination as asked: a domain name (normalised) or an address
	// literal as written.
	Domain string
	// Nexthop is the name whose MX records were looked up (Domain, or the host of a
	// configured next hop), or the host whose addresses were used for a bracketed one;
	// empty for an address literal.
	Nexthop string
	// Canonical is Nexthop after any CNAMEs at it (MX-02).
	Canonical string
	// Port is the TCP port to connect to; 0 means the default, 25.
	Port uint16
	// Implicit is set when the domain has no MX records and is its own mail host (MX-05).
	Implicit bool
	// Literal is set for an address literal: no DNS, no DANE, no MTA-STS (MX-14, DANE-14).
	Literal bool
	// Override is set when the next hop came from Options.Transport.
	Override bool
	// MXStatus is the DNSSEC status of the MX RRset together with any CNAME chain leading
	// to it (DANE-06); for an implicit MX, the status of the NODATA answer. A bracketed
	// configured host is Secure, since its name comes from local configuration and not
	// from DNS, so nothing on the network could have substituted it; an address literal
	// is Insecure, since DANE never applies to it.
	MXStatus dns.Status
	// Hosts are the hosts to try, in order, each with at least one address.
	Hosts []Host
	// Skipped lists the MX hosts left out, in MX order, for the log.
	Skipped []Skip
}

// Host is one mail exchanger to try.
type Host struct {
	// Name is the host as written in the MX record, normalised (the name to log and to
	// match MTA-STS patterns against, decision 14.3); for an implicit MX the domain itself;
	// for an address literal the address.
	Name string
	Pref uint16
	// Addrs are the addresses to try, in order: family preference, then resolver order.
	Addrs []netip.Addr
	// MXStatus repeats Route.MXStatus so that a Host carries all DANE needs.
	MXStatus dns.Status
	// AddrStatus is the status of the address records, CNAME chain included (DANE-09,
	// DANE-10).
	AddrStatus dns.Status
	// Address is the address lookup's answer: canonical name, CNAME chain and statuses,
	// from which DANE picks its TLSA base domain (DANE-11). Zero for address literals.
	Address dns.Answer
}

// Skip is an MX host that was left out of the route.
type Skip struct {
	Host      string
	Pref      uint16
	Reason    string // "ip_literal", "nxdomain", "no_address", "dns_temporary", "invalid_name", "duplicate"
	Temporary bool
	Err       error
}

// Resolve returns the route for domain: an address literal ([192.0.2.1],
// [IPv6:2001:db8::1]) or a domain name in ASCII (A-labels), which may carry a trailing
// dot. Failures are *Error values.
func Resolve(ctx context.Context, r dns.Resolver, domain string, opts Options) (*Route, error) {
	res := resolver{r: r, opts: opts, log: opts.Logger}
	if res.log == nil {
		res.log = slog.Default()
	}
	if strings.HasPrefix(domain, "[") {
		ip, err := ParseAddressLiteral(domain)
		if err != nil {
			return nil, newError(domain, ReasonInvalidLiteral, err)
		}
		return res.literal(domain, ip, 0)
	}
	name, err := normalizeDomain(domain)
	if err != nil {
		return nil, newError(domain, ReasonInvalidDomain, err)
	}
	if opts.Transport != nil {
		if n, ok := opts.Transport(name); ok {
			rt, err := res.nexthop(ctx, name, n)
			var e *Error
			if errors.As(err, &e) {
				return nil, e.deferred()
			}
			return rt, err
		}
	}
	return res.mx(ctx, name, name)
}

// normalizeDomain lower-cases domain and drops a trailing dot. UTF-8 labels (SMTPUTF8
// domains) are refused: DNS holds their A-label form (RFC 5890), and the conversion
// needs IDNA tables this package does not carry; the caller must convert first.
func normalizeDomain(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			return "", errors.New("UTF-8 domain not converted to A-labels")
		}
	}
	if !validHost(d) {
		return "", errors.New("not a valid host name")
	}
	return d, nil
}

type resolver struct {
	r    dns.Resolver
	opts Options
	log  *slog.Logger
}

// literal is the route to one address, with no DNS involved (MX-14).
func (res *resolver) literal(domain string, ip netip.Addr, port uint16) (*Route, error) {
	if res.opts.Self != nil && res.opts.Self("", []netip.Addr{ip}) {
		return nil, newError(domain, ReasonMailLoop, nil)
	}
	return &Route{
		Domain:   domain,
		Port:     port,
		Literal:  true,
		MXStatus: dns.Insecure,
		Hosts: []Host{{
			Name: ip.String(), Addrs: []netip.Addr{ip}, MXStatus: dns.Insecure, AddrStatus: dns.Insecure,
		}},
	}, nil
}

// nexthop is the route to an operator-configured next hop.
func (res *resolver) nexthop(ctx context.Context, domain string, n Nexthop) (*Route, error) {
	switch {
	case n.Addr.IsValid():
		rt, err := res.literal(domain, n.Addr, n.Port)
		if rt != nil {
			rt.Override = true
		}
		return rt, err
	case n.NoMX:
		rt := &Route{Domain: domain, Nexthop: n.Host, Canonical: n.Host, Port: n.Port, Override: true, MXStatus: dns.Secure}
		return res.hosts(ctx, rt, []dns.MX{{Host: n.Host}})
	default:
		rt, err := res.mx(ctx, domain, n.Host)
		if rt != nil {
			rt.Override, rt.Port = true, n.Port
		}
		return rt, err
	}
}

// mx looks up the MX records of nexthop and builds the route from them.
func (res *resolver) mx(ctx context.Context, domain, nexthop string) (*Route, error) {
	ans, err := res.r.LookupMX(ctx, nexthop)
	switch {
	case err == nil:
	case dns.IsNXDomain(err):
		return nil, newError(domain, ReasonNXDomain, err) // MX-03
	case errors.Is(err, dns.ErrInvalidName):
		return nil, newError(domain, ReasonInvalidDomain, err)
	default:
		// MX-04: anything else defers, and there is no fallback to A/AAAA.
		var te *dns.TemporaryError
		if errors.As(err, &te) && te.Reason == "bogus" {
			return nil, newError(domain, ReasonDNSSECBogus, err)
		}
		return nil, newError(domain, ReasonDNSTemporary, err)
	}
	rt := &Route{Domain: domain, Nexthop: nexthop, Canonical: ans.Canonical, MXStatus: ans.Overall()}
	if rt.Canonical == "" {
		rt.Canonical = nexthop
	}
	if len(ans.Records) == 0 {
		// MX-05: no MX records at all, so the domain is its own exchanger. The name
		// looked up is the one asked for; its address lookup follows the same CNAMEs.
		rt.Implicit = true
		return res.hosts(ctx, rt, []dns.MX{{Host: nexthop, Pref: 0}})
	}

	var records []dns.MX
	nulls := 0
	for _, mx := range ans.Records {
		if mx.Host == "." {
			nulls++
			continue
		}
		records = append(records, mx)
	}
	if len(records) == 0 {
		// MX-13: a null MX; no fallback to A/AAAA, no retry. A lone "." of a preference
		// other than 0 is not RFC 7505's null MX, but it says the same and is treated so.
		return nil, newError(domain, ReasonNullMX, nil)
	}
	if nulls > 0 {
		// Decision 14.4: RFC 7505 forbids publishing this but does not say what a client
		// should do; use the real exchangers and tell the operator.
		res.log.WarnContext(ctx, "null MX mixed with other MX records; ignoring the null record",
			"domain", domain, "nexthop", nexthop)
	}
	// MX-08, MX-09: shuffle, then sort stably by preference, so that equal preferences
	// end up in random order.
	if res.opts.Rand != nil {
		res.opts.Rand.Shuffle(len(records), func(i, j int) { records[i], records[j] = records[j], records[i] })
	} else {
		rand.Shuffle(len(records), func(i, j int) { records[i], records[j] = records[j], records[i] })
	}
	slices.SortStableFunc(records, func(a, b dns.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return res.hosts(ctx, rt, records)
}

// hosts resolves the addresses of the exchangers (sorted by preference) into rt.Hosts,
// applying the address family preference, the address limit and the mail loop check,
// and returns rt, or an error when no host is left.
func (res *resolver) hosts(ctx context.Context, rt *Route, mxs []dns.MX) (*Route, error) {
	limit := res.opts.MaxAddresses
	if limit == 0 {
		limit = DefaultMaxAddresses
	}
	var (
		hosts    []Host
		seenHost = map[string]bool{}
		seenAddr = map[netip.Addr]bool{}
		selfPref = -1 // preference of the best MX that is this server
		fullPref = -1 // preference of the host with which the address limit was reached
		used     = 0
	)
	for _, mx := range mxs {
		if fullPref >= 0 && int(mx.Pref) != fullPref {
			// Past the address limit. Hosts of the preference that filled it were still
			// looked at, since one of them being this server would remove the others
			// (MX-11).
			break
		}
		skip := func(reason string, temporary bool, err error) {
			rt.Skipped = append(rt.Skipped, Skip{Host: mx.Host, Pref: mx.Pref, Reason: reason, Temporary: temporary, Err: err})
		}
		if seenHost[mx.Host] {
			skip("duplicate", false, nil)
			continue
		}
		seenHost[mx.Host] = true
		if isIPLiteral(mx.Host) {
			// MX-07: the RDATA must be a host name; an address there is outside the standard.
			res.log.WarnContext(ctx, "MX record names an IP address instead of a host; skipping it",
				"domain", rt.Domain, "mx_host", mx.Host)
			skip("ip_literal", false, nil)
			continue
		}
		ip, err := res.r.LookupIP(ctx, mx.Host)
		var all []netip.Addr
		if err == nil {
			all = ip.Addrs()
		}
		if res.opts.Self != nil && res.opts.Self(mx.Host, all) {
			selfPref = int(mx.Pref)
			break
		}
		var te *dns.TemporaryError
		switch {
		case err == nil:
		case errors.As(err, &te) && te.Reason == "bogus":
			// DANE-03: a bogus address is never used; like any DNSSEC failure it defers
			// (decision 14.7).
			skip(ReasonDNSSECBogus, true, err)
			continue
		case dns.IsTemporary(err):
			skip("dns_temporary", true, err)
			continue
		case dns.IsNXDomain(err):
			skip("nxdomain", false, err)
			continue
		default:
			skip("invalid_name", false, err)
			continue
		}
		var addrs []netip.Addr
		for _, a := range res.order(ip) {
			if !seenAddr[a] {
				seenAddr[a] = true
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			skip("no_address", false, nil)
			continue
		}
		if fullPref >= 0 {
			continue // only looked at for the loop check
		}
		if limit > 0 {
			addrs = addrs[:min(len(addrs), limit-used)]
			used += len(addrs)
			if used >= limit {
				fullPref = int(mx.Pref)
			}
		}
		hosts = append(hosts, Host{
			Name: mx.Host, Pref: mx.Pref, Addrs: addrs,
			MXStatus: rt.MXStatus, AddrStatus: ip.Overall(), Address: ip.Answer,
		})
	}

	if selfPref >= 0 {
		// MX-11: drop every exchanger as good as or worse than this server.
		hosts = slices.DeleteFunc(hosts, func(h Host) bool { return int(h.Pref) >= selfPref })
		if len(hosts) == 0 {
			for _, s := range rt.Skipped {
				if s.Temporary && int(s.Pref) < selfPref {
					// A better exchanger may come back: wait for it rather than bounce.
					return nil, tempNoUsable(rt.Domain)
				}
			}
			return nil, newError(rt.Domain, ReasonMailLoop, nil)
		}
	}
	if len(hosts) == 0 {
		// MX-06: exchangers exist but none can be used. When DNSSEC validation is
		// why, say so: it is what the operator of either side has to look at.
		for _, s := range rt.Skipped {
			if s.Reason == ReasonDNSSECBogus {
				e := newError(rt.Domain, ReasonDNSSECBogus, s.Err)
				e.Msg = "MX host addresses failed DNSSEC validation"
				return nil, e
			}
		}
		for _, s := range rt.Skipped {
			if s.Temporary {
				return nil, tempNoUsable(rt.Domain)
			}
		}
		return nil, newError(rt.Domain, ReasonNoUsableMX, nil)
	}
	rt.Hosts = hosts
	return rt, nil
}

func tempNoUsable(domain string) *Error {
	e := newError(domain, ReasonNoUsableMX, nil)
	e.Temporary, e.Code, e.Enhanced = true, 451, "4.4.3"
	e.Msg = "no MX host has a usable address yet (temporary DNS failure)"
	return e
}

// order returns the addresses of ip to try, by family preference.
func (res *resolver) order(ip dns.IPResult) []netip.Addr {
	switch res.opts.Family {
	case PreferIPv4:
		return slices.Concat(ip.IPv4, ip.IPv6)
	case IPv4Only:
		return slices.Clone(ip.IPv4)
	case IPv6Only:
		return slices.Clone(ip.IPv6)
	default:
		return slices.Concat(ip.IPv6, ip.IPv4)
	}
}

// isIPLiteral reports whether an MX target is an IP address, bare or bracketed.
func isIPLiteral(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if len(h) >= 5 && strings.EqualFold(h[:5], "ipv6:") {
		h = h[5:]
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}
