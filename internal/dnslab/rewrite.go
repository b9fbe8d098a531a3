package dnslab

import (
	"context"
	"strings"

	mdns "github.com/miekg/dns"
)

// A Rewrite edits resp, NSD's reply to req, in place before the zone's proxy hands
// it to Unbound. req holds exactly one question; replies NSD truncated are passed
// on without a rewrite, so resp is always whole. upstream asks NSD another
// question, for rewrites that splice in records from a different reply. A Rewrite
// runs on the proxy's goroutines, once per query, and must be safe for concurrent
// use.
type Rewrite func(ctx context.Context, req, resp *mdns.Msg, upstream Upstream)

// Upstream sends a question to the lab's NSD over TCP and returns its reply.
type Upstream func(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error)

// SpliceDenial forges a denial of existence for name/qtype: the question is
// answered with the rcode and authority section of NSD's reply to decoy/decoyType,
// a genuine, correctly signed negative reply for another question. Every record is
// validly signed, but the NSEC or NSEC3 records prove nothing about name, so a
// validator must call the reply bogus (RFC 4035 §5.4, RFC 5155 §8). This is the
// attack that would hide a TLSA or MX RRset and downgrade DANE.
//
// decoy/decoyType must draw a negative reply from NSD: a name that does not exist
// (a forged NXDOMAIN) or a type the name does not have (a forged NODATA). If it
// does not, the reply is left as it was, and a test expecting bogus will notice.
func SpliceDenial(name string, qtype uint16, decoy string, decoyType uint16) Rewrite {
	name = mdns.CanonicalName(name)
	decoy = mdns.CanonicalName(decoy)
	return func(ctx context.Context, req, resp *mdns.Msg, upstream Upstream) {
		q := req.Question[0]
		if mdns.CanonicalName(q.Name) != name || q.Qtype != qtype {
			return
		}
		dq := new(mdns.Msg)
		dq.SetQuestion(decoy, decoyType)
		dq.RecursionDesired = false
		dq.SetEdns0(mdns.DefaultMsgSize, true)
		dr, err := upstream(ctx, dq)
		if err != nil || !negative(dr) {
			return
		}
		resp.Rcode = dr.Rcode
		resp.Answer = nil
		resp.Ns = dr.Ns
		resp.Extra = filter(resp.Extra, func(rr mdns.RR) bool { return rr.Header().Rrtype == mdns.TypeOPT })
	}
}

// negative reports whether m is an NXDOMAIN or NODATA reply.
func negative(m *mdns.Msg) bool {
	return m.Rcode == mdns.RcodeNameError || (m.Rcode == mdns.RcodeSuccess && len(m.Answer) == 0)
}

// DropWildcardProof removes the NSEC and NSEC3 records, and their RRSIGs, from the
// authority section of every answer synthesised from a wildcard. The answer's own
// signatures stay valid, but nothing proves that the queried name does not exist
// itself, so the answer could hide a real RRset; RFC 4035 §5.3.4 and RFC 5155 §8.8
// require that proof, and a validator must call the reply bogus without it.
func DropWildcardProof() Rewrite {
	return func(_ context.Context, _, resp *mdns.Msg, _ Upstream) {
		if !wildcardExpanded(resp) {
			return
		}
		resp.Ns = filter(resp.Ns, func(rr mdns.RR) bool {
			t := coveredType(rr)
			return t != mdns.TypeNSEC && t != mdns.TypeNSEC3
		})
	}
}

// wildcardExpanded reports whether an answer RRset of m was synthesised from a
// wildcard: its RRSIG's Labels field counts fewer labels than the owner name has
// (RFC 4035 §5.3.2; a literal "*" label at the owner is not counted).
func wildcardExpanded(m *mdns.Msg) bool {
	for _, rr := range m.Answer {
		sig, ok := rr.(*mdns.RRSIG)
		if !ok {
			continue
		}
		labels := mdns.CountLabel(sig.Hdr.Name)
		if strings.HasPrefix(sig.Hdr.Name, "*.") {
			labels--
		}
		if int(sig.Labels) < labels {
			return true
		}
	}
	return false
}

// chain applies rewrites in order.
func chain(rs ...Rewrite) Rewrite {
	return func(ctx context.Context, req, resp *mdns.Msg, upstream Upstream) {
		for _, r := range rs {
			r(ctx, req, resp, upstream)
		}
	}
}
