package delivery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/pin"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
	"mxward/internal/tlspolicy"
)

// destPolicies looks up the next-hop domain's MTA-STS policy and static list entry at
// most once per delivery attempt, and only when a decision needs them (§14.8): never
// when the operator's table decides, nor for a host DANE decides, but for the first host
// DANE leaves undecided. MTA-STS and the list are per domain (RFC 8461 §3.1, LIST-01),
// so the hosts of one attempt share the answer.
type destPolicies struct {
	r       *Remote
	ctx     context.Context
	queueID string
	nextHop string

	stsOnce sync.Once
	sts     mtasts.Result
	stsErr  error

	listOnce sync.Once
	entry    policylist.Entry
	listed   bool
	listErr  error

	pinOnce sync.Once
	pinned  pin.Entry
	pinLive bool
	pinErr  error
}

func newDestPolicies(ctx context.Context, r *Remote, j *job, nextHop string) *destPolicies {
	return &destPolicies{r: r, ctx: ctx, queueID: string(j.key.id), nextHop: nextHop}
}

// mtasts returns the lazy MTA-STS lookup for tlspolicy.Input, nil when MTA-STS is off.
func (p *destPolicies) mtasts() func() (mtasts.Result, error) {
	if p == nil || p.r.MTASTS == nil {
		return nil
	}
	return func() (mtasts.Result, error) {
		p.stsOnce.Do(func() {
			p.sts, p.stsErr = p.r.MTASTS(p.ctx, p.nextHop)
			switch {
			case p.sts.Temporary || p.stsErr != nil:
				// Not "no policy": delivery goes on without one, and says so.
				p.r.Log.Warn("mta-sts policy unknown", "queue_id", p.queueID, "domain", p.nextHop,
					"reason", p.sts.Reason, "error", p.stsErr)
			case p.sts.FetchError != nil:
				// Reportable (STS-26); a cached policy, if any, still applies.
				p.r.Log.Warn("mta-sts policy fetch failed", "queue_id", p.queueID, "domain", p.nextHop,
					"reason", p.sts.Reason, "error", p.sts.FetchError)
			}
		})
		return p.sts, p.stsErr
	}
}

// list returns the lazy static list lookup for tlspolicy.Input, nil without a list. A
// failed lookup, an expired list above all (LIST-04), is logged at error level, which
// alerts the operator, once per attempt at most; the list then does not apply.
func (p *destPolicies) list() func() (policylist.Entry, bool, error) {
	if p == nil || p.r.PolicyList == nil {
		return nil
	}
	return func() (policylist.Entry, bool, error) {
		p.listOnce.Do(func() {
			p.entry, p.listed, p.listErr = p.r.PolicyList(p.nextHop, p.r.Now())
			if p.listErr != nil {
				p.r.Log.Error("static TLS policy list not applied", "queue_id", p.queueID, "domain", p.nextHop,
					"expired", errors.Is(p.listErr, policylist.ErrExpired), "error", p.listErr)
			}
		})
		return p.entry, p.listed, p.listErr
	}
}

// pin returns the lazy pin lookup for tlspolicy.Input, nil when pinning is off. A
// failed lookup is logged and counts as no pin (tlspolicy says so in the reason): a
// broken pin store must not stop mail.
func (p *destPolicies) pin() func() (pin.Entry, bool, error) {
	if p == nil || p.r.Pins == nil {
		return nil
	}
	return func() (pin.Entry, bool, error) {
		p.pinOnce.Do(func() {
			p.pinned, p.pinLive, p.pinErr = p.r.Pins.Lookup(p.nextHop, p.r.Now())
			if p.pinErr != nil {
				p.r.Log.Warn("tls pin lookup failed", "queue_id", p.queueID, "domain", p.nextHop, "error", p.pinErr)
			}
		})
		return p.pinned, p.pinLive, p.pinErr
	}
}

// PinStore is what delivery needs of the TLS pin store (*pin.Store).
type PinStore interface {
	Lookup(domain string, now time.Time) (pin.Entry, bool, error)
	Observe(ctx context.Context, domain string, o pin.Observation, now time.Time) (pin.Entry, error)
}

// observePin tells the pin store about an attempt that delivered over TLS, when the
// decision was one a pin exists to protect: opportunistic TLS, a policy in mode testing
// (which asks for nothing), or the pin itself, which each such delivery refreshes.
// DANE, an enforcing MTA-STS policy or list entry, and the operator's table protect
// the destination already and neither create nor refresh pins; a delivery in clear
// never touches a pin, which is the point of one.
func (r *Remote) observePin(ctx context.Context, j *job, nextHop string, results map[string]rcptOutcome, at attempt) {
	if r.Pins == nil || at.hop.Literal || at.tls.Level == "" || at.tls.Level == "none" {
		return
	}
	d := at.decision
	if d.Source != tlspolicy.SourceOpportunistic && d.Source != tlspolicy.SourcePin &&
		!(d.Policy != nil && d.Policy.Testing) {
		return
	}
	delivered := false
	for _, o := range results {
		delivered = delivered || o.delivered
	}
	if !delivered {
		return
	}
	e, err := r.Pins.Observe(context.WithoutCancel(ctx), nextHop, pin.Observation{MXHost: at.hop.Name, TLSVersion: at.tls.Version}, r.Now())
	if err != nil {
		r.Log.Warn("tls pin not updated", "queue_id", string(j.key.id), "domain", nextHop, "mx", at.hop.Name, "error", err)
		return
	}
	r.Log.Debug("tls pin observed", "queue_id", string(j.key.id), "domain", nextHop, "mx", at.hop.Name,
		"state", string(e.State(r.Now())), "count", e.Count, "expires", e.Expires)
}

// attemptReason is the attempt record's reason for a session a decision allowed: what
// the policy that decided found (MTA-STS or the list, else DANE), followed by what a
// source below it said that the record must show (decision Notes).
func attemptReason(d tlspolicy.Decision, info smtpclient.TLSInfo) string {
	var s string
	switch {
	case d.Pin != nil:
		// The pin decided; a testing policy it overrode still records its findings.
		s = d.Pin.Summary
		if d.Policy != nil {
			s += "; " + policyUseReason(d.Policy, info)
		}
	case d.Policy != nil:
		s = policyUseReason(d.Policy, info)
	default:
		s = daneReason(d, info)
	}
	if len(d.Notes) == 0 {
		return s
	}
	if s == "" && info.Level == "none" && d.Security.Mode != smtpclient.TLSDisabled {
		s = plaintextWord(info)
	}
	if s != "" {
		s += "; "
	}
	return s + strings.Join(d.Notes, "; ")
}

// policyUseReason names the MTA-STS policy or list entry and the pattern the host
// matched; in mode testing it adds what enforcing would have found, for the operator
// and for TLS-RPT (STS-23, STS-26; LIST-03).
func policyUseReason(p *tlspolicy.PolicyUse, info smtpclient.TLSInfo) string {
	if !p.Testing {
		return p.Summary
	}
	s := p.Summary
	switch {
	case p.Fail != "":
		s += "; " + p.Fail
	case info.Level == "none":
		s += "; enforce would have failed: no TLS"
	case p.Check != nil:
		auth, err, ok := p.Check.Get()
		switch {
		case !ok:
			s += "; no handshake to check"
		case err != nil:
			s += "; enforce would have failed: " + err.Error()
		default:
			s += "; enforce would have passed (" + auth + ")"
		}
	}
	if info.Level == "none" {
		s = plaintextWord(info) + "; " + s
	}
	return s
}

// policyFailure adds to a failure word which pin, or which MTA-STS policy or list entry
// in mode enforce, the session failed.
func policyFailure(word string, d tlspolicy.Decision) string {
	if d.Pin != nil {
		// A pinned domain whose STARTTLS is gone: stripping, or the domain dropped TLS
		// (then `mxward pin forget` is the way out).
		return word + ": " + d.Pin.Summary
	}
	if d.Policy == nil || d.Policy.Testing {
		return word
	}
	return word + ": " + d.Policy.Summary
}
