package dane

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mxward/internal/dns"
)

// Certificate usages (RFC 6698 §2.1.1), named with the acronyms of RFC 7218 §2.1.
const (
	UsagePKIXTA uint8 = 0 // PKIX-TA: CA constraint, needs Web PKI validation too
	UsagePKIXEE uint8 = 1 // PKIX-EE: service certificate constraint
	UsageDANETA uint8 = 2 // DANE-TA: trust anchor assertion
	UsageDANEEE uint8 = 3 // DANE-EE: domain-issued certificate
)

// Selectors (RFC 6698 §2.1.2, RFC 7218 §2.2).
const (
	SelectorCert uint8 = 0 // Cert: the whole certificate, DER
	SelectorSPKI uint8 = 1 // SPKI: the SubjectPublicKeyInfo, DER
)

// Matching types (RFC 6698 §2.1.3, RFC 7218 §2.3).
const (
	MatchFull    uint8 = 0   // Full: the selected content itself
	MatchSHA256  uint8 = 1   // SHA2-256 digest of the selected content
	MatchSHA512  uint8 = 2   // SHA2-512 digest of the selected content
	MatchPrivate uint8 = 255 // PrivMatch: private use, never usable here (DANE-15)
)

// DefaultDigests returns the digest preference used when none is configured, strongest
// first: SHA2-512, then SHA2-256 (RFC 7671 §9; Postfix's tls_dane_digests default).
func DefaultDigests() []uint8 { return []uint8{MatchSHA512, MatchSHA256} }

// UsageName returns the RFC 7218 acronym of a certificate usage ("DANE-EE"), or its
// number for a usage that has none.
func UsageName(u uint8) string {
	switch u {
	case UsagePKIXTA:
		return "PKIX-TA"
	case UsagePKIXEE:
		return "PKIX-EE"
	case UsageDANETA:
		return "DANE-TA"
	case UsageDANEEE:
		return "DANE-EE"
	case 255:
		return "PrivCert"
	}
	return strconv.Itoa(int(u))
}

// SelectorName returns the RFC 7218 acronym of a selector ("SPKI").
func SelectorName(s uint8) string {
	switch s {
	case SelectorCert:
		return "Cert"
	case SelectorSPKI:
		return "SPKI"
	case 255:
		return "PrivSel"
	}
	return strconv.Itoa(int(s))
}

// MatchingTypeName returns the RFC 7218 acronym of a matching type ("SHA2-256").
func MatchingTypeName(m uint8) string {
	switch m {
	case MatchFull:
		return "Full"
	case MatchSHA256:
		return "SHA2-256"
	case MatchSHA512:
		return "SHA2-512"
	case MatchPrivate:
		return "PrivMatch"
	}
	return strconv.Itoa(int(m))
}

// Describe spells a record's parameters out with RFC 7218 acronyms, as in
// "DANE-EE(3) SPKI(1) SHA2-256(1)".
func Describe(r dns.TLSA) string {
	return fmt.Sprintf("%s(%d) %s(%d) %s(%d)", UsageName(r.Usage), r.Usage,
		SelectorName(r.Selector), r.Selector, MatchingTypeName(r.MatchingType), r.MatchingType)
}

// shortHex is how many hex digits of association data Format shows.
const shortHex = 12

// Format returns a record shortened for logs: the three numbers and the first hex
// digits of the data, as in "3 1 1 9a3f0b2c41d7…". Full(0) data also gives its length.
func Format(r dns.TLSA) string {
	h := hex.EncodeToString(r.Data)
	if len(h) > shortHex {
		h = h[:shortHex] + "…"
	}
	if h == "" {
		h = "-"
	}
	s := fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, h)
	if r.MatchingType == MatchFull {
		s += fmt.Sprintf(" (%d bytes)", len(r.Data))
	}
	return s
}

// FormatFull returns a record in the presentation format of RFC 6698 §2.2, with the
// data as one lower-case hex string: "3 1 1 9a3f…" in full. ParseRecord reads it back.
func FormatFull(r dns.TLSA) string {
	h := hex.EncodeToString(r.Data)
	if h == "" {
		h = "-"
	}
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, h)
}

// ParseUsage reads a certificate usage given as a number (0–255) or as its RFC 7218
// acronym, in any case ("dane-ee").
func ParseUsage(s string) (uint8, error) {
	return parseField(s, "certificate usage", map[string]uint8{
		"pkix-ta": UsagePKIXTA, "pkix-ee": UsagePKIXEE, "dane-ta": UsageDANETA,
		"dane-ee": UsageDANEEE, "privcert": 255,
	})
}

// ParseSelector reads a selector given as a number or as "Cert", "SPKI" or "PrivSel".
func ParseSelector(s string) (uint8, error) {
	return parseField(s, "selector", map[string]uint8{
		"cert": SelectorCert, "spki": SelectorSPKI, "privsel": 255,
	})
}

// ParseMatchingType reads a matching type given as a number, as its RFC 7218 acronym
// ("SHA2-256") or as the digest names of Postfix's tls_dane_digests ("sha256",
// "sha512"), so that a configured digest preference can be read with it.
func ParseMatchingType(s string) (uint8, error) {
	return parseField(s, "matching type", map[string]uint8{
		"full": MatchFull, "sha2-256": MatchSHA256, "sha2-512": MatchSHA512,
		"sha256": MatchSHA256, "sha512": MatchSHA512, "privmatch": MatchPrivate,
	})
}

func parseField(s, what string, names map[string]uint8) (uint8, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("parsing TLSA %s %q: not a number from 0 to 255 or a known name", what, s)
	}
	return uint8(n), nil
}

// ParseRecord reads a TLSA record in presentation format (RFC 6698 §2.2): usage,
// selector and matching type, each a number or an RFC 7218 acronym, then the
// association data in hex, which may be split by white space. It is meant for
// configuration, test fixtures and operator commands; records from DNS arrive parsed.
func ParseRecord(s string) (dns.TLSA, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return dns.TLSA{}, fmt.Errorf("parsing TLSA record %q: want usage, selector, matching type and data", s)
	}
	var r dns.TLSA
	var err error
	if r.Usage, err = ParseUsage(f[0]); err != nil {
		return dns.TLSA{}, err
	}
	if r.Selector, err = ParseSelector(f[1]); err != nil {
		return dns.TLSA{}, err
	}
	if r.MatchingType, err = ParseMatchingType(f[2]); err != nil {
		return dns.TLSA{}, err
	}
	h := strings.Join(f[3:], "")
	if h == "-" {
		return r, nil
	}
	if r.Data, err = hex.DecodeString(h); err != nil {
		return dns.TLSA{}, fmt.Errorf("parsing TLSA record data: %w", err)
	}
	if len(r.Data) == 0 {
		r.Data = nil
	}
	return r, nil
}

// ParseDigests reads a digest preference, strongest first, as in Postfix's
// tls_dane_digests ("sha512 sha256" or "SHA2-512, SHA2-256"). Only SHA2-256 and
// SHA2-512 may be named, each once; the result is suitable for Usable.
func ParseDigests(s string) ([]uint8, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ':' })
	if len(f) == 0 {
		return nil, errors.New("parsing digest preference: empty")
	}
	var out []uint8
	for _, w := range f {
		m, err := ParseMatchingType(w)
		if err != nil {
			return nil, fmt.Errorf("parsing digest preference: %w", err)
		}
		if m != MatchSHA256 && m != MatchSHA512 {
			return nil, fmt.Errorf("parsing digest preference: %q is not a supported digest (sha256, sha512)", w)
		}
		for _, o := range out {
			if o == m {
				return nil, fmt.Errorf("parsing digest preference: %q named twice", w)
			}
		}
		out = append(out, m)
	}
	return out, nil
}
