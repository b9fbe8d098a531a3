package dnssec

import (
	"bytes"
	"strings"

	mdns "github.com/miekg/dns"
)

// This file holds the name arithmetic validation needs: canonical names, label counts,
// ancestors, and the canonical ordering of RFC 4034 §6.1 on which NSEC coverage rests.

// canonical returns name fully qualified, in lower case (RFC 4034 §6.2: ASCII letters
// only) and escaped exactly where the presentation format needs it: the one spelling
// every name takes inside this package, so that "MX.example.", "\\109x.example." and
// "mx.example." are one name while "mx\\.example." (one label with a dot in it) stays
// another. Names unpacked from the wire are already spelt that way but for case; any
// other name is rewritten through its wire form.
func canonical(name string) string {
	if plainName(name) {
		return lowerASCII(mdns.Fqdn(name))
	}
	buf := make([]byte, 256)
	n, err := mdns.PackDomainName(mdns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return lowerASCII(name) // no name: it will match nothing
	}
	out, _, err := mdns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return lowerASCII(name)
	}
	return lowerASCII(out)
}

// plainName reports whether name is spelt only with octets that the presentation
// format writes as they are: printable ASCII but for the escape, the quote and the
// characters zone files give a meaning (RFC 1035 §5.1).
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b <= ' ' || b > '~':
			return false
		case b == '\\' || b == '"' || b == '\'' || b == '@' || b == ';' || b == '(' || b == ')':
			return false
		}
	}
	return true
}

// lowerASCII maps the ASCII letters of s to lower case and leaves every other octet as
// it is (strings.ToLower and mdns.CanonicalName rewrite octets that are not UTF-8).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isSubdomain reports whether child is parent or lies below it, comparing whole labels:
// "example.test." is not below "ample.test.", although it ends with it.
func isSubdomain(child, parent string) bool { return mdns.IsSubDomain(parent, child) }

// isProperSubdomain reports whether child lies strictly below parent.
func isProperSubdomain(child, parent string) bool {
	return isSubdomain(child, parent) && mdns.CountLabel(child) > mdns.CountLabel(parent)
}

// ancestor returns the last n labels of name, as a name: ancestor("a.b.c.", 2) is "b.c.".
// n must not exceed the label count of name.
func ancestor(name string, n int) string {
	if n <= 0 {
		return "."
	}
	idx := mdns.Split(name)
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// parent returns the name one label up; the root is its own parent.
func parent(name string) string {
	if name == "." {
		return "."
	}
	return ancestor(name, mdns.CountLabel(name)-1)
}

// wildcardAt returns the wildcard name at the closest encloser ce: "*.example." and,
// at the root, "*." (not "*.."), RFC 4592 §2.1.1.
func wildcardAt(ce string) string {
	if ce == "." {
		return "*."
	}
	return "*." + ce
}

// commonLabels returns how many labels, counted from the root, a and b share.
func commonLabels(a, b string) int { return mdns.CompareDomainName(a, b) }

// ownerLabels returns the label count an RRSIG Labels field is compared with: the
// owner's labels without a leading "*" (RFC 4034 §3.1.3), so that the literal wildcard
// owner is not mistaken for an expansion.
func ownerLabels(owner string) int {
	n := mdns.CountLabel(owner)
	if strings.HasPrefix(owner, "*.") {
		n--
	}
	return n
}

// wireLabels returns the labels of name as octets, escapes decoded and ASCII letters
// lowered, from the root down: the order in which names compare (RFC 4034 §6.1).
// It reports false for a name that is not a valid domain name.
func wireLabels(name string) ([][]byte, bool) {
	buf := make([]byte, 256)
	n, err := mdns.PackDomainName(mdns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	buf = buf[:n]
	var labels [][]byte
	for off := 0; off < len(buf) && buf[off] != 0; {
		l := int(buf[off])
		if off+1+l > len(buf) {
			return nil, false
		}
		label := buf[off+1 : off+1+l]
		for i, b := range label {
			if 'A' <= b && b <= 'Z' {
				label[i] = b + 'a' - 'A'
			}
		}
		labels = append(labels, label)
		off += 1 + l
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return labels, true
}

// canonicalCompare orders two names as RFC 4034 §6.1 does: label by label from the
// root, each label as a string of lower-cased octets, a name sorting before its own
// descendants. It returns -1, 0 or +1; ok is false if either is not a valid name.
func canonicalCompare(a, b string) (c int, ok bool) {
	la, oka := wireLabels(a)
	lb, okb := wireLabels(b)
	if !oka || !okb {
		return 0, false
	}
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := bytes.Compare(la[i], lb[i]); c != 0 {
			return c, true
		}
	}
	switch {
	case len(la) < len(lb):
		return -1, true
	case len(la) > len(lb):
		return 1, true
	}
	return 0, true
}

// nsecCovers reports whether an NSEC record from owner to next proves that name does
// not exist: owner < name < next in canonical order, or, for the last NSEC of the zone
// whose next name wraps round to the apex, owner < name (RFC 4034 §4.1.1, RFC 4035
// §5.4). Equality is never coverage. The caller checks that name lies in the zone.
func nsecCovers(owner, next, name string) bool {
	on, ok1 := canonicalCompare(owner, name)
	nn, ok2 := canonicalCompare(name, next)
	ox, ok3 := canonicalCompare(owner, next)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	if ox < 0 {
		return on < 0 && nn < 0
	}
	// The last record of the chain (next is the apex, so next <= owner), or a zone
	// whose only name is its apex (owner == next).
	return on < 0 || nn < 0
}

// nsec3Covers reports whether an NSEC3 record whose owner hash is ownerHash and whose
// next hash is nextHash strictly covers hash: ownerHash < hash < nextHash, or for the
// last record of the chain, hash > ownerHash or hash < nextHash (RFC 5155 §8.3). All
// three are upper-case base32hex of equal length. Unlike mdns.NSEC3.Cover, an exact
// match is not coverage: a matching hash proves the name exists.
func nsec3Covers(ownerHash, nextHash, hash string) bool {
	if len(ownerHash) != len(hash) || len(nextHash) != len(hash) || hash == ownerHash || hash == nextHash {
		return false
	}
	if ownerHash < nextHash {
		return ownerHash < hash && hash < nextHash
	}
	return hash > ownerHash || hash < nextHash
}

// hasType reports whether an NSEC or NSEC3 type bitmap lists t.
func hasType(bitmap []uint16, t uint16) bool {
	for _, b := range bitmap {
		if b == t {
			return true
		}
	}
	return false
}
