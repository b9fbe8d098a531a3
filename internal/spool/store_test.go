package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock that only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testLogger sends the spool's log to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func openTest(t testing.TB, dir string, clock *fakeClock) *FileStore {
	t.Helper()
	opts := Options{Logger: testLogger(t)}
	if clock != nil {
		opts.Now = clock.Now
	}
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func commitBody(t testing.TB, s Store, body string, env Envelope) ID {
	t.Helper()
	id, err := commit(s, body, env)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// commit is commitBody for goroutines other than the test's.
func commit(s Store, body string, env Envelope) (ID, error) {
	ctx := context.Background()
	w, err := s.Create(ctx)
	if err != nil {
		return "", fmt.Errorf("Create: %w", err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		w.Abort()
		return "", fmt.Errorf("Write: %w", err)
	}
	id, err := w.Commit(ctx, env)
	if err != nil {
		return "", fmt.Errorf("Commit: %w", err)
	}
	return id, nil
}

func rcpts(addrs ...string) []Recipient {
	var rs []Recipient
	for _, a := range addrs {
		rs = append(rs, Recipient{Addr: a})
	}
	return rs
}

func readBody(t testing.TB, s Store, id ID) string {
	t.Helper()
	rc, err := s.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("Open body %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body %s: %v", id, err)
	}
	return string(b)
}

func mustGet(t testing.TB, s Store, id ID) *Message {
	t.Helper()
	m, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return m
}

// rcptStates summarizes recipients as "addr=state".
func rcptStates(rs []Recipient) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Addr+"="+string(r.State))
	}
	return out
}

func ids(msgs []Message) []ID {
	var out []ID
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestCommitGet(t *testing.T) {
	clock := newClock()
	s := openTest(t, t.TempDir(), clock)
	received := clock.Now().Add(-time.Second)
	env := Envelope{
		From: "alice@example.org",
		Recipients: []Recipient{
			{Addr: "bob@Example.COM", Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;bob@example.com"},
			{Addr: "carol@local.test", Local: true, State: StateDelivered, Attempts: 7}, // state is ignored
		},
		BodyType:   Body8BitMIME,
		SMTPUTF8:   true,
		RequireTLS: true,
		RET:        "HDRS",
		EnvID:      "env-1",
		Size:       12345, // replaced by the stored size
		ReceivedAt: received,
		ClientIP:   "127.0.0.1",
		Helo:       "client.example.org",
		AuthUser:   "alice",
		Listener:   "submission",
	}
	body := "Subject: hi\r\n\r\nhello\r\n"
	id := commitBody(t, s, body, env)
	if !validID(id) {
		t.Fatalf("Commit returned malformed id %q", id)
	}

	m := mustGet(t, s, id)
	want := env
	want.Size = int64(len(body))
	want.Recipients = []Recipient{
		{Addr: "bob@Example.COM", Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;bob@example.com",
			State: StateQueued, NextAttempt: clock.Now()},
		{Addr: "carol@local.test", Local: true, State: StateQueued, NextAttempt: clock.Now()},
	}
	if err := equalEnvelope(m.Envelope, want); err != nil {
		t.Error(err)
	}
	if m.ID != id || len(m.Attempts) != 0 {
		t.Errorf("Get = id %s, %d attempts; want %s, 0", m.ID, len(m.Attempts), id)
	}
	if got := readBody(t, s, id); got != body {
		t.Errorf("body = %q, want %q", got, body)
	}

	// A zero ReceivedAt is filled in from the clock.
	id2 := commitBody(t, s, "x", Envelope{Recipients: rcpts("d@example.net")})
	if got := mustGet(t, s, id2).Envelope.ReceivedAt; !got.Equal(clock.Now()) {
		t.Errorf("default ReceivedAt = %v, want %v", got, clock.Now())
	}
	if id2 <= id {
		t.Errorf("ids not increasing: %s then %s", id, id2)
	}
}

// equalEnvelope compares envelopes, times with Equal.
func equalEnvelope(got, want Envelope) error {
	gr, wr := got.Recipients, want.Recipients
	if !got.ReceivedAt.Equal(want.ReceivedAt) {
		return fmt.Errorf("ReceivedAt = %v, want %v", got.ReceivedAt, want.ReceivedAt)
	}
	got.Recipients, want.Recipients = nil, nil
	got.ReceivedAt, want.ReceivedAt = time.Time{}, time.Time{}
	if got.From != want.From || got.BodyType != want.BodyType || got.SMTPUTF8 != want.SMTPUTF8 ||
		got.RequireTLS != want.RequireTLS || got.RET != want.RET || got.EnvID != want.EnvID ||
		got.Size != want.Size || got.ClientIP != want.ClientIP || got.Helo != want.Helo ||
		got.AuthUser != want.AuthUser || got.Listener != want.Listener {
		return fmt.Errorf("envelope = %+v, want %+v", got, want)
	}
	if len(gr) != len(wr) {
		return fmt.Errorf("%d recipients, want %d", len(gr), len(wr))
	}
	for i := range gr {
		g, w := gr[i], wr[i]
		if !g.NextAttempt.Equal(w.NextAttempt) {
			return fmt.Errorf("recipient %d NextAttempt = %v, want %v", i, g.NextAttempt, w.NextAttempt)
		}
		g.NextAttempt, w.NextAttempt = time.Time{}, time.Time{}
		if g != w {
			return fmt.Errorf("recipient %d = %+v, want %+v", i, g, w)
		}
	}
	return nil
}

func TestWriterLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	tmpCount := func() int {
		es, err := os.ReadDir(filepath.Join(dir, "tmp"))
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	tests := []struct {
		name string
		run  func(w Writer) error
	}{
		{"abort", func(w Writer) error {
			if err := w.Abort(); err != nil {
				return err
			}
			if _, err := w.Write([]byte("more")); err == nil {
				return errors.New("Write after Abort succeeded")
			}
			if _, err := w.Commit(ctx, Envelope{Recipients: rcpts("a@b")}); err == nil {
				return errors.New("Commit after Abort succeeded")
			}
			return nil
		}},
		{"no recipients", func(w Writer) error {
			if _, err := w.Commit(ctx, Envelope{From: "a@b"}); err == nil {
				return errors.New("Commit without recipients succeeded")
			}
			return w.Abort() // harmless after a failed Commit
		}},
		{"cancelled context", func(w Writer) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := w.Commit(cctx, Envelope{Recipients: rcpts("a@b")}); !errors.Is(err, context.Canceled) {
				return fmt.Errorf("Commit with cancelled context = %v, want context.Canceled", err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := s.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "partial body")
			if err := tt.run(w); err != nil {
				t.Fatal(err)
			}
			if n := tmpCount(); n != 0 {
				t.Errorf("%d files left in tmp/", n)
			}
		})
	}
	if msgs, err := s.List(ctx, Filter{}); err != nil || len(msgs) != 0 {
		t.Errorf("List = %v, %v; want nothing queued", ids(msgs), err)
	}
	// The cancelled commit left no body behind either.
	var bodies int
	filepath.WalkDir(filepath.Join(dir, "messages"), func(_ string, d os.DirEntry, _ error) error {
		if d != nil && d.Type().IsRegular() {
			bodies++
		}
		return nil
	})
	if bodies != 0 {
		t.Errorf("%d body files left in messages/", bodies)
	}
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	type want struct {
		gone     bool
		states   []string
		attempts int // history rows
	}
	tests := []struct {
		name     string
		rcpts    []string
		before   func(s *FileStore, id ID) error
		outcomes []Outcome
		wantErr  error // errors.Is target; nil for success
		errText  string
		want     want
	}{
		{
			name:     "all delivered removes message",
			rcpts:    []string{"a@x.test", "b@y.test"},
			outcomes: []Outcome{delivered("a@x.test"), delivered("b@y.test")},
			want:     want{gone: true},
		},
		{
			name:     "one bounced one deferred",
			rcpts:    []string{"a@x.test", "b@y.test"},
			outcomes: []Outcome{bounced("a@x.test"), deferred("b@y.test", time.Hour)},
			want:     want{states: []string{"a@x.test=bounced", "b@y.test=queued"}, attempts: 2},
		},
		{
			name:     "bounced and delivered are both final",
			rcpts:    []string{"a@x.test", "b@y.test"},
			outcomes: []Outcome{bounced("a@x.test"), delivered("b@y.test")},
			want:     want{gone: true},
		},
		{
			name:     "deferral keeps a hold",
			rcpts:    []string{"a@x.test"},
			before:   func(s *FileStore, id ID) error { return s.Hold(ctx, id) },
			outcomes: []Outcome{deferred("a@x.test", time.Hour)},
			want:     want{states: []string{"a@x.test=held"}, attempts: 1},
		},
		{
			name:     "delivery ends a hold",
			rcpts:    []string{"a@x.test", "b@y.test"},
			before:   func(s *FileStore, id ID) error { return s.Hold(ctx, id) },
			outcomes: []Outcome{delivered("a@x.test")},
			want:     want{states: []string{"a@x.test=delivered", "b@y.test=held"}, attempts: 1},
		},
		{
			name:  "final recipient keeps its state",
			rcpts: []string{"a@x.test", "b@y.test"},
			before: func(s *FileStore, id ID) error {
				return s.Record(ctx, id, []Outcome{delivered("a@x.test")})
			},
			outcomes: []Outcome{bounced("a@x.test")},
			want:     want{states: []string{"a@x.test=delivered", "b@y.test=queued"}, attempts: 2},
		},
		{
			name:     "unknown recipient changes nothing",
			rcpts:    []string{"a@x.test", "b@y.test"},
			outcomes: []Outcome{delivered("a@x.test"), delivered("nobody@x.test")},
			wantErr:  ErrNotFound,
			want:     want{states: []string{"a@x.test=queued", "b@y.test=queued"}},
		},
		{
			name:     "unknown result",
			rcpts:    []string{"a@x.test"},
			outcomes: []Outcome{{Attempt: Attempt{Rcpt: "a@x.test", Result: "lost"}}},
			errText:  "unknown result",
			want:     want{states: []string{"a@x.test=queued"}},
		},
		{
			name:     "deleted message",
			rcpts:    []string{"a@x.test"},
			before:   func(s *FileStore, id ID) error { return s.Delete(ctx, id) },
			outcomes: []Outcome{delivered("a@x.test")},
			wantErr:  ErrNotFound,
			want:     want{gone: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			dir := t.TempDir()
			s := openTest(t, dir, clock)
			id := commitBody(t, s, "body", Envelope{Recipients: rcpts(tt.rcpts...)})
			if tt.before != nil {
				if err := tt.before(s, id); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			err := s.Record(ctx, id, tt.outcomes)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Record = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Record = %v, want error containing %q", err, tt.errText)
				}
			case err != nil:
				t.Fatalf("Record: %v", err)
			}

			m, err := s.Get(ctx, id)
			if tt.want.gone {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get after final outcome = %v, want ErrNotFound", err)
				}
				if _, err := s.Open(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Open body after final outcome = %v, want ErrNotFound", err)
				}
				if _, err := os.Stat(s.bodyPath(id)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("body file still there: %v", err)
				}
				if msgs, _ := s.List(ctx, Filter{}); len(msgs) != 0 {
					t.Errorf("List shows %v after final outcome", ids(msgs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rcptStates(m.Envelope.Recipients); !slices.Equal(got, tt.want.states) {
				t.Errorf("states = %v, want %v", got, tt.want.states)
			}
			if len(m.Attempts) != tt.want.attempts {
				t.Errorf("%d attempts in history, want %d", len(m.Attempts), tt.want.attempts)
			}
		})
	}
}

func delivered(rcpt string) Outcome {
	return Outcome{Attempt: Attempt{Rcpt: rcpt, Result: "delivered", Reply: "250 ok"}}
}

func bounced(rcpt string) Outcome {
	return Outcome{Attempt: Attempt{Rcpt: rcpt, Result: "bounced", Reply: "550 no such user"}}
}

// deferred is relative to newClock's start.
func deferred(rcpt string, after time.Duration) Outcome {
	return Outcome{
		Attempt:     Attempt{Rcpt: rcpt, Result: "deferred", Reply: "451 try later"},
		NextAttempt: newClock().Now().Add(after),
	}
}

func TestRecordDetails(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openTest(t, t.TempDir(), clock)
	id := commitBody(t, s, "body", Envelope{Recipients: rcpts("a@x.test", "b@y.test")})

	at := clock.Now().Add(time.Minute)
	next := clock.Now().Add(time.Hour)
	err := s.Record(ctx, id, []Outcome{
		{Attempt: Attempt{Rcpt: "a@x.test", Time: at, Result: "bounced", Reply: "550 5.1.1 no such user",
			Fields: map[string]string{"mx": "mx.x.test", "ip": "127.0.0.1", "tls": "TLSv1.3"}}},
		{Attempt: Attempt{Rcpt: "b@y.test", Result: "deferred", Reply: "451 4.7.1 greylisted"}, NextAttempt: next},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, s, id)
	a, b := m.Envelope.Recipients[0], m.Envelope.Recipients[1]
	if a.State != StateBounced || a.Attempts != 1 || a.LastReply != "550 5.1.1 no such user" {
		t.Errorf("bounced recipient = %+v", a)
	}
	if b.State != StateQueued || b.Attempts != 1 || b.LastReply != "451 4.7.1 greylisted" || !b.NextAttempt.Equal(next) {
		t.Errorf("deferred recipient = %+v, want next attempt %v", b, next)
	}
	if len(m.Attempts) != 2 {
		t.Fatalf("history = %+v, want 2 attempts", m.Attempts)
	}
	h := m.Attempts[0]
	if h.Rcpt != "a@x.test" || !h.Time.Equal(at) || h.Result != "bounced" || h.Fields["mx"] != "mx.x.test" ||
		h.Fields["tls"] != "TLSv1.3" || len(h.Fields) != 3 {
		t.Errorf("first attempt = %+v", h)
	}
	if h := m.Attempts[1]; !h.Time.Equal(clock.Now()) || h.Fields != nil {
		t.Errorf("second attempt = %+v, want time from the clock and no fields", h)
	}

	// The deferred recipient is due again at its next attempt, alone.
	for _, tc := range []struct {
		now  time.Time
		want []string
	}{
		{clock.Now(), nil},
		{next.Add(-time.Nanosecond), nil},
		{next, []string{"b@y.test=queued"}},
	} {
		due, err := s.Due(ctx, tc.now, false, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range due {
			got = append(got, rcptStates(m.Envelope.Recipients)...)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Due(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}

	// The second attempt counts on.
	if err := s.Record(ctx, id, []Outcome{deferred("b@y.test", 2*time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, id).Envelope.Recipients[1]; r.Attempts != 2 {
		t.Errorf("attempts after second deferral = %d, want 2", r.Attempts)
	}

	// A retry time beyond what the index can store is clamped, not wrapped around
	// into the past.
	far := Outcome{Attempt: Attempt{Rcpt: "b@y.test", Result: "deferred"}, NextAttempt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Record(ctx, id, []Outcome{far}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, id).Envelope.Recipients[1]; r.NextAttempt.Year() != 2262 {
		t.Errorf("next attempt in year 3000 stored as %v", r.NextAttempt)
	}
	if due, err := s.Due(ctx, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), false, 10); err != nil || len(due) != 0 {
		t.Errorf("Due before the clamped time = %v, %v", due, err)
	}
}

func TestDue(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openTest(t, t.TempDir(), clock)
	t0 := clock.Now()

	// m1 is remote, arrives first, but is deferred an hour.
	m1 := commitBody(t, s, "1", Envelope{Recipients: rcpts("a@remote.test")})
	clock.Add(time.Second)
	// m2 mixes a local and a remote recipient.
	m2 := commitBody(t, s, "2", Envelope{Recipients: []Recipient{
		{Addr: "local@ours.test", Local: true}, {Addr: "b@remote.test"}}})
	clock.Add(time.Second)
	m3 := commitBody(t, s, "3", Envelope{Recipients: rcpts("c@remote.test", "d@remote.test")})
	clock.Add(time.Second)
	m4 := commitBody(t, s, "4", Envelope{Recipients: rcpts("e@remote.test")})
	if err := s.Record(ctx, m1, []Outcome{deferred("a@remote.test", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, m4); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		now   time.Time
		local bool
		limit int
		want  []string // id:addr,addr
	}{
		{"before anything", t0.Add(-time.Second), false, 10, nil},
		{"at arrival of first", t0, false, 10, nil}, // m1 deferred
		{"remote now", t0.Add(10 * time.Second), false, 10, []string{"m2:b@remote.test", "m3:c@remote.test,d@remote.test"}},
		{"local now", t0.Add(10 * time.Second), true, 10, []string{"m2:local@ours.test"}},
		{"limit counts messages", t0.Add(10 * time.Second), false, 1, []string{"m2:b@remote.test"}},
		{"no limit", t0.Add(10 * time.Second), false, 0, []string{"m2:b@remote.test", "m3:c@remote.test,d@remote.test"}},
		{"deferred comes due, earlier due first", t0.Add(2 * time.Hour), false, 10,
			[]string{"m2:b@remote.test", "m3:c@remote.test,d@remote.test", "m1:a@remote.test"}},
	}
	names := map[ID]string{m1: "m1", m2: "m2", m3: "m3", m4: "m4"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, err := s.Due(ctx, tt.now, tt.local, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range due {
				var addrs []string
				for _, r := range m.Envelope.Recipients {
					addrs = append(addrs, r.Addr)
					if r.State != StateQueued || r.Local != tt.local {
						t.Errorf("%s: Due returned recipient %+v", names[m.ID], r)
					}
				}
				got = append(got, names[m.ID]+":"+strings.Join(addrs, ","))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Due = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openTest(t, t.TempDir(), clock)

	m1 := commitBody(t, s, "1", Envelope{Recipients: rcpts("a@Example.com", "b@other.test")})
	m2 := commitBody(t, s, "2", Envelope{Recipients: rcpts("c@other.test")})
	m3 := commitBody(t, s, "3", Envelope{Recipients: rcpts("d@example.com", "e@third.test")})
	m4 := commitBody(t, s, "4", Envelope{Recipients: rcpts("f@example.com")})
	m5 := commitBody(t, s, "5", Envelope{Recipients: rcpts("g@gone.test")})
	if err := s.Hold(ctx, m2); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, m3, []Outcome{delivered("d@example.com")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, m4, []Outcome{bounced("f@example.com")}); err != nil { // finished
		t.Fatal(err)
	}
	if err := s.Record(ctx, m5, []Outcome{delivered("g@gone.test")}); err != nil { // finished
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    Filter
		want []ID
	}{
		{"any open", Filter{}, []ID{m1, m2, m3}},
		{"limit", Filter{Limit: 2}, []ID{m1, m2}},
		{"queued", Filter{State: StateQueued}, []ID{m1, m3}},
		{"held", Filter{State: StateHeld}, []ID{m2}},
		{"delivered but not finished", Filter{State: StateDelivered}, []ID{m3}},
		{"bounced", Filter{State: StateBounced}, nil},
		{"domain any case", Filter{Domain: "EXAMPLE.com"}, []ID{m1}}, // m3's example.com recipient is final
		{"domain with final state", Filter{Domain: "example.com", State: StateDelivered}, []ID{m3}},
		{"domain held", Filter{Domain: "other.test", State: StateHeld}, []ID{m2}},
		{"domain any open", Filter{Domain: "other.test"}, []ID{m1, m2}},
		{"domain limit", Filter{Domain: "other.test", Limit: 1}, []ID{m1}},
		{"unknown domain", Filter{Domain: "nowhere.test"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(msgs); !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	// Listed messages carry all their recipients, final ones included.
	msgs, err := s.List(ctx, Filter{State: StateDelivered})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("List = %v, %v", msgs, err)
	}
	want := []string{"d@example.com=delivered", "e@third.test=queued"}
	if got := rcptStates(msgs[0].Envelope.Recipients); !slices.Equal(got, want) {
		t.Errorf("recipients = %v, want %v", got, want)
	}
}

func TestHoldReleaseDelete(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ops     func(s *FileStore, id ID, clock *fakeClock) error
		want    []string // recipient states; nil when the message is gone
		wantDue bool     // due at the clock's final time
	}{
		{
			name: "hold",
			ops:  func(s *FileStore, id ID, _ *fakeClock) error { return s.Hold(ctx, id) },
			want: []string{"a@x.test=delivered", "b@x.test=held", "c@x.test=held"},
		},
		{
			name: "hold then release",
			ops: func(s *FileStore, id ID, clock *fakeClock) error {
				if err := s.Hold(ctx, id); err != nil {
					return err
				}
				clock.Add(time.Minute)
				return s.Release(ctx, id)
			},
			want:    []string{"a@x.test=delivered", "b@x.test=queued", "c@x.test=queued"},
			wantDue: true,
		},
		{
			name: "release makes a deferred recipient due now",
			ops: func(s *FileStore, id ID, clock *fakeClock) error {
				if err := s.Record(ctx, id, []Outcome{deferred("b@x.test", 24*time.Hour)}); err != nil {
					return err
				}
				clock.Add(time.Minute)
				return s.Release(ctx, id)
			},
			want:    []string{"a@x.test=delivered", "b@x.test=queued", "c@x.test=queued"},
			wantDue: true,
		},
		{
			name: "delete",
			ops:  func(s *FileStore, id ID, _ *fakeClock) error { return s.Delete(ctx, id) },
		},
		{
			name: "delete held",
			ops: func(s *FileStore, id ID, _ *fakeClock) error {
				if err := s.Hold(ctx, id); err != nil {
					return err
				}
				return s.Delete(ctx, id)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			s := openTest(t, t.TempDir(), clock)
			id := commitBody(t, s, "body", Envelope{Recipients: rcpts("a@x.test", "b@x.test", "c@x.test")})
			// Push c's retry into the future and finish a, so that ops see mixed states.
			if err := s.Record(ctx, id, []Outcome{delivered("a@x.test"), deferred("c@x.test", time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := tt.ops(s, id, clock); err != nil {
				t.Fatal(err)
			}
			m, err := s.Get(ctx, id)
			if tt.want == nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get after delete = %v, want ErrNotFound", err)
				}
				if _, err := s.Open(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Open after delete = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rcptStates(m.Envelope.Recipients); !slices.Equal(got, tt.want) {
				t.Errorf("states = %v, want %v", got, tt.want)
			}
			due, err := s.Due(ctx, clock.Now(), false, 10)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantDue {
				if len(due) != 1 || len(due[0].Envelope.Recipients) != 2 {
					t.Errorf("Due = %+v, want b and c due", due)
				}
				for _, r := range m.Envelope.Recipients[1:] {
					if !r.NextAttempt.Equal(clock.Now()) {
						t.Errorf("%s next attempt = %v, want %v", r.Addr, r.NextAttempt, clock.Now())
					}
				}
			} else if len(due) != 0 {
				t.Errorf("held message is due: %+v", due)
			}
		})
	}
}

func TestUnknownID(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	real := commitBody(t, s, "x", Envelope{Recipients: rcpts("a@b.test")})
	// Well-formed but absent, malformed, and path-like IDs all mean "no such message".
	for _, id := range []ID{ID(strings.Repeat("0", idLen)), "", "../../index.db", ID("../" + string(real)), ID(strings.ToUpper(string(real)))} {
		checks := map[string]error{
			"Get":     func() error { _, err := s.Get(ctx, id); return err }(),
			"Open":    func() error { _, err := s.Open(ctx, id); return err }(),
			"Record":  s.Record(ctx, id, []Outcome{delivered("a@b.test")}),
			"Hold":    s.Hold(ctx, id),
			"Release": s.Release(ctx, id),
			"Delete":  s.Delete(ctx, id),
		}
		for name, err := range checks {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s(%q) = %v, want ErrNotFound", name, id, err)
			}
		}
	}
	if _, err := s.Get(ctx, real); err != nil {
		t.Errorf("real message disturbed: %v", err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	id := commitBody(t, s, "x", Envelope{Recipients: rcpts("a@b.test")})
	pending, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(pending, "in flight")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	checks := map[string]error{
		"Close":   s.Close(),
		"Create":  func() error { _, err := s.Create(ctx); return err }(),
		"Commit":  func() error { _, err := pending.Commit(ctx, Envelope{Recipients: rcpts("a@b.test")}); return err }(),
		"Get":     func() error { _, err := s.Get(ctx, id); return err }(),
		"Open":    func() error { _, err := s.Open(ctx, id); return err }(),
		"List":    func() error { _, err := s.List(ctx, Filter{}); return err }(),
		"Due":     func() error { _, err := s.Due(ctx, time.Now(), false, 1); return err }(),
		"Record":  s.Record(ctx, id, []Outcome{delivered("a@b.test")}),
		"Hold":    s.Hold(ctx, id),
		"Release": s.Release(ctx, id),
		"Delete":  s.Delete(ctx, id),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("failed Commit left %d files in tmp/", len(es))
	}
}

// TestSharedOpen opens the spool twice, as the server and the queue command do. The
// second opener must not run recovery under the first one's feet, and each sees the
// other's writes.
func TestSharedOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	server := openTest(t, dir, nil)

	inflight, err := server.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(inflight, "being received while the queue command starts")

	cli := openTest(t, dir, nil)
	id, err := inflight.Commit(ctx, Envelope{Recipients: rcpts("a@b.test")})
	if err != nil {
		t.Fatalf("Commit after a second Open: %v", err)
	}
	if err := cli.Hold(ctx, id); err != nil {
		t.Fatalf("Hold from second opener: %v", err)
	}
	if got := rcptStates(mustGet(t, server, id).Envelope.Recipients); !slices.Equal(got, []string{"a@b.test=held"}) {
		t.Errorf("server sees %v after hold by second opener", got)
	}
	if got := readBody(t, cli, id); !strings.HasPrefix(got, "being received") {
		t.Errorf("second opener reads body %q", got)
	}
	if err := cli.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("server Get after delete by second opener = %v", err)
	}
}

func TestQueueStats(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st, err := Open(context.Background(), t.TempDir(), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if qs, err := st.QueueStats(context.Background()); err != nil || qs.Messages != 0 || !qs.Oldest.IsZero() {
		t.Fatalf("empty: %+v %v", qs, err)
	}
	for i := 0; i < 3; i++ {
		w, _ := st.Create(context.Background())
		w.Write([]byte("x\r\n"))
		if _, err := w.Commit(context.Background(), Envelope{ReceivedAt: now.Add(time.Duration(i) * time.Minute), Recipients: []Recipient{{Addr: "a@b.example"}}}); err != nil {
			t.Fatal(err)
		}
	}
	qs, err := st.QueueStats(context.Background())
	if err != nil || qs.Messages != 3 || !qs.Oldest.Equal(now) {
		t.Fatalf("stats %+v %v", qs, err)
	}
}

func TestRetryLeavesHeld(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st, err := Open(context.Background(), t.TempDir(), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	commit := func() ID {
		w, _ := st.Create(context.Background())
		w.Write([]byte("x\r\n"))
		id, err := w.Commit(context.Background(), Envelope{Recipients: []Recipient{{Addr: "a@b.example"}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	queued, held := commit(), commit()
	for _, id := range []ID{queued, held} {
		st.Record(context.Background(), id, []Outcome{{Attempt: Attempt{Rcpt: "a@b.example", Time: now, Result: "deferred"}, NextAttempt: now.Add(time.Hour)}})
	}
	st.Hold(context.Background(), held)
	if err := st.Retry(context.Background(), queued); err != nil {
		t.Fatal(err)
	}
	st.Retry(context.Background(), held)
	due, _ := st.Due(context.Background(), now, false, 0)
	if len(due) != 1 || due[0].ID != queued {
		t.Fatalf("due after retry: %+v", due)
	}
	if err := st.Retry(context.Background(), "nosuchid"); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry of unknown id: %v", err)
	}
}

// A leased message is not due until the lease ends; Record replaces the lease, and
// recipients that were not due keep their own time.
func TestLease(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st, err := Open(context.Background(), t.TempDir(), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, _ := st.Create(context.Background())
	w.Write([]byte("x\r\n"))
	id, err := w.Commit(context.Background(), Envelope{Recipients: []Recipient{{Addr: "a@b.example"}, {Addr: "c@d.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	// c@d.example was deferred to +2h before; only a@b.example is due.
	st.Record(context.Background(), id, []Outcome{{Attempt: Attempt{Rcpt: "c@d.example", Time: now, Result: "deferred"}, NextAttempt: now.Add(2 * time.Hour)}})
	if err := st.Lease(context.Background(), []ID{id}, false, now, now.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if due, _ := st.Due(context.Background(), now.Add(14*time.Minute), false, 0); len(due) != 0 {
		t.Fatalf("leased message due: %+v", due)
	}
	due, _ := st.Due(context.Background(), now.Add(15*time.Minute), false, 0)
	if len(due) != 1 || len(due[0].Envelope.Recipients) != 1 || due[0].Envelope.Recipients[0].Addr != "a@b.example" {
		t.Fatalf("after the lease: %+v", due)
	}
	m, _ := st.Get(context.Background(), id)
	for _, r := range m.Envelope.Recipients {
		if r.Addr == "c@d.example" && !r.NextAttempt.Equal(now.Add(2*time.Hour)) {
			t.Errorf("lease moved a recipient that was not due: %v", r.NextAttempt)
		}
	}
}
