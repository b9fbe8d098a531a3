// Package tlspolicy decides, for each next hop and MX host, what transport security an
// outbound session needs and how the peer is to be authenticated. The decision is a pure
// function of its inputs (ARCHITECTURE: "the TLS decision is a pure function"): DNS
// results, cached policies and configuration come in, a smtpclient.Security and the facts
// for the delivery record come out. No I/O happens here, so every rule has a table test.
//
// Sources in order of precedence (reference-semantics §14.8): an explicit per-domain
// policy set by the operator overrides everything and the log says so. Otherwise, at the
// default levels dane and may: DANE, whenever the host's TLSA step authenticates,
// requires encryption or makes the host unreachable (a passing or testing MTA-STS
// policy never overrides a failing DANE check, RFC 8461 §2, STS-25); then a live or
// cached MTA-STS policy of the next-hop domain in mode enforce or testing; then the
// static policy list (which never overrides MTA-STS, LIST-06); then a live pin of the
// domain (internal/pin), which requires TLS with any certificate and which a policy in
// mode testing does not override; otherwise opportunistic TLS. DANE is per host;
// MTA-STS, the list and the pin are per next-hop domain and reach Decide as lazy
// lookups, so that nothing is fetched where the operator's table or DANE decides.
//
// An explicit "may" or "encrypt" entry for a destination is therefore also the way to
// opt that destination out of DANE (RFC 7672 §9.1 ¶2, DANE-19), and "dane audit" the
// way to watch what DANE would do there without enforcing it.
package tlspolicy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"mxward/internal/dane"
	"mxward/internal/mtasts"
	"mxward/internal/pin"
	"mxward/internal/policylist"
	"mxward/internal/smtpclient"
)

// Level is a security level with Postfix's vocabulary and meaning (§9.1).
type Level string

const (
	LevelNone        Level = "none"        // never TLS
	LevelMay         Level = "may"         // opportunistic: TLS when offered, any certificate
	LevelEncrypt     Level = "encrypt"     // TLS required, any certificate
	LevelDANE        Level = "dane"        // DANE when the DNS allows it, else may
	LevelDANEOnly    Level = "dane-only"   // DANE required
	LevelVerify      Level = "verify"      // Web PKI chain + name from (unauthenticated) DNS
	LevelSecure      Level = "secure"      // Web PKI chain + name not taken from DNS
	LevelFingerprint Level = "fingerprint" // certificate or public-key digest pinned
)

// Levels lists every level, for validation.
var Levels = []Level{LevelNone, LevelMay, LevelEncrypt, LevelDANE, LevelDANEOnly, LevelVerify, LevelSecure, LevelFingerprint}

// Source says where a requirement came from; it is the `policy` field of a delivery record.
type Source string

const (
	SourceOpportunistic Source = "opportunistic"
	SourceLocal         Source = "local"
	// SourceDANE: the host's secure TLSA RRset decided (RFC 7672 §2.2, §14.8), whether
	// the level came from the default or from an operator's "dane" entry.
	SourceDANE Source = "dane"
	// SourceMTASTS: a live or cached MTA-STS policy in mode enforce or testing decided
	// (RFC 8461 §5).
	SourceMTASTS Source = "mta-sts"
	// SourceList: an entry of the static TLS policy list decided (LIST-03).
	SourceList Source = "list"
)

// Policy is one operator-set policy: a level and its attributes (§9.2 syntax,
// "secure match=.example.com:example.net").
type Policy struct {
	Level Level
	// Match lists, for verify and secure, the names a certificate must carry: literal
	// names, ".domain" (any name below domain, at any depth, as in Postfix), or the
	// keywords "hostname" (the MX host), "nexthop" and "dot-nexthop". For fingerprint, the
	// hex SHA-256 digests (colons optional) of the certificate or of its public key.
	Match []string
	// ServerName is the SNI to send: "hostname" (the MX host), "nexthop", or a literal
	// name; "" sends SNI only where the level verifies names. DANE ignores it and sends
	// the TLSA base domain (DANE-24, PF-02).
	ServerName string
	// Audit, for dane and dane-only ("dane audit"), computes and logs the DANE decision
	// but runs the session with the opportunistic requirement (RFC 7672 §9.1 ¶2,
	// DANE-19): a way to see what enforcing DANE would do before enforcing it.
	Audit bool
}

// ParsePolicy parses a policy value such as "secure match=.example.com:example.net".
// Attributes are separated by spaces or commas; match items by ':' ('|' too for
// fingerprints), as in Postfix's smtp_tls_policy_maps.
func ParsePolicy(s string) (Policy, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(f) == 0 {
		return Policy{}, errors.New("empty policy")
	}
	p := Policy{Level: Level(strings.ToLower(f[0]))}
	if !validLevel(p.Level) {
		return Policy{}, fmt.Errorf("unknown security level %q", f[0])
	}
	for _, a := range f[1:] {
		if strings.EqualFold(a, "audit") {
			if p.Level != LevelDANE && p.Level != LevelDANEOnly {
				return Policy{}, fmt.Errorf("audit applies only to levels dane and dane-only, not %s", p.Level)
			}
			p.Audit = true
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || v == "" {
			return Policy{}, fmt.Errorf("attribute %q: want name=value", a)
		}
		switch strings.ToLower(k) {
		case "match":
			sep := ":"
			if p.Level == LevelFingerprint {
				sep = "|"
			}
			for _, m := range strings.Split(v, sep) {
				if m == "" {
					return Policy{}, fmt.Errorf("empty match item in %q", v)
				}
				p.Match = append(p.Match, strings.ToLower(m))
			}
		case "servername":
			p.ServerName = strings.ToLower(v)
		default:
			return Policy{}, fmt.Errorf("unknown attribute %q", k)
		}
	}
	switch p.Level {
	case LevelFingerprint:
		if len(p.Match) == 0 {
			return Policy{}, errors.New("fingerprint needs match=DIGEST")
		}
		for i, m := range p.Match {
			d := strings.ReplaceAll(m, ":", "")
			if b, err := hex.DecodeString(d); err != nil || len(b) != sha256.Size {
				return Policy{}, fmt.Errorf("match %q is not a SHA-256 digest", m)
			}
			p.Match[i] = d
		}
	case LevelVerify, LevelSecure:
	default:
		if len(p.Match) > 0 {
			return Policy{}, fmt.Errorf("match= does not apply to level %s", p.Level)
		}
	}
	return p, nil
}

func validLevel(l Level) bool {
	for _, v := range Levels {
		if v == l {
			return true
		}
	}
	return false
}

// Table is the operator's per-destination policies, keyed by next-hop domain. A key
// ".example.com" applies to every subdomain of example.com that has no entry of its own
// (PF-04: parent-domain lookup).
type Table map[string]Policy

// Lookup finds the policy for a next-hop domain: the exact name first, then ".parent"
// keys from the nearest parent outwards.
func (t Table) Lookup(domain string) (Policy, string, bool) {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	if p, ok := t[d]; ok {
		return p, d, true
	}
	for {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return Policy{}, "", false
		}
		d = d[i+1:]
		if p, ok := t["."+d]; ok {
			return p, "." + d, true
		}
	}
}

// Input is everything the decision depends on.
type Input struct {
	NextHop string // the recipient domain (or the transport's next-hop domain)
	MXHost  string // the host being connected to, as named in the MX record
	// Literal is true for a next hop given as an address literal: no MX, no names.
	Literal bool
	Default Level // the global level; "" means may
	Table   Table
	// Roots verifies Web PKI chains (nil: the system pool).
	Roots *x509.CertPool
	Now   func() time.Time

	// DANE performs the TLSA step for the host (dane.LookupHost) when a level needs it;
	// it is called at most once per Decide and never for levels other than dane and
	// dane-only, so that no TLSA query is made where none is wanted. The lookup is the
	// caller's I/O, handed in as a value: Decide itself still does none. nil means DANE
	// cannot apply to the host (an address literal, DANE-14).
	DANE func() dane.Host
	// DANEDest says how the host was reached, for the DANE-TA reference identifiers
	// (DANE-22) and for half-DANE (DANE-07): MXSecure false means the MX RRset was not
	// secure. An empty MXHost is taken from the field above.
	DANEDest dane.Destination

	// MTASTS returns the MTA-STS policy of the next-hop domain (mtasts.Manager.Lookup).
	// Decide calls it at most once, and only when neither the operator's table nor DANE
	// has decided the host; nil means MTA-STS is off. Like DANE, the lookup is the
	// caller's I/O: it shares one answer among the hosts of a delivery attempt.
	MTASTS func() (mtasts.Result, error)
	// List returns the static policy list's entry for the next-hop domain
	// (policylist.List.Lookup); called at most once, and only when MTA-STS has said
	// nothing. nil means no list.
	List func() (policylist.Entry, bool, error)
	// Pin returns the pin of the next-hop domain and whether it is live
	// (pin.Store.Lookup); called at most once, and only when nothing above it made a
	// binding decision (an MTA-STS policy or list entry in mode testing is not one).
	// nil means pinning is off.
	Pin func() (pin.Entry, bool, error)
}

// Decision is the requirement for one session.
type Decision struct {
	Level    Level
	Source   Source
	Security smtpclient.Security
	// Reason says in words why this is the requirement, for the log.
	Reason string
	// Defer, when non-nil, means no session may be attempted with this host: the
	// requirement cannot be met (dane-only without DANE), the host is unreachable
	// because its TLSA lookup failed (DANE-04), or an MTA-STS policy or list entry in
	// mode enforce does not name it (ErrMXNotInPolicy). Delivery tries the next host and
	// in the end defers with 4.7.5; it never falls back to a weaker requirement.
	Defer error

	// DANE is the outcome of the host's TLSA step, when one was made (levels dane and
	// dane-only, audit included); nil otherwise, as for an address literal.
	DANE *dane.Host
	// HalfDANE is set when the TLSA records of the host decide although its MX RRset is
	// insecure (DANE-07): the MX host name is then the only reference identifier, and a
	// success is not secure delivery to the next-hop domain. Reason starts "half-dane:".
	// (An audit decision authenticates nothing, so it is never half-DANE; its Reason
	// says what half-DANE would have required.)
	HalfDANE bool
	// Audit is set for an audit policy: DANE was evaluated, and Reason says what it would
	// have done, but Security is the opportunistic requirement (DANE-19).
	Audit bool
	// Result receives, during the handshake, what the DANE check of the peer found. It is
	// set whenever Security.Verify (or, in audit mode, the logging check) matches TLSA
	// records, and nil otherwise.
	Result *DANEResult

	// Policy describes the MTA-STS policy or static list entry that decided the host
	// (Source SourceMTASTS or SourceList), or the testing-mode one a pin overrode
	// (Source SourcePin); nil otherwise.
	Policy *PolicyUse
	// Pin describes the pin that decided the host (Source SourcePin); nil otherwise.
	Pin *PinUse
	// Notes are what a source that did not decide said that the attempt record must
	// still show: an MTA-STS policy that could not be determined, an expired list.
	Notes []string
}

// RequiresTLS reports whether the decision forbids plaintext.
func (d Decision) RequiresTLS() bool { return d.Security.Mode == smtpclient.TLSRequired }

// Decide returns the requirement for one host of one next hop.
func Decide(in Input) Decision {
	pol, key, local := in.Table.Lookup(in.NextHop)
	d := Decision{Source: SourceOpportunistic}
	if local {
		d.Source = SourceLocal
		d.Reason = fmt.Sprintf("local policy %q for %s", string(pol.Level), key)
	} else {
		pol = Policy{Level: in.Default}
		if pol.Level == "" {
			pol.Level = LevelMay
		}
		if pol.Level == LevelMay || pol.Level == LevelDANE {
			d.Reason = "no policy: opportunistic TLS"
		} else {
			d.Source = SourceLocal
			d.Reason = fmt.Sprintf("global default level %q", string(pol.Level))
		}
	}
	d.Level = pol.Level
	now := in.Now
	if now == nil {
		now = time.Now
	}
	switch pol.Level {
	case LevelNone:
		d.Security = smtpclient.Security{Mode: smtpclient.TLSDisabled}
	case LevelMay:
		d.Security = smtpclient.Security{Mode: smtpclient.TLSOpportunistic, ServerName: serverName(pol, in, "")}
	case LevelDANE, LevelDANEOnly:
		d = decideDANE(d, pol, in, now)
	case LevelEncrypt:
		d.Security = smtpclient.Security{Mode: smtpclient.TLSRequired, ServerName: serverName(pol, in, "")}
	case LevelVerify, LevelSecure:
		names := expandMatch(pol, in)
		if len(names) == 0 {
			d.Defer = fmt.Errorf("%s policy with no name to match", pol.Level)
		}
		d.Security = smtpclient.Security{
			Mode:       smtpclient.TLSRequired,
			ServerName: serverName(pol, in, "hostname"),
			Verify:     webPKIVerifier(names, in.Roots, now),
		}
	case LevelFingerprint:
		d.Security = smtpclient.Security{
			Mode:       smtpclient.TLSRequired,
			ServerName: serverName(pol, in, ""),
			Verify:     fingerprintVerifier(pol.Match),
		}
	}
	if !local && (pol.Level == LevelMay || pol.Level == LevelDANE) && d.Source == SourceOpportunistic && d.Defer == nil {
		// Neither the operator nor DANE decided (§14.8): MTA-STS, then the list, then
		// a pin, which a policy in mode testing does not stand in the way of.
		var ok bool
		if d, ok = decideSTS(d, in, now); !ok {
			d, _ = decideList(d, in, now)
		}
		if d.Source == SourceOpportunistic || d.Policy != nil && d.Policy.Testing && d.Defer == nil {
			d = decidePin(d, in)
		}
	}
	return d
}

// serverName picks the SNI (PF-02): the policy's servername= attribute, else def.
func serverName(p Policy, in Input, def string) string {
	v := p.ServerName
	if v == "" {
		v = def
	}
	switch v {
	case "":
		return ""
	case "hostname":
		if in.Literal {
			return ""
		}
		return strings.TrimSuffix(in.MXHost, ".")
	case "nexthop":
		return strings.TrimSuffix(in.NextHop, ".")
	}
	return v
}

// expandMatch turns the policy's match list into names, with the level's defaults:
// verify matches the MX host name (which came from unauthenticated DNS: open to forged
// MX, as TLS_README warns), secure the next-hop domain and its subdomains.
func expandMatch(p Policy, in Input) []string {
	m := p.Match
	if len(m) == 0 {
		if p.Level == LevelVerify {
			m = []string{"hostname"}
		} else {
			m = []string{"nexthop", "dot-nexthop"}
		}
	}
	var names []string
	for _, s := range m {
		switch s {
		case "hostname":
			if !in.Literal && in.MXHost != "" {
				names = append(names, strings.ToLower(strings.TrimSuffix(in.MXHost, ".")))
			}
		case "nexthop":
			names = append(names, strings.ToLower(strings.TrimSuffix(in.NextHop, ".")))
		case "dot-nexthop":
			names = append(names, "."+strings.ToLower(strings.TrimSuffix(in.NextHop, ".")))
		default:
			names = append(names, s)
		}
	}
	return names
}

// ErrVerify wraps every certificate verification failure.
var ErrVerify = errors.New("server certificate not verified")

// webPKIVerifier checks the chain against roots and that the leaf carries one of names
// (DNS SANs only, as crypto/x509 does since Go 1.15). ".domain" accepts any name below
// domain at any depth, matching Postfix; a certificate wildcard covers one label.
func webPKIVerifier(names []string, roots *x509.CertPool, now func() time.Time) func(tls.ConnectionState) (string, error) {
	return func(cs tls.ConnectionState) (string, error) {
		if len(cs.PeerCertificates) == 0 {
			return "", fmt.Errorf("%w: no certificate", ErrVerify)
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if _, err := leaf.Verify(opts); err != nil {
			return "", fmt.Errorf("%w: %v", ErrVerify, err)
		}
		for _, n := range names {
			if nameMatches(leaf, n) {
				return "webpki", nil
			}
		}
		return "", fmt.Errorf("%w: certificate names %v match none of %v", ErrVerify, leaf.DNSNames, names)
	}
}

func nameMatches(leaf *x509.Certificate, want string) bool {
	if sub, ok := strings.CutPrefix(want, "."); ok {
		for _, dn := range leaf.DNSNames {
			dn = strings.ToLower(strings.TrimPrefix(dn, "*."))
			if strings.HasSuffix(dn, "."+sub) {
				return true
			}
		}
		return false
	}
	return leaf.VerifyHostname(want) == nil
}

// fingerprintVerifier accepts a leaf whose certificate or SubjectPublicKeyInfo SHA-256
// digest is listed. No chain, expiry or name checks: the pin is the trust (§9.1).
func fingerprintVerifier(digests []string) func(tls.ConnectionState) (string, error) {
	return func(cs tls.ConnectionState) (string, error) {
		if len(cs.PeerCertificates) == 0 {
			return "", fmt.Errorf("%w: no certificate", ErrVerify)
		}
		leaf := cs.PeerCertificates[0]
		certSum := sha256.Sum256(leaf.Raw)
		keySum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		for _, d := range digests {
			if d == hex.EncodeToString(certSum[:]) || d == hex.EncodeToString(keySum[:]) {
				return "fingerprint", nil
			}
		}
		return "", fmt.Errorf("%w: certificate fingerprint %x matches no pinned digest", ErrVerify, certSum)
	}
}
