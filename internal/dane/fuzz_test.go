package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"mxward/internal/dns"
)

// encodeRecords packs records for a fuzz input: usage, selector, matching type, a
// two-byte length, the data.
func encodeRecords(recs ...dns.TLSA) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.Usage, r.Selector, r.MatchingType)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Data)))
		b = append(b, r.Data...)
	}
	return b
}

// decodeRecords is the inverse of encodeRecords; a short tail is read as far as it goes.
func decodeRecords(b []byte) []dns.TLSA {
	var out []dns.TLSA
	for len(b) >= 3 {
		r := dns.TLSA{Usage: b[0], Selector: b[1], MatchingType: b[2]}
		b = b[3:]
		n := 0
		if len(b) >= 2 {
			n = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		} else {
			b = nil
		}
		n = min(n, len(b))
		if n > 0 {
			r.Data = bytes.Clone(b[:n])
		}
		b = b[n:]
		out = append(out, r)
		if len(out) == 64 {
			break
		}
	}
	return out
}

// encodeDER packs certificates for a fuzz input, each with a two-byte length.
func encodeDER(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Raw)))
		b = append(b, c.Raw...)
	}
	return b
}

// decodeDER parses the certificates of a fuzz input, skipping those that do not parse.
func decodeDER(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(b) >= 2 && len(out) < 8 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		if c, err := x509.ParseCertificate(b[2 : 2+n]); err == nil {
			out = append(out, c)
		}
		b = b[2+n:]
	}
	return out
}

// FuzzUsable checks the invariants of Usable on arbitrary records (DANE-15 … DANE-17).
func FuzzUsable(f *testing.F) {
	p := testPKI()
	f.Add(encodeRecords(rec(3, 1, 1, p.self.cert), rec(3, 1, 2, p.self.cert), rec(2, 0, 0, p.root.cert)), []byte{2, 1})
	f.Add(encodeRecords(rec(3, 1, 0, p.self.cert), rec(1, 1, 1, p.self.cert), rec(3, 0, 255, p.self.cert)), []byte{1})
	f.Add(encodeRecords(dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 31)}), []byte{})
	f.Add(encodeRecords(dns.TLSA{Usage: 2, Selector: 1, MatchingType: 0, Data: []byte{0x30, 0x00}}), []byte{0, 7})
	f.Fuzz(func(t *testing.T, blob, pref []byte) {
		recs := decodeRecords(blob)
		usable, dropped := Usable(recs, pref)
		if len(usable)+len(dropped) != len(recs) {
			t.Fatalf("%d usable + %d dropped != %d records", len(usable), len(dropped), len(recs))
		}
		digest := make(map[[2]uint8]uint8)
		for _, r := range usable {
			if r.Usage != UsageDANETA && r.Usage != UsageDANEEE {
				t.Fatalf("usable record of usage %d", r.Usage)
			}
			if r.Selector > SelectorSPKI {
				t.Fatalf("usable record of selector %d", r.Selector)
			}
			switch r.MatchingType {
			case MatchFull:
				if checkFull(r) != nil {
					t.Fatalf("usable Full record that does not parse: %s", Format(r))
				}
			case MatchSHA256, MatchSHA512:
				if want := map[uint8]int{1: 32, 2: 64}[r.MatchingType]; len(r.Data) != want {
					t.Fatalf("usable digest of %d bytes: %s", len(r.Data), Format(r))
				}
				k := [2]uint8{r.Usage, r.Selector}
				if d, ok := digest[k]; ok && d != r.MatchingType {
					t.Fatalf("two digests kept for %s %s: %d and %d", UsageName(r.Usage), SelectorName(r.Selector), d, r.MatchingType)
				}
				digest[k] = r.MatchingType
			default:
				t.Fatalf("usable record of matching type %d", r.MatchingType)
			}
		}
		valid := 0
		for _, d := range dropped {
			if d.Reason == "" {
				t.Fatalf("dropped without a reason: %s", Format(d.Record))
			}
			if d.Ignored {
				valid++
			}
		}
		if valid > 0 && len(usable) == 0 {
			t.Fatalf("digest agility emptied the RRset")
		}
		again, dropped2 := Usable(usable, pref)
		if len(again) != len(usable) || len(dropped2) != 0 {
			t.Fatalf("Usable is not idempotent: %d → %d usable, %d dropped", len(usable), len(again), len(dropped2))
		}
	})
}

// leafEncodings returns every (selector, matching type, data) a DANE-EE record for c
// may carry, computed without the package's code.
func leafEncodings(c *x509.Certificate) []dns.TLSA {
	var out []dns.TLSA
	for s, content := range [][]byte{c.Raw, c.RawSubjectPublicKeyInfo} {
		s256 := sha256.Sum256(content)
		s512 := sha512.Sum512(content)
		out = append(out,
			dns.TLSA{Usage: 3, Selector: uint8(s), MatchingType: 0, Data: content},
			dns.TLSA{Usage: 3, Selector: uint8(s), MatchingType: 1, Data: s256[:]},
			dns.TLSA{Usage: 3, Selector: uint8(s), MatchingType: 2, Data: s512[:]})
	}
	return out
}

// oracleName reports whether a presented name matches ref by the plain rules of
// DANE-23, written independently of matchName: equal ignoring ASCII case and a trailing
// dot, or "*." followed by the rest of ref after its first label.
func oracleName(presented, ref string) bool {
	p := asciiLower(strings.TrimSuffix(presented, "."))
	r := asciiLower(strings.TrimSuffix(ref, "."))
	if p == r {
		return true
	}
	if !strings.HasPrefix(p, "*.") {
		return false
	}
	i := strings.IndexByte(r, '.')
	return i > 0 && r[i:] == p[1:]
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c | 0x20
		}
	}
	return string(b)
}

// FuzzVerifier feeds Check arbitrary chains and records. Whatever it accepts must
// really match: a DANE-EE record one of the leaf's own encodings, a DANE-TA record a
// presented issuer other than the leaf (or its own 2 0 0 certificate), with the leaf
// carrying a reference identifier. An empty record set never authenticates. In mode
// bit 3 the chain is the test hierarchy and records are DANE-EE only, so the outcome
// is known by construction: authenticated exactly when a record is an encoding of the
// leaf.
func FuzzVerifier(f *testing.F) {
	p := testPKI()
	f.Add(encodeDER(p.leaf.cert, p.inter.cert), encodeRecords(rec(2, 0, 1, p.inter.cert)), "mx.example.test", uint8(0))
	f.Add(encodeDER(p.self.cert), encodeRecords(rec(3, 1, 1, p.self.cert)), "", uint8(0))
	f.Add(encodeDER(p.leafWild.cert), encodeRecords(rec(2, 0, 0, p.inter.cert)), "a.example.test", uint8(0))
	f.Add(encodeDER(p.leafCNOnly.cert, p.inter.cert, p.root.cert), encodeRecords(rec(2, 1, 2, p.root.cert)), "MX.example.test.", uint8(0))
	f.Add([]byte{}, encodeRecords(rec(3, 0, 1, p.leaf.cert)), "mx.example.test", uint8(8))
	f.Add([]byte{}, encodeRecords(rec(3, 1, 2, p.inter.cert), rec(3, 1, 0, p.leaf.cert)), "", uint8(8))
	f.Add(encodeDER(p.inter.cert), encodeRecords(rec(2, 1, 1, p.inter.cert)), "mx.example.test", uint8(1))
	f.Add(encodeDER(p.strictLeaf.cert, p.strictInter.cert, p.strictRoot.cert), encodeRecords(rec(2, 0, 1, p.strictRoot.cert)),
		"mx.example.test", uint8(0))
	f.Fuzz(func(t *testing.T, der, blob []byte, ref string, mode uint8) {
		certs := decodeDER(der)
		recs := decodeRecords(blob)
		known := mode&8 != 0
		if known {
			certs = chain(p.leaf, p.inter, p.root)
			for i := range recs {
				recs[i].Usage = UsageDANEEE
			}
		} else if mode&1 != 0 {
			certs = append([]*x509.Certificate{p.leaf.cert}, certs...)
		}
		refIDs := []string{ref}

		if m, err := Check(certs, nil, refIDs, testNow); err == nil {
			t.Fatalf("no records authenticated: %v", m)
		}
		m, err := Check(certs, recs, refIDs, testNow)
		if known {
			want := false
			for _, r := range recs {
				want = want || containsRecord(leafEncodings(p.leaf.cert), r)
			}
			if (err == nil) != want {
				t.Fatalf("authenticated = %v, want %v (records %v): %v", err == nil, want, formatAll(recs), err)
			}
		}
		if err != nil {
			if m.Auth != "" {
				t.Fatalf("error with Auth %q", m.Auth)
			}
			return
		}
		if !containsRecord(recs, m.Record) {
			t.Fatalf("matched record %s is not among the records", Format(m.Record))
		}
		leaf := certs[0]
		switch m.Auth {
		case AuthDANEEE:
			if m.Record.Usage != UsageDANEEE || !containsRecord(leafEncodings(leaf), m.Record) {
				t.Fatalf("dane-ee with a record that is no encoding of the leaf: %s", Format(m.Record))
			}
		case AuthDANETA:
			if m.Record.Usage != UsageDANETA {
				t.Fatalf("dane-ta with usage %d", m.Record.Usage)
			}
			var ta *x509.Certificate
			switch {
			case m.Depth >= 1 && m.Depth < len(certs):
				ta = certs[m.Depth]
			case m.Depth == -1 && m.Record.Selector == 0 && m.Record.MatchingType == 0:
				ta, _ = x509.ParseCertificate(m.Record.Data)
			}
			if ta == nil || bytes.Equal(ta.Raw, leaf.Raw) {
				t.Fatalf("dane-ta anchor at depth %d is missing or the leaf", m.Depth)
			}
			te := leafEncodings(ta)
			for i := range te {
				te[i].Usage = UsageDANETA
			}
			if !containsRecord(te, m.Record) {
				t.Fatalf("dane-ta record %s does not match its anchor", Format(m.Record))
			}
			names := leaf.DNSNames
			if len(names) == 0 {
				names = []string{leaf.Subject.CommonName}
			}
			ok := false
			for _, n := range names {
				ok = ok || oracleName(n, ref)
			}
			if !ok {
				t.Fatalf("dane-ta accepted names %q for %q", names, ref)
			}
		default:
			t.Fatalf("unknown Auth %q", m.Auth)
		}
	})
}

// FuzzParseRecord: what ParseRecord accepts, FormatFull writes back unchanged.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{"3 1 1 9a3f", "DANE-TA Cert SHA2-512 00 ff", "2 0 0 -", "PrivCert 1 sha256 ab", "3 1", "256 0 0 00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			return
		}
		r2, err := ParseRecord(FormatFull(r))
		if err != nil {
			t.Fatalf("ParseRecord(FormatFull(%q)) = %v", s, err)
		}
		if !containsRecord([]dns.TLSA{r}, r2) {
			t.Fatalf("round trip changed %q: %s → %s", s, FormatFull(r), FormatFull(r2))
		}
		_ = Format(r)
		_ = Describe(r)
	})
}

// FuzzMatchName: matchName never accepts more than Go's own host name matching
// (crypto/x509 VerifyHostname, one-label wildcards) once trailing dots are set aside,
// and never a partial wildcard.
func FuzzMatchName(f *testing.F) {
	for _, s := range [][2]string{{"*.example.com", "mx.example.com"}, {"smtp*.example.com", "smtp1.example.com"},
		{"MX.example.com.", "mx.EXAMPLE.com"}, {"*.com", "example.com"}, {"*.a_b.example", "x.a_b.example"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, presented, ref string) {
		if !matchName(presented, ref) {
			return
		}
		if !oracleName(presented, ref) {
			t.Fatalf("matchName(%q, %q) accepted what the plain rules refuse", presented, ref)
		}
		if _, err := netip.ParseAddr(ref); err == nil {
			return // Go matches addresses against IP SANs only
		}
		c := &x509.Certificate{DNSNames: []string{strings.TrimSuffix(presented, ".")}}
		if err := c.VerifyHostname(strings.TrimSuffix(ref, ".")); err != nil {
			t.Fatalf("matchName(%q, %q) accepted what crypto/x509 refuses: %v", presented, ref, err)
		}
		if i := strings.IndexByte(presented, '*'); i >= 0 && !strings.HasPrefix(presented, "*.") {
			t.Fatalf("partial wildcard %q accepted", presented)
		}
	})
}
