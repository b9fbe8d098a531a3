package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mxward/internal/dns"
)

// Authentication methods, as reported by Verifier and in Match.Auth; they are the
// values of the delivery record's auth field.
const (
	AuthDANEEE = "dane-ee"
	AuthDANETA = "dane-ta"
)

// ErrNotAuthenticated is matched (with errors.Is) by every VerifyError.
var ErrNotAuthenticated = errors.New("server certificate not authenticated by DANE")

// Failure reasons of a VerifyError: stable words for logs and metrics.
const (
	FailNoCertificate = "no_certificate" // the server presented no certificate
	FailNoRecords     = "no_records"     // no usable record to match against
	FailNoMatch       = "no_match"       // no record matches the leaf or an issuer
	FailChain         = "chain"          // a DANE-TA anchor matched but the leaf does not validate to it
	FailName          = "name"           // the leaf validates but carries no reference identifier
)

// VerifyError says why a certificate chain did not authenticate. Delivery treats it as
// a temporary failure of the host (decision 7: 4.7.5, never a bounce).
type VerifyError struct {
	Reason string // one of the Fail… words
	Detail string // what did not match, in words
	Err    error  // the underlying PKIX error, for FailChain
}

func (e *VerifyError) Error() string { return "DANE: " + e.Detail }

func (e *VerifyError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotAuthenticated) true.
func (e *VerifyError) Is(target error) bool { return target == ErrNotAuthenticated }

// Match says how a certificate chain was authenticated, for the attempt log.
type Match struct {
	Auth   string   // AuthDANEEE or AuthDANETA
	Record dns.TLSA // the record that matched
	// Depth is the position in the presented chain of the certificate the record
	// matched: 0 for the leaf (DANE-EE), 1 or more for a DANE-TA issuer, -1 for a
	// 2 0 0 trust anchor the server did not send.
	Depth int
	// Name is, for DANE-TA, the reference identifier the leaf matched.
	Name string
}

func (m Match) String() string {
	s := m.Auth + " " + Format(m.Record)
	if m.Auth == AuthDANETA {
		if m.Depth < 0 {
			s += ", trust anchor from the record"
		} else {
			s += fmt.Sprintf(", issuer at depth %d", m.Depth)
		}
		s += ", name " + m.Name
	}
	return s
}

// Verifier returns the closure for smtpclient.Security.Verify (RFC 7672 §3.1, §3.2):
// it calls Check with the peer's chain and now(), and reports AuthDANEEE or AuthDANETA,
// or a *VerifyError. recs should be the usable records (Host.Records), refIDs those of
// ReferenceIDs. A nil now means time.Now. The arguments are copied.
func Verifier(recs []dns.TLSA, refIDs []string, now func() time.Time) func(tls.ConnectionState) (string, error) {
	recs = cloneRecords(recs)
	refIDs = slices.Clone(refIDs)
	if now == nil {
		now = time.Now
	}
	return func(cs tls.ConnectionState) (string, error) {
		m, err := Check(cs.PeerCertificates, recs, refIDs, now())
		return m.Auth, err
	}
}

// Check decides whether a server's certificate chain (leaf first, as presented) matches
// the TLSA records.
//
// DANE-EE(3) (RFC 7672 §3.1.1, RFC 7671 §5.1; DANE-20): the leaf certificate, or its
// SubjectPublicKeyInfo, must match the record. Nothing else is checked: not the names,
// not the validity dates, not the issuer; the DNSSEC signature on the record stands in
// for all of them.
//
// DANE-TA(2) (RFC 7672 §3.1.2, §3.2.2, RFC 7671 §5.2; DANE-21): the record must match a
// certificate of the chain other than the leaf (an issuer, as OpenSSL requires), or be a
// 2 0 0 record whose certificate then serves as the trust anchor whether presented or
// not. The leaf must validate to that anchor along the presented chain as PKIX has it
// (RFC 5280 §6): validity dates at now, including the leaf's, signatures, basic and path
// length constraints, name constraints, and a serverAuth extended key usage where one is
// given. The anchor's own dates and constraints are enforced too, which RFC 7671 §5.2.2
// leaves optional for SPKI(1) anchors. Finally the leaf must carry one of refIDs
// (DANE-23, see matchName).
//
// DANE-EE records are tried first. recs are used as given: filter them with Usable first;
// records of other usages, unknown selectors or matching types never match. With no
// records nothing authenticates.
func Check(certs []*x509.Certificate, recs []dns.TLSA, refIDs []string, now time.Time) (Match, error) {
	if len(certs) == 0 || certs[0] == nil || len(certs[0].Raw) == 0 {
		return Match{}, &VerifyError{Reason: FailNoCertificate, Detail: "the server presented no certificate"}
	}
	if len(recs) == 0 {
		return Match{}, &VerifyError{Reason: FailNoRecords, Detail: "no usable TLSA record to match the certificate against"}
	}
	leaf := certs[0]
	for _, r := range recs {
		if r.Usage == UsageDANEEE && matches(leaf, r) {
			return Match{Auth: AuthDANEEE, Record: r}, nil
		}
	}

	anchors := trustAnchors(certs, recs)
	if len(anchors) == 0 {
		return Match{}, &VerifyError{Reason: FailNoMatch, Detail: noMatchDetail(certs, recs)}
	}
	var chainErr, nameErr *VerifyError
	for _, a := range anchors {
		if err := validateTo(certs, a.cert, now); err != nil {
			if chainErr == nil {
				chainErr = &VerifyError{Reason: FailChain, Err: err, Detail: fmt.Sprintf(
					"%s matched %s but the leaf %s does not validate to it: %v",
					Format(a.rec), a.where(), subject(leaf), err)}
			}
			continue
		}
		if name, ok := matchNames(leaf, refIDs); ok {
			return Match{Auth: AuthDANETA, Record: a.rec, Depth: a.depth, Name: name}, nil
		}
		if nameErr == nil {
			nameErr = &VerifyError{Reason: FailName, Detail: fmt.Sprintf(
				"%s matched %s and the chain validates, but the certificate names %s match none of the reference identifiers [%s]",
				Format(a.rec), a.where(), describeNames(leaf), strings.Join(refIDs, " "))}
		}
	}
	if nameErr != nil {
		return Match{}, nameErr
	}
	return Match{}, chainErr
}

// anchor is a DANE-TA(2) trust anchor found for a chain.
type anchor struct {
	cert  *x509.Certificate
	rec   dns.TLSA
	depth int // position in the presented chain, -1 when taken from a 2 0 0 record
}

func (a anchor) where() string {
	if a.depth < 0 {
		return "its own certificate " + subject(a.cert)
	}
	return fmt.Sprintf("certificate %d %s", a.depth, subject(a.cert))
}

// trustAnchors returns the certificates the DANE-TA records designate: presented issuer
// certificates (never the leaf) that a record matches, then the certificates of 2 0 0
// records not presented (RFC 7671 §5.2.1). A certificate equal to the leaf is never an
// anchor, so that a TA record cannot stand in for a DANE-EE one.
func trustAnchors(certs []*x509.Certificate, recs []dns.TLSA) []anchor {
	leaf := certs[0]
	var out []anchor
	seen := func(c *x509.Certificate) bool {
		if bytes.Equal(c.Raw, leaf.Raw) {
			return true
		}
		for _, a := range out {
			if bytes.Equal(a.cert.Raw, c.Raw) {
				return true
			}
		}
		return false
	}
	for _, r := range recs {
		if r.Usage != UsageDANETA {
			continue
		}
		for i, c := range certs[1:] {
			if c != nil && len(c.Raw) > 0 && matches(c, r) && !seen(c) {
				out = append(out, anchor{cert: c, rec: r, depth: i + 1})
			}
		}
	}
	for _, r := range recs {
		if r.Usage != UsageDANETA || r.Selector != SelectorCert || r.MatchingType != MatchFull {
			continue
		}
		c, err := x509.ParseCertificate(r.Data)
		if err != nil || seen(c) {
			continue
		}
		out = append(out, anchor{cert: c, rec: r, depth: -1})
	}
	return out
}

// validateTo checks the PKIX path from the leaf to the trust anchor ta, using the other
// presented certificates as intermediates (RFC 5280 §6.1), at time now.
func validateTo(certs []*x509.Certificate, ta *x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ta)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if c != nil && len(c.Raw) > 0 && !bytes.Equal(c.Raw, ta.Raw) {
			inter.AddCert(c)
		}
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// matches reports whether the certificate matches the record's selector and matching
// type (RFC 6698 §2.1.2, §2.1.3). Unknown selectors and matching types, and empty data,
// never match.
func matches(c *x509.Certificate, r dns.TLSA) bool {
	var content []byte
	switch r.Selector {
	case SelectorCert:
		content = c.Raw
	case SelectorSPKI:
		content = c.RawSubjectPublicKeyInfo
	default:
		return false
	}
	if len(content) == 0 || len(r.Data) == 0 {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return bytes.Equal(content, r.Data)
	case MatchSHA256:
		d := sha256.Sum256(content)
		return bytes.Equal(d[:], r.Data)
	case MatchSHA512:
		d := sha512.Sum512(content)
		return bytes.Equal(d[:], r.Data)
	}
	return false
}

// noMatchDetail says what was compared when no record matched: the records, and the
// leaf's digests in the forms the records use, so that an operator can compare them
// with the published RRset.
func noMatchDetail(certs []*x509.Certificate, recs []dns.TLSA) string {
	leaf := certs[0]
	rs := make([]string, len(recs))
	for i, r := range recs {
		rs[i] = Format(r)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	cert := sha256.Sum256(leaf.Raw)
	return fmt.Sprintf("no TLSA record matches the certificate chain (records %s; leaf %s, SPKI sha256 %s…, cert sha256 %s…; chain of %d)",
		strings.Join(rs, ", "), subject(leaf), hex.EncodeToString(spki[:8]), hex.EncodeToString(cert[:8]), len(certs))
}

func subject(c *x509.Certificate) string {
	s := c.Subject.String()
	if s == "" {
		return "(empty subject)"
	}
	return "\"" + s + "\""
}

func describeNames(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) > 0 {
		return "DNS [" + strings.Join(leaf.DNSNames, " ") + "]"
	}
	if leaf.Subject.CommonName != "" {
		return "CN " + leaf.Subject.CommonName + " (no DNS names)"
	}
	return "(none)"
}

func cloneRecords(recs []dns.TLSA) []dns.TLSA {
	out := make([]dns.TLSA, len(recs))
	for i, r := range recs {
		r.Data = slices.Clone(r.Data)
		out[i] = r
	}
	return out
}
