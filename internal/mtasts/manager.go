package mtasts

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mxward/internal/dns"
)

// Defaults for Manager.
const (
	// DefaultRetryAfter is how long a failed fetch for one policy id blocks another
	// attempt for the same id (RFC 8461 §3.3, STS-09: at least 5 minutes).
	DefaultRetryAfter = 5 * time.Minute
	// DefaultRefreshInterval is how often cached policies are refreshed without a
	// TXT change (RFC 8461 §3.3, §10.2, STS-15: roughly daily).
	DefaultRefreshInterval = 24 * time.Hour
	// DefaultAlertAfter is the number of consecutive refresh failures of a cached
	// policy after which the operator is alerted (STS-15).
	DefaultAlertAfter = 3
	// defaultFetchBound caps a fetch shared by several lookups, which runs detached
	// from any one caller's context.
	defaultFetchBound = 2 * time.Minute
	// maxFailedRemembered is the size above which expired retry records are pruned.
	maxFailedRemembered = 1024
)

// Sources of a Result's policy.
const (
	SourceLive  = "live"  // fetched during this lookup
	SourceCache = "cache" // an unexpired cached policy
)

// ErrRetryLater is matched by the error of a fetch that was not attempted because the
// same policy id failed less than RetryAfter ago (STS-09).
var ErrRetryLater = errors.New("MTA-STS policy fetch for this id failed recently; not retrying yet")

// Result is the answer to Manager.Lookup.
type Result struct {
	// Policy is the policy to apply, nil when the domain has no policy. A policy with
	// mode "none" is returned as such and means no policy (STS-24); Applies says
	// whether there is anything to enforce or test.
	Policy *Policy
	// Source is SourceLive or SourceCache when Policy is set, else "".
	Source string
	// ID is the policy id of Policy, as published in the TXT record when fetched.
	ID string
	// Reason says in words why this answer was given, for logs.
	Reason string
	// Temporary is set when the answer could not be determined: the TXT lookup failed
	// temporarily and no unexpired policy is cached. Policy is nil. The caller must
	// not read this as "no policy" (an attacker can make DNS fail): it defers the
	// delivery attempt, or, if it chooses to deliver, does so knowing that an
	// MTA-STS policy may exist and logs it that way.
	Temporary bool
	// FetchError is the policy fetch failure seen during this lookup, if any; it is
	// reportable through TLS-RPT (STS-26). errors.Is(FetchError, ErrInvalidPolicy)
	// tells "sts-policy-invalid" from the other failures.
	FetchError error
}

// Applies reports whether the result carries a policy in mode enforce or testing.
func (r Result) Applies() bool { return r.Policy != nil && r.Policy.Mode != ModeNone }

// Manager finds the MTA-STS policy of a next-hop domain, fetching and caching it as
// RFC 8461 §3 and §5.1 describe. It is safe for concurrent use; concurrent fetches of
// one domain's policy are merged into one. Resolver, Fetcher and Cache are required.
type Manager struct {
	Resolver dns.Resolver
	Fetcher  Fetcher
	Cache    *Cache
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one line per fetch, failure and alert; nil means slog.Default().
	Log *slog.Logger
	// RetryAfter, RefreshInterval and AlertAfter default to DefaultRetryAfter,
	// DefaultRefreshInterval and DefaultAlertAfter when zero.
	RetryAfter      time.Duration
	RefreshInterval time.Duration
	AlertAfter      int

	alerts atomic.Uint64

	// entryMu serialises read-modify-write updates of cache entries.
	entryMu sync.Mutex

	mu       sync.Mutex
	inflight map[string]*flight // domain → fetch in progress
	failed   map[string]failure // domain → last failed fetch, for the retry rule
}

// flight is one fetch that other lookups of the same domain and id wait for.
type flight struct {
	id    string
	done  chan struct{}
	entry Entry
	err   error
}

// failure remembers a failed fetch so that the same id is not retried too soon.
type failure struct {
	id  string
	at  time.Time
	err error
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

func (m *Manager) retryAfter() time.Duration {
	if m.RetryAfter > 0 {
		return m.RetryAfter
	}
	return DefaultRetryAfter
}

func (m *Manager) refreshInterval() time.Duration {
	if m.RefreshInterval > 0 {
		return m.RefreshInterval
	}
	return DefaultRefreshInterval
}

func (m *Manager) alertAfter() int {
	if m.AlertAfter > 0 {
		return m.AlertAfter
	}
	return DefaultAlertAfter
}

// Alerts returns how many refresh-failure alerts have been raised (STS-15).
func (m *Manager) Alerts() uint64 { return m.alerts.Load() }

// policyDomain normalises domain and rejects names that cannot have a policy. ok is
// false with a nil error for address literals, which never have one (STS-01).
func policyDomain(domain string) (d string, ok bool, err error) {
	d = normalizeDomain(domain)
	if strings.HasPrefix(d, "[") {
		return d, false, nil
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return d, false, nil
	}
	if !validHostname(d) {
		return d, false, fmt.Errorf("invalid policy domain %q", domain)
	}
	return d, true, nil
}

// record looks up and parses the TXT record at _mta-sts.<d> (STS-01 … STS-03). The
// error is a dns temporary error, or one of ErrNoRecord, ErrMultipleRecords and
// ErrInvalidRecord, which all mean "no live policy".
func (m *Manager) record(ctx context.Context, d string) (Record, error) {
	res, err := m.Resolver.LookupTXT(ctx, "_mta-sts."+d)
	switch {
	case err == nil:
		return ParseRecord(res.Records)
	case dns.IsTemporary(err) || ctx.Err() != nil:
		return Record{}, fmt.Errorf("look up _mta-sts.%s TXT: %w", d, err)
	default: // NXDOMAIN, or a name the resolver will not look up
		return Record{}, fmt.Errorf("%w: %v", ErrNoRecord, err)
	}
}

// temporary reports whether a record error is a DNS failure rather than an answer.
func temporary(err error) bool {
	return err != nil && !errors.Is(err, ErrNoRecord) && !errors.Is(err, ErrMultipleRecords) && !errors.Is(err, ErrInvalidRecord)
}

func cached(e Entry, reason string, fetchErr error) Result {
	p := e.Policy
	p.MX = slices.Clone(p.MX)
	return Result{Policy: &p, Source: SourceCache, ID: e.ID, Reason: reason, FetchError: fetchErr}
}

// Lookup returns the policy that applies to mail for domain now, the next-hop domain
// (STS-01), following RFC 8461 §5.1:
//
//   - The TXT record is looked up first. A temporary DNS failure falls back to an
//     unexpired cached policy; with none, the result is Temporary and err says why.
//   - No usable record (absent, several, invalid): the domain has no live policy, but
//     an unexpired cached policy still applies (STS-03, STS-14).
//   - Record id equal to the cached policy's, cache unexpired: the cached policy,
//     without a fetch (STS-04).
//   - Otherwise (new id, nothing cached, or cache expired) the policy is fetched. A
//     successful fetch replaces the cache, even with mode "none" (STS-16). A failed one
//     falls back to an unexpired cached policy, else to no policy (STS-10); the same
//     id is not fetched again within RetryAfter (STS-09).
//
// err is nil unless Temporary is set (also when ctx ends first) or domain is not a
// valid name.
func (m *Manager) Lookup(ctx context.Context, domain string) (Result, error) {
	d, ok, err := policyDomain(domain)
	if err != nil {
		return Result{}, fmt.Errorf("MTA-STS lookup: %w", err)
	}
	if !ok {
		return Result{Reason: "address literal: no MTA-STS policy (RFC 8461 §3.4)"}, nil
	}
	entry, have := m.Cache.Get(d)
	fresh := have && entry.Fresh(m.now())

	rec, err := m.record(ctx, d)
	if temporary(err) {
		if fresh {
			return cached(entry, fmt.Sprintf("TXT lookup failed (%v); applying cached policy (STS-14)", err), nil), nil
		}
		return Result{Temporary: true, Reason: fmt.Sprintf("TXT lookup failed and no policy is cached: %v", err)},
			fmt.Errorf("MTA-STS lookup for %s: %w", d, err)
	}
	if err != nil {
		if fresh {
			return cached(entry, fmt.Sprintf("no live policy (%v); applying cached policy (STS-14)", err), nil), nil
		}
		return Result{Reason: fmt.Sprintf("no MTA-STS policy: %v", err)}, nil
	}
	if fresh && entry.ID == rec.ID {
		return cached(entry, "policy id unchanged (STS-04)", nil), nil
	}

	fetched, err := m.fetch(ctx, d, rec.ID, true)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the domain.
			return Result{Temporary: true, Reason: "lookup cancelled"}, fmt.Errorf("MTA-STS lookup for %s: %w", d, err)
		}
		if fresh {
			return cached(entry, fmt.Sprintf("fetch for id %s failed (%v); applying cached policy (STS-14)", rec.ID, err), err), nil
		}
		return Result{Reason: fmt.Sprintf("policy fetch failed, treating the domain as without MTA-STS (STS-10): %v", err), FetchError: err}, nil
	}
	p := fetched.Policy
	p.MX = slices.Clone(p.MX) // the fetched entry is shared by every waiting lookup
	r := Result{Policy: &p, Source: SourceLive, ID: fetched.ID, Reason: "policy fetched"}
	if p.Mode == ModeNone {
		r.Reason = "policy fetched with mode none: no MTA-STS (STS-16, STS-24)"
	}
	return r, nil
}

// Recheck looks the TXT record up again and, when its id differs from the cached
// policy's, fetches the new policy so that the next Lookup sees it. Delivery calls it
// before a failure under an enforce policy could become permanent (STS-22, RFC 8461
// §5.1 step 3). changed is true when a different id was published (even if fetching
// it failed, which err then reports). A vanished record changes nothing: the cached
// policy still applies (STS-14).
func (m *Manager) Recheck(ctx context.Context, domain string) (changed bool, err error) {
	d, ok, err := policyDomain(domain)
	if err != nil || !ok {
		return false, err
	}
	entry, have := m.Cache.Get(d)
	rec, err := m.record(ctx, d)
	if temporary(err) {
		return false, fmt.Errorf("MTA-STS recheck for %s: %w", d, err)
	}
	if err != nil {
		return false, nil
	}
	if have && entry.ID == rec.ID {
		return false, nil
	}
	if _, err := m.fetch(ctx, d, rec.ID, true); err != nil {
		return true, fmt.Errorf("MTA-STS recheck for %s: %w", d, err)
	}
	return true, nil
}

// Refresh fetches domain's policy now, for the operator's "mxward mta-sts refresh". It
// ignores the retry delay. When the TXT record is absent or invalid but a policy is
// cached, the policy is fetched again under its cached id: the HTTPS policy is
// authenticated and the TXT record is not (RFC 8461 §10.2).
func (m *Manager) Refresh(ctx context.Context, domain string) error {
	d, ok, err := policyDomain(domain)
	if err != nil {
		return fmt.Errorf("MTA-STS refresh: %w", err)
	}
	if !ok {
		return fmt.Errorf("MTA-STS refresh: %s is an address literal", d)
	}
	return m.refresh(ctx, d, false)
}

func (m *Manager) refresh(ctx context.Context, d string, gate bool) error {
	entry, have := m.Cache.Get(d)
	rec, err := m.record(ctx, d)
	id := rec.ID
	switch {
	case temporary(err):
		m.noteEntryFailure(d, err)
		return fmt.Errorf("refresh MTA-STS policy for %s: %w", d, err)
	case err != nil && have:
		id = entry.ID
	case err != nil:
		return fmt.Errorf("refresh MTA-STS policy for %s: %w", d, err)
	}
	if _, err := m.fetch(ctx, d, id, gate); err != nil {
		return fmt.Errorf("refresh MTA-STS policy for %s: %w", d, err)
	}
	return nil
}

// Forget removes domain's cached policy, for the operator.
func (m *Manager) Forget(domain string) error {
	d := normalizeDomain(domain)
	m.mu.Lock()
	delete(m.failed, d)
	m.mu.Unlock()
	m.entryMu.Lock()
	defer m.entryMu.Unlock()
	return m.Cache.Delete(d)
}

// Show returns domain's cached entry, expired or not.
func (m *Manager) Show(domain string) (Entry, bool) { return m.Cache.Get(domain) }

// RefreshDue refreshes the cached policies that are due (STS-15). Call it every few
// minutes; each unexpired entry is refreshed about once per RefreshInterval after its
// last fetch, and no later than halfway to its expiry. A per-domain offset of up to an
// eighth of the interval spreads the fetches. After a failure the entry is retried
// with a backoff starting at RetryAfter. When a policy whose mode is not "none" has
// failed AlertAfter times in a row, each further failure is logged at error level and
// counted in Alerts. Expired entries are left to Lookup, which fetches them again when
// their domain still publishes a TXT record.
func (m *Manager) RefreshDue(ctx context.Context) {
	entries, err := m.Cache.Entries()
	if err != nil {
		m.log().Error("mta-sts refresh: cannot list cache", "err", err)
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		if !m.due(e, m.now()) {
			continue
		}
		if err := m.refresh(ctx, e.Domain, true); err != nil && !errors.Is(err, ErrRetryLater) {
			m.log().Warn("mta-sts policy refresh failed", "domain", e.Domain, "err", err)
		}
	}
}

// due reports whether e should be refreshed at now.
func (m *Manager) due(e Entry, now time.Time) bool {
	if !e.Fresh(now) {
		return false
	}
	interval := m.refreshInterval()
	if e.Failures > 0 {
		backoff := m.retryAfter() << min(e.Failures-1, 16)
		if backoff > interval || backoff <= 0 {
			backoff = interval
		}
		return !now.Before(e.LastRefreshAttempt.Add(backoff))
	}
	period := interval + jitter(e.Domain, interval/8)
	if half := e.Policy.MaxAge / 2; half < period {
		period = half
	}
	return !now.Before(e.Fetched.Add(period))
}

// jitter derives a stable offset in [0, span) from the domain name, so that policies
// fetched together are not all refreshed together, without any random state.
func jitter(domain string, span time.Duration) time.Duration {
	if span <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(domain))
	return time.Duration(h.Sum64() % uint64(span))
}

// fetch fetches and stores d's policy published under id, merging concurrent fetches
// of the same domain and id. With gate set, an id that failed less than RetryAfter
// ago is not fetched again (STS-09).
func (m *Manager) fetch(ctx context.Context, d, id string, gate bool) (Entry, error) {
	m.mu.Lock()
	if m.inflight == nil {
		m.inflight = map[string]*flight{}
		m.failed = map[string]failure{}
	}
	if f, ok := m.failed[d]; gate && ok && f.id == id && m.now().Sub(f.at) < m.retryAfter() {
		m.mu.Unlock()
		return Entry{}, fmt.Errorf("%w (id %s failed at %s: %v)", ErrRetryLater, id, f.at.Format(time.RFC3339), f.err)
	}
	fl, ok := m.inflight[d]
	if !ok || fl.id != id {
		fl = &flight{id: id, done: make(chan struct{})}
		m.inflight[d] = fl
		// The fetch outlives a caller that gives up, so that the others waiting for
		// it, and the cache, still get its result; it is bounded on its own.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultFetchBound)
		go func() {
			defer cancel()
			fl.entry, fl.err = m.doFetch(fctx, d, id)
			m.mu.Lock()
			if m.inflight[d] == fl {
				delete(m.inflight, d)
			}
			m.mu.Unlock()
			close(fl.done)
		}()
	}
	m.mu.Unlock()
	select {
	case <-fl.done:
		return fl.entry, fl.err
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("fetch MTA-STS policy for %s: %w", d, ctx.Err())
	}
}

// doFetch fetches, parses and stores one policy.
func (m *Manager) doFetch(ctx context.Context, d, id string) (Entry, error) {
	body, err := m.Fetcher.Fetch(ctx, d)
	var p *Policy
	if err == nil {
		if p, err = ParsePolicy(body); err != nil {
			err = fmt.Errorf("policy for %s (id %s): %w", d, id, err)
		}
	}
	now := m.now()
	if err != nil {
		m.mu.Lock()
		m.failed[d] = failure{id: id, at: now, err: err}
		if len(m.failed) > maxFailedRemembered {
			// Forget failures old enough that they no longer hold back a retry.
			for k, f := range m.failed {
				if now.Sub(f.at) >= m.retryAfter() {
					delete(m.failed, k)
				}
			}
		}
		m.mu.Unlock()
		m.log().Warn("mta-sts policy fetch failed", "domain", d, "id", id, "err", err)
		m.noteEntryFailure(d, err)
		return Entry{}, err
	}
	e := Entry{Domain: d, Policy: *p, ID: id, Fetched: now, Expires: now.Add(p.MaxAge)}
	m.entryMu.Lock()
	err = m.Cache.Put(e)
	m.entryMu.Unlock()
	if err != nil {
		// The policy is still good for this lookup; it will be fetched again.
		m.log().Error("mta-sts policy not cached", "domain", d, "err", err)
	}
	m.mu.Lock()
	delete(m.failed, d)
	m.mu.Unlock()
	m.log().Info("mta-sts policy fetched", "domain", d, "id", id, "mode", p.Mode, "max_age", p.MaxAge, "mx", p.MX)
	return e, nil
}

// noteEntryFailure records a failed refresh on d's cached entry, if any, and alerts
// once failures have repeated AlertAfter times for a policy that is not mode "none"
// (STS-15, RFC 8461 §10.2).
func (m *Manager) noteEntryFailure(d string, cause error) {
	m.entryMu.Lock()
	e, ok := m.Cache.Get(d)
	if !ok {
		m.entryMu.Unlock()
		return
	}
	e.LastRefreshAttempt = m.now()
	e.Failures++
	e.LastError = cause.Error()
	err := m.Cache.Put(e)
	m.entryMu.Unlock()
	if err != nil {
		m.log().Error("mta-sts cache update failed", "domain", d, "err", err)
	}
	if e.Failures >= m.alertAfter() && e.Policy.Mode != ModeNone {
		m.alerts.Add(1)
		m.log().Error("mta-sts policy refresh keeps failing; the cached policy will expire",
			"domain", d, "failures", e.Failures, "expires", e.Expires, "err", cause)
	}
}
