package dane

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"mxward/internal/dns"
)

// ipResult builds an address lookup result for host with the given CNAME links
// (owner, target, status) and final RRset status.
func ipResult(host string, final dns.Status, links ...dns.Alias) dns.IPResult {
	a := dns.Answer{Name: host, Canonical: host, Status: final, ChainStatus: dns.Secure, Chain: links}
	for _, l := range links {
		a.ChainStatus = dns.Weakest(a.ChainStatus, l.Status)
		a.Canonical = l.Target
	}
	return dns.IPResult{Answer: a, IPv4: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
}

func TestCandidates(t *testing.T) {
	sec, insec := dns.Secure, dns.Insecure
	tests := []struct {
		name   string
		host   string
		addr   dns.IPResult
		want   []string
		reason string // substring of the reason when want is nil
	}{
		{name: "DANE-11/not-an-alias", host: "mx.example.test", addr: ipResult("mx.example.test", sec),
			want: []string{"mx.example.test"}},
		{name: "DANE-11/not-an-alias-normalised", host: "MX.Example.Test.", addr: ipResult("mx.example.test", sec),
			want: []string{"mx.example.test"}},
		{name: "DANE-11/secure-chain-expanded-first", host: "mx.example.test",
			addr: ipResult("mx.example.test", sec,
				dns.Alias{Name: "mx.example.test", Target: "mid.example.net", Status: sec},
				dns.Alias{Name: "mid.example.net", Target: "final.example.org", Status: sec}),
			want: []string{"final.example.org", "mx.example.test"}}, // never mid.example.net
		{name: "DANE-11/insecure-final-secure-initial-CNAME", host: "mx.example.test",
			addr: ipResult("mx.example.test", insec, dns.Alias{Name: "mx.example.test", Target: "final.example.org", Status: sec}),
			want: []string{"mx.example.test"}},
		{name: "DANE-11/insecure-later-link", host: "mx.example.test",
			addr: ipResult("mx.example.test", sec,
				dns.Alias{Name: "mx.example.test", Target: "mid.example.net", Status: sec},
				dns.Alias{Name: "mid.example.net", Target: "final.example.org", Status: insec}),
			want: []string{"mx.example.test"}},
		{name: "DANE-11/insecure-initial-CNAME", host: "mx.example.test",
			addr:   ipResult("mx.example.test", sec, dns.Alias{Name: "mx.example.test", Target: "final.example.org", Status: insec}),
			reason: "DANE-11: the initial CNAME"},
		{name: "DANE-10/insecure-first-address-response", host: "mx.example.test", addr: ipResult("mx.example.test", insec),
			reason: "DANE-10"},
		{name: "DANE-10/indeterminate-address-response", host: "mx.example.test",
			addr: ipResult("mx.example.test", dns.Indeterminate), reason: "DANE-10"},
		{name: "DANE-14/IPv4-literal", host: "192.0.2.1", addr: ipResult("192.0.2.1", sec), reason: "DANE-14"},
		{name: "DANE-14/IPv4-address-literal", host: "[192.0.2.1]", addr: ipResult("[192.0.2.1]", sec), reason: "DANE-14"},
		{name: "DANE-14/IPv6-address-literal", host: "[IPv6:2001:db8::1]", addr: ipResult("x", sec), reason: "DANE-14"},
		{name: "DANE-14/IPv6-bare", host: "2001:db8::25", addr: ipResult("x", sec), reason: "DANE-14"},
		{name: "DANE-14/IPv4-trailing-dot", host: "192.0.2.1.", addr: ipResult("x", sec), reason: "DANE-14"},
		{name: "empty-host", host: "", addr: ipResult("", sec), reason: "no host name"},
		{name: "numeric-label-name-is-not-a-literal", host: "25.example.test", addr: ipResult("25.example.test", sec),
			want: []string{"25.example.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Candidates(tt.host, tt.addr)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Candidates = %q (%s), want %q", got, reason, tt.want)
			}
			if tt.want == nil && !strings.Contains(reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.reason)
			}
			if tt.want != nil && reason != "" {
				t.Errorf("reason %q given with candidates", reason)
			}
		})
	}
}
