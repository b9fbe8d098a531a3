package dane

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dns/dnstest"
)

// TestLookupHostResolver runs the TLSA step against the real DNS client and a test
// server on 127.0.0.1 that sets the AD bit for its signed zones, so that the statuses
// and CNAME chains LookupHost reads are the ones the client really produces.
func TestLookupHostResolver(t *testing.T) {
	p := testPKI()
	ee := rec(3, 1, 1, p.self.cert)
	tlsa := "TLSA 3 1 1 " + hex.EncodeToString(ee.Data)

	srv := dnstest.NewServer(t)
	srv.Add(
		"example.test. SOA ns.example.test. h.example.test. 1 7200 900 1209600 300",
		"example.net. SOA ns.example.net. h.example.net. 1 7200 900 1209600 300",
		"unsigned.test. SOA ns.unsigned.test. h.unsigned.test. 1 7200 900 1209600 300",

		"mx.example.test. A 127.0.0.25",
		"_25._tcp.mx.example.test. "+tlsa,
		// The TLSA name is an alias into another signed zone (DANE-12).
		"mx2.example.test. A 127.0.0.26",
		"_25._tcp.mx2.example.test. CNAME _25._tcp.shared.example.net.",
		"_25._tcp.shared.example.net. "+tlsa,
		// A secure CNAME to a host in an unsigned zone: only the original name (DANE-11).
		"alias.example.test. CNAME host.unsigned.test.",
		"host.unsigned.test. A 127.0.0.27",
		"_25._tcp.host.unsigned.test. "+tlsa,
		"_25._tcp.alias.example.test. TLSA 1 1 1 "+hex.EncodeToString(ee.Data),
		// A secure chain: expanded name first (DANE-11, DANE-13).
		"chain.example.test. CNAME final.example.net.",
		"final.example.net. A 127.0.0.28",
		"_25._tcp.final.example.net. "+tlsa,
		// A host in an unsigned zone: no TLSA lookup (DANE-10).
		"mx.unsigned.test. A 127.0.0.29",
		"_25._tcp.mx.unsigned.test. "+tlsa,
		// A TLSA lookup that fails (DANE-04).
		"broken.example.test. A 127.0.0.30",
		// No TLSA records (secure NXDOMAIN).
		"plain.example.test. A 127.0.0.31",
	)
	srv.Secure("example.test", "example.net")
	// Answer aliases with the CNAME alone, so that the client asks for the target in a
	// query of its own and learns each link's status apart (DANE-05): with the AD bit
	// alone, a reply carrying a secure CNAME and an insecure target has one status.
	srv.NoChase(true)
	srv.Fail("_25._tcp.broken.example.test", mdns.TypeTLSA, dnstest.ServFail)

	c, err := dns.NewClient(dns.Config{Servers: []string{srv.Addr}, Timeout: 500 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host    string
		want    Outcome
		base    string
		queries int // TLSA queries expected at the server
	}{
		{"mx.example.test", Authenticate, "mx.example.test", 1},
		{"mx2.example.test", Authenticate, "mx2.example.test", 1},
		{"alias.example.test", EncryptOnly, "alias.example.test", 1},
		{"chain.example.test", Authenticate, "final.example.net", 1},
		{"mx.unsigned.test", NotApplicable, "", 0},
		{"broken.example.test", Unreachable, "", 1},
		{"plain.example.test", NotApplicable, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			addr, err := c.LookupIP(ctx, tt.host)
			if err != nil {
				t.Fatalf("LookupIP: %v", err)
			}
			srv.ResetQueries()
			h := LookupHost(ctx, c, tt.host, addr, 25, nil)
			if h.Outcome != tt.want || h.BaseDomain != tt.base {
				t.Errorf("LookupHost = %v base %q (%s), want %v base %q", h.Outcome, h.BaseDomain, h.Reason, tt.want, tt.base)
			}
			n := 0
			for _, q := range srv.Queries() {
				if q.Type == mdns.TypeTLSA {
					n++
				}
			}
			if n < tt.queries || (tt.queries == 0 && n != 0) {
				t.Errorf("%d TLSA queries, want %d", n, tt.queries)
			}
		})
	}
}
