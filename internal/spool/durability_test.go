package spool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestConcurrentCommit(t *testing.T) {
	const n = 200
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	bodies := make([]string, n)
	got := make([]ID, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		bodies[i] = fmt.Sprintf("Subject: message %d\r\n\r\n%s\r\n", i, strings.Repeat("x", i*37))
		wg.Go(func() {
			<-start
			w, err := s.Create(ctx)
			if err != nil {
				errs <- err
				return
			}
			io.WriteString(w, bodies[i])
			id, err := w.Commit(ctx, Envelope{From: "s@x.test", Recipients: rcpts(fmt.Sprintf("r%d@y.test", i))})
			if err != nil {
				errs <- err
				return
			}
			got[i] = id
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent commit: %v", err)
	}

	seen := make(map[ID]int)
	for i, id := range got {
		if j, dup := seen[id]; dup {
			t.Fatalf("commits %d and %d both got id %s", j, i, id)
		}
		seen[id] = i
	}
	st := s.Stats()
	t.Logf("%d commits in %d transactions", st.Writes, st.Transactions)
	if st.Writes != n {
		t.Errorf("Stats.Writes = %d, want %d", st.Writes, n)
	}
	if st.Transactions >= st.Writes {
		t.Errorf("no group commit: %d transactions for %d writes", st.Transactions, st.Writes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, nil)
	for i, id := range got {
		m := mustGet(t, s, id)
		if m.Envelope.Recipients[0].Addr != fmt.Sprintf("r%d@y.test", i) {
			t.Errorf("%s has recipients %+v, want r%d", id, m.Envelope.Recipients, i)
		}
		if b := readBody(t, s, id); b != bodies[i] {
			t.Errorf("%s body differs after reopen", id)
		}
	}
	msgs, err := s.List(ctx, Filter{})
	if err != nil || len(msgs) != n {
		t.Errorf("List after reopen = %d messages, %v; want %d", len(msgs), err, n)
	}
}

// TestConcurrentMixed runs commits, records and operator actions at once; every
// operation must take effect exactly once.
func TestConcurrentMixed(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	const workers, per = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				id, err := commit(s, "body", Envelope{Recipients: rcpts("a@x.test", "b@y.test")})
				if err != nil {
					errs <- err
					return
				}
				switch (w + i) % 3 {
				case 0:
					err = s.Record(ctx, id, []Outcome{delivered("a@x.test"), delivered("b@y.test")})
				case 1:
					if err = s.Hold(ctx, id); err == nil {
						err = s.Delete(ctx, id)
					}
				case 2:
					err = s.Record(ctx, id, []Outcome{delivered("a@x.test"), deferred("b@y.test", time.Hour)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for w := range workers {
		for i := range per {
			if (w+i)%3 == 2 {
				want++
			}
		}
	}
	if len(msgs) != want {
		t.Errorf("%d messages left, want %d", len(msgs), want)
	}
	for _, m := range msgs {
		if got := rcptStates(m.Envelope.Recipients); got[0] != "a@x.test=delivered" || got[1] != "b@y.test=queued" {
			t.Errorf("%s: %v", m.ID, got)
		}
	}
}

// logRecorder collects log records for assertions.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

// find returns the values of attribute key in records at level with message msg.
func (h *logRecorder) find(level slog.Level, msg, key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level != level || r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

func TestRecovery(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// crash leaves the damage in dir, given a spool with one healthy message, and
		// returns the ID of the damaged message if there is one.
		crash       func(t *testing.T, dir string, s *FileStore) ID
		wantOrphans int
		wantMissing []string
		wantTmp     int
	}{
		{
			name: "partial body in tmp",
			crash: func(t *testing.T, dir string, s *FileStore) ID {
				w, err := s.Create(ctx)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, "half a mess")
				w.(*bodyWriter).w.Flush() // the process dies here, without Abort
				return ""
			},
			wantTmp: 1,
		},
		{
			name: "body renamed, index not committed",
			crash: func(t *testing.T, dir string, s *FileStore) ID {
				// Do Commit's steps up to the rename by hand.
				w, err := s.Create(ctx)
				if err != nil {
					t.Fatal(err)
				}
				bw := w.(*bodyWriter)
				io.WriteString(bw, "never acknowledged")
				if err := bw.finish(); err != nil {
					t.Fatal(err)
				}
				if err := s.publish(bw.id, bw.path); err != nil {
					t.Fatal(err)
				}
				return bw.id
			},
			wantOrphans: 1,
		},
		{
			name: "orphan in an otherwise empty shard",
			crash: func(t *testing.T, dir string, s *FileStore) ID {
				id := s.ids.next(time.Now().Add(-24 * time.Hour))
				if err := s.ensureShard(id.shard()); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(s.bodyPath(id), []byte("old orphan"), 0o640); err != nil {
					t.Fatal(err)
				}
				return id
			},
			wantOrphans: 1,
		},
		{
			name: "index row without body",
			crash: func(t *testing.T, dir string, s *FileStore) ID {
				id := commitBody(t, s, "soon gone", Envelope{Recipients: rcpts("a@b.test")})
				if err := os.Remove(s.bodyPath(id)); err != nil {
					t.Fatal(err)
				}
				return id
			},
			wantMissing: []string{"missing"},
		},
		{
			name: "index rows without a shard directory",
			crash: func(t *testing.T, dir string, s *FileStore) ID {
				// As if messages/ had lost a whole shard directory.
				id := s.ids.next(time.Now().Add(-48 * time.Hour))
				env := Envelope{Recipients: rcpts("a@b.test")}
				s.begin()
				err := s.write(ctx, func(ctx context.Context, t *itx) error {
					return insertRows(ctx, t, id, &env, time.Now())
				})
				s.end()
				if err != nil {
					t.Fatal(err)
				}
				return id
			},
			wantMissing: []string{"missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(ctx, dir, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			healthy := commitBody(t, s, "healthy", Envelope{Recipients: rcpts("h@b.test")})
			damaged := tt.crash(t, dir, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			rec := &logRecorder{}
			s, err = Open(ctx, dir, Options{Logger: slog.New(rec)})
			if err != nil {
				t.Fatalf("Open after crash: %v", err)
			}
			defer s.Close()

			summary := func(key string) string {
				v := rec.find(slog.LevelInfo, "spool recovered", key)
				if v == nil {
					v = rec.find(slog.LevelError, "spool recovered", key)
				}
				if len(v) != 1 {
					t.Fatalf("no recovery summary with %s", key)
				}
				return v[0]
			}
			if got := summary("tmp_removed"); got != fmt.Sprint(tt.wantTmp) {
				t.Errorf("tmp_removed = %s, want %d", got, tt.wantTmp)
			}
			if got := summary("orphans_removed"); got != fmt.Sprint(tt.wantOrphans) {
				t.Errorf("orphans_removed = %s, want %d", got, tt.wantOrphans)
			}
			if got := summary("missing_bodies"); got != fmt.Sprint(len(tt.wantMissing)) {
				t.Errorf("missing_bodies = %s, want %d", got, len(tt.wantMissing))
			}
			if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
				t.Errorf("%d files left in tmp/", len(es))
			}
			if b := readBody(t, s, healthy); b != "healthy" {
				t.Errorf("healthy body = %q", b)
			}

			switch {
			case tt.wantOrphans > 0:
				if _, err := os.Stat(s.bodyPath(damaged)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("orphan body still there: %v", err)
				}
				if _, err := os.Stat(filepath.Dir(s.bodyPath(damaged))); damaged.shard() != healthy.shard() && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("emptied shard directory still there: %v", err)
				}
				if _, err := s.Get(ctx, damaged); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get orphan = %v, want ErrNotFound", err)
				}
			case len(tt.wantMissing) > 0:
				logged := rec.find(slog.LevelError, "spool body missing for indexed message", "id")
				if len(logged) != 1 || logged[0] != string(damaged) {
					t.Errorf("missing body logged for %v, want [%s]", logged, damaged)
				}
				// The row stays for the operator; its body reads as not found.
				if _, err := s.Get(ctx, damaged); err != nil {
					t.Errorf("Get of message with missing body = %v, want the row kept", err)
				}
				if msgs, _ := s.List(ctx, Filter{}); len(msgs) != 2 {
					t.Errorf("List = %v, want the healthy and the damaged message", ids(msgs))
				}
				if _, err := s.Open(ctx, damaged); !errors.Is(err, ErrNotFound) {
					t.Errorf("Open missing body = %v, want ErrNotFound", err)
				}
			}
		})
	}
}

// Crash test: a child process commits in a loop and prints each ID once Commit has
// returned; the parent kills it with SIGKILL at a random moment and checks that every
// printed message survived intact.

const crashEnv = "MXWARD_SPOOL_CRASH_DIR"

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper for TestCrash")
	}
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for {
				w, err := s.Create(ctx)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if err := writeChecksummed(w, rng, rng.IntN(256<<10)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				id, err := w.Commit(ctx, Envelope{From: "crash@x.test", Recipients: rcpts("a@x.test")})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "committed %s\n", id) // one write(2): a line is printed whole or not at all
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// writeChecksummed streams a body of n random bytes followed by a trailer line holding
// their SHA-256, in 4 KiB pieces.
func writeChecksummed(w io.Writer, rng *rand.Rand, n int) error {
	h := sha256.New()
	buf := make([]byte, 4096)
	for n > 0 {
		k := min(n, len(buf))
		for i := range buf[:k] {
			buf[i] = byte(rng.Uint32())
		}
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	_, err := fmt.Fprintf(w, "\nX-Checksum: %x\n", h.Sum(nil))
	return err
}

// verifyChecksummed checks a body written by writeChecksummed.
func verifyChecksummed(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	const trailer = len("\nX-Checksum: \n") + 2*sha256.Size
	if len(b) < trailer {
		return fmt.Errorf("body of %d bytes has no trailer", len(b))
	}
	payload, tr := b[:len(b)-trailer], string(b[len(b)-trailer:])
	want, ok := strings.CutPrefix(strings.TrimSpace(tr), "X-Checksum: ")
	if !ok {
		return fmt.Errorf("bad trailer %q", tr)
	}
	sum := sha256.Sum256(payload)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("checksum %s, trailer says %s", got, want)
	}
	return nil
}

func TestCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	deadline := time.Now().Add(12 * time.Second)
	var acknowledged []ID
	rounds := 0
	for ; rounds < 20 && time.Now().Before(deadline); rounds++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []ID, 1)
		go func() {
			var got []ID
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
					got = append(got, ID(id))
				}
			}
			lines <- got
		}()
		// Kill anywhere from start-up (recovery, open) to well into the commit loop.
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		got := <-lines
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child exited by itself: %v\n%s", rounds, err, stderr.String())
		}
		acknowledged = append(acknowledged, got...)

		s, err := Open(ctx, dir, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", rounds, err)
		}
		for _, id := range got {
			m, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("round %d: acknowledged %s lost: %v", rounds, id, err)
			}
			rc, err := s.Open(ctx, id)
			if err != nil {
				t.Fatalf("round %d: acknowledged %s has no body: %v", rounds, id, err)
			}
			fi, _ := rc.(*os.File).Stat()
			err = verifyChecksummed(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("round %d: body of %s corrupt: %v", rounds, id, err)
			}
			if fi.Size() != m.Envelope.Size {
				t.Errorf("round %d: %s is %d bytes, index says %d", rounds, id, fi.Size(), m.Envelope.Size)
			}
		}
		// Recovery left neither partial nor unindexed bodies behind.
		msgs, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if n := countBodies(t, dir); n != len(msgs) {
			t.Errorf("round %d: %d body files for %d indexed messages", rounds, n, len(msgs))
		}
		if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
			t.Errorf("round %d: %d files left in tmp/", rounds, len(es))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Every acknowledged message from every round is still there at the end.
	s := openTest(t, dir, nil)
	msgs, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[ID]bool, len(msgs))
	for _, m := range msgs {
		have[m.ID] = true
	}
	for _, id := range acknowledged {
		if !have[id] {
			t.Errorf("acknowledged %s missing at the end", id)
		}
	}
	t.Logf("%d rounds, %d acknowledged, %d indexed (the rest were in flight when killed)", rounds, len(acknowledged), len(msgs))
	if len(acknowledged) == 0 {
		t.Error("no child ever acknowledged a message; the test proved nothing")
	}
}

func countBodies(t *testing.T, dir string) int {
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "messages"), func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLargeBody streams 50 MiB and checks that the writer holds none of it in memory.
func TestLargeBody(t *testing.T) {
	const size, chunkSize = 50 << 20, 1 << 20
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)

	rng := rand.NewChaCha8([32]byte{'m', 'x', 'w', 'a', 'r', 'd'})
	chunk := make([]byte, chunkSize)
	h := sha256.New()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for written := 0; written < size; written += chunkSize {
		rng.Read(chunk)
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	id, err := w.Commit(ctx, Envelope{Recipients: rcpts("big@x.test")})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("writing a %d MiB body allocated %d MiB", size>>20, alloc>>20)
	}
	want := h.Sum(nil)

	if m := mustGet(t, s, id); m.Envelope.Size != size {
		t.Errorf("Size = %d, want %d", m.Envelope.Size, size)
	}
	rc, err := s.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("read back %d bytes with a different hash", n)
	}
}

// TestCommitDelay checks that a commit delay gathers writes that arrive apart into
// one transaction.
func TestCommitDelay(t *testing.T) {
	const n = 20
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{Logger: testLogger(t), CommitDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond) // staggered, not simultaneous
			if _, err := commit(s, "x", Envelope{Recipients: rcpts("a@b.test")}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("%d commits in %d transactions", st.Writes, st.Transactions)
	if st.Writes != n || st.Transactions > n/4 {
		t.Errorf("%d commits in %d transactions, want %d in at most %d", st.Writes, st.Transactions, n, n/4)
	}
}
