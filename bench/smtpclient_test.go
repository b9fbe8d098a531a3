package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		code  int
		lines []string
		err   bool
	}{
		{"single", "250 2.0.0 Ok\r\n", 250, []string{"2.0.0 Ok"}, false},
		{"bare LF", "221 Bye\n", 221, []string{"Bye"}, false},
		{"code only", "354\r\n", 354, []string{""}, false},
		{"multi-line", "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250, []string{"mx.test", "PIPELINING", "STARTTLS"}, false},
		{"code changes", "250-a\r\n251 b\r\n", 0, nil, true},
		{"not digits", "2x0 Ok\r\n", 0, nil, true},
		{"bad separator", "250+Ok\r\n", 0, nil, true},
		{"out of range", "199 Ok\r\n", 0, nil, true},
		{"too short", "25\r\n", 0, nil, true},
		{"eof in reply", "250-a\r\n", 0, nil, true},
		{"empty", "", 0, nil, true},
		{"line too long", "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", 0, nil, true},
		{"too many lines", strings.Repeat("250-x\r\n", maxReplyLines+1), 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), 4096))
			if (err != nil) != tt.err {
				t.Fatalf("readReply(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if rep.code != tt.code || !slices.Equal(rep.lines, tt.lines) {
				t.Errorf("readReply(%q) = %d %q, want %d %q", tt.in, rep.code, rep.lines, tt.code, tt.lines)
			}
		})
	}
}

func TestHasExtension(t *testing.T) {
	rep := reply{code: 250, lines: []string{"mx.test greets you", "PIPELINING", "SIZE 1000", "starttls"}}
	for kw, want := range map[string]bool{"STARTTLS": true, "SIZE": true, "pipelining": true, "8BITMIME": false, "mx.test": false} {
		if got := rep.hasExtension(kw); got != want {
			t.Errorf("hasExtension(%q) = %v, want %v", kw, got, want)
		}
	}
	if (reply{code: 250}).hasExtension("STARTTLS") {
		t.Error("an empty reply has no extensions")
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 Ok\r\n",
		"250-a\r\n250-b\r\n250 c\r\n",
		"354\r\n",
		"250-a\r\n251 b\r\n",
		"9999\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 4096)
		rep, err := readReply(r)
		if err != nil {
			return
		}
		if rep.code < 200 || rep.code > 599 || len(rep.lines) == 0 || len(rep.lines) > maxReplyLines {
			t.Errorf("accepted reply %+v from %q", rep, b)
		}
	})
}

func TestMakeMessage(t *testing.T) {
	for _, size := range []int{0, 1 << 10, 100 << 10} {
		msg := makeMessage(size, sender, recipient)
		if len(msg) < size || len(msg) > max(size, 300)+100 {
			t.Errorf("makeMessage(%d) is %d bytes", size, len(msg))
		}
		if !bytes.HasSuffix(msg, []byte("\r\n")) {
			t.Errorf("makeMessage(%d) does not end in CRLF", size)
		}
		for i, line := range bytes.SplitAfter(msg, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.Count(line, []byte("\n")) != 1 || bytes.Count(line, []byte("\r")) != 1 {
				t.Fatalf("makeMessage(%d) line %d %q is not one CRLF-terminated line", size, i, line)
			}
			if line[0] == '.' {
				t.Fatalf("makeMessage(%d) line %d starts with a dot", size, i)
			}
			if len(line) > 998 {
				t.Fatalf("makeMessage(%d) line %d is %d bytes long", size, i, len(line))
			}
		}
	}
}

// fakeServer is a minimal SMTP server that records what clients send and checks
// that they wait for each reply: a command arriving while the previous one is
// unanswered is recorded as pipelined.
type fakeServer struct {
	addr string
	tls  *tls.Config
	// rcptReply is the reply to RCPT; anything but 250 makes sessions fail.
	rcptReply string

	mu        sync.Mutex
	sessions  [][]string // commands of each finished session, in order
	bodies    [][]byte
	pipelined int
}

func startFakeServer(t *testing.T, rcptReply string) *fakeServer {
	t.Helper()
	cert, err := testpeer.NewCert("fake.bench.test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{
		addr:      ln.Addr().String(),
		tls:       &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		rcptReply: rcptReply,
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	var cmds []string
	var body []byte
	recorded := false
	// record files the session; it runs before the reply to QUIT, so that a client that
	// has read the 221 finds the session recorded.
	record := func() {
		if recorded {
			return
		}
		recorded = true
		s.mu.Lock()
		s.sessions = append(s.sessions, cmds)
		if body != nil {
			s.bodies = append(s.bodies, body)
		}
		s.mu.Unlock()
	}
	defer record()
	r := bufio.NewReader(c)
	var w io.Writer = c
	fmt.Fprint(w, "220 fake.bench.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if r.Buffered() > 0 {
			s.mu.Lock()
			s.pipelined++
			s.mu.Unlock()
		}
		cmd := strings.TrimRight(line, "\r\n")
		cmds = append(cmds, cmd)
		verb, _, _ := strings.Cut(strings.ToUpper(cmd), " ")
		switch verb {
		case "EHLO":
			fmt.Fprint(w, "250-fake.bench.test\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n")
		case "STARTTLS":
			fmt.Fprint(w, "220 2.0.0 Ready\r\n")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			r, w = bufio.NewReader(tc), tc
		case "MAIL":
			fmt.Fprint(w, "250 2.1.0 Ok\r\n")
		case "RCPT":
			fmt.Fprint(w, s.rcptReply+"\r\n")
		case "DATA":
			fmt.Fprint(w, "354 Go ahead\r\n")
			var b []byte
			for {
				l, err := r.ReadBytes('\n')
				if err != nil {
					return
				}
				if string(l) == ".\r\n" {
					break
				}
				b = append(b, l...)
			}
			body = b
			fmt.Fprint(w, "250 2.0.0 Ok: queued\r\n")
		case "QUIT":
			record()
			fmt.Fprint(w, "221 2.0.0 Bye\r\n")
			return
		default:
			fmt.Fprint(w, "500 5.5.2 What?\r\n")
		}
	}
}

func TestSessionSend(t *testing.T) {
	for _, startTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("starttls=%v", startTLS), func(t *testing.T) {
			srv := startFakeServer(t, "250 2.1.5 Ok")
			msg := makeMessage(3000, sender, recipient)
			s := session{
				addr: srv.addr, helo: heloName, from: sender, to: recipient, message: msg,
				startTLS: startTLS, tls: clientTLS(), timeout: 10 * time.Second,
			}
			if err := s.send(context.Background(), &net.Dialer{}); err != nil {
				t.Fatal(err)
			}
			want := []string{"EHLO " + heloName}
			if startTLS {
				want = append(want, "STARTTLS", "EHLO "+heloName)
			}
			want = append(want, "MAIL FROM:<"+sender+">", "RCPT TO:<"+recipient+">", "DATA", "QUIT")
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.sessions) != 1 || !slices.Equal(srv.sessions[0], want) {
				t.Errorf("server saw %q, want %q", srv.sessions, want)
			}
			if len(srv.bodies) != 1 || !bytes.Equal(srv.bodies[0], msg) {
				t.Errorf("server received a different message body")
			}
			if srv.pipelined != 0 {
				t.Errorf("%d commands were sent before the previous reply", srv.pipelined)
			}
		})
	}
}

func TestLoadRun(t *testing.T) {
	srv := startFakeServer(t, "250 2.1.5 Ok")
	l := load{
		session: session{
			addr: srv.addr, helo: heloName, from: sender, to: recipient,
			message: makeMessage(1<<10, sender, recipient), tls: clientTLS(), timeout: 10 * time.Second,
		},
		concurrency: 4, maxMessages: 40, maxDuration: 30 * time.Second,
	}
	res := l.run(context.Background())
	if res.sent != 40 || res.failed != 0 || len(res.latencies) != 40 {
		t.Fatalf("run = %d sent, %d failed (%v), %d latencies; want 40 sent", res.sent, res.failed, res.firstErr, len(res.latencies))
	}
	if !slices.IsSorted(res.latencies) || res.percentile(50) > res.percentile(99) || res.percentile(99) != res.latencies[len(res.latencies)-1] {
		t.Errorf("latencies not summarised in order: p50 %v, p99 %v", res.percentile(50), res.percentile(99))
	}
	if res.rate() <= 0 {
		t.Errorf("rate = %v", res.rate())
	}
	srv.mu.Lock()
	n := len(srv.bodies)
	srv.mu.Unlock()
	if n != 40 {
		t.Errorf("server received %d messages, want 40", n)
	}
}

func TestLoadRunBounds(t *testing.T) {
	t.Run("failures are counted and do not run forever", func(t *testing.T) {
		srv := startFakeServer(t, "451 4.3.0 Try later")
		l := load{
			session:     session{addr: srv.addr, helo: heloName, from: sender, to: recipient, timeout: 10 * time.Second},
			concurrency: 3, maxMessages: 9, maxDuration: 30 * time.Second,
		}
		res := l.run(context.Background())
		if res.sent != 0 || res.failed != 9 {
			t.Fatalf("run = %d sent, %d failed; want 0 and 9", res.sent, res.failed)
		}
		if !errors.Is(res.firstErr, errRefused) || !strings.Contains(res.firstErr.Error(), "451") {
			t.Errorf("first error %v does not report the 451", res.firstErr)
		}
	})
	t.Run("time limit", func(t *testing.T) {
		srv := startFakeServer(t, "250 2.1.5 Ok")
		l := load{
			session:     session{addr: srv.addr, helo: heloName, from: sender, to: recipient, timeout: 10 * time.Second},
			concurrency: 2, maxMessages: 1_000_000, maxDuration: 200 * time.Millisecond,
		}
		start := time.Now()
		res := l.run(context.Background())
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("run took %v with a 200ms limit", took)
		}
		if res.sent == 0 || res.sent >= 1_000_000 || res.failed != 0 {
			t.Errorf("run = %d sent, %d failed (%v)", res.sent, res.failed, res.firstErr)
		}
	})
	t.Run("STARTTLS not offered", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprint(c, "220 x\r\n")
			bufio.NewReader(c).ReadString('\n')
			fmt.Fprint(c, "250 x\r\n")
			io.Copy(io.Discard, c)
		}()
		s := session{addr: ln.Addr().String(), helo: heloName, startTLS: true, tls: clientTLS(), timeout: 5 * time.Second}
		if err := s.send(context.Background(), &net.Dialer{}); err == nil || !strings.Contains(err.Error(), "not offered") {
			t.Errorf("send = %v, want STARTTLS not offered", err)
		}
	})
}

func TestDialIdle(t *testing.T) {
	srv := startFakeServer(t, "250 2.1.5 Ok")
	for _, startTLS := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := dialIdle(ctx, &net.Dialer{}, srv.addr, startTLS, clientTLS(), heloName)
		cancel()
		if err != nil {
			t.Fatalf("starttls=%v: %v", startTLS, err)
		}
		if _, isTLS := c.(*tls.Conn); isTLS != startTLS {
			t.Errorf("starttls=%v: got a %T", startTLS, c)
		}
		// The connection must still be usable: the idle client left it at a
		// command boundary.
		fmt.Fprint(c, "QUIT\r\n")
		rep, err := readReply(bufio.NewReader(c))
		if err != nil || rep.code != 221 {
			t.Errorf("starttls=%v: QUIT on the idle connection: %v %v", startTLS, rep, err)
		}
		c.Close()
	}
}
