package dane

import (
	"net/netip"
	"strings"

	"mxward/internal/dns"
)

// Candidates returns the TLSA base-domain candidates for an MX host, in the order to
// try them (RFC 7672 §2.2.2, §2.2.3; DANE-09 … DANE-11, DANE-14). host is the name as
// written in the MX record (or the next-hop domain itself for an implicit MX); addr is
// the result of its address lookup, which must have succeeded (a failed address lookup
// makes the host unusable before DANE is considered, DANE-03).
//
//   - host is not an alias and its addresses are secure: host alone.
//   - every link of the alias chain and the final address RRset are secure: first the
//     fully expanded name, then host (RFC 7672 §2.2.3 ¶2).
//   - the initial CNAME is secure but a later link or the final RRset is not: host
//     alone, since only the first link is authenticated (§2.2.2 ¶13–15).
//
// Intermediate names of a chain are never candidates. The result is nil, with a reason
// naming the rule, when DANE does not apply: host is an IP address (DANE-14), or the
// first address response, or the initial CNAME, is not secure (DANE-10, DANE-11); the
// client then looks up no TLSA records at all (§2.2.2 ¶7–8).
func Candidates(host string, addr dns.IPResult) (names []string, reason string) {
	if isAddrLiteral(host) {
		return nil, "DANE-14: the host is an IP address; DANE does not apply (RFC 7672 §2.2)"
	}
	host = dns.Normalize(host)
	if host == "" || host == "." {
		return nil, "DANE-11: no host name; DANE does not apply"
	}
	if len(addr.Chain) == 0 {
		if addr.Status != dns.Secure {
			return nil, "DANE-10: the address response for " + host + " is " + statusWord(addr.Status) +
				"; no TLSA lookup (RFC 7672 §2.2.2)"
		}
		return []string{host}, ""
	}
	if first := addr.Chain[0]; first.Status != dns.Secure {
		return nil, "DANE-11: the initial CNAME " + first.Name + " → " + first.Target + " is " +
			statusWord(first.Status) + "; DANE does not apply (RFC 7672 §2.2.2)"
	}
	if addr.Overall() != dns.Secure {
		return []string{host}, ""
	}
	expanded := dns.Normalize(addr.Canonical)
	if expanded == "" {
		expanded = dns.Normalize(addr.Chain[len(addr.Chain)-1].Target)
	}
	if expanded == "" || expanded == host {
		return []string{host}, ""
	}
	return []string{expanded, host}, ""
}

// isAddrLiteral reports whether host is an IP address, bare ("192.0.2.1", "2001:db8::1",
// also with a trailing dot) or as an RFC 5321 §4.1.3 address literal ("[192.0.2.1]",
// "[IPv6:2001:db8::1]").
func isAddrLiteral(host string) bool {
	h := strings.TrimSuffix(host, ".")
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return false
		}
		if len(inner) >= 5 && strings.EqualFold(inner[:5], "ipv6:") {
			inner = inner[5:]
		}
		h = inner
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

func statusWord(s dns.Status) string {
	if s == "" {
		return "of unknown security"
	}
	return string(s)
}
