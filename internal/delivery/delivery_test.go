package delivery

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/local"
	"mxward/internal/spool"
)

func TestRetrySchedule(t *testing.T) {
	r := Retry{First: 5 * time.Minute, Max: time.Hour, Lifetime: 5 * 24 * time.Hour}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 5 * time.Minute}, {2, 10 * time.Minute}, {3, 20 * time.Minute}, {4, 40 * time.Minute},
		{5, time.Hour}, {50, time.Hour},
	}
	for _, tt := range tests {
		if got := r.Next(now, tt.failures, 0.5).Sub(now); got != tt.want {
			t.Errorf("after %d failures: %v, want %v", tt.failures, got, tt.want)
		}
		lo, hi := r.Next(now, tt.failures, 0).Sub(now), r.Next(now, tt.failures, 0.999999).Sub(now)
		if lo < tt.want*8/10 || hi > tt.want*12/10 || lo >= hi {
			t.Errorf("after %d failures: jitter range %v..%v", tt.failures, lo, hi)
		}
	}
	if r.Expired(now, now.Add(-5*24*time.Hour+time.Second)) || !r.Expired(now, now.Add(-5*24*time.Hour)) {
		t.Error("expiry boundary wrong")
	}
	var zero Retry
	if got := zero.Next(now, 1, 0.5).Sub(now); got != 5*time.Minute {
		t.Errorf("default first retry %v", got)
	}
}

// fakeTransport answers per mailbox user: "ok" delivers, "perm" bounces, others defer.
type fakeTransport struct{ bodies []string }

func (f *fakeTransport) Deliver(_ context.Context, _ local.Envelope, body io.Reader, ts []local.Target) []local.Result {
	b, _ := io.ReadAll(body)
	f.bodies = append(f.bodies, string(b))
	res := make([]local.Result, len(ts))
	for i, tg := range ts {
		res[i] = local.Result{Rcpt: tg.Rcpt, Mailbox: tg.Mailbox.Address()}
		switch tg.Mailbox.User {
		case "ok":
			res[i].Code, res[i].Enhanced, res[i].Text = 250, "2.0.0", "stored"
		case "perm":
			res[i].Code, res[i].Enhanced, res[i].Text = 550, "5.1.1", "no such mailbox"
		default:
			res[i].Code, res[i].Enhanced, res[i].Text, res[i].Temporary = 452, "4.2.2", "over quota", true
		}
	}
	return res
}

func queue(t *testing.T, st spool.Store, rcpts ...string) spool.ID {
	t.Helper()
	w, err := st.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	env := spool.Envelope{From: "a@remote.test"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: r, Local: true})
	}
	id, err := w.Commit(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// One message, three local recipients with three different fates: each recipient's
// outcome is its own (an LMTP 5xx for one must not be applied to the others).
func TestLocalPerRecipientOutcomes(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := spool.Open(context.Background(), t.TempDir(), spool.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := queue(t, st, "ok@example.test", "perm@example.test", "full+box@example.test")
	tr := &fakeTransport{}
	l := &Local{Store: st, Transport: tr, Name: "fake", Separator: "+", Now: clock, Jitter: func() float64 { return 0.5 }}
	if n := l.RunOnce(context.Background()); n != 1 {
		t.Fatalf("RunOnce handled %d messages", n)
	}
	m, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]spool.Recipient{}
	for _, r := range m.Envelope.Recipients {
		states[r.Addr] = r
	}
	if s := states["ok@example.test"].State; s != spool.StateDelivered {
		t.Errorf("ok: %s", s)
	}
	if r := states["perm@example.test"]; r.State != spool.StateBounced || !strings.Contains(r.LastReply, "550 5.1.1") {
		t.Errorf("perm: %+v", r)
	}
	full := states["full+box@example.test"]
	if full.State != spool.StateQueued || !full.NextAttempt.Equal(now.Add(5*time.Minute)) || full.Attempts != 1 {
		t.Errorf("deferred: %+v", full)
	}
	if len(m.Attempts) != 3 {
		t.Errorf("%d attempts recorded", len(m.Attempts))
	}
	// Nothing is due until the retry time; then only the deferred recipient is tried.
	if n := l.RunOnce(context.Background()); n != 0 {
		t.Errorf("retried before the backoff: %d", n)
	}
	now = now.Add(6 * time.Minute)
	l.RunOnce(context.Background())
	if len(tr.bodies) != 2 {
		t.Fatalf("%d deliveries", len(tr.bodies))
	}
	// After the lifetime a deferral becomes a bounce, and the message leaves the queue.
	now = now.Add(6 * 24 * time.Hour)
	l.RunOnce(context.Background())
	if _, err := st.Get(context.Background(), id); err == nil {
		m, _ := st.Get(context.Background(), id)
		for _, r := range m.Envelope.Recipients {
			if !r.State.Final() {
				t.Errorf("recipient %s still %s after expiry", r.Addr, r.State)
			}
		}
	}
}

func TestLocalMaildirEndToEnd(t *testing.T) {
	dir := t.TempDir()
	st, err := spool.Open(context.Background(), filepath.Join(dir, "spool"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	md, err := local.NewMaildir(filepath.Join(dir, "mail", "%d", "%u"), "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	queue(t, st, "alice+news@example.test", "bob@example.test")
	l := &Local{Store: st, Transport: MaildirTransport{md}, Name: "maildir", Separator: "+"}
	l.RunOnce(context.Background())
	for _, u := range []string{"alice", "bob"} {
		entries, err := os.ReadDir(filepath.Join(dir, "mail", "example.test", u, "new"))
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s: %v %d", u, err, len(entries))
		}
	}
	if msgs, _ := st.List(context.Background(), spool.Filter{}); len(msgs) != 0 {
		t.Errorf("queue not empty: %+v", msgs)
	}
}

// A permanent local failure sends a DSN to the sender (RFC 3464), queued before the
// failure is recorded; a null sender never gets one.
func TestLocalBounceQueuesDSN(t *testing.T) {
	st, err := spool.Open(context.Background(), t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	queue(t, st, "perm@example.test", "ok@example.test")
	b := &Bouncer{Store: st, Hostname: "mx.example.test", IsLocal: func(a string) bool { return strings.HasSuffix(a, "@example.test") }}
	l := &Local{Store: st, Transport: &fakeTransport{}, Name: "fake", Bouncer: b}
	l.RunOnce(context.Background())
	msgs, err := st.List(context.Background(), spool.Filter{})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queue after bounce: %v %+v", err, msgs)
	}
	d := msgs[0]
	if d.Envelope.From != "" || len(d.Envelope.Recipients) != 1 || d.Envelope.Recipients[0].Addr != "a@remote.test" || d.Envelope.Recipients[0].Local {
		t.Fatalf("DSN envelope %+v", d.Envelope)
	}
	body, _ := st.Open(context.Background(), d.ID)
	raw, _ := io.ReadAll(body)
	body.Close()
	for _, want := range []string{"multipart/report", "Final-Recipient: rfc822; perm@example.test", "Action: failed", "Status: 5.1.1", "Subject: t"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("DSN lacks %q:\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), "ok@example.test") {
		t.Errorf("DSN mentions the delivered recipient:\n%s", raw)
	}

	// The DSN itself bounces (its recipient here is made local and fails): no DSN for
	// a DSN (null sender).
	st2, _ := spool.Open(context.Background(), t.TempDir(), spool.Options{})
	defer st2.Close()
	w, _ := st2.Create(context.Background())
	io.WriteString(w, "Subject: bounce\r\n\r\nx\r\n")
	w.Commit(context.Background(), spool.Envelope{From: "", Recipients: []spool.Recipient{{Addr: "perm@example.test", Local: true}}})
	l2 := &Local{Store: st2, Transport: &fakeTransport{}, Name: "fake", Bouncer: &Bouncer{Store: st2, Hostname: "mx.example.test"}}
	l2.RunOnce(context.Background())
	if msgs, _ := st2.List(context.Background(), spool.Filter{}); len(msgs) != 0 {
		t.Fatalf("a DSN was sent for a null-sender message: %+v", msgs)
	}
}
