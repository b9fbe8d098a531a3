package dns

import (
	"context"
	"fmt"

	mdns "github.com/miekg/dns"
)

// ResolverCheck is what a self-test found out about one upstream resolver.
type ResolverCheck struct {
	Server string `json:"server"` // "ip:port"
	// Trusted says the AD bit of this server is believed (loopback or configured).
	Trusted bool `json:"trusted"`
	// Reachable: the probe got a NOERROR or NXDOMAIN reply.
	Reachable bool `json:"reachable"`
	// Signatures: the reply carried RRSIG records, so the server passes DNSSEC data
	// through, which in-process validation needs.
	Signatures bool `json:"signatures"`
	// AD: the server set the AD bit on the probe, so it validates.
	AD bool `json:"ad"`
	// Status is the in-process validator's verdict on the probe reply, when one is
	// configured.
	Status Status `json:"status,omitempty"`
	// OK says the server is fit for the client's mode: in validate mode it passes
	// signatures that validate; in trust-ad mode it is trusted and sets AD.
	OK bool `json:"ok"`
	// Problem explains a failed check in one sentence, for logs and `mxward check`.
	Problem string `json:"problem,omitempty"`
}

// CheckResolvers asks each configured server for the SOA record of probe, a name in a
// signed zone whose status must come out secure (the root, or the zone of a private
// trust anchor), and reports whether that server can back DANE in the client's mode.
//
// It catches the most common way DANE silently stops working: a resolver that does
// not validate (trust-ad mode) or strips DNSSEC records (validate mode). Every answer
// from such a resolver would be insecure or bogus, so mail to DANE domains would go
// out unauthenticated or not at all (DANE-01).
func (c *Client) CheckResolvers(ctx context.Context, probe string) []ResolverCheck {
	name := mdns.CanonicalName(probe)
	out := make([]ResolverCheck, 0, len(c.servers))
	for _, srv := range c.servers {
		rc := ResolverCheck{Server: srv.addr, Trusted: srv.trusted}
		resp, err := c.exchangeServer(ctx, srv, name, mdns.TypeSOA)
		if err != nil {
			rc.Problem = fmt.Sprintf("no answer for %s SOA: %v", name, err)
			out = append(out, rc)
			continue
		}
		rc.Reachable = true
		rc.AD = resp.AuthenticatedData
		for _, rr := range resp.Answer {
			if _, ok := rr.(*mdns.RRSIG); ok {
				rc.Signatures = true
			}
		}
		switch {
		case c.val != nil:
			v := c.val.Validate(ctx, serverExchanger{c, srv}, resp)
			rc.Status = v.Status
			switch {
			case !rc.Signatures:
				rc.Problem = "the resolver strips DNSSEC signatures (no RRSIG with DO set): nothing can be validated and outbound mail is deferred; use a resolver that passes DNSSEC records, or dns.mode = \"trust-ad\" with a local validating resolver"
			case v.Status != Secure:
				rc.Problem = fmt.Sprintf("the answer for %s SOA validates as %s: %s", name, v.Status, v.Reason)
			default:
				rc.OK = true
			}
		case !srv.trusted:
			rc.Problem = "the resolver is not on loopback nor in dns.trusted_resolvers: its AD bit is ignored and every answer is insecure"
		case !rc.AD:
			rc.Problem = fmt.Sprintf("the resolver does not validate: no AD bit on %s SOA, so every answer is insecure and DANE is off", name)
		default:
			rc.OK = true
		}
		out = append(out, rc)
	}
	return out
}

// serverExchanger pins the validator's follow-up queries to the server under test.
type serverExchanger struct {
	c   *Client
	srv server
}

func (e serverExchanger) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	return e.c.exchangeServer(ctx, e.srv, mdns.CanonicalName(name), qtype)
}
