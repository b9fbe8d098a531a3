package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
)

// ErrMXNotInPolicy is wrapped by the Defer of a host that an MTA-STS policy or a static
// list entry in mode enforce does not name: the host is skipped, never used (RFC 8461
// §4.1, §5; STS-17, STS-20; LIST-03). It is what stops a forged MX record from sending
// mail to an attacker's host, even one with a valid certificate for its own name.
var ErrMXNotInPolicy = errors.New("MX host matches no pattern of the policy")

// PolicyUse describes the MTA-STS policy or static list entry that decided a host
// (Decision.Source SourceMTASTS or SourceList), for the attempt record.
type PolicyUse struct {
	// Source is SourceMTASTS or SourceList.
	Source Source
	// Summary names the policy (MTA-STS: its id and whether it was fetched or cached;
	// list: the entry's domain), its mode, and the pattern the MX host matched or that
	// it matched none.
	Summary string
	// Testing is set for mode testing (STS-23, LIST-03): the session is the
	// opportunistic one, and Fail or Check say what enforcing would have found.
	Testing bool
	// Fail, in testing mode, is why enforcing would have skipped the host before any
	// session (its name matches no pattern); "" otherwise.
	Fail string
	// Check receives, in testing mode, what the enforce check found in the handshake;
	// nil otherwise.
	Check *CheckResult
}

// CheckResult is what an enforce check found in one handshake that a testing policy
// did not enforce. The decision's Verify closure writes it; delivery reads it for the
// attempt record (and, later, TLS-RPT). As for DANEResult, the lock only keeps a stray
// reader honest.
type CheckResult struct {
	mu      sync.Mutex
	checked bool
	auth    string
	err     error
}

// Get returns the last check's authentication or failure; checked is false before any
// handshake.
func (r *CheckResult) Get() (auth string, err error, checked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auth, r.err, r.checked
}

func (r *CheckResult) set(auth string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth, r.err, r.checked = auth, err, true
}

// domainRule is an MTA-STS policy or a static list entry reduced to what applying it to
// one host needs: the two sources differ in pattern syntax and minimum level only.
type domainRule struct {
	source  Source
	label   string // `mta-sts policy "20260301" (cache)`, `static list entry for example.net`
	testing bool
	// verify requires a Web PKI chain valid for the MX host name; false requires TLS
	// only (a list entry at level encrypt).
	verify bool
	// minVersion is the lowest TLS version accepted; TLS 1.2 when lower or zero.
	minVersion uint16
	// match returns the first pattern that host matches.
	match func(host string) (pattern string, ok bool)
	// cite names the rules, for the reason.
	cite string
}

// decideSTS applies the destination's MTA-STS policy to the host, if there is one in
// mode enforce or testing (RFC 8461 §5). ok is false when MTA-STS says nothing; d then
// carries, in Reason and Notes, why.
func decideSTS(d Decision, in Input, now func() time.Time) (Decision, bool) {
	if in.Literal || in.MTASTS == nil {
		return d, false
	}
	res, err := in.MTASTS()
	switch {
	case res.Temporary:
		// The TXT lookup failed and nothing is cached. mtasts already applies a cached
		// policy whenever one exists (STS-14), so what is left is a domain never seen
		// with a policy: delivering as if it had none is what any first contact does,
		// but the record says that a policy may exist (an attacker can make DNS fail).
		n := "mta-sts: policy unknown, delivering without it: " + res.Reason
		d.Reason += "; " + n
		d.Notes = append(d.Notes, n)
		return d, false
	case err != nil:
		n := fmt.Sprintf("mta-sts: lookup failed, delivering without it: %v", err)
		d.Reason += "; " + n
		d.Notes = append(d.Notes, n)
		return d, false
	case !res.Applies():
		if res.Policy != nil {
			d.Reason += fmt.Sprintf("; mta-sts: policy %q has mode none (STS-24)", res.ID)
		} else if res.FetchError != nil {
			// STS-10: deliver as without MTA-STS; the failure is reportable (STS-26).
			n := "mta-sts: " + res.Reason
			d.Reason += "; " + n
			d.Notes = append(d.Notes, n)
		}
		return d, false
	}
	p := res.Policy
	r := domainRule{
		source:  SourceMTASTS,
		label:   fmt.Sprintf("mta-sts policy %q (%s)", res.ID, res.Source),
		testing: p.Mode == mtasts.ModeTesting,
		verify:  true,
		match: func(host string) (string, bool) {
			for _, pat := range p.MX {
				one := mtasts.Policy{MX: []string{pat}}
				if one.Matches(host) {
					return pat, true
				}
			}
			return "", false
		},
		cite: "RFC 8461 §4, §5",
	}
	return applyRule(d, in, r, now), true
}

// decideList applies the destination's static list entry to the host (LIST-03), if
// there is one. ok is false when the list says nothing; an expired list (LIST-04) says
// nothing, and d's Reason and Notes say why.
func decideList(d Decision, in Input, now func() time.Time) (Decision, bool) {
	if in.Literal || in.List == nil {
		return d, false
	}
	e, ok, err := in.List()
	if err != nil {
		n := fmt.Sprintf("static policy list not applied (LIST-04): %v", err)
		d.Reason += "; " + n
		d.Notes = append(d.Notes, n)
		return d, false
	}
	if !ok {
		return d, false
	}
	label := "static list entry for " + e.Domain
	if e.Alias != "" {
		label += " (alias " + e.Alias + ")"
	}
	r := domainRule{
		source:  SourceList,
		label:   label,
		testing: !e.Enforced(),
		verify:  e.MinTLS != policylist.LevelEncrypt,
		// LIST-03: TLS 1.2 or later; an entry may ask for more.
		minVersion: e.MinVersion,
		match: func(host string) (string, bool) {
			for _, pat := range e.MXs {
				one := policylist.Entry{MXs: []string{pat}}
				if one.MatchesMX(host) {
					return pat, true
				}
			}
			return "", false
		},
		cite: "LIST-03",
	}
	return applyRule(d, in, r, now), true
}

// applyRule makes the requirement of an MTA-STS policy or list entry for one host.
//
// In mode enforce only a host whose name, as written in the MX record (decision 3),
// matches a pattern may be used (STS-17); any other is skipped with a Defer, which
// delivery treats like an unreachable host and, with no host left, as a 4.7.x deferral
// (STS-20 … STS-22, decision 7). A matching host must offer STARTTLS and, over TLS 1.2
// or later, present a Web PKI chain valid for the MX host name (STS-18, STS-19), which
// is also the SNI. In mode testing the session is the opportunistic one and the same
// checks are only recorded (STS-23).
func applyRule(d Decision, in Input, r domainRule, now func() time.Time) Decision {
	host := strings.ToLower(strings.TrimSuffix(in.MXHost, "."))
	mode := "enforce"
	if r.testing {
		mode = "testing"
	}
	pattern, ok := r.match(host)
	summary := fmt.Sprintf("%s, mode %s, mx %s matches %q", r.label, mode, host, pattern)
	if !ok {
		summary = fmt.Sprintf("%s, mode %s, mx %s matches no pattern", r.label, mode, host)
	}
	use := &PolicyUse{Source: r.source, Summary: summary, Testing: r.testing}
	d.Source, d.Policy, d.Result = r.source, use, nil
	d.Reason += "; " + summary + " (" + r.cite + ")"

	verify := versionVerifier(r.minVersion)
	if r.verify {
		verify = webPKIHostVerifier(host, r.minVersion, in.Roots, now)
	}
	if r.testing {
		d.Level = LevelMay
		d.Security = smtpclient.Security{Mode: smtpclient.TLSOpportunistic, ServerName: host}
		if !ok {
			use.Fail = "enforce would have skipped the host: it matches no mx pattern"
			return d
		}
		check := &CheckResult{}
		use.Check = check
		d.Security.Verify = func(cs tls.ConnectionState) (string, error) {
			check.set(verify(cs))
			return "", nil // testing never authenticates (decision 2) and never refuses
		}
		return d
	}
	d.Level = LevelSecure
	if !r.verify {
		d.Level = LevelEncrypt
	}
	d.Security = smtpclient.Security{Mode: smtpclient.TLSRequired, ServerName: host}
	if !ok {
		d.Defer = fmt.Errorf("%w: %s (%s); host skipped (STS-20)", ErrMXNotInPolicy, summary, r.cite)
		return d
	}
	// At level encrypt (a list entry) the check authenticates nothing ("none") and only
	// holds the TLS version.
	d.Security.Verify = verify
	return d
}

// versionVerifier refuses a handshake below lowest, and always below TLS 1.2 (RFC 8461
// §7.2, STS-19; LIST-03); it authenticates nothing ("none"). The client never offers
// less than TLS 1.2, but a kept session is judged again, and a list entry may ask for
// TLS 1.3.
func versionVerifier(lowest uint16) func(tls.ConnectionState) (string, error) {
	lowest = max(lowest, tls.VersionTLS12)
	return func(cs tls.ConnectionState) (string, error) {
		if cs.Version != 0 && cs.Version < lowest {
			return "", fmt.Errorf("%w: %s negotiated, %s or later required", ErrVerify,
				tls.VersionName(cs.Version), tls.VersionName(lowest))
		}
		return "none", nil
	}
}

// webPKIHostVerifier checks, over TLS 1.2 (or minVersion) or later, a Web PKI chain to
// roots with a DNS-ID valid for the MX host name (RFC 8461 §4.2, STS-18): the host, not
// the next-hop domain, and a certificate wildcard covering one label only.
func webPKIHostVerifier(host string, minVersion uint16, roots *x509.CertPool, now func() time.Time) func(tls.ConnectionState) (string, error) {
	chain := webPKIVerifier([]string{host}, roots, now)
	version := versionVerifier(minVersion)
	return func(cs tls.ConnectionState) (string, error) {
		if _, err := version(cs); err != nil {
			return "", err
		}
		return chain(cs)
	}
}
