package tlspolicy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"mxward/internal/dane"
	"mxward/internal/smtpclient"
)

// ErrDANEUnavailable is wrapped by the Defer of a dane-only decision that DANE cannot
// satisfy (DANE-26): an insecure MX, no TLSA records, or only unusable ones.
var ErrDANEUnavailable = errors.New("dane-only policy, but the host cannot be authenticated by DANE")

// ErrTLSAUnreachable is wrapped by the Defer of a host whose TLSA lookup failed
// (DANE-04): it must be skipped, never used without DANE.
var ErrTLSAUnreachable = errors.New("TLSA lookup failed")

// DANEResult is what the DANE check of one handshake found. A decision's Verify closure
// writes it; delivery reads it for the attempt record after the handshake. One result
// belongs to one decision, and a decision to the sessions of one delivery attempt, which
// are made one after the other; the lock only keeps a stray reader honest.
type DANEResult struct {
	mu      sync.Mutex
	checked bool
	match   dane.Match
	err     error
}

// Get returns the last check's match or failure; checked is false before any handshake.
func (r *DANEResult) Get() (m dane.Match, err error, checked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.match, r.err, r.checked
}

func (r *DANEResult) set(m dane.Match, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.match, r.err, r.checked = m, err, true
}

// check runs dane.Check on the handshake and keeps the outcome.
func (r *DANEResult) check(cs tls.ConnectionState, h dane.Host, refIDs []string, now func() time.Time) (dane.Match, error) {
	m, err := dane.Check(cs.PeerCertificates, h.Records, refIDs, now())
	r.set(m, err)
	return m, err
}

// decideDANE applies the levels dane and dane-only (§9.1; RFC 7672 §2.2) to d, which
// carries the source and reason of the level already. The TLSA step is taken only here.
func decideDANE(d Decision, pol Policy, in Input, now func() time.Time) Decision {
	only := pol.Level == LevelDANEOnly
	if d.Source == SourceOpportunistic {
		d.Reason = fmt.Sprintf("default level %q", string(pol.Level))
	}
	dest := in.DANEDest
	if dest.MXHost == "" && !in.Literal {
		dest.MXHost = in.MXHost
	}
	if dest.NextHop == "" {
		dest.NextHop = in.NextHop
	}
	half := !dest.MXSecure

	var h dane.Host
	switch {
	case in.Literal:
		h = dane.Host{Outcome: dane.NotApplicable,
			Reason: "DANE-14: the next hop is an IP address; DANE does not apply (RFC 7672 §2.2)"}
	case in.DANE == nil:
		h = dane.Host{Outcome: dane.NotApplicable,
			Reason: "no TLSA lookup is possible for this host (not reached through DNS); DANE does not apply"}
	case only && half && !pol.Audit:
		// DANE-26: mandatory DANE needs a secure MX RRset; no TLSA lookup is worth making.
		h = dane.Host{Outcome: dane.NotApplicable,
			Reason: "DANE-07: the MX RRset of " + dest.NextHop + " is not DNSSEC-secure (non DNSSEC destination)"}
	default:
		h = in.DANE()
		d.DANE = &h
	}

	var (
		sec      smtpclient.Security
		level    Level
		deferErr error
		result   *DANEResult
		isHalf   bool
		verdict  string // what DANE requires, in words, for the reason and for audit
	)
	switch h.Outcome {
	case dane.Authenticate:
		if only && half {
			deferErr = fmt.Errorf("%w: DANE-26: the MX RRset of %s is not DNSSEC-secure", ErrDANEUnavailable, dest.NextHop)
			verdict = "deferred: dane-only needs a secure MX RRset"
			break
		}
		refIDs := dane.ReferenceIDs(dest, h.BaseDomain)
		result = &DANEResult{}
		host := h
		sec = smtpclient.Security{
			Mode:       smtpclient.TLSRequired,
			ServerName: h.BaseDomain, // DANE-24
			Verify: func(cs tls.ConnectionState) (string, error) {
				m, err := result.check(cs, host, refIDs, now)
				return m.Auth, err
			},
		}
		level, isHalf = pol.Level, half
		verdict = "required TLS authenticated by TLSA records"
		if half {
			verdict += " of the MX host only (half-dane, DANE-07)"
		}
	case dane.EncryptOnly:
		if only {
			deferErr = fmt.Errorf("%w: %s", ErrDANEUnavailable, h.Reason)
			verdict = "deferred: dane-only, but no TLSA record is usable"
			break
		}
		// DANE-18: the records promise STARTTLS even though none can authenticate.
		sec = smtpclient.Security{Mode: smtpclient.TLSRequired, ServerName: h.BaseDomain}
		level, isHalf = LevelEncrypt, half
		verdict = "required TLS without authentication"
	case dane.Unreachable:
		err := h.Err
		if err == nil {
			err = errors.New(h.Reason)
		}
		deferErr = fmt.Errorf("%w for %s, host skipped (DANE-04, RFC 7672 §2.1.2): %w", ErrTLSAUnreachable, dest.MXHost, err)
		verdict = "skipped the host"
	default: // NotApplicable
		if only {
			deferErr = fmt.Errorf("%w: %s", ErrDANEUnavailable, h.Reason)
			verdict = "deferred: dane-only, but DANE does not apply"
			break
		}
		sec = smtpclient.Security{Mode: smtpclient.TLSOpportunistic, ServerName: serverName(pol, in, "")}
		level = LevelMay
		verdict = "used opportunistic TLS"
	}

	if deferErr != nil {
		// Never a session, but should one be attempted anyway, never in plaintext.
		sec, level = smtpclient.Security{Mode: smtpclient.TLSRequired}, pol.Level
	}

	if pol.Audit {
		// DANE-19: say what DANE would have done, do what "may" does. The DANE check
		// still runs on the handshake, for the record, but never fails it and never
		// counts as authentication.
		d.Audit, d.Level = true, LevelMay
		d.Reason += "; audit: DANE would have " + verdict + ": " + h.Reason
		d.Security = smtpclient.Security{Mode: smtpclient.TLSOpportunistic, ServerName: serverName(pol, in, "")}
		if result != nil {
			check := sec.Verify
			d.Security.ServerName = sec.ServerName
			d.Security.Verify = func(cs tls.ConnectionState) (string, error) {
				check(cs)
				return "", nil
			}
			d.Result = result
		}
		return d
	}

	d.Level, d.Security, d.Defer, d.Result, d.HalfDANE = level, sec, deferErr, result, isHalf
	if h.Outcome != dane.NotApplicable {
		d.Source = SourceDANE
	}
	if deferErr == nil && level == LevelMay {
		d.Reason += "; DANE does not apply: " + h.Reason
	} else {
		d.Reason += "; " + h.Reason
	}
	if isHalf {
		d.Reason = "half-dane: MX RRset of " + dest.NextHop + " is insecure, " + dest.MXHost +
			" is the only reference identifier and delivery is not secure to the domain (DANE-07); " + d.Reason
	}
	return d
}
