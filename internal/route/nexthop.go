package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Nexthop is a next hop set by the operator rather than found in DNS: a transport-table
// entry or the smarthost. The syntax is Postfix's:
//
//	relay.example.com          MX lookup of relay.example.com, port 25
//	relay.example.com:2525     MX lookup, then port 2525
//	[mail.example.com]:587     no MX lookup: mail.example.com's own A/AAAA, port 587
//	[192.0.2.1]:25             that address
//	[2001:db8::1] or [IPv6:2001:db8::1]
type Nexthop struct {
	// Host is the domain name, lower case without the trailing dot; empty when Addr is set.
	Host string
	// Addr is the address of a bracketed IP literal.
	Addr netip.Addr
	// Port is the TCP port; 0 means the default (25).
	Port uint16
	// NoMX is set for a bracketed name or address: connect to it directly.
	NoMX bool
}

// portNames are the service names accepted after the colon, as Postfix accepts names
// from /etc/services; the few that make sense for a mail next hop are built in so that
// parsing does not depend on the host's files.
var portNames = map[string]uint16{"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465, "lmtp": 24}

// ParseNexthop parses a next hop in the syntax described at Nexthop.
func ParseNexthop(s string) (Nexthop, error) {
	var n Nexthop
	orig := s
	fail := func(msg string) (Nexthop, error) {
		return Nexthop{}, fmt.Errorf("next hop %q: %s", orig, msg)
	}
	var host, port string
	if rest, ok := strings.CutPrefix(s, "["); ok {
		i := strings.IndexByte(rest, ']')
		if i < 0 {
			return fail("missing ]")
		}
		host, rest = rest[:i], rest[i+1:]
		n.NoMX = true
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return fail("text after ] must be :port")
			}
			if p == "" {
				return fail("empty port")
			}
			port = p
		}
		inner := host
		tagged := len(inner) >= 5 && strings.EqualFold(inner[:5], "ipv6:")
		if tagged {
			inner = inner[5:]
		}
		if ip, err := netip.ParseAddr(inner); err == nil {
			if ip.Zone() != "" || tagged && !ip.Is6() {
				return fail("bad IP address")
			}
			n.Addr = ip
			host = ""
		} else if tagged || strings.ContainsRune(inner, ':') {
			return fail("bad IPv6 address")
		}
	} else {
		var ok bool
		host, port, ok = strings.Cut(s, ":")
		if ok && strings.ContainsRune(port, ':') {
			return fail("an IPv6 address must be in brackets")
		}
		if ok && port == "" {
			return fail("empty port")
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return fail("an IP address must be in brackets (no MX lookup of an address)")
		}
	}
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return fail(err.Error())
		}
		n.Port = p
	}
	if !n.Addr.IsValid() {
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		if !validHost(h) {
			return fail("bad host name")
		}
		n.Host = h
	}
	return n, nil
}

func parsePort(s string) (uint16, error) {
	if p, ok := portNames[strings.ToLower(s)]; ok {
		return p, nil
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, errors.New("bad port")
	}
	return uint16(p), nil
}

// String formats n so that ParseNexthop reads it back.
func (n Nexthop) String() string {
	var s string
	switch {
	case n.Addr.IsValid():
		s = "[" + n.Addr.String() + "]"
	case n.NoMX:
		s = "[" + n.Host + "]"
	default:
		s = n.Host
	}
	if n.Port != 0 {
		s += ":" + strconv.Itoa(int(n.Port))
	}
	return s
}

// validHost reports whether h (lower case, no trailing dot) is a host name: letters,
// digits and hyphens in labels of 1 to 63 octets that neither start nor end with a
// hyphen, 253 octets in all. Underscores are refused: no mail host has them.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// ParseAddressLiteral parses the domain part of an address such as user@[192.0.2.1] or
// user@[IPv6:2001:db8::1] (RFC 5321 §4.1.3). The IPv6 tag is required, and an IPv4
// address must be dotted-quad; general address literals with other tags are refused.
func ParseAddressLiteral(s string) (netip.Addr, error) {
	inner, ok := strings.CutPrefix(s, "[")
	if ok {
		inner, ok = strings.CutSuffix(inner, "]")
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("address literal %q: not in brackets", s)
	}
	if len(inner) >= 5 && strings.EqualFold(inner[:5], "ipv6:") {
		ip, err := netip.ParseAddr(inner[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("address literal %q: bad IPv6 address", s)
		}
		return ip, nil
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("address literal %q: bad IPv4 address", s)
	}
	return ip, nil
}

// Transports maps destination domains to operator-configured next hops, the way
// Postfix's transport table matches: "example.com" matches that domain, ".example.com"
// any domain below it (the closest parent wins), and "*" every domain, which makes it
// the smarthost. Keys are lower case without a trailing dot.
type Transports map[string]Nexthop

// Lookup returns the next hop configured for domain; pass it as Options.Transport.
func (t Transports) Lookup(domain string) (Nexthop, bool) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if n, ok := t[domain]; ok {
		return n, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
		if n, ok := t["."+d]; ok {
			return n, true
		}
	}
	n, ok := t["*"]
	return n, ok
}
