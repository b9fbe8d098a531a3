package dnssec

import (
	"context"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// testClock is a frozen clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a tree, a resolver over it and a validator with a movable clock.
type fixture struct {
	tr    *testTree
	r     *testResolver
	v     *Validator
	clock *testClock
}

func newFixture(t *testing.T, specs []zoneSpec, cfg Config) *fixture {
	t.Helper()
	f := &fixture{tr: newTree(t, specs), clock: &testClock{t: testNow}}
	f.r = newResolver(f.tr)
	if cfg.Anchors == nil {
		cfg.Anchors = f.tr.rootAnchor()
	}
	cfg.Now = f.clock.Now
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

// validate asks for name and qtype and validates the reply; it returns the verdict and
// the DS and DNSKEY queries the validator made.
func (f *fixture) validate(t *testing.T, name string, qtype uint16) (got dns.Validation, ds, dnskey int) {
	t.Helper()
	resp := f.r.ask(t, name, qtype)
	f.r.reset()
	got = f.v.Validate(context.Background(), f.r, resp)
	return got, f.r.count(mdns.TypeDS), f.r.count(mdns.TypeDNSKEY)
}

func TestCacheWarmLookups(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	got, ds, dnskey := f.validate(t, "example.test.", mdns.TypeMX)
	if got.Status != dns.Secure || ds != 2 || dnskey != 3 {
		t.Fatalf("cold: %s, %d DS and %d DNSKEY queries; want secure, 2 and 3", got.Status, ds, dnskey)
	}
	before := f.v.verifications.Load()
	for _, q := range []struct {
		name  string
		qtype uint16
		want  dns.Status
	}{
		{"example.test.", mdns.TypeMX, dns.Secure},   // the same question again
		{"mx.example.test.", mdns.TypeA, dns.Secure}, // another name in the zone
		{"nx.example.test.", mdns.TypeA, dns.Secure}, // a denial
		{"alias2.example.test.", mdns.TypeA, dns.Secure},
	} {
		got, ds, dnskey := f.validate(t, q.name, q.qtype)
		if got.Status != q.want || ds+dnskey != 0 {
			t.Errorf("warm %s %s: %s (%s), %d DS and %d DNSKEY queries; want %s and none",
				q.name, mdns.TypeToString[q.qtype], got.Status, got.Reason, ds, dnskey, q.want)
		}
	}
	// Warm lookups check only the signatures of the answers themselves: MX, A, two
	// NSEC (the SOA too), three CNAME/A.
	if n := f.v.verifications.Load() - before; n > 8 {
		t.Errorf("%d signature verifications for four warm lookups", n)
	}

	// Insecure delegations are remembered too.
	if got, _, _ := f.validate(t, "out.example.test.", mdns.TypeA); got.Status != dns.Insecure {
		t.Fatalf("out.example.test.: %s", got.Status)
	}
	if got, ds, dnskey := f.validate(t, "mx.insecure.test.", mdns.TypeA); got.Status != dns.Insecure || ds+dnskey != 0 {
		t.Errorf("warm insecure: %s, %d DS and %d DNSKEY queries", got.Status, ds, dnskey)
	}
}

func TestCacheExpiry(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("cold: %s", got.Status)
	}
	f.clock.Advance(30 * time.Minute)
	if got, ds, dnskey := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure || ds+dnskey != 0 {
		t.Fatalf("after 30 min: %s, %d DS and %d DNSKEY queries; want secure and none", got.Status, ds, dnskey)
	}
	// The DNSKEY and DS RRsets have a TTL of one hour.
	f.clock.Advance(31 * time.Minute)
	if got, ds, dnskey := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure || ds != 2 || dnskey != 3 {
		t.Fatalf("after 61 min: %s, %d DS and %d DNSKEY queries; want secure, 2 and 3", got.Status, ds, dnskey)
	}
	// The signatures expire after 30 days; cached keys do not outlive them.
	f.clock.Advance(30 * 24 * time.Hour)
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Bogus || !hasEDE(got.EDE, edeSignatureExpired) {
		t.Fatalf("after 30 days: %s %v, want bogus with EDE 7", got.Status, got.EDE)
	}
}

func TestCacheTTLCappedBySignature(t *testing.T) {
	// Signatures that expire in ten minutes: the keys must be fetched again then, even
	// though the TTL says an hour (RFC 4035 §5.3.3).
	specs := withZone(defaultSpecs(), "example.test.", func(s *zoneSpec) { s.expiration = testNow.Add(10 * time.Minute) })
	f := newFixture(t, specs, Config{})
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("cold: %s", got.Status)
	}
	f.clock.Advance(11 * time.Minute)
	got, _, dnskey := f.validate(t, "example.test.", mdns.TypeMX)
	if got.Status != dns.Bogus || dnskey == 0 {
		t.Fatalf("after expiry: %s with %d DNSKEY queries; want bogus after fetching again", got.Status, dnskey)
	}
}

func TestCacheSizeBound(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{KeyCacheSize: 3})
	for _, n := range []string{"example.test.", "sub.example.test.", "nsec3.test.", "secure2.test.", "insecure.test."} {
		f.validate(t, n, mdns.TypeMX)
	}
	if n := f.v.cache.len(); n > 3 {
		t.Errorf("%d cached nodes, limit 3", n)
	}
	off := newFixture(t, defaultSpecs(), Config{KeyCacheSize: -1})
	off.validate(t, "example.test.", mdns.TypeMX)
	if got, ds, dnskey := off.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure || ds+dnskey == 0 || off.v.cache.len() != 0 {
		t.Errorf("cache disabled: %s, %d DS and %d DNSKEY queries, %d cached", got.Status, ds, dnskey, off.v.cache.len())
	}
}

func TestFetchFailureIsBogusAndNotCached(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	f.r.fail = func(q question) error {
		if q.qtype == mdns.TypeDNSKEY && q.name == "example.test." {
			return &dns.TemporaryError{Name: "example.test", Type: "DNSKEY", Reason: "timeout", Err: errTestTimeout}
		}
		return nil
	}
	got, _, _ := f.validate(t, "example.test.", mdns.TypeMX)
	if got.Status != dns.Bogus || !hasEDE(got.EDE, edeNetworkError) {
		t.Fatalf("fetch failure: %s %v, want bogus with EDE 23", got.Status, got.EDE)
	}
	t.Logf("reason: %s", got.Reason)
	f.r.fail = func(q question) error {
		if q.qtype == mdns.TypeDS {
			return &dns.TemporaryError{Name: q.name, Type: "DS", Reason: "servfail"}
		}
		return nil
	}
	got, _, _ = f.validate(t, "example.test.", mdns.TypeMX)
	if got.Status != dns.Bogus || !hasEDE(got.EDE, edeNoReachableAuthority) {
		t.Fatalf("SERVFAIL: %s %v, want bogus with EDE 22", got.Status, got.EDE)
	}
	f.r.fail = nil
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("after the failure went away: %s (%s); fetch failures must not be cached", got.Status, got.Reason)
	}
	// A cancelled context fails the lookup, not the zone.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := newFixture(t, defaultSpecs(), Config{})
	if got := g.v.Validate(ctx, g.r, g.r.ask(t, "example.test.", mdns.TypeMX)); got.Status != dns.Bogus {
		t.Fatalf("cancelled: %s", got.Status)
	}
	if got, _, _ := g.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("after cancellation: %s", got.Status)
	}
}

func TestBogusZoneRememberedBriefly(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	stripped := true
	f.r.mutate = func(q question, m *mdns.Msg) {
		if stripped && q.name == "example.test." && q.qtype == mdns.TypeDNSKEY {
			m.Answer = nil
		}
	}
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Bogus {
		t.Fatalf("stripped: %s", got.Status)
	}
	stripped = false
	if got, _, dnskey := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Bogus || dnskey != 0 {
		t.Fatalf("within the bogus TTL: %s with %d DNSKEY queries, want bogus from the cache", got.Status, dnskey)
	}
	f.clock.Advance(bogusTTL)
	if got, _, _ := f.validate(t, "example.test.", mdns.TypeMX); got.Status != dns.Secure {
		t.Fatalf("after the bogus TTL: %s", got.Status)
	}
}

func TestConcurrentValidationsShareFetches(t *testing.T) {
	f := newFixture(t, defaultSpecs(), Config{})
	names := []struct {
		name  string
		qtype uint16
	}{
		{"example.test.", mdns.TypeMX}, {"mx.example.test.", mdns.TypeA}, {"mx.example.test.", mdns.TypeAAAA},
		{"_25._tcp.mx.example.test.", mdns.TypeTLSA}, {"nx.example.test.", mdns.TypeA}, {"alias.example.test.", mdns.TypeA},
	}
	var resps []*mdns.Msg
	for range 4 {
		for _, n := range names {
			resps = append(resps, f.r.ask(t, n.name, n.qtype))
		}
	}
	f.r.reset()
	var wg sync.WaitGroup
	results := make([]dns.Validation, len(resps))
	for i, resp := range resps {
		wg.Go(func() { results[i] = f.v.Validate(context.Background(), f.r, resp) })
	}
	wg.Wait()
	for i, got := range results {
		if got.Status != dns.Secure {
			t.Errorf("reply %d: %s (%s)", i, got.Status, got.Reason)
		}
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	seen := make(map[question]int)
	for _, q := range f.r.queries {
		seen[q]++
	}
	for q, n := range seen {
		if n > 1 {
			t.Errorf("%s %s fetched %d times by concurrent validations", q.name, mdns.TypeToString[q.qtype], n)
		}
	}
}
