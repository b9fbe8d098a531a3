package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/route"
	"mxward/internal/smtp"
	"mxward/internal/smtpclient"
)

// DNSRouter routes with route.Resolve: MX records, implicit MX, null MX, address literals
// and the operator's transports (reference semantics §1).
func DNSRouter(r dns.Resolver, opts route.Options) Router {
	return func(ctx context.Context, domain string) (string, []Hop, error) {
		// An internationalized domain (SMTPUTF8 mail) is looked up by its A-labels
		// (RFC 5890); the DNS knows no other form.
		if !smtp.IsASCII(domain) && !strings.HasPrefix(domain, "[") {
			a, err := idna.Lookup.ToASCII(domain)
			if err != nil {
				return "", nil, &RouteError{Permanent: true, Code: 550, Enhanced: "5.1.2", Reason: "invalid_domain",
					Err: fmt.Errorf("domain %q has no valid A-label form: %w", domain, err)}
			}
			domain = a
		}
		rt, err := route.Resolve(ctx, r, domain, opts)
		if err != nil {
			var re *route.Error
			if errors.As(err, &re) {
				return "", nil, &RouteError{Permanent: !re.Temporary, Code: re.Code, Enhanced: re.Enhanced, Reason: re.Reason, Err: err}
			}
			return "", nil, &RouteError{Code: 451, Enhanced: "4.4.3", Reason: "route_error", Err: err}
		}
		// Policies are looked up for the recipient domain, or for the configured next
		// hop's name when a transport overrides the route (PF-04).
		nextHop := rt.Domain
		if rt.Override && rt.Nexthop != "" {
			nextHop = rt.Nexthop
		}
		hops := make([]Hop, 0, len(rt.Hosts))
		for _, h := range rt.Hosts {
			hop := Hop{Name: h.Name, Addrs: h.Addrs, Port: int(rt.Port), Literal: rt.Literal}
			if !rt.Literal {
				hop.DANE = hopDANE(r, rt, h)
			}
			hops = append(hops, hop)
		}
		return nextHop, hops, nil
	}
}

// hopDANE collects what the TLSA step needs for one host of a route (RFC 7672 §2.2):
// the MX status, the host's address answer and the next-hop names. An address literal,
// as a destination or as a configured next hop, gets none (DANE-14).
func hopDANE(r dns.Resolver, rt *route.Route, h route.Host) *HopDANE {
	next := rt.Nexthop
	if next == "" {
		next = rt.Domain
	}
	expanded := rt.Canonical
	if rt.Implicit {
		// For an implicit MX the next hop is the host, and its expansion is what the
		// address lookup found (DANE-22).
		expanded = h.Address.Canonical
	}
	return &HopDANE{
		Resolver: r,
		Address:  dns.IPResult{Answer: h.Address},
		Dest: dane.Destination{
			NextHop: next, NextHopExpanded: expanded, MXSecure: h.MXStatus == dns.Secure,
			ImplicitMX: rt.Implicit, MXHost: h.Name,
		},
	}
}

// WithCredentials makes r log in with c on the hops of every destination for which
// applies is true (the destinations routed to the smarthost).
func WithCredentials(r Router, applies func(domain string) bool, c *smtpclient.Credentials) Router {
	return func(ctx context.Context, domain string) (string, []Hop, error) {
		nh, hops, err := r(ctx, domain)
		if err == nil && applies(domain) {
			for i := range hops {
				hops[i].Auth = c
			}
		}
		return nh, hops, err
	}
}
