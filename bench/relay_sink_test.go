package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

func startTestSink(t *testing.T, withTLS bool) *sink {
	t.Helper()
	var cfg *tls.Config
	if withTLS {
		cert, err := testpeer.NewCert("sink.bench.test")
		if err != nil {
			t.Fatal(err)
		}
		cfg = sinkTLS(cert.TLS)
	}
	s, err := startSink("sink.bench.test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func sinkAddr(s *sink) string { return s.ln.Addr().String() }

// TestSinkLockstep sends messages the way the load client does, in plaintext
// and over STARTTLS, and checks what the sink counted.
func TestSinkLockstep(t *testing.T) {
	s := startTestSink(t, true)
	msg := makeMessage(1<<10, sender, recipient)
	start := time.Now()
	for _, startTLS := range []bool{false, true, true} {
		sess := session{addr: sinkAddr(s), helo: heloName, from: sender, to: recipient, message: msg,
			startTLS: startTLS, tls: clientTLS(), timeout: 10 * time.Second}
		if err := sess.send(context.Background(), &net.Dialer{}); err != nil {
			t.Fatalf("send (STARTTLS %v): %v", startTLS, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	at, err := s.waitMessages(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(start) || at.After(time.Now()) {
		t.Errorf("third message acknowledged at %v, outside the test's run", at)
	}
	// Sessions end with QUIT, so the sink's goroutines finish on their own.
	st := s.snapshot()
	if st.messages != 3 || st.plaintext != 1 || st.handshakes != 2 || st.sessions != 3 {
		t.Errorf("stats %+v: want 3 messages, 1 in plaintext, 2 handshakes, 3 sessions", st)
	}
	if st.bytes != 3*int64(len(msg)) {
		t.Errorf("bytes = %d, want %d", st.bytes, 3*len(msg))
	}
	if n := st.envelopes[sender+" > "+recipient]; n != 3 || len(st.envelopes) != 1 {
		t.Errorf("envelopes %v: want 3 of %s > %s", st.envelopes, sender, recipient)
	}
	if desc := describeCounts(st.tls); !strings.HasPrefix(desc, "TLS 1.3, ") || !strings.Contains(desc, "X25519 (2)") {
		t.Errorf("TLS %q: want TLS 1.3 with X25519 for 2 messages", desc)
	}
	if st.failures != 0 {
		t.Errorf("%d failures, first: %v", st.failures, st.firstFail)
	}
	d := st.minus(sinkStats{messages: 1, plaintext: 1, tls: map[string]int{}, envelopes: map[string]int{sender + " > " + recipient: 1}})
	if d.messages != 2 || d.plaintext != 0 || d.envelopes[sender+" > "+recipient] != 2 {
		t.Errorf("minus: %+v", d)
	}
}

// sinkDialogue writes script to a new connection to s in one piece (a
// pipelining client), reads replies until the server closes or n replies have
// come, and returns their codes and texts.
func sinkDialogue(t *testing.T, s *sink, script string, n int) []reply {
	t.Helper()
	c, err := net.Dial("tcp", sinkAddr(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	greeting, err := readReply(r)
	if err != nil || greeting.code != 220 {
		t.Fatalf("greeting %v, %v", greeting, err)
	}
	if _, err := io.WriteString(c, script); err != nil {
		t.Fatal(err)
	}
	var got []reply
	for len(got) < n {
		rep, err := readReply(r)
		if err != nil {
			break
		}
		got = append(got, rep)
	}
	return got
}

func codes(rs []reply) []int {
	var cs []int
	for _, r := range rs {
		cs = append(cs, r.code)
	}
	return cs
}

func TestSinkDialogues(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		want      []int
		messages  int
		failures  int
		extension string // the EHLO reply must list it
	}{
		{
			name: "pipelined transactions",
			script: "EHLO c.test\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n" +
				"Subject: t\r\n\r\n..stuffed\r\nbody\r\n.\r\n" +
				"MAIL FROM:<>\r\nRCPT TO:<x@y.test>\r\nDATA\r\nx\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n",
			want: []int{250, 250, 250, 250, 354, 250, 250, 250, 354, 250, 250, 250, 221}, messages: 2,
			extension: "PIPELINING",
		},
		{
			name:   "sequence errors",
			script: "MAIL FROM:<a@b.test>\r\nHELO c.test\r\nRCPT TO:<x@y.test>\r\nDATA\r\nMAIL FROM:a@b.test\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<>\r\nDATA\r\nVRFY x\r\nQUIT\r\n",
			want:   []int{503, 250, 503, 503, 501, 250, 503, 501, 503, 502, 221},
		},
		{
			name:      "STARTTLS offered",
			script:    "EHLO c.test\r\nQUIT\r\n",
			want:      []int{250, 221},
			extension: "STARTTLS",
		},
		{
			name:     "plaintext pipelined after STARTTLS",
			script:   "EHLO c.test\r\nSTARTTLS\r\nEHLO c.test\r\n",
			want:     []int{250, 554},
			failures: 1,
		},
		{
			name:     "command line too long",
			script:   "EHLO " + strings.Repeat("x", sinkLineMax) + "\r\n",
			want:     nil,
			failures: 1,
		},
		{
			name:   "8BITMIME offered",
			script: "EHLO c.test\r\nQUIT\r\n", want: []int{250, 221}, extension: "8BITMIME",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startTestSink(t, true)
			got := sinkDialogue(t, s, tt.script, len(tt.want)+1)
			if g := codes(got); !equalInts(g, tt.want) {
				t.Errorf("reply codes %v, want %v (%v)", g, tt.want, got)
			}
			if tt.extension != "" && (len(got) == 0 || !got[0].hasExtension(tt.extension)) {
				t.Errorf("EHLO reply %v does not offer %s", got, tt.extension)
			}
			// The server side finishes after the client's; wait for it.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st := s.snapshot()
				if st.messages == tt.messages && st.failures == tt.failures || time.Now().After(deadline) {
					if st.messages != tt.messages || st.failures != tt.failures {
						t.Errorf("messages %d, failures %d (%v); want %d, %d", st.messages, st.failures, st.firstFail, tt.messages, tt.failures)
					}
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSinkBodySize(t *testing.T) {
	s := startTestSink(t, false)
	long := strings.Repeat("y", 3*sinkLineMax) // longer than the read buffer
	body := "a\r\n." + long + "\r\n.\r\n"
	got := sinkDialogue(t, s, "HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"+body+"QUIT\r\n", 6)
	if g := codes(got); !equalInts(g, []int{250, 250, 250, 354, 250, 221}) {
		t.Fatalf("reply codes %v", g)
	}
	if st := s.snapshot(); st.bytes != int64(len(body)-3) {
		t.Errorf("bytes = %d, want %d", st.bytes, len(body)-3)
	}
}

func TestSinkWaitMessages(t *testing.T) {
	s := startTestSink(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.waitMessages(ctx, 1); err == nil {
		t.Error("waitMessages returned without a message")
	}
	if _, err := s.waitMessages(context.Background(), 0); err != nil {
		t.Errorf("waitMessages(0): %v", err)
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		arg, prefix, want string
		ok                bool
	}{
		{"FROM:<a@b.test>", "FROM:", "a@b.test", true},
		{"from:<a@b.test> SIZE=10 BODY=8BITMIME", "FROM:", "a@b.test", true},
		{"FROM: <a@b.test>", "FROM:", "a@b.test", true},
		{"FROM:<>", "FROM:", "", true},
		{"TO:<x@y>", "TO:", "x@y", true},
		{"FROM:a@b", "FROM:", "", false},
		{"FROM:<a@b", "FROM:", "", false},
		{"FROM:<a@b>x", "FROM:", "", false},
		{"FROM:<a <b>", "FROM:", "", false},
		{"TO:<x@y>", "FROM:", "", false},
		{"", "TO:", "", false},
	}
	for _, tt := range tests {
		got, ok := parsePath(tt.arg, tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parsePath(%q, %q) = %q, %v; want %q, %v", tt.arg, tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"FROM:<a@b>", "TO:<x@y> NOTIFY=NEVER", "FROM: <>", "from:<<>>", "TO:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		addr, ok := parsePath(arg, "FROM:")
		if !ok && addr != "" {
			t.Errorf("parsePath(%q) = %q without ok", arg, addr)
		}
		if ok && (strings.ContainsAny(addr, "<> \t") || !strings.Contains(arg, "<"+addr+">")) {
			t.Errorf("parsePath(%q) = %q, not the bracketed path", arg, addr)
		}
	})
}

// FuzzSinkSession feeds arbitrary client bytes to a sink session: it must end
// (at the end of the input at the latest) without panicking, and count only
// messages it acknowledged.
func FuzzSinkSession(f *testing.F) {
	f.Add([]byte("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n..\r\n.\r\n"))
	f.Add([]byte("STARTTLS\r\nRSET\r\nNOOP\r\nBDAT 10\r\n"))
	f.Add([]byte("EHLO c\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\n.\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &sink{host: "sink.test", conns: map[net.Conn]struct{}{}, st: sinkStats{tls: map[string]int{}, envelopes: map[string]int{}}}
		client, server := net.Pipe()
		var replies []byte
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			replies, _ = io.ReadAll(client)
		}()
		done := make(chan error, 1)
		go func() { done <- s.serve(server); server.Close() }()
		go func() {
			// Writes block until the server reads; a server that stopped
			// reading has returned, and closing the pipe ends the write.
			client.Write(in)
			client.Close()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session did not end")
		}
		<-drained
		acks := strings.Count(string(replies), sinkAck+"\r\n")
		if s.st.messages != acks {
			t.Errorf("%d messages counted, %d acknowledged", s.st.messages, acks)
		}
	})
}
