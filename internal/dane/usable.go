package dane

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"mxward/internal/dns"
)

// Dropped is a TLSA record that Usable set aside, with the reason for the log.
type Dropped struct {
	Record dns.TLSA
	Reason string // names the rule: "DANE-15: usage PKIX-EE(1) is not usable for SMTP …"
	// Ignored is true for a well-formed record set aside by digest agility (DANE-17):
	// the RRset still has a usable record of the same usage and selector. False means
	// the record itself is unusable (DANE-15, DANE-16).
	Ignored bool
}

// Usable filters a TLSA RRset down to the records the SMTP client may use.
//
// First every unusable record is dropped (RFC 7672 §3.1.3, RFC 6698 §4.1, RFC 7671 §9):
// usages PKIX-TA(0) and PKIX-EE(1) (DANE-15), the private matching type 255 (DANE-15),
// unknown usages, selectors and matching types, digests of the wrong length (32 bytes
// for SHA2-256, 64 for SHA2-512), Full(0) data that does not parse as a certificate
// (selector Cert) or as a SubjectPublicKeyInfo (selector SPKI) (DANE-16), and digests
// absent from digestPref, which the client does not support.
//
// Then digest agility (RFC 7671 §9, made mandatory for SMTP by RFC 7672 §5; DANE-17):
// for each (usage, selector) pair, the Full(0) records are kept together with only the
// records of the most preferred digest present; records of weaker digests are ignored
// even if they would have matched. digestPref lists matching types strongest first;
// entries other than SHA2-256(1) and SHA2-512(2) are ignored, and an empty list means
// DefaultDigests.
//
// Both results keep the order of recs. An RRset whose records are all dropped but not
// Ignored still obliges the client to use TLS (DANE-18); agility never empties a
// (usage, selector) group, so it never turns a usable RRset into an unusable one.
func Usable(recs []dns.TLSA, digestPref []uint8) (usable []dns.TLSA, dropped []Dropped) {
	pref := digestPreference(digestPref)
	rank := func(m uint8) int {
		for i, p := range pref {
			if p == m {
				return i
			}
		}
		return -1
	}

	type group struct{ usage, selector uint8 }
	reasons := make([]string, len(recs))
	best := make(map[group]int) // most preferred digest rank present in the group
	for i, r := range recs {
		reasons[i] = unusable(r, rank)
		if reasons[i] != "" || r.MatchingType == MatchFull {
			continue
		}
		g := group{r.Usage, r.Selector}
		if b, ok := best[g]; !ok || rank(r.MatchingType) < b {
			best[g] = rank(r.MatchingType)
		}
	}

	for i, r := range recs {
		switch {
		case reasons[i] != "":
			dropped = append(dropped, Dropped{Record: r, Reason: reasons[i]})
		case r.MatchingType == MatchFull || rank(r.MatchingType) == best[group{r.Usage, r.Selector}]:
			usable = append(usable, r)
		default:
			strongest := pref[best[group{r.Usage, r.Selector}]]
			dropped = append(dropped, Dropped{Record: r, Ignored: true, Reason: fmt.Sprintf(
				"DANE-17: digest agility: %s ignored, the RRset has %s %s %s records (RFC 7671 §9)",
				MatchingTypeName(r.MatchingType), UsageName(r.Usage), SelectorName(r.Selector),
				MatchingTypeName(strongest))})
		}
	}
	return usable, dropped
}

// digestPreference returns the supported digests of p in order, without repeats, or
// the default when p names none.
func digestPreference(p []uint8) []uint8 {
	var out []uint8
	for _, m := range p {
		if m != MatchSHA256 && m != MatchSHA512 {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == m
		}
		if !dup {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return DefaultDigests()
	}
	return out
}

// unusable returns why r cannot be used for SMTP, or "" when it can. rank reports the
// preference of a digest, -1 for one the client does not support.
func unusable(r dns.TLSA, rank func(uint8) int) string {
	switch r.Usage {
	case UsageDANETA, UsageDANEEE:
	case UsagePKIXTA, UsagePKIXEE:
		return fmt.Sprintf("DANE-15: usage %s(%d) is not usable for SMTP (RFC 7672 §3.1.3)", UsageName(r.Usage), r.Usage)
	default:
		return fmt.Sprintf("DANE-16: unknown certificate usage %d (RFC 6698 §2.1.1)", r.Usage)
	}
	switch r.Selector {
	case SelectorCert, SelectorSPKI:
	default:
		return fmt.Sprintf("DANE-16: unknown selector %d (RFC 6698 §2.1.2)", r.Selector)
	}
	switch r.MatchingType {
	case MatchFull:
		if err := checkFull(r); err != nil {
			return fmt.Sprintf("DANE-16: malformed %s Full(0) data: %v (RFC 6698 §2.1.3)", SelectorName(r.Selector), err)
		}
	case MatchSHA256, MatchSHA512:
		want := sha256.Size
		if r.MatchingType == MatchSHA512 {
			want = sha512.Size
		}
		if len(r.Data) != want {
			return fmt.Sprintf("DANE-16: %s digest is %d bytes, want %d (RFC 7671 §9)",
				MatchingTypeName(r.MatchingType), len(r.Data), want)
		}
		if rank(r.MatchingType) < 0 {
			return fmt.Sprintf("DANE-17: digest %s is not enabled (RFC 7671 §9)", MatchingTypeName(r.MatchingType))
		}
	case MatchPrivate:
		return "DANE-15: private-use matching type PrivMatch(255) is not usable (RFC 6698 §2.1.3)"
	default:
		return fmt.Sprintf("DANE-16: unknown matching type %d (RFC 6698 §2.1.3)", r.MatchingType)
	}
	return ""
}

// checkFull reports whether Full(0) data is what the selector says: a DER certificate
// for Cert(0), a DER SubjectPublicKeyInfo for SPKI(1) (RFC 6698 §2.1.2). The SPKI is
// only checked for structure, so that keys of algorithms this client cannot use still
// match byte for byte.
func checkFull(r dns.TLSA) error {
	if len(r.Data) == 0 {
		return fmt.Errorf("no data")
	}
	if r.Selector == SelectorCert {
		_, err := x509.ParseCertificate(r.Data)
		return err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(r.Data, &spki)
	if err != nil {
		return fmt.Errorf("not a SubjectPublicKeyInfo: %w", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%d bytes after the SubjectPublicKeyInfo", len(rest))
	}
	return nil
}
