package pin

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkLookup is the cost a delivery attempt pays when pinning is on and nothing
// stronger decides: one small file read and parse.
func BenchmarkLookup(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Observe(context.Background(), "example.net", Observation{"mx.example.net", "TLSv1.3"}, epoch); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := s.Lookup("example.net", epoch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserve is the cost of recording a TLS delivery (one a second in the
// injected clock): for one busy domain, whose deliveries within a minute of the last
// write are counted in memory, and for 1000 domains each seen less than once a minute,
// where every delivery is written (two fsyncs).
func BenchmarkObserve(b *testing.B) {
	for _, domains := range []int{1, 1000} {
		b.Run(fmt.Sprintf("domains=%d", domains), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				d := fmt.Sprintf("d%d.example", i%domains)
				if _, err := s.Observe(context.Background(), d, Observation{"mx." + d, "TLSv1.3"}, epoch.Add(time.Duration(i)*time.Second)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
