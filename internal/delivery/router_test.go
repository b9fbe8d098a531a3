package delivery

import (
	"context"
	"testing"
	"time"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/dns/dnstest"
	"mxward/internal/route"
)

// DNSRouter hands each hop what its TLSA step needs (RFC 7672 §2.2): the MX status,
// the address answer and the next-hop names; address literals get nothing (DANE-14).
func TestDNSRouterDANE(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.Secure("example.net", "alias.test")
	srv.Add(
		"example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"example.net. 300 IN MX 10 mx1.example.net.",
		"mx1.example.net. 300 IN A 127.0.0.1",
		"implicit.example.net. 300 IN A 127.0.0.2",
		"alias.test. 300 IN CNAME example.net.",
		"unsigned.test. 300 IN MX 10 mx1.example.net.",
		"test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 300",
	)
	res, err := dns.NewClient(dns.Config{Servers: []string{srv.Addr}, Timeout: 3 * time.Second, Attempts: 1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	transports := route.Transports{}
	for dom, hop := range map[string]string{"bracket.test": "[mx1.example.net]:2525", "addr.test": "[127.0.0.1]:2525"} {
		n, err := route.ParseNexthop(hop)
		if err != nil {
			t.Fatal(err)
		}
		transports[dom] = n
	}
	router := DNSRouter(res, route.Options{Family: route.IPv4Only, Transport: transports.Lookup})

	tests := []struct {
		domain   string
		wantNil  bool
		dest     dane.Destination
		addrSafe bool // the address answer is secure
	}{
		{domain: "example.net", dest: dane.Destination{NextHop: "example.net", NextHopExpanded: "example.net", MXSecure: true, MXHost: "mx1.example.net"}, addrSafe: true},
		// MX-02, DANE-22: the next hop reached through a CNAME keeps both names.
		{domain: "alias.test", dest: dane.Destination{NextHop: "alias.test", NextHopExpanded: "example.net", MXSecure: true, MXHost: "mx1.example.net"}, addrSafe: true},
		// MX-05: an implicit MX is its own host.
		{domain: "implicit.example.net", dest: dane.Destination{NextHop: "implicit.example.net", NextHopExpanded: "implicit.example.net",
			MXSecure: true, ImplicitMX: true, MXHost: "implicit.example.net"}, addrSafe: true},
		// DANE-07: an insecure MX RRset, its host still secure (half-DANE material).
		{domain: "unsigned.test", dest: dane.Destination{NextHop: "unsigned.test", NextHopExpanded: "unsigned.test", MXSecure: false, MXHost: "mx1.example.net"}, addrSafe: true},
		// A bracketed host name from the configuration is not open to forgery: secure.
		{domain: "bracket.test", dest: dane.Destination{NextHop: "mx1.example.net", NextHopExpanded: "mx1.example.net", MXSecure: true, MXHost: "mx1.example.net"}, addrSafe: true},
		// DANE-14: addresses get no DANE.
		{domain: "addr.test", wantNil: true},
		{domain: "[127.0.0.1]", wantNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			_, hops, err := router(context.Background(), tt.domain)
			if err != nil || len(hops) != 1 {
				t.Fatalf("route: %v, %d hops", err, len(hops))
			}
			hd := hops[0].DANE
			if tt.wantNil {
				if hd != nil {
					t.Fatalf("hop %+v carries DANE facts %+v", hops[0], *hd)
				}
				return
			}
			if hd == nil || hd.Resolver == nil {
				t.Fatalf("hop %+v carries no DANE facts", hops[0])
			}
			if hd.Dest != tt.dest {
				t.Errorf("Dest %+v, want %+v", hd.Dest, tt.dest)
			}
			if got := hd.Address.Overall() == dns.Secure; got != tt.addrSafe {
				t.Errorf("address answer %+v, secure %v want %v", hd.Address.Answer, got, tt.addrSafe)
			}
		})
	}
}
