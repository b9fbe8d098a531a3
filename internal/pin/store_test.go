package pin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func openTest(t *testing.T, dir string, opts Options) (*Store, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

// TestObserve walks entries through their states: a step is an observation at an
// offset from the epoch, or a lookup, and each is followed by the expected state.
func TestObserve(t *testing.T) {
	type step struct {
		at      time.Duration
		observe bool   // observe a TLS delivery; else only look up
		mx      string // default mx1.example.net
		want    State  // state after the step, at its time
		count   int    // Count after the step (0: not checked)
		counted int
	}
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{
			// One lucky session does not pin; two an hour apart do.
			name: "defaults",
			steps: []step{
				{at: 0, observe: true, want: StateObserved, count: 1, counted: 1},
				{at: 10 * time.Minute, observe: true, want: StateObserved, count: 2, counted: 1},
				{at: 59 * time.Minute, observe: true, want: StateObserved, count: 3, counted: 1},
				{at: time.Hour, observe: true, want: StatePinned, count: 4, counted: 2},
				{at: 2 * time.Hour, want: StatePinned},
			},
		},
		{
			// A pin lasts max_age after its last refresh, and each refresh extends it.
			name: "refresh and expiry",
			opts: Options{MaxAge: 48 * time.Hour, MinObservations: 2, MinInterval: time.Minute},
			steps: []step{
				{at: 0, observe: true, want: StateObserved},
				{at: time.Minute, observe: true, want: StatePinned},
				{at: 40 * time.Hour, observe: true, want: StatePinned, count: 3, counted: 3},
				{at: 87 * time.Hour, want: StatePinned},
				{at: 88 * time.Hour, want: StateExpired},
				// After expiry the domain starts over: observed, not pinned.
				{at: 90 * time.Hour, observe: true, want: StateObserved, count: 1, counted: 1},
			},
		},
		{
			// An observed entry that is never confirmed expires too.
			name: "observed expires",
			opts: Options{MaxAge: time.Hour, MinObservations: 3, MinInterval: time.Minute},
			steps: []step{
				{at: 0, observe: true, want: StateObserved},
				{at: 2 * time.Minute, observe: true, want: StateObserved, counted: 2},
				{at: 62 * time.Minute, want: StateExpired},
				{at: 63 * time.Minute, observe: true, want: StateObserved, count: 1, counted: 1},
			},
		},
		{
			name: "one observation pins when asked to",
			opts: Options{MinObservations: 1},
			steps: []step{
				{at: 0, observe: true, want: StatePinned, count: 1, counted: 1},
			},
		},
		{
			// A clock that steps back neither writes times out of order nor loses a
			// pin: the delivery is counted, the times and the expiry stay.
			name: "clock backwards",
			opts: Options{MaxAge: 2 * time.Hour, MinInterval: time.Minute},
			steps: []step{
				{at: time.Hour, observe: true, want: StateObserved},
				{at: 2 * time.Hour, observe: true, want: StatePinned, count: 2, counted: 2},
				{at: 0, observe: true, want: StatePinned, count: 3, counted: 2},
				{at: 4*time.Hour - time.Second, want: StatePinned},
				{at: 4 * time.Hour, want: StateExpired},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, t.TempDir(), tt.opts)
			for i, st := range tt.steps {
				now := epoch.Add(st.at)
				if st.observe {
					mx := st.mx
					if mx == "" {
						mx = "MX1.Example.NET."
					}
					if _, err := s.Observe(context.Background(), "Example.NET", Observation{MXHost: mx, TLSVersion: "TLSv1.3"}, now); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
				e, live, err := s.Lookup("example.net.", now)
				if err != nil {
					t.Fatalf("step %d: lookup: %v", i, err)
				}
				if got := e.State(now); got != st.want || live != (st.want == StatePinned) {
					t.Fatalf("step %d: state %s live %v, want %s (%+v)", i, got, live, st.want, e)
				}
				if st.count != 0 && e.Count != st.count {
					t.Errorf("step %d: count %d, want %d", i, e.Count, st.count)
				}
				if st.counted != 0 && e.Counted != st.counted {
					t.Errorf("step %d: counted %d, want %d", i, e.Counted, st.counted)
				}
				if e.Domain != "example.net" || !slices.Equal(e.MXHosts, []string{"mx1.example.net"}) {
					t.Errorf("step %d: domain %q mx %v, want normalised names", i, e.Domain, e.MXHosts)
				}
			}
		})
	}
}

// TestEntryRecord checks what an entry records: first and last seen, the pin time, the
// expiry, and the hosts and versions seen (each once, most recent last).
func TestEntryRecord(t *testing.T) {
	s, logs := openTest(t, t.TempDir(), Options{MaxAge: 24 * time.Hour})
	ctx := context.Background()
	obs := []Observation{
		{"mx1.example.net", "TLSv1.2"},
		{"mx2.example.net", "TLSv1.3"},
		{"mx1.example.net", "TLSv1.3"},
	}
	for i, o := range obs {
		if _, err := s.Observe(ctx, "example.net", o, epoch.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	e, live, err := s.Lookup("example.net", epoch.Add(3*time.Hour))
	if err != nil || !live {
		t.Fatalf("lookup: live %v, %v", live, err)
	}
	want := Entry{Domain: "example.net", FirstSeen: epoch, LastSeen: epoch.Add(2 * time.Hour), Count: 3, Counted: 3,
		LastCounted: epoch.Add(2 * time.Hour), Pinned: epoch.Add(time.Hour), Expires: epoch.Add(26 * time.Hour),
		MXHosts: []string{"mx2.example.net", "mx1.example.net"}, TLSVersions: []string{"TLSv1.2", "TLSv1.3"}}
	if got, _ := json.Marshal(e); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("entry\n got %s\nwant %s", got, must(json.Marshal(want)))
	}
	// Creating the pin is logged once, with stable field names.
	if n := strings.Count(logs.String(), `"msg":"tls pin created"`); n != 1 {
		t.Errorf("%d 'tls pin created' records, want 1:\n%s", n, logs)
	}
	for _, f := range []string{`"domain":"example.net"`, `"count":2`, `"expires":`, `"mx":"mx1.example.net mx2.example.net"`} {
		if !strings.Contains(logs.String(), f) {
			t.Errorf("log lacks %s:\n%s", f, logs)
		}
	}
	// A lowered max_age applies to entries written before.
	s2, _ := openTest(t, s.Dir(), Options{MaxAge: time.Hour})
	e2, live, _ := s2.Lookup("example.net", epoch.Add(3*time.Hour))
	if live || !e2.Expires.Equal(epoch.Add(3*time.Hour)) {
		t.Errorf("after max_age 1h: live %v expires %v, want expired at +3h", live, e2.Expires)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestRememberBounded: a domain rotating host names cannot grow its entry without bound.
func TestRememberBounded(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), Options{})
	for i := range 40 {
		mx := "mx" + strings.Repeat("a", i%30+1) + ".example.net"
		if _, err := s.Observe(context.Background(), "example.net", Observation{mx, "TLSv1.3"}, epoch); err != nil {
			t.Fatal(err)
		}
	}
	e, _, _ := s.Lookup("example.net", epoch)
	if len(e.MXHosts) != maxRemembered || e.Count != 40 {
		t.Errorf("%d hosts, count %d; want %d, 40", len(e.MXHosts), e.Count, maxRemembered)
	}
}

// TestForgetAndList: the operator removes an entry; listing shows the rest, sorted,
// expired ones included so that the operator sees them.
func TestForgetAndList(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), Options{MinObservations: 1, MaxAge: time.Hour})
	ctx := context.Background()
	for _, d := range []string{"b.example", "a.example", "c.example"} {
		if _, err := s.Observe(ctx, d, Observation{"mx." + d, "TLSv1.3"}, epoch); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := s.Forget(ctx, "B.example.")
	if err != nil || !ok {
		t.Fatalf("forget: %v %v", ok, err)
	}
	if ok, err := s.Forget(ctx, "b.example"); err != nil || ok {
		t.Errorf("forget again: %v %v, want false, nil", ok, err)
	}
	if _, live, _ := s.Lookup("b.example", epoch); live {
		t.Error("b.example still pinned after forget")
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Domain)
	}
	if !slices.Equal(names, []string{"a.example", "c.example"}) {
		t.Errorf("list %v", names)
	}
	if list[0].State(epoch.Add(2*time.Hour)) != StateExpired {
		t.Errorf("state %s, want expired", list[0].State(epoch.Add(2*time.Hour)))
	}
	if _, err := s.Forget(ctx, "../etc"); err == nil {
		t.Error("forget ../etc: no error")
	}
}

// TestCorruptedIgnored: a damaged or hand-edited file enforces nothing, is reported in
// the log, and the next TLS delivery replaces it.
func TestCorruptedIgnored(t *testing.T) {
	dir := t.TempDir()
	s, logs := openTest(t, dir, Options{MinObservations: 1})
	good := must(json.Marshal(Entry{Domain: "example.net", FirstSeen: epoch, LastSeen: epoch, Count: 1, Counted: 1,
		LastCounted: epoch, Pinned: epoch, Expires: epoch.Add(time.Hour), MXHosts: []string{"mx.example.net"}, TLSVersions: []string{"TLSv1.3"}}))
	for _, tc := range []struct{ name, file, data string }{
		{"truncated", "example.net.json", string(good[:len(good)/2])},
		{"other domain", "example.net.json", strings.Replace(string(good), `"example.net"`, `"example.org"`, 1)},
		{"pinned before seen", "example.net.json", strings.Replace(string(good), `"pinned":"2026-11-02T10:00:00Z"`, `"pinned":"2020-01-01T00:00:00Z"`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, live, err := s.Lookup("example.net", epoch)
			if err != nil || live {
				t.Fatalf("lookup of a damaged file: live %v err %v, want no pin", live, err)
			}
			if !strings.Contains(logs.String(), "tls pin entry") {
				t.Errorf("no warning logged: %s", logs)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("list shows %d entries", len(list))
			}
			if _, err := s.Observe(context.Background(), "example.net", Observation{"mx.example.net", "TLSv1.3"}, epoch); err != nil {
				t.Fatal(err)
			}
			if e, live, _ := s.Lookup("example.net", epoch); !live || e.Count != 1 {
				t.Errorf("after a fresh observation: live %v count %d", live, e.Count)
			}
		})
	}
	// The untouched original must decode, or the cases above test nothing.
	if _, err := DecodeEntry(good); err != nil {
		t.Fatalf("good entry: %v", err)
	}
}

// TestObserveRejects: names that are not host names never reach the directory.
func TestObserveRejects(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), Options{})
	for _, tc := range []struct{ domain, mx, version string }{
		{"../x", "mx.example", "TLSv1.3"},
		{".hidden", "mx.example", "TLSv1.3"},
		{"a/b", "mx.example", "TLSv1.3"},
		{"[192.0.2.1]", "", "TLSv1.3"},
		{"example.net", "mx/../x", "TLSv1.3"},
		{"example.net", "mx.example", ""},
		{"example.net", "mx.example", "SSLv3"},
	} {
		if _, err := s.Observe(context.Background(), tc.domain, Observation{tc.mx, tc.version}, epoch); err == nil {
			t.Errorf("Observe(%q, %q, %q): no error", tc.domain, tc.mx, tc.version)
		}
	}
	if des, _ := os.ReadDir(s.Dir()); len(des) > 1 { // the lock file at most
		t.Errorf("directory has %d files", len(des))
	}
}

// TestConcurrentStores: two stores on one directory (the daemon and the CLI) updating
// the same entry at once lose no observation: the directory lock serialises them.
func TestConcurrentStores(t *testing.T) {
	dir := t.TempDir()
	a, _ := openTest(t, dir, Options{})
	b, _ := openTest(t, dir, Options{})
	var wg sync.WaitGroup
	for k, s := range []*Store{a, b} {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					// A new MX host each time: every observation is written.
					mx := fmt.Sprintf("mx%d-%d-%d.example.net", k, g, i)
					if _, err := s.Observe(context.Background(), "example.net", Observation{mx, "TLSv1.3"}, epoch); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	e, _, err := a.Lookup("example.net", epoch)
	if err != nil || e.Count != 80 {
		t.Errorf("count %d (%v), want 80", e.Count, err)
	}
}

// TestObserveContext: a caller that gives up while another process holds the lock
// gets an error, not a hang.
func TestObserveContext(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, Options{})
	l, err := lockDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Observe(ctx, "example.net", Observation{"mx.example.net", "TLSv1.3"}, epoch); err == nil {
		t.Error("Observe under a held lock returned no error")
	}
}

// TestObserveCoalesces: a busy destination is not written on every delivery. Within a
// minute of the last write, deliveries that change nothing but the count stay in
// memory; the next write includes them; anything that moves the entry is written at
// once; forgetting drops them.
func TestObserveCoalesces(t *testing.T) {
	s, _ := openTest(t, t.TempDir(), Options{MinInterval: time.Hour})
	ctx := context.Background()
	obs := Observation{"mx.example.net", "TLSv1.3"}
	stored := func() Entry {
		t.Helper()
		e, err := DecodeEntry(must(os.ReadFile(filepath.Join(s.Dir(), "example.net.json"))))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for i := range 50 {
		e, err := s.Observe(ctx, "example.net", obs, epoch.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if e.Count != i+1 {
			t.Fatalf("observation %d: returned count %d", i, e.Count)
		}
	}
	if e := stored(); e.Count != 1 || !e.LastSeen.Equal(epoch) {
		t.Errorf("after 50 deliveries within a minute: stored count %d last seen %v, want 1 at the first", e.Count, e.LastSeen)
	}
	// A new TLS version is written at once, with the deliveries counted meanwhile.
	if _, err := s.Observe(ctx, "example.net", Observation{"mx.example.net", "TLSv1.2"}, epoch.Add(51*time.Second)); err != nil {
		t.Fatal(err)
	}
	if e := stored(); e.Count != 51 || len(e.TLSVersions) != 2 {
		t.Errorf("after a new TLS version: %+v, want count 51", e)
	}
	// A minute after the last write, the next delivery is written.
	if _, err := s.Observe(ctx, "example.net", obs, epoch.Add(52*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Observe(ctx, "example.net", obs, epoch.Add(111*time.Second)); err != nil {
		t.Fatal(err)
	}
	if e := stored(); e.Count != 53 || !e.LastSeen.Equal(epoch.Add(111*time.Second)) {
		t.Errorf("a minute later: %+v, want count 53", e)
	}
	// A delivery that counts towards pinning is written at once: it pins.
	if _, err := s.Observe(ctx, "example.net", obs, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e := stored(); e.Pinned.IsZero() {
		t.Errorf("an hour later: %+v, want pinned", e)
	}
	// Counts in memory do not survive forget.
	if _, err := s.Observe(ctx, "example.net", obs, epoch.Add(time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forget(ctx, "example.net"); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Observe(ctx, "example.net", obs, epoch.Add(time.Hour+2*time.Second)); err != nil || e.Count != 1 || !e.Pinned.IsZero() {
		t.Errorf("after forget: %+v %v, want a new entry", e, err)
	}
}
