package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
	"mxward/internal/spool"
	"mxward/internal/tlspolicy"
)

// Hop is one host to try for a destination, with its addresses in the order to try them.
type Hop struct {
	Name    string // host name as the MX record (or transport) gives it; "" for an address literal
	Addrs   []netip.Addr
	Port    int  // 0 means Remote.Port
	Literal bool // the next hop is an address literal: no names to verify
	// Auth is the login for this hop (the smarthost's), sent only over TLS.
	Auth *smtpclient.Credentials
	// DANE is what the host's TLSA step needs; nil when DANE cannot apply (an address
	// literal, DANE-14, or a router that knows no DNS).
	DANE *HopDANE
}

// RouteError is a failure to find where a domain's mail goes.
type RouteError struct {
	Permanent bool
	Code      int    // SMTP code for the DSN, e.g. 550 or 556
	Enhanced  string // e.g. "5.1.2", "5.1.10", "4.4.3"
	Reason    string // stable word for logs: nxdomain, null_mx, dns_temporary, ...
	Err       error
}

func (e *RouteError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}
func (e *RouteError) Unwrap() error { return e.Err }

// Router resolves a destination (the part after @ of a recipient) into hops. The
// nextHop it returns is the domain policies are looked up for: the destination itself, or
// the transport's or smarthost's domain.
type Router func(ctx context.Context, domain string) (nextHop string, hops []Hop, err error)

// Remote delivers queued mail to other domains' mail servers. It groups recipients by
// destination domain, runs a bounded number of sessions per destination and in total,
// reuses a session for several messages, and records one attempt per recipient.
type Remote struct {
	Store    spool.Store
	Route    Router
	Hostname string // EHLO name
	Port     int    // SMTP port of MX hosts; 0 means 25 (tests point it elsewhere)

	DefaultLevel tlspolicy.Level
	Policies     tlspolicy.Table
	Roots        *x509.CertPool // nil: system roots
	// DANEDigests is the digest preference for TLSA digest agility (RFC 7671 §9,
	// DANE-17), strongest first; nil means dane.DefaultDigests().
	DANEDigests []uint8
	// MTASTS looks up the MTA-STS policy of a destination domain (nil: MTA-STS off).
	// It is called at most once per delivery attempt, and only when neither the
	// operator's table nor DANE decides a host (§14.8).
	MTASTS func(ctx context.Context, domain string) (mtasts.Result, error)
	// PolicyList looks a destination up in the static policy list (nil: no list). It is
	// consulted only when MTA-STS says nothing (LIST-06).
	PolicyList func(domain string, now time.Time) (policylist.Entry, bool, error)
	// MTASTSRecheck looks for an updated MTA-STS policy after an enforce failure and
	// reports whether it changed (RFC 8461 §5.1); nil: no recheck.
	MTASTSRecheck func(ctx context.Context, domain string) (changed bool, err error)
	// Pins is the TLS pin store (nil: pinning off). It is looked up at most once per
	// delivery attempt, when nothing above a pin decides a host (§14.8), and told about
	// each delivery over TLS that the opportunistic decision, a policy in mode testing
	// or a pin governed (docs/pinning.md).
	Pins PinStore
	// Sign returns header fields to put in front of a message (its DKIM-Signature), read
	// from the queued body on each delivery attempt, or nil to send the message as it
	// is; nil Sign signs nothing. An error defers the message, so that mail meant to be
	// signed never leaves unsigned.
	Sign func(ctx context.Context, env *spool.Envelope, body io.Reader) (header []byte, err error)

	Retry        Retry
	DelayWarning time.Duration // 0: no delayed DSNs
	MaxConns     int           // default 100
	MaxPerDomain int           // default 10
	MaxPerConn   int           // messages per session, default 50
	Timeouts     smtpclient.Timeouts
	Poll         time.Duration
	// Linger keeps a session open this long after its destination's queue empties, for
	// mail that follows; 0 closes it at once.
	Linger time.Duration

	Bouncer *Bouncer
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
	Jitter  func() float64

	once     sync.Once
	kick     chan struct{}
	mu       sync.Mutex
	inflight map[jobKey]bool
	dests    map[string]*dest
	conns    chan struct{} // global session slots
	runCtx   context.Context
	down     map[string]downInfo // destinations that just failed at every address
	wg       sync.WaitGroup
}

type jobKey struct {
	id     spool.ID
	domain string
}

type job struct {
	key   jobKey
	msg   *spool.Message
	rcpts []spool.Recipient
}

// dest is the queue of jobs for one destination domain.
type dest struct {
	jobs    []*job
	workers int
	wake    chan struct{} // a job arrived for a worker lingering on an open session
}

func (r *Remote) init() {
	r.once.Do(func() {
		r.kick = make(chan struct{}, 1)
		r.inflight = make(map[jobKey]bool)
		r.dests = make(map[string]*dest)
		if r.Port == 0 {
			r.Port = 25
		}
		if r.MaxConns <= 0 {
			r.MaxConns = 100
		}
		if r.MaxPerDomain <= 0 {
			r.MaxPerDomain = 10
		}
		if r.MaxPerConn <= 0 {
			r.MaxPerConn = 50
		}
		if r.Poll <= 0 {
			r.Poll = 5 * time.Second
		}
		if r.Log == nil {
			r.Log = slog.New(slog.DiscardHandler)
		}
		if r.Now == nil {
			r.Now = time.Now
		}
		if r.Jitter == nil {
			r.Jitter = defaultJitter
		}
		r.conns = make(chan struct{}, r.MaxConns)
	})
}

// Kick asks for a queue scan now.
func (r *Remote) Kick() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run schedules deliveries until ctx is cancelled, then waits for sessions in progress.
func (r *Remote) Run(ctx context.Context) {
	r.init()
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
	t := time.NewTicker(r.Poll)
	defer t.Stop()
	for {
		r.Scan(ctx)
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-r.kick:
		case <-t.C:
		}
		// However often it is kicked, the queue is scanned at most once a second: new
		// messages reach the workers through Enqueue, not through scans.
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-time.After(time.Second):
		}
	}
}

// Limits of the in-memory part of the scheduler.
const (
	// leaseTime is how long a message handed to a worker stays out of Due's results.
	leaseTime = 15 * time.Minute
	// maxInflight bounds the jobs held in memory (Postfix's active queue); beyond it new
	// messages wait in the spool for a scan.
	maxInflight = 20000
	// scanLimit is how many messages one scan takes from the spool.
	scanLimit = 500
)

// leaser is implemented by spools that can hide in-flight messages from Due
// (spool.FileStore), so that a scan does not load them again.
type leaser interface {
	Lease(ctx context.Context, ids []spool.ID, local bool, now, until time.Time) error
}

// downTime is how long a destination whose every address refused or timed out is
// treated as down: its other queued messages are deferred without connecting.
const downTime = time.Minute

func (r *Remote) markDown(domain, reply string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down == nil {
		r.down = map[string]downInfo{}
	}
	r.down[domain] = downInfo{until: r.Now().Add(downTime), reply: reply}
}

func (r *Remote) isDown(domain string, now time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.down[domain]
	if !ok {
		return "", false
	}
	if !now.Before(d.until) {
		delete(r.down, domain)
		return "", false
	}
	return d.reply + " (destination down, not retried before " + d.until.UTC().Format(time.TimeOnly) + ")", true
}

type downInfo struct {
	until time.Time
	reply string
}

// SetPolicies replaces the default level and the per-domain policies (configuration
// reload); sessions already open keep the requirement they were opened with.
func (r *Remote) SetPolicies(def tlspolicy.Level, table tlspolicy.Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.DefaultLevel, r.Policies = def, table
}

// unleaser gives a lease back (spool.FileStore.Retry: queued recipients due now).
type unleaser interface {
	Retry(ctx context.Context, id spool.ID) error
}

func (r *Remote) lease(ctx context.Context, ids []spool.ID) {
	l, ok := r.Store.(leaser)
	if !ok || len(ids) == 0 {
		return
	}
	now := r.Now()
	if err := l.Lease(context.WithoutCancel(ctx), ids, false, now, now.Add(leaseTime)); err != nil {
		r.Log.Warn("leasing in-flight messages failed", "error", err, "messages", len(ids))
	}
}

// Enqueue hands a message that was just queued to the workers at once, without a
// queue scan. Before Run has started, or with a full active queue, it only asks for a
// scan.
func (r *Remote) Enqueue(id spool.ID, env *spool.Envelope) {
	r.init()
	r.mu.Lock()
	ctx, full := r.runCtx, len(r.inflight) >= maxInflight
	r.mu.Unlock()
	if ctx == nil || full || ctx.Err() != nil {
		r.Kick()
		return
	}
	m := spool.Message{ID: id, Envelope: *env}
	m.Envelope.Recipients = nil
	for _, rc := range env.Recipients {
		if !rc.Local {
			m.Envelope.Recipients = append(m.Envelope.Recipients, rc)
		}
	}
	if len(m.Envelope.Recipients) == 0 {
		return
	}
	r.mu.Lock()
	ids := r.add(ctx, []spool.Message{m})
	r.mu.Unlock()
	// The lease may land after the delivery was recorded; it only touches recipients
	// that are still queued and due, so it cannot undo an outcome.
	go r.lease(ctx, ids)
}

// Scan takes due remote recipients from the queue and hands them to destination workers.
// It returns the number of new jobs.
func (r *Remote) Scan(ctx context.Context) int {
	r.init()
	r.mu.Lock()
	full := len(r.inflight) >= maxInflight
	r.mu.Unlock()
	if full {
		return 0
	}
	msgs, err := r.Store.Due(ctx, r.Now(), false, scanLimit)
	if err != nil {
		if ctx.Err() == nil {
			r.Log.Error("queue scan failed", "error", err)
		}
		return 0
	}
	r.mu.Lock()
	ids := r.add(ctx, msgs)
	r.mu.Unlock()
	r.lease(ctx, ids)
	return len(ids)
}

// add turns messages into jobs per destination domain, skipping those in flight, starts
// workers as needed and returns the IDs of the messages that got new jobs. r.mu is held.
func (r *Remote) add(ctx context.Context, msgs []spool.Message) []spool.ID {
	var ids []spool.ID
	for i := range msgs {
		m := &msgs[i]
		byDomain := map[string][]spool.Recipient{}
		var order []string
		for _, rc := range m.Envelope.Recipients {
			d := domainOf(rc.Addr)
			if _, ok := byDomain[d]; !ok {
				order = append(order, d)
			}
			byDomain[d] = append(byDomain[d], rc)
		}
		added := false
		for _, d := range order {
			k := jobKey{m.ID, d}
			if r.inflight[k] {
				continue
			}
			r.inflight[k] = true
			added = true
			ds := r.dests[d]
			if ds == nil {
				ds = &dest{wake: make(chan struct{}, 1)}
				r.dests[d] = ds
			}
			ds.jobs = append(ds.jobs, &job{key: k, msg: m, rcpts: byDomain[d]})
			select {
			case ds.wake <- struct{}{}:
			default:
			}
			if ds.workers < r.MaxPerDomain && ds.workers < len(ds.jobs) {
				ds.workers++
				r.wg.Add(1)
				go r.worker(ctx, d, ds)
			}
		}
		if added {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// Wait blocks until every job handed out so far is finished (for tests and shutdown).
func (r *Remote) Wait() { r.wg.Wait() }

// next pops the destination's next job, or retires the worker when there is none.
func (r *Remote) next(domain string, ds *dest, retire bool) *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ds.jobs) == 0 {
		if retire {
			ds.workers--
			if ds.workers == 0 {
				delete(r.dests, domain)
			}
		}
		return nil
	}
	j := ds.jobs[0]
	ds.jobs = ds.jobs[1:]
	return j
}

func (r *Remote) done(j *job) {
	r.mu.Lock()
	delete(r.inflight, j.key)
	r.mu.Unlock()
}

// worker delivers one destination's jobs, reusing its session between them.
func (r *Remote) worker(ctx context.Context, domain string, ds *dest) {
	defer r.wg.Done()
	var s *session
	defer func() {
		if s != nil {
			s.close(ctx, r)
		}
	}()
	for {
		j := r.next(domain, ds, s == nil || r.Linger <= 0)
		if j == nil && s != nil && r.Linger > 0 {
			// Keep the session a moment for mail that is about to follow, as Postfix
			// caches connections: a new session costs a TLS handshake.
			t := time.NewTimer(r.Linger)
		wait:
			for {
				select {
				case <-ds.wake:
					// A wake-up may be stale (sent for a job already taken).
					if j = r.next(domain, ds, false); j != nil {
						break wait
					}
				case <-t.C:
					break wait
				case <-ctx.Done():
					break wait
				}
			}
			t.Stop()
			if j == nil {
				s.close(ctx, r)
				s = nil
				j = r.next(domain, ds, true)
			}
		}
		if j == nil {
			return
		}
		// After shutdown, jobs not yet started are only released: an attempt made with
		// a dead context would fail and be recorded as a deferral it never was. Their
		// lease is given back so that the next start tries them at once.
		if ctx.Err() == nil {
			s = r.deliver(ctx, j, s)
		} else if u, ok := r.Store.(unleaser); ok {
			if err := u.Retry(context.WithoutCancel(ctx), j.key.id); err != nil && !errors.Is(err, spool.ErrNotFound) {
				r.Log.Warn("releasing an unstarted job failed", "queue_id", string(j.key.id), "error", err)
			}
		}
		r.done(j)
	}
}

// session is an open connection kept for the next message of the same destination.
type session struct {
	c        *smtpclient.Client
	hop      Hop
	ip       netip.Addr
	decision tlspolicy.Decision
	sent     int
	// cs is the session's TLS handshake, which the requirement of each further message
	// is checked against before the session carries it; nil without TLS.
	cs *tls.ConnectionState
}

func (s *session) close(ctx context.Context, r *Remote) {
	s.c.Quit(ctx)
	s.c.Close()
	<-r.conns
}

// attempt is what one delivery attempt learned, for the record of each recipient.
type attempt struct {
	hop      Hop
	ip       netip.Addr
	decision tlspolicy.Decision
	tls      smtpclient.TLSInfo
	reason   string
	err      error // the last session-level failure
	tempCode string
}

// deliver makes one attempt for a job and records its outcomes. It returns the session
// to keep for the next job (nil if none).
func (r *Remote) deliver(ctx context.Context, j *job, s *session) *session {
	now := r.Now()
	env := &j.msg.Envelope
	var results map[string]rcptOutcome
	var at attempt

	if reply, ok := r.isDown(j.key.domain, now); ok {
		// The destination just failed every address: defer without connecting again,
		// as Postfix does with a dead destination, so a down site costs no sockets.
		at.reason = "destination_down"
		results = allRcpts(j.rcpts, rcptOutcome{reply: reply})
		if s != nil {
			s.close(ctx, r)
			s = nil
		}
		r.record(ctx, j, env, now, results, at)
		return s
	}
	nextHop, hops, rerr := r.Route(ctx, j.key.domain)
	if rerr != nil {
		var re *RouteError
		if !errors.As(rerr, &re) {
			re = &RouteError{Code: 451, Enhanced: "4.4.3", Reason: "route_error", Err: rerr}
		}
		if r.Metrics != nil {
			r.Metrics.DNSErrors.WithLabelValues(re.Reason).Inc()
		}
		at.reason = re.Reason
		// The record names the policy that would have applied, even without a host.
		r.mu.Lock()
		def, table := r.DefaultLevel, r.Policies
		r.mu.Unlock()
		at.decision = tlspolicy.Decide(tlspolicy.Input{NextHop: j.key.domain, Default: def, Table: table, Now: r.Now})
		results = allRcpts(j.rcpts, rcptOutcome{permanent: re.Permanent, reply: routeReply(re)})
		if s != nil {
			s.close(ctx, r)
			s = nil
		}
	} else {
		results, s, at = r.transfer(ctx, j, nextHop, hops, s)
		if r.MTASTSRecheck != nil && enforceFailed(results, at) {
			// RFC 8461 §5.1 (STS-22): before an enforce failure may ever become
			// permanent, look for an updated policy. Every deferral checks, so the one
			// before the message expires has too; a changed policy is tried at once.
			changed, err := r.MTASTSRecheck(ctx, nextHop)
			switch {
			case err != nil:
				r.Log.Warn("mta-sts recheck failed", "queue_id", string(j.key.id), "domain", nextHop, "error", err)
			case changed:
				r.Log.Info("mta-sts policy changed after an enforce failure; trying again", "queue_id", string(j.key.id), "domain", nextHop)
				results, s, at = r.transfer(ctx, j, nextHop, hops, s)
			}
		}
		r.observePin(ctx, j, nextHop, results, at)
	}
	r.record(ctx, j, env, now, results, at)
	return s
}

// enforceFailed reports whether an attempt delivered nothing and was decided by an
// MTA-STS policy in enforce mode.
func enforceFailed(results map[string]rcptOutcome, at attempt) bool {
	for _, o := range results {
		if o.delivered {
			return false
		}
	}
	p := at.decision.Policy
	return at.decision.Source == tlspolicy.SourceMTASTS && p != nil && !p.Testing
}

type rcptOutcome struct {
	delivered bool
	permanent bool
	reply     string
	dsnPassed bool // the server took NOTIFY/ORCPT: it sends success DSNs itself
}

func allRcpts(rcpts []spool.Recipient, o rcptOutcome) map[string]rcptOutcome {
	m := make(map[string]rcptOutcome, len(rcpts))
	for _, rc := range rcpts {
		m[rc.Addr] = o
	}
	return m
}

func routeReply(e *RouteError) string {
	code := e.Code
	if code == 0 {
		code = 451
		if e.Permanent {
			code = 550
		}
	}
	return fmt.Sprintf("%d %s %s", code, e.Enhanced, e.Error())
}

// transfer walks the hops and addresses until a session takes the message.
//
// Each hop gets its own requirement, with the TLSA step taken lazily for the levels
// that need it (RFC 7672 §2.2), and the destination's MTA-STS policy and static list
// entry looked up once, when the first hop needs them (§14.8). A hop whose requirement
// cannot be met (a failed TLSA lookup, DANE-04; dane-only without DANE, DANE-26; a host
// an enforce policy does not list, STS-20) is skipped for the next one, in MX order
// (STS-21), and when none is left the message is deferred with 4.7.5 and the last
// reason, never bounced (decision 14.7) and never sent with less protection.
func (r *Remote) transfer(ctx context.Context, j *job, nextHop string, hops []Hop, s *session) (map[string]rcptOutcome, *session, attempt) {
	env := &j.msg.Envelope
	var at attempt
	ts := &tlsaSteps{r: r, ctx: ctx}
	dp := newDestPolicies(ctx, r, j, nextHop)
	// A kept session is reused only for the same destination and only when it meets
	// the message's requirement as decided now ("never reusing a session for a message
	// that needs a stronger TLS level").
	if s != nil {
		// The session's host is judged as the route has it now: a host that is no longer
		// an exchanger of the destination carries nothing more.
		h, routed := sameHost(hops, s.hop, s.ip)
		if routed && s.c.Usable() && s.sent < r.MaxPerConn {
			need := r.decide(nextHop, h, ts, dp)
			if info, ok := satisfies(need, s, env.RequireTLS); ok {
				s.hop = h
				at = attempt{hop: h, ip: s.ip, decision: need, tls: info, reason: attemptReason(need, info)}
				res, ok := r.send(ctx, s.c, j, &at)
				s.sent++
				if ok {
					s.decision = need
					if !s.c.Usable() || s.sent >= r.MaxPerConn {
						s.close(ctx, r)
						s = nil
					}
					return res, s, at
				}
			}
		}
		s.close(ctx, r)
		s = nil
	}

	for _, h := range hops {
		d := r.decide(nextHop, h, ts, dp)
		at.hop, at.decision = h, d
		if d.Defer != nil {
			// Treated as unreachable (DANE-04, STS-20), and said so: the attempt
			// record keeps only the last host's reason.
			r.Log.Info("mx host skipped", "queue_id", string(j.key.id), "domain", j.key.domain, "mx", h.Name,
				"policy", string(d.Source), "reason", d.Defer)
			at.ip, at.tls = netip.Addr{}, smtpclient.TLSInfo{}
			at.err, at.reason, at.tempCode = d.Defer, policyFailure(deferWord(d), d), "4.7.5"
			continue
		}
		for _, ip := range h.Addrs {
			// What an earlier address achieved must not be logged for this one.
			at.ip, at.tls, at.reason, at.tempCode = ip, smtpclient.TLSInfo{}, "", ""
			var cs *tls.ConnectionState
			c, err := r.connect(ctx, h, ip, capture(d.Security, &cs))
			if err != nil {
				var te *smtpclient.TLSError
				if errors.As(err, &te) && te.Reason == smtpclient.ReasonHandshake && plaintextRetryAllowed(d) &&
					r.Now().Sub(env.ReceivedAt) >= r.Retry.withDefaults().First {
					// Postfix's rule for "may" (§9.1, §11.12): after a failed handshake,
					// retry in plaintext, but only for a message that has already waited
					// a retry interval, so a transient TLS fault does not cost privacy.
					r.Log.Info("tls handshake failed, retrying without TLS", "queue_id", string(j.key.id), "mx", h.Name, "ip", ip.String(), "error", err)
					plain := d.Security
					plain.Mode, plain.Verify, cs = smtpclient.TLSDisabled, nil, nil
					c, err = r.connect(ctx, h, ip, plain)
					if err == nil {
						at.reason = "tls handshake failed; plaintext fallback"
					}
				}
				if err != nil {
					at.err = err
					at.reason, at.tempCode = failureReason(err)
					if r.Metrics != nil {
						r.Metrics.ConnErrors.WithLabelValues(at.reason).Inc()
					}
					if d.DANE != nil {
						at.reason = daneFailure(at.reason, err)
					}
					at.reason = policyFailure(at.reason, d)
					continue
				}
			}
			at.tls = trustOf(d, c.TLS())
			if dr := attemptReason(d, at.tls); dr != "" && at.reason == "" {
				at.reason = dr
			} else if dr != "" && d.Policy != nil && d.Policy.Testing {
				at.reason += "; " + dr // after a plaintext fallback: what enforce would have failed
			}
			res, ok := r.send(ctx, c, j, &at)
			ns := &session{c: c, hop: h, ip: ip, decision: d, sent: 1, cs: cs}
			if ok {
				if !c.Usable() || ns.sent >= r.MaxPerConn {
					ns.close(ctx, r)
					ns = nil
				}
				return res, ns, at
			}
			ns.close(ctx, r)
		}
	}
	// No session took the message: every recipient is deferred with the last reason.
	code := at.tempCode
	if code == "" {
		code = "4.4.1"
	}
	msg := "no mail server could be reached"
	if at.err != nil {
		msg = at.err.Error()
	}
	if at.reason == "connect_failed" {
		r.markDown(j.key.domain, "451 "+code+" "+msg)
	}
	return allRcpts(j.rcpts, rcptOutcome{reply: "451 " + code + " " + msg}), nil, at
}

// sameHost finds the hop of hops that names the same host and port as h, with ip still
// among its addresses.
func sameHost(hops []Hop, h Hop, ip netip.Addr) (Hop, bool) {
	for _, x := range hops {
		if x.Name == h.Name && x.Port == h.Port && x.Literal == h.Literal && slices.Contains(x.Addrs, ip) {
			return x, true
		}
	}
	return Hop{}, false
}

// readTracker notes whether its reader was read at all, so that a body the Sign hook
// left alone (a message it does not sign) is sent without being opened again.
type readTracker struct {
	r    io.Reader
	read bool
}

func (t *readTracker) Read(p []byte) (int, error) {
	t.read = true
	return t.r.Read(p)
}

// rewind puts *body back at its start: a seek on a spool file, else a fresh Open.
func (r *Remote) rewind(ctx context.Context, id spool.ID, body *io.ReadCloser) error {
	if sk, ok := (*body).(io.Seeker); ok {
		if _, err := sk.Seek(0, io.SeekStart); err == nil {
			return nil
		}
	}
	again, err := r.Store.Open(ctx, id)
	if err != nil {
		return err
	}
	(*body).Close()
	*body = again
	return nil
}

// plaintextRetryAllowed reports whether a failed handshake may be followed by a
// plaintext session: only for opportunistic TLS that no TLSA record or pin asked for. A DANE
// host, even one whose records are all unusable, has promised STARTTLS (DANE-18), and
// its failures are never a reason for plaintext (DANE-04, RFC 7672 §2.2).
func plaintextRetryAllowed(d tlspolicy.Decision) bool {
	// A pin requires TLS (its mode is not opportunistic); the source is checked too, so
	// that a pinned host never gets plaintext whatever the mode says.
	if d.Security.Mode != smtpclient.TLSOpportunistic || d.Source == tlspolicy.SourceDANE || d.Source == tlspolicy.SourcePin {
		return false
	}
	return d.DANE == nil || d.Audit || !d.DANE.TLSRequired()
}

// connect opens a session to one address, holding a global connection slot.
func (r *Remote) connect(ctx context.Context, h Hop, ip netip.Addr, sec smtpclient.Security) (*smtpclient.Client, error) {
	select {
	case r.conns <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	port := r.port(h)
	c, err := smtpclient.Dial(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), smtpclient.Options{
		Hostname: r.Hostname, Security: sec, Timeouts: r.Timeouts, Logger: r.Log, Auth: h.Auth,
	})
	if err != nil {
		<-r.conns
		return nil, err
	}
	return c, nil
}

// failureReason maps a session failure to a stable reason word and the enhanced code of
// the deferral (reference semantics §9.1: 4.7.4 when TLS was not offered, 4.7.5 when it
// failed or the peer was not verified).
func failureReason(err error) (string, string) {
	var te *smtpclient.TLSError
	if errors.As(err, &te) {
		switch te.Reason {
		case smtpclient.ReasonNotOffered, smtpclient.ReasonRefused:
			return te.Reason, "4.7.4"
		default:
			return te.Reason, "4.7.5"
		}
	}
	var se *smtpclient.Error
	if errors.As(err, &se) {
		if se.Stage == "connect" {
			return "connect_failed", "4.4.1"
		}
		return "session_" + se.Stage, "4.4.2"
	}
	return "connect_failed", "4.4.1"
}

// send runs one transaction on c. ok is false when the session failed before any
// recipient got an answer that counts, so another address may be tried.
func (r *Remote) send(ctx context.Context, c *smtpclient.Client, j *job, at *attempt) (map[string]rcptOutcome, bool) {
	env := &j.msg.Envelope
	body, err := r.Store.Open(ctx, j.key.id)
	if err != nil {
		at.err, at.reason = err, "queue_read_failed"
		return allRcpts(j.rcpts, rcptOutcome{reply: "451 4.3.0 cannot read the queued message: " + err.Error()}), true
	}
	defer func() { body.Close() }() // body is replaced when signing reads it first
	size := env.Size
	var data io.Reader = body
	if r.Sign != nil {
		tr := &readTracker{r: body}
		header, err := r.Sign(ctx, env, tr)
		if err != nil {
			at.err, at.reason = err, "sign_failed"
			return allRcpts(j.rcpts, rcptOutcome{reply: "451 4.3.0 cannot sign the message: " + err.Error()}), true
		}
		if tr.read {
			// Signing read the body: rewind it, or open it again.
			if err := r.rewind(ctx, j.key.id, &body); err != nil {
				at.err, at.reason = err, "queue_read_failed"
				return allRcpts(j.rcpts, rcptOutcome{reply: "451 4.3.0 cannot read the queued message: " + err.Error()}), true
			}
			data = body
		}
		if len(header) > 0 {
			data = io.MultiReader(bytes.NewReader(header), body)
			if size > 0 {
				size += int64(len(header))
			}
		}
	}
	rcpts := make([]smtpclient.Recipient, len(j.rcpts))
	for i, rc := range j.rcpts {
		rcpts[i] = smtpclient.Recipient{Addr: rc.Addr, Notify: rc.Notify, ORCPT: rc.ORCPT}
	}
	res, err := c.Send(ctx, smtpclient.Envelope{
		From: env.From, Body: smtpclient.BodyType(env.BodyType), SMTPUTF8: env.SMTPUTF8,
		RET: env.RET, EnvID: env.EnvID, Size: size, RequireTLS: env.RequireTLS,
	}, rcpts, data)
	out := make(map[string]rcptOutcome, len(j.rcpts))
	if err != nil {
		var se *smtpclient.Error
		if errors.As(err, &se) && se.Reply.Code != 0 {
			// The server answered the transaction as a whole (MAIL, DATA, end of data)
			// or the client refused it (SIZE, SMTPUTF8): that answer is the outcome of
			// every recipient without an answer of its own.
			for _, rr := range res.Rcpts {
				if rr.Reply.Code >= 400 && rr.Reply.Code != 0 && rr.Err != nil {
					out[rr.Addr] = rcptOutcome{permanent: rr.Reply.Permanent(), reply: rr.Reply.String()}
				} else {
					out[rr.Addr] = rcptOutcome{permanent: se.Reply.Permanent(), reply: se.Reply.String()}
				}
			}
			if len(res.Rcpts) == 0 {
				out = allRcpts(j.rcpts, rcptOutcome{permanent: se.Reply.Permanent(), reply: se.Reply.String()})
			}
			at.reason = "rejected at " + se.Stage
			return out, true
		}
		at.err = err
		at.reason, at.tempCode = failureReason(err)
		if res.Data == nil && !anyAnswered(res) {
			return nil, false // nothing happened: try the next address
		}
		// Lost after the data was sent: the message may have been delivered; defer
		// (a duplicate is the worst case, never a loss).
		return allRcpts(j.rcpts, rcptOutcome{reply: "451 4.4.2 " + err.Error()}), true
	}
	var se *smtpclient.Error
	for _, rr := range res.Rcpts {
		switch {
		case rr.Err == nil:
			out[rr.Addr] = rcptOutcome{delivered: true, reply: res.Data.String(), dsnPassed: res.DSN}
		case rr.Reply.Code != 0:
			out[rr.Addr] = rcptOutcome{permanent: rr.Reply.Permanent(), reply: rr.Reply.String()}
		case errors.As(rr.Err, &se) && se.Local && se.Reply.Code != 0:
			// Refused by the client itself (an invalid address): the reply it made up
			// says whether that is permanent.
			out[rr.Addr] = rcptOutcome{permanent: se.Reply.Permanent(), reply: se.Reply.String()}
		default:
			out[rr.Addr] = rcptOutcome{reply: "451 4.4.2 " + rr.Err.Error()}
		}
	}
	return out, true
}

func anyAnswered(res smtpclient.Result) bool {
	for _, rr := range res.Rcpts {
		if rr.Reply.Code != 0 {
			return true
		}
	}
	return false
}

// record turns outcomes into queue state, DSNs, log records and metrics.
func (r *Remote) record(ctx context.Context, j *job, env *spool.Envelope, now time.Time, results map[string]rcptOutcome, at attempt) {
	policy := string(at.decision.Source)
	if policy == "" {
		policy = string(tlspolicy.SourceOpportunistic)
	}
	tlsLevel := at.tls.Level
	if tlsLevel == "" {
		tlsLevel = "none"
	}
	auth := at.tls.Auth
	if auth == "" {
		auth = "none"
	}
	var outcomes []spool.Outcome
	var bounces, delays, successes []bounceItem
	for _, rc := range j.rcpts {
		o := results[rc.Addr]
		result, reason := "deferred", at.reason
		switch {
		case o.delivered:
			result = "delivered"
		case o.permanent:
			result = "bounced"
		case r.Retry.Expired(now, env.ReceivedAt):
			result, reason = "bounced", "expired"
		}
		switch {
		case reason != "":
		case result == "delivered" && tlsLevel == "none" && at.decision.Security.Mode != smtpclient.TLSDisabled:
			// The opportunistic trade-off (ST-09, ST-10): said in the record, since a
			// man in the middle stripping STARTTLS looks exactly like this.
			reason = "plaintext: STARTTLS not offered"
			if at.tls.Offered {
				reason = "plaintext: STARTTLS refused"
			}
		case result == "deferred":
			reason = "temporary failure"
		case result == "bounced":
			reason = "rejected by the server"
		}
		fields := map[string]string{
			"domain": j.key.domain, "mx": at.hop.Name, "ip": ipString(at.ip), "policy": policy, "tls": tlsLevel,
			"tls_version": at.tls.Version, "cipher": at.tls.Cipher, "auth": auth, "reason": reason,
		}
		out := spool.Outcome{Attempt: spool.Attempt{Rcpt: rc.Addr, Time: now, Result: result, Reply: o.reply, Fields: fields}}
		if result == "deferred" {
			out.NextAttempt = r.Retry.Next(now, rc.Attempts+1, r.Jitter())
		}
		item := bounceItem{rcpt: rc, reply: o.reply, remoteMTA: at.hop.Name, expired: reason == "expired", when: now, retryUntil: env.ReceivedAt.Add(r.Retry.withDefaults().Lifetime)}
		switch result {
		case "bounced":
			bounces = append(bounces, item)
		case "deferred":
			if r.DelayWarning > 0 && now.Sub(env.ReceivedAt) >= r.DelayWarning {
				delays = append(delays, item)
			}
		case "delivered":
			if !o.dsnPassed {
				successes = append(successes, item)
			}
		}
		outcomes = append(outcomes, out)
		if r.Metrics != nil {
			r.Metrics.Deliveries.WithLabelValues(result, policy, tlsLevel).Inc()
		}
		level := slog.LevelInfo
		if result != "delivered" {
			level = slog.LevelWarn
		}
		r.Log.Log(ctx, level, "delivery", "queue_id", string(j.key.id), "rcpt", rc.Addr, "domain", j.key.domain,
			"mx", at.hop.Name, "ip", ipString(at.ip), "result", result, "policy", policy, "tls", tlsLevel,
			"tls_version", at.tls.Version, "cipher", at.tls.Cipher, "auth", auth, "reply", o.reply, "reason", reason,
			"attempt", rc.Attempts+1, "policy_reason", at.decision.Reason)
	}
	// What the attempt learned is written even when a shutdown has begun meanwhile: a
	// delivery the next hop acknowledged but the queue forgot would be sent again.
	ctx = context.WithoutCancel(ctx)
	if r.Bouncer != nil {
		// DSNs read the queued body, which Record removes once every recipient is final:
		// they are queued first.
		r.Bouncer.Notify(ctx, j.msg, bounces, delays, successes, outcomes)
	}
	if err := r.Store.Record(ctx, j.key.id, outcomes); err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			r.Log.Warn("message left the queue during delivery", "queue_id", string(j.key.id))
			return
		}
		r.Log.Error("recording delivery failed", "queue_id", string(j.key.id), "error", err)
	}
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}
