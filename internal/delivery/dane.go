package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"sync"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/smtpclient"
	"mxward/internal/tlspolicy"
)

// HopDANE is what the TLSA step needs for one host (RFC 7672 §2.2.2, §2.2.3): where to
// look the records up, how the host's addresses were found, and how the host was
// reached from the next hop. The router fills it in; a hop without it gets no DANE.
type HopDANE struct {
	// Resolver answers the TLSA queries. It must be the validating (or AD-trusting)
	// resolver the route came from (DANE-01).
	Resolver dns.Resolver
	// Address is the host's address lookup: its statuses and CNAME chain choose the
	// TLSA base domains (DANE-09 … DANE-11).
	Address dns.IPResult
	// Dest is the next hop, its CNAME expansion, whether the MX RRset was secure and
	// whether the MX was implicit, for the reference identifiers (DANE-22) and half-DANE
	// (DANE-07).
	Dest dane.Destination
}

// tlsaSteps runs the TLSA step at most once per host and port within one delivery
// attempt (the session-reuse check and the walk over the hops may both need it).
type tlsaSteps struct {
	r    *Remote
	ctx  context.Context
	done map[string]*tlsaStep
}

type tlsaStep struct {
	once sync.Once
	host dane.Host
}

// lookup returns the lazy TLSA step for hop h, or nil when DANE cannot apply to it.
func (ts *tlsaSteps) lookup(h Hop) func() dane.Host {
	if h.Literal || h.DANE == nil || h.DANE.Resolver == nil || h.Name == "" {
		return nil
	}
	port := ts.r.port(h)
	key := h.Name + ":" + strconv.Itoa(port)
	if ts.done == nil {
		ts.done = map[string]*tlsaStep{}
	}
	st := ts.done[key]
	if st == nil {
		st = &tlsaStep{}
		ts.done[key] = st
	}
	return func() dane.Host {
		st.once.Do(func() {
			// DANE-12: the TLSA records of the port actually connected to.
			st.host = dane.LookupHost(ts.ctx, h.DANE.Resolver, h.Name, h.DANE.Address, port, ts.r.DANEDigests)
		})
		return st.host
	}
}

// decide returns the requirement for one hop of nextHop under the current policies,
// with the lazy lookups of ts (DANE, per host) and dp (MTA-STS and the list, per
// domain).
func (r *Remote) decide(nextHop string, h Hop, ts *tlsaSteps, dp *destPolicies) tlspolicy.Decision {
	r.mu.Lock()
	def, table := r.DefaultLevel, r.Policies
	r.mu.Unlock()
	in := tlspolicy.Input{NextHop: nextHop, MXHost: h.Name, Literal: h.Literal, Default: def,
		Table: table, Roots: r.Roots, Now: r.Now, DANE: ts.lookup(h), MTASTS: dp.mtasts(), List: dp.list(), Pin: dp.pin()}
	if h.DANE != nil {
		in.DANEDest = h.DANE.Dest
	}
	return tlspolicy.Decide(in)
}

// port is the TCP port a hop is reached on.
func (r *Remote) port(h Hop) int {
	if h.Port != 0 {
		return h.Port
	}
	return r.Port
}

// satisfies reports whether the kept session s meets the requirement need of the next
// message, and returns the session's TLS facts as need judges them. A session is never
// stronger than the handshake it made: a requirement that authenticates the peer runs
// its own check on that handshake, so an opportunistic session cannot carry a message
// that needs DANE, nor a DANE session one whose records have changed since.
func satisfies(need tlspolicy.Decision, s *session, requireTLS bool) (smtpclient.TLSInfo, bool) {
	info := s.c.TLS()
	if need.Defer != nil {
		return info, false
	}
	tlsUp := info.Level != "" && info.Level != "none"
	if need.Security.Mode == smtpclient.TLSRequired && !tlsUp {
		return info, false
	}
	switch {
	case need.Security.Verify != nil && tlsUp:
		if s.cs == nil {
			return info, false
		}
		auth, err := need.Security.Verify(*s.cs)
		if err != nil {
			return info, false
		}
		info.Auth, info.Level = "none", "untrusted"
		if auth != "" && auth != "none" {
			info.Auth, info.Level = auth, "verified"
		}
	case tlsUp:
		// Authentication the session has but the requirement did not ask for is not
		// claimed for this message.
		info.Auth, info.Level = "none", "untrusted"
	}
	// A plaintext session is left only for an opportunistic requirement (TLSRequired
	// was refused above), which has no handshake to check.
	info = trustOf(need, info)
	if requireTLS && info.Level != "verified" {
		return info, false
	}
	return info, true
}

// trustOf adjusts what a session achieved to what the decision may claim: a half-DANE
// match authenticates the MX host, not the destination domain (DANE-07), and is
// recorded as "trusted", Postfix's word for it (PF-07), never "verified".
func trustOf(d tlspolicy.Decision, info smtpclient.TLSInfo) smtpclient.TLSInfo {
	if d.HalfDANE && info.Level == "verified" {
		info.Level = "trusted"
	}
	return info
}

// daneReason is the attempt record's reason for a session a DANE decision allowed:
// the record that authenticated it, or why DANE did not authenticate it. "" when no
// TLSA step was taken (levels other than dane and dane-only, address literals).
func daneReason(d tlspolicy.Decision, info smtpclient.TLSInfo) string {
	if d.DANE == nil {
		return ""
	}
	var s string
	switch {
	case d.Audit:
		s = "audit: DANE would have "
		switch d.DANE.Outcome {
		case dane.Authenticate:
			s += "required authentication"
			if d.Result != nil {
				if m, err, ok := d.Result.Get(); ok && err == nil {
					s += "; the certificate matches: " + m.String()
				} else if ok {
					s += "; the certificate does not match: " + err.Error()
				} else {
					s += "; there was no handshake to check"
				}
			}
		case dane.EncryptOnly:
			s += "required TLS (" + d.DANE.Reason + ")"
		case dane.Unreachable:
			s += "skipped the host: " + d.DANE.Reason
		default:
			s += "used opportunistic TLS: " + d.DANE.Reason
		}
		if info.Level == "none" {
			s = plaintextWord(info) + "; " + s
		}
		return s
	case d.DANE.Outcome == dane.Authenticate && d.Result != nil:
		m, err, ok := d.Result.Get()
		if !ok || err != nil {
			return ""
		}
		s = m.String()
	case d.DANE.Outcome == dane.EncryptOnly:
		s = d.DANE.Reason
	case d.DANE.Outcome == dane.NotApplicable:
		// Opportunistic TLS, and why DANE did not apply to the host (RFC 7672 §2.2.1 ¶7).
		s = "DANE does not apply: " + d.DANE.Reason
		if info.Level == "none" {
			s = plaintextWord(info) + "; " + s
		}
		return s
	default:
		return ""
	}
	if d.HalfDANE {
		s = "half-dane: " + s + " (MX RRset insecure; not secure delivery to the domain, DANE-07)"
	}
	return s
}

// plaintextWord says why an opportunistic session went on in plaintext (ST-09, ST-10).
func plaintextWord(info smtpclient.TLSInfo) string {
	if info.Offered {
		return "plaintext: STARTTLS refused"
	}
	return "plaintext: STARTTLS not offered"
}

// deferWord is the stable reason word for a decision that allows no session.
func deferWord(d tlspolicy.Decision) string {
	switch {
	case errors.Is(d.Defer, tlspolicy.ErrTLSAUnreachable):
		return "tlsa_lookup_failed"
	case errors.Is(d.Defer, tlspolicy.ErrMXNotInPolicy):
		return "mx_not_in_policy"
	}
	return "policy_unsatisfiable"
}

// daneFailure adds to a failure word what DANE found wrong with the certificate.
func daneFailure(word string, err error) string {
	var ve *dane.VerifyError
	if errors.As(err, &ve) {
		return word + ": dane " + ve.Reason
	}
	return word
}

// capture wraps sec.Verify so that the handshake is kept for the session-reuse check;
// verification itself is unchanged (a nil Verify still authenticates nothing).
func capture(sec smtpclient.Security, into **tls.ConnectionState) smtpclient.Security {
	verify := sec.Verify
	sec.Verify = func(cs tls.ConnectionState) (string, error) {
		c := cs
		*into = &c
		if verify == nil {
			return "", nil
		}
		return verify(cs)
	}
	return sec
}
