package route

import (
	"testing"
)

// FuzzParseNexthop: the parser never panics, and whatever it accepts prints back to a
// string that parses to the same next hop.
func FuzzParseNexthop(f *testing.F) {
	for _, s := range []string{"relay.example.com", "relay.example.com:2525", "[mail.example.com]:587",
		"[192.0.2.1]:25", "[IPv6:2001:db8::1]", "[2001:db8::1]:25", "[fe80::1%eth0]", "relay:smtp", "[", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNexthop(s)
		if err != nil {
			return
		}
		if n.Addr.IsValid() == (n.Host != "") {
			t.Fatalf("ParseNexthop(%q) = %+v: exactly one of Host and Addr must be set", s, n)
		}
		if n.Addr.IsValid() && !n.NoMX {
			t.Fatalf("ParseNexthop(%q) = %+v: an address without NoMX", s, n)
		}
		again, err := ParseNexthop(n.String())
		if err != nil || again != n {
			t.Fatalf("ParseNexthop(%q) = %+v, String %q parses to %+v, %v", s, n, n.String(), again, err)
		}
	})
}

// FuzzParseAddressLiteral: never panics; accepted literals have no zone and the right
// family for their tag.
func FuzzParseAddressLiteral(f *testing.F) {
	for _, s := range []string{"[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:192.0.2.1]", "[x:y]", "["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := ParseAddressLiteral(s)
		if err != nil {
			return
		}
		if ip.Zone() != "" || !ip.IsValid() {
			t.Fatalf("ParseAddressLiteral(%q) = %v", s, ip)
		}
	})
}
