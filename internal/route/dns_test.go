package route

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dns/dnstest"
)

// TestResolveWithClient runs the rules end to end: the DNS client against the test
// server on 127.0.0.1.
func TestResolveWithClient(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.Add(
		"example. 3600 IN SOA ns.example. h.example. 1 7200 900 1209600 300",
		"signed.example. MX 10 mx.signed.example.",
		"mx.signed.example. A 192.0.2.10",
		"mx.signed.example. AAAA 2001:db8::10",
		"null.example. MX 0 .",
		"mixed.example. MX 0 .",
		"mixed.example. MX 10 mx.signed.example.",
		"implicit.example. A 192.0.2.20",
		"alias.example. CNAME signed.example.",
		"flaky.example. MX 10 mx.signed.example.",
		"badmx.example. MX 10 nowhere.example.",
		"badmx.example. MX 20 alsonowhere.example.",
	)
	srv.Secure("signed.example")
	srv.Fail("flaky.example", mdns.TypeMX, dnstest.ServFail)

	c, err := dns.NewClient(dns.Config{Servers: []string{srv.Addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Rand: rand.New(rand.NewPCG(1, 1)), Logger: slog.New(slog.DiscardHandler)}
	resolve := func(domain string) (*Route, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return Resolve(ctx, c, domain, opts)
	}
	reason := func(err error) string {
		var e *Error
		if errors.As(err, &e) {
			return e.Reason
		}
		return ""
	}

	rt, err := resolve("signed.example")
	if err != nil || hostsString(rt) != "mx.signed.example/10=2001:db8::10,192.0.2.10" ||
		rt.MXStatus != dns.Secure || rt.Hosts[0].AddrStatus != dns.Secure {
		t.Errorf("signed.example: %+v, %v", rt, err)
	}
	rt, err = resolve("alias.example") // MX-02; the unsigned alias makes the MX RRset insecure (DANE-05)
	if err != nil || rt.Canonical != "signed.example" || rt.MXStatus != dns.Insecure || len(rt.Hosts) != 1 {
		t.Errorf("alias.example: %+v, %v", rt, err)
	}
	rt, err = resolve("implicit.example") // MX-05
	if err != nil || !rt.Implicit || hostsString(rt) != "implicit.example/0=192.0.2.20" || rt.MXStatus != dns.Insecure {
		t.Errorf("implicit.example: %+v, %v", rt, err)
	}
	rt, err = resolve("mixed.example") // decision 14.4
	if err != nil || hostsString(rt) != "mx.signed.example/10=2001:db8::10,192.0.2.10" {
		t.Errorf("mixed.example: %+v, %v", rt, err)
	}
	for domain, want := range map[string]string{
		"null.example":    "null_mx",       // MX-13
		"missing.example": "nxdomain",      // MX-03
		"flaky.example":   "dns_temporary", // MX-04
		"badmx.example":   "no_usable_mx",  // MX-06
	} {
		if _, err := resolve(domain); reason(err) != want {
			t.Errorf("%s: err = %v, want %s", domain, err, want)
		}
	}
	if n := srv.Count("flaky.example", mdns.TypeA) + srv.Count("flaky.example", mdns.TypeAAAA); n != 0 {
		t.Errorf("%d address queries for a domain whose MX lookup failed (MX-04)", n)
	}
}
