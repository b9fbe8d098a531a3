package route

import (
	"net/netip"
	"testing"
)

func TestParseNexthop(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		in   string
		want Nexthop
		str  string // String(); "" means the input
	}{
		{in: "relay.example.com", want: Nexthop{Host: "relay.example.com"}},
		{in: "Relay.Example.COM.", want: Nexthop{Host: "relay.example.com"}, str: "relay.example.com"},
		{in: "relay.example.com:2525", want: Nexthop{Host: "relay.example.com", Port: 2525}},
		{in: "[mail.example.com]:587", want: Nexthop{Host: "mail.example.com", Port: 587, NoMX: true}},
		{in: "[mail.example.com]", want: Nexthop{Host: "mail.example.com", NoMX: true}},
		{in: "[mail.example.com]:submission", want: Nexthop{Host: "mail.example.com", Port: 587, NoMX: true}, str: "[mail.example.com]:587"},
		{in: "relay.example.com:smtp", want: Nexthop{Host: "relay.example.com", Port: 25}, str: "relay.example.com:25"},
		{in: "[192.0.2.1]:25", want: Nexthop{Addr: ip("192.0.2.1"), Port: 25, NoMX: true}},
		{in: "[192.0.2.1]", want: Nexthop{Addr: ip("192.0.2.1"), NoMX: true}},
		{in: "[2001:db8::1]:25", want: Nexthop{Addr: ip("2001:db8::1"), Port: 25, NoMX: true}},
		{in: "[IPv6:2001:DB8::1]", want: Nexthop{Addr: ip("2001:db8::1"), NoMX: true}, str: "[2001:db8::1]"},
		{in: "[ipv6:::1]:10025", want: Nexthop{Addr: ip("::1"), Port: 10025, NoMX: true}, str: "[::1]:10025"},
	}
	for _, tt := range tests {
		got, err := ParseNexthop(tt.in)
		if err != nil {
			t.Errorf("ParseNexthop(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseNexthop(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseNexthop(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
	}

	for _, bad := range []string{
		"", "[", "[]", "[mail.example.com", "[mail.example.com]x", "[mail.example.com]:", "relay.example.com:",
		"relay.example.com:0", "relay.example.com:65536", "relay.example.com:-1", "relay.example.com:+25", "relay.example.com:imap",
		"192.0.2.1", "192.0.2.1:25", "2001:db8::1", "[IPv6:192.0.2.1]", "[fe80::1%eth0]", "[foo:bar]",
		"relay_1.example.com", "-relay.example.com", "relay..example.com", "relay example.com", "[relay.example.com]:25:26",
		"smtp:[relay.example.com]",
	} {
		if n, err := ParseNexthop(bad); err == nil {
			t.Errorf("ParseNexthop(%q) = %+v, want an error", bad, n)
		}
	}
}

func TestParseAddressLiteral(t *testing.T) {
	good := map[string]string{
		"[192.0.2.1]":                 "192.0.2.1",
		"[IPv6:2001:db8::1]":          "2001:db8::1",
		"[ipv6:::ffff:192.0.2.1]":     "::ffff:192.0.2.1",
		"[IPv6:2001:DB8:0:0:0:0:0:1]": "2001:db8::1",
	}
	for in, want := range good {
		ip, err := ParseAddressLiteral(in)
		if err != nil || ip.String() != want {
			t.Errorf("ParseAddressLiteral(%q) = %v, %v; want %s", in, ip, err, want)
		}
	}
	for _, bad := range []string{"192.0.2.1", "[192.0.2.1", "[2001:db8::1]", "[IPv6:192.0.2.1]", "[192.0.2.01]",
		"[IPv6:fe80::1%eth0]", "[x-tag:whatever]", "[]", "[IPv6:]"} {
		if ip, err := ParseAddressLiteral(bad); err == nil {
			t.Errorf("ParseAddressLiteral(%q) = %v, want an error", bad, ip)
		}
	}
}

func TestTransportsLookup(t *testing.T) {
	tr := Transports{
		"example.com":     {Host: "exact.relay"},
		".example.com":    {Host: "sub.relay"},
		".eu.example.com": {Host: "eu.relay"},
		"*":               {Host: "smart.relay"},
	}
	for domain, want := range map[string]string{
		"example.com":           "exact.relay",
		"Example.COM.":          "exact.relay",
		"a.example.com":         "sub.relay",
		"x.eu.example.com":      "eu.relay",
		"eu.example.com":        "sub.relay",
		"a.b.eu.example.com":    "eu.relay",
		"other.org":             "smart.relay",
		"notexample.com":        "smart.relay",
		"example.com.other.org": "smart.relay",
	} {
		n, ok := tr.Lookup(domain)
		if !ok || n.Host != want {
			t.Errorf("Lookup(%q) = %+v, %v; want %s", domain, n, ok, want)
		}
	}
	if n, ok := (Transports{"example.com": {Host: "r"}}).Lookup("other.org"); ok {
		t.Errorf("Lookup without \"*\" = %+v for an unlisted domain", n)
	}
}
