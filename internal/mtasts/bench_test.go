package mtasts

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLookupCached measures the per-delivery cost when the TXT id matches the
// cached policy: one TXT lookup (faked here) and one cache file read.
func BenchmarkLookupCached(b *testing.B) {
	h := newHarness(b)
	h.res.set(txtName, "v=STSv1; id=a1")
	h.fet.serve(dom, policyA)
	if _, err := h.m.Lookup(b.Context(), dom); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := h.m.Lookup(b.Context(), dom)
		if err != nil || r.Source != SourceCache {
			b.Fatalf("%+v, %v", r, err)
		}
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "enforce-crlf.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicy(body); err != nil {
			b.Fatal(err)
		}
	}
}
