package spool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommit measures one Commit of a 2 KiB body, with many sessions committing
// at once so that group commit has something to batch.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, benchDir(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := []byte(strings.Repeat("0123456789abcdef", 128))
	env := Envelope{From: "bench@x.test", Recipients: rcpts("a@y.test", "b@z.test")}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w, err := s.Create(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			w.Write(body)
			if _, err := w.Commit(ctx, env); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.Writes)/float64(max(st.Transactions, 1)), "commits/tx")
}

// benchDir returns a fresh directory under MXWARD_BENCH_DIR if set (to compare file
// systems), else under the test's temporary directory.
func benchDir(tb testing.TB) string {
	base := os.Getenv("MXWARD_BENCH_DIR")
	if base == "" {
		return tb.TempDir()
	}
	dir, err := os.MkdirTemp(base, "spool-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestLargeQueue fills a spool with a million messages and prints what the queue
// operations cost at that size. It runs only with MXWARD_BENCH=1; MXWARD_BENCH_N
// changes the size, MXWARD_BENCH_DIR the file system.
//
// The fill is a bulk path: real body files in their shards (not fsynced) and index
// rows inserted through the index writer in transactions of 5,000 messages. Everything
// measured afterwards goes through the public API with full durability.
func TestLargeQueue(t *testing.T) {
	if os.Getenv("MXWARD_BENCH") != "1" {
		t.Skip("set MXWARD_BENCH=1 to run")
	}
	n := 1_000_000
	if v := os.Getenv("MXWARD_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	dir := benchDir(t)
	// Arrivals spread at 100 messages/s before "now".
	clock := newClock()
	start := clock.Now()
	clock.Add(time.Duration(n) * 10 * time.Millisecond)
	s, err := Open(ctx, dir, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	bulkFill(t, s, n, start, clock.Now())
	report(t, "fill (bulk)", "%d messages in %v (%.0f/s)", n, time.Since(t0).Round(time.Millisecond), float64(n)/time.Since(t0).Seconds())
	reportDisk(t, dir)

	body := strings.Repeat("0123456789abcdef", 128)
	env := Envelope{From: "bench@x.test", Recipients: rcpts("a@d1.test", "b@d2.test")}
	timedCommit := func() (time.Duration, error) {
		t0 := time.Now()
		_, err := commit(s, body, env)
		return time.Since(t0), err
	}
	var lat []time.Duration
	for range 1000 {
		d, err := timedCommit()
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, d)
	}
	report(t, "Commit, 1 session", "%s", percentiles(lat))

	lat = lat[:0]
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	before := s.Stats()
	t0 = time.Now()
	for range 32 {
		wg.Go(func() {
			for range 100 {
				d, err := timedCommit()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := s.Stats()
	report(t, "Commit, 32 sessions", "%s, %.0f commits/s, %.1f commits/tx", percentiles(lat),
		3200/time.Since(t0).Seconds(),
		float64(after.Writes-before.Writes)/float64(after.Transactions-before.Transactions))

	measure := func(name string, runs int, f func() int) {
		var lat []time.Duration
		var got int
		for range runs {
			t0 := time.Now()
			got = f()
			lat = append(lat, time.Since(t0))
		}
		report(t, name, "%s, %d results", percentiles(lat), got)
	}
	due := func(local bool) func() int {
		return func() int {
			msgs, err := s.Due(ctx, clock.Now(), local, 100)
			if err != nil {
				t.Fatal(err)
			}
			return len(msgs)
		}
	}
	list := func(f Filter) func() int {
		return func() int {
			msgs, err := s.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return len(msgs)
		}
	}
	measure("Due(remote, 100)", 200, due(false))
	measure("Due(local, 100)", 200, due(true))
	measure("List(limit 100)", 100, list(Filter{Limit: 100}))
	measure("List(queued, limit 100)", 100, list(Filter{State: StateQueued, Limit: 100}))
	measure("List(held, limit 100)", 20, list(Filter{State: StateHeld, Limit: 100}))
	measure("List(domain, limit 100)", 100, list(Filter{Domain: "d7.test", Limit: 100}))
	measure("List(domain, no limit)", 10, list(Filter{Domain: "d7.test"}))

	some, err := s.List(ctx, Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	measure("Get", 1000, func() int {
		m, err := s.Get(ctx, some[i%len(some)].ID)
		if err != nil {
			t.Fatal(err)
		}
		i++
		return len(m.Envelope.Recipients)
	})
	i = 0
	measure("Record(deferred)", 1000, func() int {
		m := some[i%len(some)]
		i++
		var out []Outcome
		for _, r := range m.Envelope.Recipients {
			out = append(out, Outcome{Attempt: Attempt{Rcpt: r.Addr, Result: "deferred", Reply: "451 later"},
				NextAttempt: clock.Now().Add(time.Hour)})
		}
		if err := s.Record(ctx, m.ID, out); err != nil {
			t.Fatal(err)
		}
		return len(out)
	})

	// Reopen, including the orphan sweep over every body file. Two orphans and a
	// leftover tmp file give recovery something to do.
	orphan := s.ids.next(start.Add(time.Minute))
	os.WriteFile(s.bodyPath(orphan), []byte("orphan"), 0o640)
	os.WriteFile(filepath.Join(dir, "tmp", "leftover"), []byte("partial"), 0o640)
	t0 = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Since(t0)
	t0 = time.Now()
	s, err = Open(ctx, dir, Options{Now: clock.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	report(t, "Close", "%v", closed.Round(time.Microsecond))
	report(t, "Open with recovery sweep", "%v (page cache warm)", time.Since(t0).Round(time.Millisecond))
	if _, err := os.Stat(s.bodyPath(orphan)); !os.IsNotExist(err) {
		t.Errorf("orphan survived reopen: %v", err)
	}
	s.Close()
}

// bulkFill writes n messages arriving evenly between from and to: bodies of 1-4 KiB,
// one to three recipients over 1,000 domains, one in ten local. A fifth are due at
// "to", the rest deferred up to four hours beyond it, one in a thousand is held.
func bulkFill(t *testing.T, s *FileStore, n int, from, to time.Time) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	step := to.Sub(from) / time.Duration(n)
	payload := []byte(strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 70))
	type row struct {
		id   ID
		env  Envelope
		next time.Time
		held bool
	}
	const batch = 5000
	rows := make([]row, 0, batch)
	flush := func() {
		s.begin()
		err := s.write(ctx, func(ctx context.Context, t *itx) error {
			for _, r := range rows {
				if err := insertRows(ctx, t, r.id, &r.env, r.next); err != nil {
					return err
				}
				if r.held {
					if _, err := t.tx.ExecContext(ctx, `UPDATE recipients SET state = 'held' WHERE msg_id = ?`, string(r.id)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		s.end()
		if err != nil {
			t.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := range n {
		at := from.Add(time.Duration(i) * step)
		id := s.ids.next(at)
		if err := s.ensureShard(id.shard()); err != nil {
			t.Fatal(err)
		}
		size := 1024 + rng.IntN(3*1024)
		if err := os.WriteFile(s.bodyPath(id), payload[:size], 0o640); err != nil {
			t.Fatal(err)
		}
		var rs []Recipient
		for k := range 1 + rng.IntN(3) {
			rs = append(rs, Recipient{
				Addr:  fmt.Sprintf("user%d@d%d.test", k, rng.IntN(1000)),
				Local: rng.IntN(10) == 0,
			})
		}
		next := to
		if rng.IntN(5) != 0 {
			next = to.Add(time.Duration(rng.Int64N(int64(4 * time.Hour))))
		}
		rows = append(rows, row{
			id:   id,
			env:  Envelope{From: "sender@x.test", Recipients: rs, Size: int64(size), ReceivedAt: at, ClientIP: "127.0.0.1"},
			next: next,
			held: rng.IntN(1000) == 0,
		})
		if len(rows) == batch {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
}

func report(t *testing.T, name, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("%-28s "+format, append([]any{name + ":"}, args...)...)
	t.Log(msg)
	fmt.Fprintln(os.Stderr, msg)
}

func reportDisk(t *testing.T, dir string) {
	var index int64
	for _, f := range []string{"index.db", "index.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			index += fi.Size()
		}
	}
	shards, _ := os.ReadDir(filepath.Join(dir, "messages"))
	report(t, "disk", "index %d MiB, %d shard directories", index>>20, len(shards))
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Microsecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (n=%d)", p(0.50), p(0.99), s[len(s)-1].Round(time.Microsecond), len(s))
}
