package dnssec

import (
	"context"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// BenchmarkValidate measures one validation with the chain of trust cached (warm) and
// from nothing (cold: three DNSKEY and two DS fetches from the in-memory resolver).
func BenchmarkValidate(b *testing.B) {
	tr := newTree(b, defaultSpecs())
	r := newResolver(tr)
	now := func() time.Time { return testNow }
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"MX", "example.test.", mdns.TypeMX},
		{"NXDOMAIN-NSEC3", "gone.nsec3.test.", mdns.TypeA},
		{"TLSA", "_25._tcp.mx.example.test.", mdns.TypeTLSA},
	} {
		resp := r.ask(b, q.qname, q.qtype)
		b.Run(q.name+"/warm", func(b *testing.B) {
			v, _ := New(Config{Anchors: tr.rootAnchor(), Now: now})
			v.Validate(context.Background(), r, resp)
			for b.Loop() {
				if got := v.Validate(context.Background(), r, resp); got.Status != dns.Secure {
					b.Fatal(got.Reason)
				}
			}
		})
		b.Run(q.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				v, _ := New(Config{Anchors: tr.rootAnchor(), Now: now})
				if got := v.Validate(context.Background(), r, resp); got.Status != dns.Secure {
					b.Fatal(got.Reason)
				}
			}
		})
	}
}
