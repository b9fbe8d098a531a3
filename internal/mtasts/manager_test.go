package mtasts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxward/internal/dns"
)

// fakeResolver answers TXT queries from a table; a nil entry is NXDOMAIN.
type fakeResolver struct {
	mu      sync.Mutex
	txt     map[string][]string
	fail    map[string]bool // temporary failure (SERVFAIL)
	lookups int
}

func (r *fakeResolver) set(name string, recs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if recs == nil {
		delete(r.txt, name)
	} else {
		r.txt[name] = recs
	}
	delete(r.fail, name)
}

func (r *fakeResolver) servfail(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[name] = true
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) (dns.TXTResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if r.fail[name] {
		return dns.TXTResult{}, &dns.TemporaryError{Name: name, Type: "TXT", Reason: "servfail"}
	}
	recs, ok := r.txt[name]
	if !ok {
		return dns.TXTResult{}, &dns.NXDomainError{Name: name, Type: "TXT"}
	}
	return dns.TXTResult{Answer: dns.Answer{Name: name, Canonical: name}, Records: recs}, nil
}

func (r *fakeResolver) LookupMX(context.Context, string) (dns.MXResult, error) {
	return dns.MXResult{}, errors.New("not in this test")
}
func (r *fakeResolver) LookupIP(context.Context, string) (dns.IPResult, error) {
	return dns.IPResult{}, errors.New("not in this test")
}
func (r *fakeResolver) LookupTLSA(context.Context, string) (dns.TLSAResult, error) {
	return dns.TLSAResult{}, errors.New("not in this test")
}

// fakeFetcher serves policy bodies from a table, counting fetches per domain. When
// gate is set, each fetch waits for it to close.
type fakeFetcher struct {
	mu    sync.Mutex
	body  map[string]string
	err   map[string]error
	calls map[string]int
	gate  chan struct{}
	total atomic.Int64
}

func (f *fakeFetcher) serve(domain, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body[domain] = body
	delete(f.err, domain)
}

func (f *fakeFetcher) failWith(domain string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err[domain] = err
}

func (f *fakeFetcher) count(domain string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[domain]
}

func (f *fakeFetcher) Fetch(ctx context.Context, domain string) ([]byte, error) {
	f.total.Add(1)
	f.mu.Lock()
	f.calls[domain]++
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err[domain]; err != nil {
		return nil, err
	}
	b, ok := f.body[domain]
	if !ok {
		return nil, &FetchError{Domain: domain, Reason: ReasonStatus, Err: errors.New("HTTP status 404")}
	}
	return []byte(b), nil
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	m    *Manager
	res  *fakeResolver
	fet  *fakeFetcher
	clk  *clock
	logs *bytes.Buffer
	dir  string
}

const (
	dom      = "example.test"
	txtName  = "_mta-sts.example.test"
	policyA  = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"
	policyB  = "version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 604800\n"
	policyNo = "version: STSv1\nmode: none\nmax_age: 86400\n"
)

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{
		res:  &fakeResolver{txt: map[string][]string{}, fail: map[string]bool{}},
		fet:  &fakeFetcher{body: map[string]string{}, err: map[string]error{}, calls: map[string]int{}},
		clk:  &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		logs: &bytes.Buffer{},
		dir:  t.TempDir(),
	}
	h.m = h.newManager(t)
	return h
}

// newManager builds a Manager over the harness's fakes and cache directory; a second
// one stands for a restarted process.
func (h *harness) newManager(t testing.TB) *Manager {
	t.Helper()
	c, err := OpenCache(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, nil))
	c.Log = log
	return &Manager{Resolver: h.res, Fetcher: h.fet, Cache: c, Now: h.clk.Now, Log: log}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) lookup(t *testing.T) Result {
	t.Helper()
	r, err := h.m.Lookup(t.Context(), dom)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return r
}

func wantPolicy(t *testing.T, r Result, mode Mode, source, id string) {
	t.Helper()
	if r.Policy == nil || r.Policy.Mode != mode || r.Source != source || r.ID != id || r.Temporary {
		t.Fatalf("got %+v (policy %+v), want mode %s from %s id %s", r, r.Policy, mode, source, id)
	}
}

func wantNone(t *testing.T, r Result) {
	t.Helper()
	if r.Policy != nil || r.Temporary || r.Applies() {
		t.Fatalf("got %+v, want no policy", r)
	}
}

// STS-01, STS-04, STS-13: first contact fetches; an unchanged id uses the cache
// without fetching; the cache survives a restart.
func TestLookupFirstContactAndCache(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=spf1 -all", "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)

	r := h.lookup(t)
	wantPolicy(t, r, ModeEnforce, SourceLive, "a1")
	if !r.Applies() || !r.Policy.Matches("MX.example.test.") {
		t.Errorf("policy does not apply or match: %+v", r.Policy)
	}
	e, ok := h.m.Show(dom)
	if !ok || e.ID != "a1" || !e.Fetched.Equal(h.clk.Now()) || !e.Expires.Equal(h.clk.Now().Add(24*time.Hour)) {
		t.Fatalf("Show = %+v, %v", e, ok)
	}

	h.clk.advance(time.Hour)
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceCache, "a1")
	if n := h.fet.count(dom); n != 1 {
		t.Errorf("%d fetches, want 1 (STS-04)", n)
	}

	h.m = h.newManager(t) // restart
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceCache, "a1")
	if n := h.fet.count(dom); n != 1 {
		t.Errorf("%d fetches after restart, want 1", n)
	}
}

// STS-03: no record, several records or an invalid record mean no policy when
// nothing is cached, without a fetch.
func TestLookupNoRecord(t *testing.T) {
	tests := []struct {
		name string
		txts []string
	}{
		{"NXDOMAIN", nil},
		{"NODATA", []string{}},
		{"other TXT only", []string{"v=spf1 -all"}},
		{"two STS records", []string{"v=STSv1; id=1", "v=STSv1; id=2"}},
		{"invalid record", []string{"v=STSv1; id=not-valid!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.txts != nil {
				h.res.set(txtName, tt.txts...)
			}
			h.fet.serve(dom, policyA)
			wantNone(t, h.lookup(t))
			if n := h.fet.count(dom); n != 0 {
				t.Errorf("%d fetches", n)
			}
		})
	}
}

// STS-14: a vanished (or broken) TXT record does not remove an unexpired cached
// policy; once expired, the policy is no longer applied.
func TestLookupRecordVanished(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceLive, "a1")

	h.res.set(txtName)
	h.clk.advance(23 * time.Hour)
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceCache, "a1")

	h.res.set(txtName, "v=STSv1; id=a1", "v=STSv1; id=a2")
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceCache, "a1")

	h.res.set(txtName)
	h.clk.advance(time.Hour) // exactly max_age after the fetch: expired (STS-13)
	wantNone(t, h.lookup(t))
	if _, ok := h.m.Show(dom); !ok {
		t.Error("expired entry was deleted; Show should still report it")
	}
}

// STS-13: max_age counts from the last successful fetch. An expired entry is not
// used, and is fetched again when the TXT record still exists, even with the same id.
func TestLookupExpiryRefetches(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	h.lookup(t)

	h.clk.advance(24 * time.Hour)
	h.fet.serve(dom, strings.Replace(policyA, "mx.example.test", "mx2.example.test", 1))
	r := h.lookup(t)
	wantPolicy(t, r, ModeEnforce, SourceLive, "a1")
	if !r.Policy.Matches("mx2.example.test") {
		t.Errorf("old policy returned: %+v", r.Policy)
	}
	if e, _ := h.m.Show(dom); !e.Expires.Equal(h.clk.Now().Add(24 * time.Hour)) {
		t.Errorf("expiry not counted from the new fetch: %v", e.Expires)
	}

	// Expired and the fetch fails: no policy (STS-10), and the stale one is not used.
	h.clk.advance(24 * time.Hour)
	h.fet.failWith(dom, &FetchError{Domain: dom, Reason: ReasonNetwork, Err: errors.New("refused")})
	r = h.lookup(t)
	wantNone(t, r)
	if r.FetchError == nil {
		t.Error("fetch failure not reported for TLS-RPT (STS-26)")
	}
}

// STS-16: a new id is fetched; a policy with mode none replaces the cached one and
// means no policy from then on.
func TestLookupIDChangeToNone(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	h.lookup(t)

	h.clk.advance(time.Hour)
	h.res.set(txtName, "v=STSv1; id=off")
	h.fet.serve(dom, policyNo)
	r := h.lookup(t)
	wantPolicy(t, r, ModeNone, SourceLive, "off")
	if r.Applies() {
		t.Error("mode none applies")
	}
	e, ok := h.m.Show(dom)
	if !ok || e.ID != "off" || e.Policy.Mode != ModeNone {
		t.Fatalf("cache not replaced: %+v", e)
	}
	h.res.set(txtName) // record removed afterwards: the cached none stays in force
	r = h.lookup(t)
	wantPolicy(t, r, ModeNone, SourceCache, "off")
	if r.Applies() {
		t.Error("mode none applies from cache")
	}
}

// STS-10, STS-14, STS-09: a fetch failure for a new id keeps the cached policy until
// it expires, and the same id is not fetched again within 5 minutes.
func TestLookupFetchFailureWithCache(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	h.lookup(t)

	h.res.set(txtName, "v=STSv1; id=b2")
	h.fet.failWith(dom, &FetchError{Domain: dom, Reason: ReasonWebPKI, Err: errors.New("x509: unknown authority")})
	r := h.lookup(t)
	wantPolicy(t, r, ModeEnforce, SourceCache, "a1")
	var fe *FetchError
	if !errors.As(r.FetchError, &fe) || fe.Reason != ReasonWebPKI {
		t.Errorf("FetchError = %v", r.FetchError)
	}
	if e, _ := h.m.Show(dom); e.Failures != 1 || e.LastError == "" || !e.LastRefreshAttempt.Equal(h.clk.Now()) {
		t.Errorf("failure not recorded: %+v", e)
	}

	h.fet.serve(dom, policyB) // fixed, but within the 5 minutes
	h.clk.advance(4*time.Minute + 59*time.Second)
	r = h.lookup(t)
	wantPolicy(t, r, ModeEnforce, SourceCache, "a1")
	if !errors.Is(r.FetchError, ErrRetryLater) || h.fet.count(dom) != 2 {
		t.Errorf("refetched within 5 minutes: %d fetches, %v", h.fet.count(dom), r.FetchError)
	}

	h.clk.advance(time.Second)
	wantPolicy(t, h.lookup(t), ModeTesting, SourceLive, "b2")
	if e, _ := h.m.Show(dom); e.Failures != 0 || e.ID != "b2" {
		t.Errorf("success did not reset the entry: %+v", e)
	}
}

// STS-10, STS-09: with nothing cached, a failed fetch means no policy; it is not
// retried within 5 minutes for the same id, but a new id is fetched at once.
func TestLookupFetchFailureWithoutCache(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, "version: STSv1\nmode: enforce\nmax_age: 60\n") // invalid: no mx
	r := h.lookup(t)
	wantNone(t, r)
	if !errors.Is(r.FetchError, ErrInvalidPolicy) {
		t.Errorf("FetchError = %v, want sts-policy-invalid", r.FetchError)
	}
	h.fet.serve(dom, policyA)
	h.clk.advance(time.Minute)
	wantNone(t, h.lookup(t))
	if n := h.fet.count(dom); n != 1 {
		t.Errorf("%d fetches within 5 minutes", n)
	}
	h.res.set(txtName, "v=STSv1; id=a2")
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceLive, "a2")
}

// A temporary DNS failure never turns into "no policy" silently: with a cache the
// cached policy applies, without one the result is Temporary.
func TestLookupTemporaryDNSFailure(t *testing.T) {
	h := newHarness(t)
	h.res.servfail(txtName)
	r, err := h.m.Lookup(t.Context(), dom)
	if err == nil || !dns.IsTemporary(err) || !r.Temporary || r.Policy != nil {
		t.Fatalf("without cache: %+v, %v", r, err)
	}
	if h.fet.count(dom) != 0 {
		t.Error("fetched without a TXT record")
	}

	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	h.lookup(t)
	h.res.servfail(txtName)
	h.clk.advance(time.Hour)
	wantPolicy(t, h.lookup(t), ModeEnforce, SourceCache, "a1")

	h.clk.advance(23 * time.Hour) // cache expired: temporary again
	if r, err := h.m.Lookup(t.Context(), dom); err == nil || !r.Temporary {
		t.Fatalf("expired cache: %+v, %v", r, err)
	}
}

func TestLookupAddressLiteralAndInvalid(t *testing.T) {
	h := newHarness(t)
	for _, d := range []string{"[192.0.2.1]", "[IPv6:2001:db8::1]", "127.0.0.1"} {
		r, err := h.m.Lookup(t.Context(), d)
		if err != nil || r.Policy != nil || r.Temporary {
			t.Errorf("Lookup(%q) = %+v, %v", d, r, err)
		}
	}
	if _, err := h.m.Lookup(t.Context(), "bad name.test"); err == nil {
		t.Error("invalid domain accepted")
	}
	if h.res.lookups != 0 {
		t.Errorf("%d DNS lookups", h.res.lookups)
	}
}

// STS-22: Recheck reports a changed id and brings its policy into the cache.
func TestRecheck(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	h.lookup(t)

	if changed, err := h.m.Recheck(t.Context(), dom); changed || err != nil {
		t.Fatalf("unchanged id: %v, %v", changed, err)
	}
	h.res.set(txtName)
	if changed, err := h.m.Recheck(t.Context(), dom); changed || err != nil {
		t.Fatalf("vanished record: %v, %v", changed, err)
	}
	h.res.servfail(txtName)
	if _, err := h.m.Recheck(t.Context(), dom); err == nil || !dns.IsTemporary(err) {
		t.Fatalf("servfail: %v", err)
	}
	h.res.set(txtName, "v=STSv1; id=off")
	h.fet.serve(dom, policyNo)
	if changed, err := h.m.Recheck(t.Context(), dom); !changed || err != nil {
		t.Fatalf("new id: %v, %v", changed, err)
	}
	wantPolicy(t, h.lookup(t), ModeNone, SourceCache, "off")
	if n := h.fet.count(dom); n != 2 {
		t.Errorf("%d fetches", n)
	}
}

// Refresh fetches now, ignoring the retry delay, and refreshes a cached policy even
// when the TXT record has gone; Forget drops the entry.
func TestRefreshAndForget(t *testing.T) {
	h := newHarness(t)
	if err := h.m.Refresh(t.Context(), dom); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Refresh without record or cache = %v", err)
	}
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.failWith(dom, errors.New("connection refused"))
	if err := h.m.Refresh(t.Context(), dom); err == nil {
		t.Fatal("failed fetch reported no error")
	}
	h.fet.serve(dom, policyA)
	if err := h.m.Refresh(t.Context(), dom); err != nil { // no 5-minute wait for the operator
		t.Fatal(err)
	}
	h.res.set(txtName)
	h.clk.advance(time.Hour)
	if err := h.m.Refresh(t.Context(), dom); err != nil {
		t.Fatal(err)
	}
	if e, _ := h.m.Show(dom); e.ID != "a1" || !e.Fetched.Equal(h.clk.Now()) {
		t.Errorf("entry after refresh without TXT: %+v", e)
	}
	if err := h.m.Forget(dom); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.m.Show(dom); ok {
		t.Error("entry remains after Forget")
	}
	wantNone(t, h.lookup(t))
}

// STS-15: RefreshDue fetches cached policies about daily without a TXT change, backs
// off after failures, and alerts after repeated failures unless the mode is none.
func TestRefreshDue(t *testing.T) {
	h := newHarness(t)
	h.m.AlertAfter = 3
	h.res.set(txtName, "v=STSv1; id=b1")
	h.fet.serve(dom, policyB) // max_age one week
	h.lookup(t)

	h.m.RefreshDue(t.Context())
	if n := h.fet.count(dom); n != 1 {
		t.Fatalf("refreshed a fresh entry: %d fetches", n)
	}
	h.clk.advance(24*time.Hour + 3*time.Hour) // past the interval and any jitter (≤ 3h)
	h.m.RefreshDue(t.Context())
	if n := h.fet.count(dom); n != 2 {
		t.Fatalf("daily refresh did not happen: %d fetches", n)
	}
	if e, _ := h.m.Show(dom); !e.Fetched.Equal(h.clk.Now()) {
		t.Errorf("Fetched not updated: %+v", e)
	}

	// The policy server breaks. Refreshes fail with backoff; the third failure alerts.
	h.fet.failWith(dom, &FetchError{Domain: dom, Reason: ReasonNetwork, Err: errors.New("refused")})
	h.clk.advance(27 * time.Hour)
	h.m.RefreshDue(t.Context()) // failure 1
	h.m.RefreshDue(t.Context()) // within backoff: no attempt
	if n := h.fet.count(dom); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	h.clk.advance(5 * time.Minute)
	h.m.RefreshDue(t.Context()) // failure 2
	h.clk.advance(10 * time.Minute)
	h.m.RefreshDue(t.Context()) // failure 3: alert
	if n := h.fet.count(dom); n != 5 {
		t.Fatalf("%d fetches, want 5", n)
	}
	if h.m.Alerts() != 1 || !strings.Contains(h.logs.String(), "level=ERROR") {
		t.Errorf("alerts = %d, logs:\n%s", h.m.Alerts(), h.logs)
	}
	if e, _ := h.m.Show(dom); e.Failures != 3 {
		t.Errorf("failures = %d", e.Failures)
	}
	// Still applied from the cache meanwhile.
	wantPolicy(t, h.lookup(t), ModeTesting, SourceCache, "b1")

	// A TXT outage during refresh counts as a failure too.
	h.res.servfail(txtName)
	h.clk.advance(20 * time.Minute)
	h.m.RefreshDue(t.Context())
	if e, _ := h.m.Show(dom); e.Failures != 4 || h.m.Alerts() != 2 {
		t.Errorf("after TXT failure: %+v, alerts %d", e, h.m.Alerts())
	}

	// Recovery resets the failure count.
	h.res.set(txtName, "v=STSv1; id=b1")
	h.fet.serve(dom, policyB)
	h.clk.advance(40 * time.Minute)
	h.m.RefreshDue(t.Context())
	if e, _ := h.m.Show(dom); e.Failures != 0 || !e.Fetched.Equal(h.clk.Now()) {
		t.Errorf("after recovery: %+v", e)
	}
}

// STS-15: failures refreshing a mode none policy are not alerted; expired entries are
// left to Lookup.
func TestRefreshDueModeNoneAndExpired(t *testing.T) {
	h := newHarness(t)
	h.m.AlertAfter = 1
	h.res.set(txtName, "v=STSv1; id=n1")
	h.fet.serve(dom, policyNo)
	h.lookup(t)
	h.fet.failWith(dom, errors.New("refused"))
	h.clk.advance(12 * time.Hour) // half of max_age
	h.m.RefreshDue(t.Context())
	if h.fet.count(dom) != 2 || h.m.Alerts() != 0 {
		t.Errorf("fetches %d alerts %d", h.fet.count(dom), h.m.Alerts())
	}
	h.clk.advance(13 * time.Hour)
	h.m.RefreshDue(t.Context())
	if h.fet.count(dom) != 2 {
		t.Error("expired entry refreshed")
	}
}

// TestDue checks the schedule: about daily, halfway to expiry for short max_age, a
// stable jitter below an eighth of the interval, and the failure backoff.
func TestDue(t *testing.T) {
	m := &Manager{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	week := Entry{Domain: "a.example.test", Fetched: t0, Expires: t0.Add(7 * 24 * time.Hour), Policy: Policy{MaxAge: 7 * 24 * time.Hour}}
	j := jitter(week.Domain, 3*time.Hour)
	if j < 0 || j >= 3*time.Hour || j != jitter(week.Domain, 3*time.Hour) {
		t.Fatalf("jitter %v", j)
	}
	hour := Entry{Domain: "b.example.test", Fetched: t0, Expires: t0.Add(time.Hour), Policy: Policy{MaxAge: time.Hour}}
	failed := week
	failed.Failures, failed.LastRefreshAttempt = 3, t0.Add(25*time.Hour)
	tests := []struct {
		name string
		e    Entry
		at   time.Time
		want bool
	}{
		{"fresh", week, t0.Add(23 * time.Hour), false},
		{"before jitter", week, t0.Add(24*time.Hour + j - time.Second), false},
		{"after jitter", week, t0.Add(24*time.Hour + j), true},
		{"short max_age halfway", hour, t0.Add(30 * time.Minute), true},
		{"short max_age early", hour, t0.Add(29 * time.Minute), false},
		{"expired", hour, t0.Add(time.Hour), false},
		{"backoff 3 failures: 20 minutes", failed, failed.LastRefreshAttempt.Add(19 * time.Minute), false},
		{"backoff over", failed, failed.LastRefreshAttempt.Add(20 * time.Minute), true},
	}
	for _, tt := range tests {
		if got := m.due(tt.e, tt.at); got != tt.want {
			t.Errorf("%s: due = %v", tt.name, got)
		}
	}
}

// Concurrent lookups of one domain share a single fetch.
func TestLookupConcurrentDedupe(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	gate := make(chan struct{})
	h.fet.mu.Lock()
	h.fet.gate = gate
	h.fet.mu.Unlock()

	const n = 20
	var wg sync.WaitGroup
	results := make(chan Result, n)
	for range n {
		wg.Go(func() {
			r, err := h.m.Lookup(t.Context(), dom)
			if err != nil {
				t.Error(err)
			}
			results <- r
		})
	}
	// Let the goroutines reach the fetch, then release it.
	deadline := time.Now().Add(5 * time.Second)
	for h.fet.count(dom) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r.Policy == nil || r.Policy.Mode != ModeEnforce {
			t.Errorf("result %+v", r)
		}
	}
	if c := h.fet.count(dom); c != 1 {
		t.Errorf("%d fetches for %d concurrent lookups", c, n)
	}
}

// A caller that gives up does not cancel the fetch other callers share.
func TestLookupCallerCancel(t *testing.T) {
	h := newHarness(t)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	gate := make(chan struct{})
	h.fet.mu.Lock()
	h.fet.gate = gate
	h.fet.mu.Unlock()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan Result)
	go func() {
		r, _ := h.m.Lookup(ctx, dom)
		done <- r
	}()
	for h.fet.count(dom) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if r := <-done; r.Policy != nil || !r.Temporary {
		t.Errorf("cancelled lookup got a policy: %+v", r)
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := h.m.Show(dom); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("detached fetch never stored the policy")
		}
		time.Sleep(time.Millisecond)
	}
}
