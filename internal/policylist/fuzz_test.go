package policylist

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// checkList asserts what every successfully parsed list guarantees: each domain is
// found under its own name, has a mode and at least one pattern, and each pattern
// matches the names it describes (decision 5).
func checkList(t *testing.T, l *List) {
	t.Helper()
	for _, d := range l.Domains() {
		e, ok, err := l.Lookup(d, l.Timestamp)
		if err != nil || !ok {
			t.Fatalf("listed domain %q: Lookup = %v, %v", d, ok, err)
		}
		if e.Domain != d || (e.Mode != ModeEnforce && e.Mode != ModeTesting) || len(e.MXs) == 0 {
			t.Fatalf("entry for %q: %+v", d, e)
		}
		for _, p := range e.MXs {
			if strings.HasPrefix(p, ".") {
				if !e.MatchesMX("a"+p) || !e.MatchesMX("a.b"+p) {
					t.Fatalf("suffix %q does not match names below it", p)
				}
			} else if !e.MatchesMX(p) {
				t.Fatalf("name %q does not match itself", p)
			}
		}
	}
}

func FuzzParseEFF(f *testing.F) {
	fixture, err := os.ReadFile("testdata/policy.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	f.Add([]byte(effDocument(`{"example.com": {"mode": "enforce", "mxs": ["mx.example.com", ".example.net"]}}`, "")))
	f.Add([]byte(effDocument(`{"example.com": {"policy-alias": "a"}}`, `{"a": {"mode": "testing", "mxs": [".example.net"]}}`)))
	f.Add([]byte(effDocument(`{"bücher.example": {"mode": "testing", "mxs": ["MX.bücher.example."]}}`, "")))
	f.Add([]byte(`{"timestamp": "2020-05-20", "expires": 1591209306.5, "version": "0.1", "policies": {}}`))
	f.Add([]byte(`{"timestamp": 1, "expires": 2, "version": "0.1", "policies": {"": {}}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseEFF(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !l.Expires.After(l.Timestamp) {
			t.Fatalf("accepted expires %s not after timestamp %s", l.Expires, l.Timestamp)
		}
		checkList(t, l)
		// Writing the list in the EFF format and reading it back changes no entry.
		enc, err := l.encodeEFF()
		if err != nil {
			t.Fatalf("encodeEFF: %v", err)
		}
		back, err := ParseEFF(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parsing the encoded list: %v\n%s", err, enc)
		}
		if !slices.Equal(back.Domains(), l.Domains()) || !back.Timestamp.Equal(l.Timestamp) || !back.Expires.Equal(l.Expires) {
			t.Fatalf("round trip changed the list")
		}
		for _, d := range l.Domains() {
			a, _, _ := l.Lookup(d, l.Timestamp)
			b, _, _ := back.Lookup(d, l.Timestamp)
			if a.Mode != b.Mode || !slices.Equal(a.MXs, b.MXs) {
				t.Fatalf("round trip changed %q: %+v → %+v", d, a, b)
			}
		}
	})
}

func FuzzParseLocal(f *testing.F) {
	fixture, err := os.ReadFile("testdata/local.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(fixture))
	f.Add("expires = 2027-06-01T00:00:00Z\n[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\".a.example\"]\n")
	f.Add("[domains]\n")
	f.Fuzz(func(t *testing.T, src string) {
		l, err := ParseLocal(strings.NewReader(src))
		if err != nil {
			return
		}
		checkList(t, l)
	})
}

// FuzzMatchesMX compares MatchesMX with the rule stated plainly: a well-formed host
// name equal to the pattern, or one that ends in the suffix and is longer than it.
func FuzzMatchesMX(f *testing.F) {
	f.Add(".example.net", "mx.a.example.net")
	f.Add("mx.example.com", "MX.example.com.")
	f.Add(".example.net", "example.net")
	f.Add(".xn--bcher-kva.example", "mx.bücher.example")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		p, err := parsePattern(pattern)
		if err != nil {
			return
		}
		got := Entry{MXs: []string{p}}.MatchesMX(host)
		h, err := normalizeName(host)
		if err != nil || validateName(h) != nil {
			if got {
				t.Fatalf("malformed host %q matched %q", host, p)
			}
			return
		}
		var want bool
		if s, ok := strings.CutPrefix(p, "."); ok {
			want = strings.HasSuffix(h, "."+s) && len(h) > len(s)+1
		} else {
			want = h == p
		}
		if got != want {
			t.Fatalf("MatchesMX(%q) with %q = %v, want %v", host, p, got, want)
		}
	})
}
