package dkim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Algorithm is a DKIM signing algorithm, the a= tag (RFC 6376 §3.3).
type Algorithm string

const (
	// RSASHA256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 §3.3.1).
	RSASHA256 Algorithm = "rsa-sha256"
	// Ed25519SHA256 is PureEdDSA Ed25519 over the SHA-256 hash (RFC 8463 §3).
	Ed25519SHA256 Algorithm = "ed25519-sha256"
)

// keyType is the k= value of the key record for the algorithm.
func (a Algorithm) keyType() string {
	if a == Ed25519SHA256 {
		return "ed25519"
	}
	return "rsa"
}

// Signature is a parsed DKIM-Signature field (RFC 6376 §3.5).
type Signature struct {
	Algorithm   Algorithm
	Signature   []byte // b=
	BodyHash    []byte // bh=
	HeaderCanon Canonicalization
	BodyCanon   Canonicalization
	Domain      string    // d=, the signing domain (SDID), lower-cased
	Headers     []string  // h=, the signed header field names as written
	Identity    string    // i=, the AUID; "@" + Domain when absent
	Selector    string    // s=
	Timestamp   time.Time // t=; zero when absent
	Expiration  time.Time // x=; zero when absent
}

// maxTimestamp bounds t= and x= so that they convert to time.Time without overflow;
// RFC 6376 §3.5 says 40 bits are enough to hold any value.
const maxTimestamp = 1<<40 - 1

// ParseSignature parses the value of a DKIM-Signature field (everything after the
// colon, folding included). It checks the syntax and the rules that do not depend on
// the message or the key: the required tags v, a, b, bh, d, h and s (§3.5), v=1, a known
// algorithm other than rsa-sha1 (RFC 8301 §3.1), q=dns/txt, an i= within d=, From among
// the signed fields (§5.4), x= after t=, and no l= (a signature that covers only part of
// the body lets anyone append content under it; RFC 6376 §8.2).
func ParseSignature(value string) (*Signature, error) {
	tags, err := parseTagList(value)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.name] = t.value
	}
	for _, name := range []string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := m[name]; !ok {
			return nil, fmt.Errorf("required tag %s= missing", name)
		}
	}
	if m["v"] != "1" {
		return nil, fmt.Errorf("unsupported version v=%s", m["v"])
	}
	s := &Signature{HeaderCanon: Simple, BodyCanon: Simple}
	switch a := Algorithm(strings.ToLower(m["a"])); a {
	case RSASHA256, Ed25519SHA256:
		s.Algorithm = a
	case "rsa-sha1":
		return nil, errors.New("a=rsa-sha1 is no longer valid (RFC 8301 §3.1)")
	default:
		return nil, fmt.Errorf("unknown algorithm a=%s", m["a"])
	}
	if s.Signature, err = decodeBase64(m["b"]); err != nil || len(s.Signature) == 0 {
		return nil, fmt.Errorf("b= is not base64: %q", m["b"])
	}
	if s.BodyHash, err = decodeBase64(m["bh"]); err != nil || len(s.BodyHash) != 32 {
		return nil, fmt.Errorf("bh= is not a base64 SHA-256 hash: %q", m["bh"])
	}
	if c, ok := m["c"]; ok {
		hc, bc, two := strings.Cut(c, "/")
		if s.HeaderCanon, err = parseCanonicalization(hc); err != nil {
			return nil, fmt.Errorf("c=: %w", err)
		}
		if two {
			if s.BodyCanon, err = parseCanonicalization(bc); err != nil {
				return nil, fmt.Errorf("c=: %w", err)
			}
		}
	}
	s.Domain = strings.ToLower(strings.TrimSuffix(m["d"], "."))
	if err := checkDomain(s.Domain); err != nil {
		return nil, fmt.Errorf("d=%s: %w", m["d"], err)
	}
	s.Selector = m["s"]
	if err := CheckSelector(s.Selector); err != nil {
		return nil, fmt.Errorf("s=%s: %w", m["s"], err)
	}
	fromSigned := false
	for _, h := range strings.Split(m["h"], ":") {
		h = trimFWS(h)
		if !validFieldName(h) {
			return nil, fmt.Errorf("h= has an invalid field name %q", h)
		}
		s.Headers = append(s.Headers, h)
		fromSigned = fromSigned || strings.EqualFold(h, "From")
	}
	if !fromSigned {
		return nil, errors.New("h= does not include From (RFC 6376 §5.4)")
	}
	s.Identity = "@" + s.Domain
	if i, ok := m["i"]; ok {
		at := strings.LastIndexByte(i, '@')
		if at < 0 {
			return nil, fmt.Errorf("i=%s has no '@'", i)
		}
		dom := strings.ToLower(strings.TrimSuffix(i[at+1:], "."))
		if dom != s.Domain && !strings.HasSuffix(dom, "."+s.Domain) {
			return nil, fmt.Errorf("i=%s is not within d=%s (RFC 6376 §3.5)", i, s.Domain)
		}
		s.Identity = i
	}
	if _, ok := m["l"]; ok {
		return nil, errors.New("l= (a body length limit) is refused: content could be appended under the signature")
	}
	if q, ok := m["q"]; ok {
		found := false
		for _, method := range strings.Split(q, ":") {
			if m, _, _ := strings.Cut(trimFWS(method), "/"); strings.EqualFold(m, "dns") {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("q=%s has no dns/txt", q)
		}
	}
	if t, ok := m["t"]; ok {
		if s.Timestamp, err = parseTimestamp(t); err != nil {
			return nil, fmt.Errorf("t=: %w", err)
		}
	}
	if x, ok := m["x"]; ok {
		if s.Expiration, err = parseTimestamp(x); err != nil {
			return nil, fmt.Errorf("x=: %w", err)
		}
		if !s.Timestamp.IsZero() && !s.Expiration.After(s.Timestamp) {
			return nil, errors.New("x= is not after t= (RFC 6376 §3.5)")
		}
	}
	return s, nil
}

func parseTimestamp(s string) (time.Time, error) {
	if s == "" || len(s) > 12 {
		return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxTimestamp {
		return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
	}
	return time.Unix(int64(n), 0).UTC(), nil
}

// validFieldName reports whether s is a header field name: printable US-ASCII
// except the colon (RFC 5322 §3.6.8).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// checkDomain checks that s is a domain name in LDH form with at least two labels. DKIM
// domains are looked up in the DNS, so internationalized ones must be in A-label form.
func checkDomain(s string) error {
	if len(s) > 253 {
		return errors.New("longer than 253 octets")
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return errors.New("not a domain name with at least two labels")
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	return nil
}

// CheckSelector checks that s is a valid selector: one or more dot-separated labels of
// letters, digits and hyphens (RFC 6376 §3.1), so that <selector>._domainkey.<domain>
// is a name that can be published.
func CheckSelector(s string) error {
	if s == "" {
		return errors.New("empty selector")
	}
	if len(s) > 200 {
		return errors.New("selector longer than 200 octets")
	}
	for _, l := range strings.Split(s, ".") {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	return nil
}

// CheckDomain checks that s (lower-case, without a final dot) can be a signing domain.
func CheckDomain(s string) error { return checkDomain(s) }

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return fmt.Errorf("label %q is empty or longer than 63 octets", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
			return fmt.Errorf("label %q has the character %q (only letters, digits and hyphens)", l, c)
		}
	}
	return nil
}
