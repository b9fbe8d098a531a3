package dnssec

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestCanonicalOrder(t *testing.T) {
	// The example of RFC 4034 §6.1, in canonical order.
	want := []string{
		"example.",
		"a.example.",
		"yljkjljk.a.example.",
		"Z.a.example.",
		"zABC.a.EXAMPLE.",
		"z.example.",
		`\001.z.example.`,
		"*.z.example.",
		`\200.z.example.`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		sortCanonical(got)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted:\n%q\nwant:\n%q", got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"example.", "EXAMPLE.", 0},
		{`\065.example.`, "a.example.", 0}, // \065 is "A"
		{".", "example.", -1},
		{"b.example.", "a.b.example.", -1}, // a name sorts before its descendants
		{"a.example.", "b.a.example.", -1},
		{"a.example.", "a-.example.", -1},
	} {
		if got, ok := canonicalCompare(tc.a, tc.b); !ok || got != tc.want {
			t.Errorf("compare(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, ok, tc.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Example.TEST", "example.test."},
		{`\109x.example.test.`, "mx.example.test."}, // a letter written as an escape
		{`\077X.Example.test.`, "mx.example.test."}, // and in upper case
		{`\042.wild.test.`, "*.wild.test."},         // the wildcard label
		{`mx\.example.test.`, `mx\.example.test.`},  // a dot inside a label stays escaped
		{`a\000b.test.`, `a\000b.test.`},            // octets outside ASCII stay escaped
		{`\200\.A.test.`, `\200\.a.test.`},          // both, and a letter lowered
		{`\\.TEST.`, `\\.test.`},                    // a backslash
		{"a..B.", "a..b."},                          // not a name: lowered only
		{"\xffA.test", `\255a.test.`},               // raw octets: spelt as the wire gives them
		{"a b.test.", `a\ b.test.`},
	} {
		if got := canonical(tc.in); got != tc.want {
			t.Errorf("canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzCanonical checks that canonical is idempotent, lowers every letter, and keeps
// the name: the same wire form but for case, and equal in the canonical order.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"example.", `\109x.Example.`, `mx\.example.`, `\042.w.`, `\200.z.example.`, `a\ b.`, "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c := canonical(name)
		if again := canonical(c); again != c {
			t.Fatalf("canonical(%q) = %q, but canonical(%q) = %q", name, c, c, again)
		}
		if strings.ContainsAny(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("canonical(%q) = %q has upper case", name, c)
		}
		a, errA := packName(name)
		b, errB := packName(c)
		if errA != nil {
			return
		}
		if errB != nil || !bytes.Equal([]byte(lowerASCII(string(a))), []byte(lowerASCII(string(b)))) {
			t.Fatalf("canonical(%q) = %q: wire %x, want %x (%v)", name, c, b, a, errB)
		}
		if cmp, ok := canonicalCompare(name, c); !ok || cmp != 0 {
			t.Fatalf("compare(%q, %q) = %d, %v; want equal", name, c, cmp, ok)
		}
	})
}

// packName returns the wire form of name.
func packName(name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := mdns.PackDomainName(mdns.Fqdn(name), buf, 0, nil, false)
	return buf[:n], err
}

func TestNSECCovers(t *testing.T) {
	for _, tc := range []struct {
		owner, next, name string
		want              bool
	}{
		{"a.example.", "d.example.", "b.example.", true},
		{"a.example.", "d.example.", "x.b.example.", true},
		{"a.example.", "d.example.", "a.example.", false}, // the owner exists
		{"a.example.", "d.example.", "d.example.", false}, // the next name exists
		{"a.example.", "d.example.", "e.example.", false},
		{"a.example.", "d.example.", "x.a.example.", true}, // below the owner
		// The last NSEC of the zone points back to the apex.
		{"z.example.", "example.", "zz.example.", true},
		{"z.example.", "example.", "a.z.example.", true},
		{"z.example.", "example.", "b.example.", false},
		{"z.example.", "example.", "example.", false},
		// A zone whose only name is its apex.
		{"example.", "example.", "a.example.", true},
		{"example.", "example.", "example.", false},
	} {
		if got := nsecCovers(tc.owner, tc.next, tc.name); got != tc.want {
			t.Errorf("NSEC %s -> %s covers %s: %v, want %v", tc.owner, tc.next, tc.name, got, tc.want)
		}
	}
}

func TestNSEC3Covers(t *testing.T) {
	h := func(c byte) string {
		b := make([]byte, sha1HashLen)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}
	for _, tc := range []struct {
		owner, next, hash string
		want              bool
	}{
		{h('2'), h('8'), h('5'), true},
		{h('2'), h('8'), h('2'), false}, // exact match: the name exists (mdns.NSEC3.Cover says true)
		{h('2'), h('8'), h('8'), false},
		{h('2'), h('8'), h('9'), false},
		{h('2'), h('8'), h('1'), false},
		// The last record wraps round to the first.
		{h('S'), h('2'), h('T'), true},
		{h('S'), h('2'), h('0'), true},
		{h('S'), h('2'), h('5'), false},
		{h('S'), h('2'), h('S'), false},
		// One record: everything but its own hash.
		{h('S'), h('S'), h('T'), true},
		{h('S'), h('S'), h('S'), false},
		{h('2'), h('8'), "SHORT", false},
	} {
		if got := nsec3Covers(tc.owner, tc.next, tc.hash); got != tc.want {
			t.Errorf("NSEC3 %s -> %s covers %s: %v, want %v", tc.owner[:1], tc.next[:1], tc.hash, got, tc.want)
		}
	}
}

func TestSigValidity(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) uint32 { return uint32(now.Add(d).Unix()) }
	for _, tc := range []struct {
		name                  string
		inception, expiration uint32
		want                  validity
	}{
		{"inside", ts(-time.Hour), ts(time.Hour), valid},
		{"at inception", ts(0), ts(time.Hour), valid},
		{"at expiration", ts(-time.Hour), ts(0), valid},
		{"expired", ts(-2 * time.Hour), ts(-time.Hour), expired},
		{"not yet valid", ts(time.Hour), ts(2 * time.Hour), notYetValid},
		{"window upside down", ts(time.Hour), ts(-time.Hour), notYetValid},
		{"window longer than 2^31 seconds", ts(-100 * time.Second), uint32(now.Unix()) + 1<<31 - 1, expired},
	} {
		sig := &mdns.RRSIG{Inception: tc.inception, Expiration: tc.expiration}
		if got := sigValidity(sig, now); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// In 2106 the 32-bit timestamps wrap; serial arithmetic (RFC 1982) carries on.
	wrap := time.Unix(1<<32-10, 0)
	sig := &mdns.RRSIG{Inception: uint32(wrap.Add(-time.Hour).Unix()), Expiration: uint32(wrap.Add(time.Hour).Unix())}
	if got := sigValidity(sig, wrap); got != valid || sig.Expiration > sig.Inception {
		t.Errorf("across the wrap: %d (inception %d, expiration %d), want valid", got, sig.Inception, sig.Expiration)
	}
	if got := sigValidity(sig, wrap.Add(2*time.Hour)); got != expired {
		t.Errorf("after the wrap: %d, want expired", got)
	}
}
