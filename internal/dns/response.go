package dns

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// This file holds everything that reads a reply: checking that it answers the question
// that was asked, classifying its rcode, walking its CNAME links and extracting records.
// None of it trusts the reply's contents; FuzzReply feeds it arbitrary messages.

// checkReply verifies that resp is a reply to req: the same ID, a response to a standard
// query, and exactly req's question (names compared case-insensitively, as resolvers may
// change the case of the question, RFC 4343). A reply that fails these checks may be
// spoofed or belong to another query, and is treated as a temporary failure.
func checkReply(req, resp *mdns.Msg) error {
	switch {
	case resp.Id != req.Id:
		return fmt.Errorf("reply ID %d does not match query ID %d", resp.Id, req.Id)
	case !resp.Response:
		return errors.New("reply does not have the QR bit set")
	case resp.Opcode != mdns.OpcodeQuery:
		return fmt.Errorf("reply has opcode %d", resp.Opcode)
	case len(resp.Question) != 1:
		return fmt.Errorf("reply has %d questions", len(resp.Question))
	}
	q, rq := req.Question[0], resp.Question[0]
	if !strings.EqualFold(q.Name, rq.Name) || q.Qtype != rq.Qtype || q.Qclass != rq.Qclass {
		return fmt.Errorf("reply is for %s %s, not %s %s",
			rq.Name, mdns.Type(rq.Qtype), q.Name, mdns.Type(q.Qtype))
	}
	return nil
}

// rcodeReason classifies a reply's rcode: "" for NOERROR and NXDOMAIN, which are
// answers, and a TemporaryError reason for anything else.
func rcodeReason(rcode int) string {
	switch rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
		return ""
	case mdns.RcodeServerFailure:
		return "servfail"
	case mdns.RcodeRefused:
		return "refused"
	default:
		return "rcode"
	}
}

// isReferral reports whether a NOERROR reply is a delegation rather than an answer: no
// answer records, and NS records without an SOA in the authority section.
func isReferral(resp *mdns.Msg) bool {
	if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) > 0 {
		return false
	}
	ns := false
	for _, rr := range resp.Ns {
		switch rr.(type) {
		case *mdns.SOA:
			return false
		case *mdns.NS:
			ns = true
		}
	}
	return ns
}

// step is what one reply says about the name it was asked for.
type step struct {
	links   []Alias   // CNAME links followed inside the reply (Status not yet set)
	final   string    // the name reached, fully qualified and lower case
	records []mdns.RR // records of the queried type owned by final
	nx      bool      // rcode NXDOMAIN: final does not exist (RFC 6604 §3)
	soa     *mdns.SOA // SOA from the authority section, if any (RFC 2308 §3)
	rcode   int       // the reply's rcode
}

// complete reports whether the step settles the lookup: records were found, the name
// does not exist, the reply asked nothing to be followed, or it carries the SOA of a
// denial for the last alias target. A reply that stops at a CNAME without either leaves
// the target to be asked for separately (some resolvers do not chase aliases).
func (s step) complete() bool {
	return len(s.records) > 0 || s.nx || len(s.links) == 0 || s.soa != nil
}

// walk follows CNAME links from name through the answer section of resp and collects the
// records of type qtype at the end of the chain. seen holds the names already visited
// in this lookup (fully qualified, lower case); walk adds to it and fails on a loop.
// DNAME records are ignored: a resolver synthesises the CNAME that goes with them.
func walk(resp *mdns.Msg, name string, qtype uint16, seen map[string]bool) (step, error) {
	s := step{final: name, rcode: resp.Rcode, nx: resp.Rcode == mdns.RcodeNameError}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			s.soa = soa
			break
		}
	}
	// Index the answer section once: a hostile reply may carry thousands of records.
	records := make(map[string][]mdns.RR)
	cnames := make(map[string]string)
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Class != mdns.ClassINET {
			continue
		}
		owner := strings.ToLower(h.Name)
		if h.Rrtype == qtype {
			records[owner] = append(records[owner], rr)
		} else if c, ok := rr.(*mdns.CNAME); ok {
			if _, dup := cnames[owner]; !dup {
				cnames[owner] = strings.ToLower(mdns.Fqdn(c.Target))
			}
		}
	}
	for {
		s.records = records[s.final]
		target, ok := cnames[s.final]
		if len(s.records) > 0 || !ok || qtype == mdns.TypeCNAME {
			return s, nil
		}
		if seen[target] {
			return s, fmt.Errorf("CNAME loop at %s", Normalize(target))
		}
		seen[target] = true
		s.links = append(s.links, Alias{Name: Normalize(s.final), Target: Normalize(target)})
		s.final = target
	}
}

// cacheTTL returns how long resp may be cached, in seconds, whether it is a denial
// (whose cap is shorter), and whether it may be cached at all. Positive data lives for the smallest TTL in the answer section; a denial
// (NXDOMAIN or NODATA) for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), and is not cached
// without an SOA. Other rcodes are never cached.
func cacheTTL(resp *mdns.Msg, name string, qtype uint16) (ttl uint32, negative, ok bool) {
	if rcodeReason(resp.Rcode) != "" {
		return 0, false, false
	}
	s, err := walk(resp, name, qtype, map[string]bool{name: true})
	if err != nil {
		return 0, false, false
	}
	have := false
	for _, rr := range resp.Answer {
		if t := rr.Header().Ttl; !have || t < ttl {
			ttl, have = t, true
		}
	}
	negative = s.nx || len(s.records) == 0
	if negative {
		if s.soa != nil {
			neg := min(s.soa.Hdr.Ttl, s.soa.Minttl)
			if !have || neg < ttl {
				ttl, have = neg, true
			}
		} else if len(s.links) == 0 || s.nx {
			return 0, false, false
		}
	}
	return ttl, negative, have && ttl > 0
}

func parseMX(rrs []mdns.RR) []MX {
	out := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		if mx, ok := rr.(*mdns.MX); ok {
			out = append(out, MX{Host: Normalize(mx.Mx), Pref: mx.Preference})
		}
	}
	return out
}

func parseA(rrs []mdns.RR) []netip.Addr {
	out := make([]netip.Addr, 0, len(rrs))
	for _, rr := range rrs {
		if a, ok := rr.(*mdns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

func parseAAAA(rrs []mdns.RR) []netip.Addr {
	out := make([]netip.Addr, 0, len(rrs))
	for _, rr := range rrs {
		if a, ok := rr.(*mdns.AAAA); ok && len(a.AAAA) == 16 {
			if ip, ok := netip.AddrFromSlice(a.AAAA); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

func parseTXT(rrs []mdns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

// parseTLSA keeps every TLSA record, even one whose data does not decode (Data is then
// nil): dropping it could turn "secure RRset, all unusable" into NODATA, which DANE
// treats more leniently (RFC 7672 §2.2.3 ¶14, DANE-18).
func parseTLSA(rrs []mdns.RR) []TLSA {
	out := make([]TLSA, 0, len(rrs))
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TLSA); ok {
			data, err := hex.DecodeString(t.Certificate)
			if err != nil {
				data = nil
			}
			out = append(out, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
		}
	}
	return out
}
