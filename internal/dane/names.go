package dane

import (
	"crypto/x509"
	"strings"
)

// presentedNames returns the identifiers of a leaf certificate that name checks use
// (RFC 7672 §3.2.3, DANE-23; decision 6): its DNS-IDs (DNS subjectAltNames) when it has
// any, otherwise its CN-ID. Only the most specific (last) common name counts, as
// RFC 6125 §6.4.4 asks.
func presentedNames(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	if leaf.Subject.CommonName != "" {
		return []string{leaf.Subject.CommonName}
	}
	return nil
}

// matchNames returns the first reference identifier that one of the leaf's presented
// names matches.
func matchNames(leaf *x509.Certificate, refIDs []string) (string, bool) {
	names := presentedNames(leaf)
	for _, ref := range refIDs {
		for _, n := range names {
			if matchName(n, ref) {
				return ref, true
			}
		}
	}
	return "", false
}

// matchName reports whether a presented name matches a reference identifier
// (RFC 7672 §3.2.3, RFC 6125 §6.4; DANE-23). The comparison ignores case and a trailing
// dot. A wildcard is accepted only as the whole left-most label, followed by at least two
// labels of host-name characters ("*.example.com", not "*.com" or "smtp*.example.com"),
// and stands for exactly one non-empty label. Reference identifiers are never wildcards.
func matchName(presented, ref string) bool {
	p := normName(presented)
	r := normName(ref)
	if p == "" || r == "" || strings.Contains(r, "*") || !validLabels(r) {
		return false
	}
	rest, wild := strings.CutPrefix(p, "*.")
	if !wild {
		return !strings.Contains(p, "*") && p == r
	}
	if !strings.Contains(rest, ".") || !hostLabels(rest) {
		return false
	}
	label, suffix, ok := strings.Cut(r, ".")
	return ok && hostLabels(label) && suffix == rest
}

// hostLabels reports whether every label of s is a host-name label: letters, digits,
// hyphens (not first) and the underscore some names carry (RFC 1123 §2.1, with the
// leniency crypto/x509 allows). Wildcards only stand in for, and only sit beside, such
// labels.
func hostLabels(s string) bool {
	for l := range strings.SplitSeq(s, ".") {
		if l == "" || l[0] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normName lower-cases ASCII letters only and removes one trailing dot. Unicode case
// folding is left out on purpose: it maps some non-ASCII letters onto ASCII ones (the
// Kelvin sign onto "k"), which would let a crafted CN match a name it does not spell.
// It works on bytes: strings.Map would turn every invalid UTF-8 byte into U+FFFD and so
// make different names equal.
func normName(s string) string {
	b := []byte(strings.TrimSuffix(s, "."))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// validLabels reports whether a name has no empty labels.
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" {
			return false
		}
	}
	return true
}
