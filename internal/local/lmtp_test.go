package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeLMTP is a scripted LMTP server on a unix socket. Fields left empty get ordinary
// positive replies. Replies are raw wire text so that tests can send any syntax.
type fakeLMTP struct {
	greeting string
	lhlo     string                   // reply to LHLO; "" for one offering PIPELINING
	mail     string                   // reply to MAIL
	rcpt     func(addr string) string // reply to RCPT
	data     string                   // reply to DATA
	final    func(addr string) string // reply after the dot for an accepted recipient
	// finalCount, when not negative, is how many replies after the dot are sent before
	// the server hangs up.
	finalCount int
	// stallAfterDot makes the server read the message and then say nothing.
	stallAfterDot bool
	stallGreeting bool

	sessions chan fakeSession
}

// fakeSession is what the server saw in one connection.
type fakeSession struct {
	cmds      []string // command lines in order
	pipelined bool     // RCPT or DATA arrived before MAIL was answered
	wire      []byte   // message data as sent, dot-stuffed, final dot included
	complete  bool     // the final dot arrived
}

const lhloPipelining = "250-fake.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
const lhloPlain = "250-fake.example\r\n250 8BITMIME\r\n"

// start serves on a new unix socket and returns its address for NewLMTP.
func (f *fakeLMTP) start(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, ln)
	return "unix:" + path
}

func (f *fakeLMTP) serve(t *testing.T, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	f.sessions = make(chan fakeSession, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				f.sessions <- f.handle(conn)
			}()
		}
	}()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (f *fakeLMTP) handle(conn net.Conn) (s fakeSession) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	w := func(reply string) bool {
		_, err := io.WriteString(conn, reply)
		return err == nil
	}
	if f.stallGreeting {
		io.Copy(io.Discard, br)
		return s
	}
	if !w(or(f.greeting, "220 fake.example LMTP ready\r\n")) {
		return s
	}
	var accepted []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return s
		}
		line = strings.TrimSuffix(line, "\r\n")
		s.cmds = append(s.cmds, line)
		verb, arg, _ := strings.Cut(line, ":")
		verb, _, _ = strings.Cut(verb, " ")
		switch strings.ToUpper(verb) {
		case "LHLO":
			w(or(f.lhlo, lhloPipelining))
		case "MAIL":
			s.pipelined = br.Buffered() > 0
			w(or(f.mail, "250 2.1.0 OK\r\n"))
		case "RCPT":
			addr := strings.TrimSuffix(strings.TrimPrefix(arg, "<"), ">")
			rep := "250 2.1.5 OK\r\n"
			if f.rcpt != nil {
				rep = f.rcpt(addr)
			}
			if rep[0] == '2' {
				accepted = append(accepted, addr)
			}
			w(rep)
		case "DATA":
			rep := or(f.data, "354 go ahead\r\n")
			if len(accepted) == 0 && f.data == "" {
				rep = "554 5.5.1 no valid recipients\r\n"
			}
			w(rep)
			if !strings.HasPrefix(rep, "354") {
				continue
			}
			for {
				l, err := br.ReadString('\n')
				s.wire = append(s.wire, l...)
				if err != nil {
					return s
				}
				if l == ".\r\n" {
					s.complete = true
					break
				}
			}
			if f.stallAfterDot {
				io.Copy(io.Discard, br)
				return s
			}
			for i, a := range accepted {
				if f.finalCount >= 0 && i == f.finalCount {
					return s
				}
				rep := "250 2.0.0 <" + a + "> Saved\r\n"
				if f.final != nil {
					rep = f.final(a)
				}
				w(rep)
			}
			accepted = nil
		case "QUIT":
			w("221 2.0.0 bye\r\n")
			return s
		default:
			w("500 5.5.1 unknown command\r\n")
		}
	}
}

// session waits for the server's record of the one connection of a test.
func (f *fakeLMTP) session(t *testing.T) fakeSession {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the fake LMTP server saw no session")
		return fakeSession{}
	}
}

func targetsFor(addrs ...string) []Target {
	var ts []Target
	for _, a := range addrs {
		local, domain, _ := strings.Cut(a, "@")
		ts = append(ts, Target{Rcpt: "rcpt-" + a, Mailbox: Mailbox{Domain: domain, User: local}})
	}
	return ts
}

func newTestLMTP(t *testing.T, addr string) *LMTP {
	t.Helper()
	c, err := NewLMTP(addr, "mx.example")
	if err != nil {
		t.Fatal(err)
	}
	c.DialTimeout, c.CommandTimeout, c.DataTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	return c
}

// unstuff decodes DATA wire format back to the message, for checking what was sent.
func unstuff(wire []byte) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(wire), "\r\n") {
		if l == ".\r\n" {
			break
		}
		b.WriteString(strings.TrimPrefix(l, "."))
	}
	return b.String()
}

type wantResult struct {
	status   Status
	code     int
	enhanced string
	text     string
}

func checkResults(t *testing.T, got []Result, targets []Target, want []wantResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i, w := range want {
		r := got[i]
		if r.Rcpt != targets[i].Rcpt || r.Mailbox != targets[i].Mailbox.Address() {
			t.Errorf("result %d is for %q/%q, want %q/%q", i, r.Rcpt, r.Mailbox, targets[i].Rcpt, targets[i].Mailbox.Address())
		}
		if r.Status() != w.status || r.Code != w.code || r.Enhanced != w.enhanced || !strings.Contains(r.Text, w.text) {
			t.Errorf("result %d (%s) = %s %d %q %q (err %v), want %s %d %q containing %q",
				i, r.Mailbox, r.Status(), r.Code, r.Enhanced, r.Text, r.Err, w.status, w.code, w.enhanced, w.text)
		}
		if (r.Status() == Deferred) != r.Temporary {
			t.Errorf("result %d: status %s but Temporary %v", i, r.Status(), r.Temporary)
		}
	}
}

// TestLMTPPerRecipient is the heart of LMTP: refusals at RCPT and after the data apply to
// their own recipient only, with and without pipelining.
func TestLMTPPerRecipient(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelining", false: "lockstep"}[pipelining], func(t *testing.T) {
			f := &fakeLMTP{finalCount: -1, lhlo: lhloPipelining}
			if !pipelining {
				f.lhlo = lhloPlain
			}
			f.rcpt = func(addr string) string {
				switch addr {
				case "bob@example.org":
					return "550 5.1.1 <bob@example.org> User doesn't exist\r\n"
				case "carol@example.org":
					return "452 4.2.1 too many recipients\r\n"
				}
				return "250 2.1.5 OK\r\n"
			}
			f.final = func(addr string) string {
				switch addr {
				case "dave@example.org":
					return "552-5.2.2 <dave@example.org> Mailbox full\r\n552 5.2.2 quota exceeded\r\n"
				case "erin@example.org":
					return "451 4.3.0 <erin@example.org> Temporary internal error\r\n"
				}
				return "250-2.0.0 <" + addr + ">\r\n250 2.0.0 Saved\r\n"
			}
			c := newTestLMTP(t, f.start(t))
			targets := targetsFor("alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org", "erin@example.org", "frank@example.org")
			body := "Subject: hi\r\n\r\nhello\r\n"
			res := c.Deliver(context.Background(), Envelope{From: "sender@remote.example", EightBit: true}, strings.NewReader(body), targets)
			checkResults(t, res, targets, []wantResult{
				{Delivered, 250, "2.0.0", "<alice@example.org> Saved"},
				{Bounced, 550, "5.1.1", "User doesn't exist"},
				{Deferred, 452, "4.2.1", "too many recipients"},
				{Bounced, 552, "5.2.2", "Mailbox full quota exceeded"},
				{Deferred, 451, "4.3.0", "Temporary internal error"},
				{Delivered, 250, "2.0.0", "Saved"},
			})
			s := f.session(t)
			wantCmds := []string{"LHLO mx.example", "MAIL FROM:<sender@remote.example> BODY=8BITMIME"}
			for _, tg := range targets {
				wantCmds = append(wantCmds, "RCPT TO:<"+tg.Mailbox.Address()+">")
			}
			wantCmds = append(wantCmds, "DATA", "QUIT")
			if !slices.Equal(s.cmds, wantCmds) {
				t.Errorf("commands:\n got %q\nwant %q", s.cmds, wantCmds)
			}
			if s.pipelined != pipelining {
				t.Errorf("pipelined = %v, want %v", s.pipelined, pipelining)
			}
			if !s.complete || unstuff(s.wire) != body {
				t.Errorf("data %q, complete %v", s.wire, s.complete)
			}
		})
	}
}

func TestLMTPDotStuffing(t *testing.T) {
	f := &fakeLMTP{finalCount: -1}
	c := newTestLMTP(t, f.start(t))
	body := ".\n..\n.leading dot\nmid.dle\r\n.\r\n\n.x\r.y\nno final newline."
	wantWire := "..\r\n...\r\n..leading dot\r\nmid.dle\r\n..\r\n\r\n..x\r.y\r\nno final newline.\r\n.\r\n"
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader(body), targetsFor("a@example.org"))
	if res[0].Status() != Delivered {
		t.Fatal(res[0].Reply())
	}
	s := f.session(t)
	if string(s.wire) != wantWire {
		t.Errorf("wire data\n got %q\nwant %q", s.wire, wantWire)
	}
	if s.cmds[1] != "MAIL FROM:<>" {
		t.Errorf("MAIL command %q", s.cmds[1])
	}
}

func TestDotWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ".\r\n"},
		{"a", "a\r\n.\r\n"},
		{"a\n", "a\r\n.\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{"a\r", "a\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{"\n.\n", "\r\n..\r\n.\r\n"},
		{"\r\n\r\n", "\r\n\r\n.\r\n"},
		{"a\r\rb\n", "a\r\rb\r\n.\r\n"},
		{"x.\n.y", "x.\r\n..y\r\n.\r\n"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{len(tt.in) + 1, 1, 2} {
			var buf bytes.Buffer
			d := &dotWriter{w: &buf, bol: true}
			for in := tt.in; len(in) > 0; {
				n := min(chunk, len(in))
				d.Write([]byte(in[:n]))
				in = in[n:]
			}
			d.Close()
			if buf.String() != tt.want {
				t.Errorf("dotWriter(%q) in chunks of %d = %q, want %q", tt.in, chunk, buf.String(), tt.want)
			}
		}
	}
}

// FuzzDotWriter checks the DATA encoding for any message and any split into writes: the
// result decodes to the message with LF made CRLF, has no line that a server would take for
// the end, and ends in exactly one final dot.
func FuzzDotWriter(f *testing.F) {
	for _, s := range []string{"", "a\n.b\n", ".\r\n", "\r", "x\r\r\n.\n..", "\n\n."} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, msg string, chunk uint8) {
		var buf bytes.Buffer
		d := &dotWriter{w: &buf, bol: true}
		step := int(chunk%16) + 1
		for in := msg; len(in) > 0; {
			n := min(step, len(in))
			d.Write([]byte(in[:n]))
			in = in[n:]
		}
		d.Close()
		wire := buf.String()
		if !strings.HasSuffix(wire, "\r\n.\r\n") && wire != ".\r\n" {
			t.Fatalf("wire %q does not end in the final dot", wire)
		}
		if i := strings.Index(wire, "\r\n.\r\n"); i != len(wire)-5 && !(i == -1 && wire == ".\r\n") {
			t.Fatalf("wire %q has an early end of data at %d", wire, i)
		}
		if strings.Contains(strings.ReplaceAll(wire, "\r\n", ""), "\n") {
			t.Fatalf("wire %q has a bare LF", wire)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
		if want != "" && !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
			if strings.HasSuffix(msg, "\r") {
				want = want[:len(want)-3] + "\r\n" // a final CR is completed, not doubled
			}
		}
		if got := unstuff([]byte(wire)); got != want {
			t.Fatalf("message %q\nencoded %q\ndecodes to %q, want %q", msg, wire, got, want)
		}
	})
}

// TestLMTPDropAfterDot: the server stores the message for the first recipient and dies.
// The recipients it had not answered must be deferred, not bounced nor delivered.
func TestLMTPDropAfterDot(t *testing.T) {
	f := &fakeLMTP{finalCount: 1}
	c := newTestLMTP(t, f.start(t))
	targets := targetsFor("a@example.org", "b@example.org", "c@example.org")
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x\n"), targets)
	checkResults(t, res, targets, []wantResult{
		{Delivered, 250, "2.0.0", "Saved"},
		{Deferred, 0, "4.4.2", ""},
		{Deferred, 0, "4.4.2", ""},
	})
	for _, r := range res[1:] {
		if !errors.Is(r.Err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err = %v, want unexpected EOF", r.Mailbox, r.Err)
		}
	}
}

func TestLMTPTimeouts(t *testing.T) {
	tests := []struct {
		name string
		f    *fakeLMTP
	}{
		{"greeting", &fakeLMTP{stallGreeting: true}},
		{"after dot", &fakeLMTP{stallAfterDot: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestLMTP(t, tt.f.start(t))
			c.CommandTimeout, c.DataTimeout = 100*time.Millisecond, 150*time.Millisecond
			targets := targetsFor("a@example.org", "b@example.org")
			start := time.Now()
			res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x\n"), targets)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("delivery took %v", d)
			}
			for _, r := range res {
				if r.Status() != Deferred || !errors.Is(r.Err, os.ErrDeadlineExceeded) {
					t.Errorf("%s: %s, err %v; want deferred on timeout", r.Mailbox, r.Status(), r.Err)
				}
			}
		})
	}
}

func TestLMTPCanceled(t *testing.T) {
	f := &fakeLMTP{stallAfterDot: true}
	c := newTestLMTP(t, f.start(t))
	c.DataTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := c.Deliver(ctx, Envelope{}, strings.NewReader("x\n"), targetsFor("a@example.org"))
	if res[0].Status() != Deferred || !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("result %+v; want deferred by the context", res[0])
	}
}

// TestLMTPSessionReplies covers replies that decide for every recipient at once.
func TestLMTPSessionReplies(t *testing.T) {
	tests := []struct {
		name     string
		f        *fakeLMTP
		status   Status
		code     int
		enhanced string
		sentData bool
	}{
		{"greeting refused", &fakeLMTP{greeting: "554 5.3.2 no service\r\n"}, Bounced, 554, "5.3.2", false},
		{"greeting busy", &fakeLMTP{greeting: "421-4.3.2 shutting down\r\n421 4.3.2 come back\r\n"}, Deferred, 421, "4.3.2", false},
		{"greeting malformed", &fakeLMTP{greeting: "hello there\r\n"}, Deferred, 0, "4.4.2", false},
		{"LHLO refused", &fakeLMTP{lhlo: "500 5.5.1 what\r\n"}, Bounced, 500, "5.5.1", false},
		{"MAIL temp", &fakeLMTP{mail: "452 4.3.1 insufficient storage\r\n"}, Deferred, 452, "4.3.1", false},
		{"MAIL perm", &fakeLMTP{mail: "553 5.1.7 bad sender\r\n"}, Bounced, 553, "5.1.7", false},
		{"MAIL temp lockstep", &fakeLMTP{lhlo: lhloPlain, mail: "451 4.3.0 later\r\n"}, Deferred, 451, "4.3.0", false},
		{"DATA refused", &fakeLMTP{data: "451 4.3.0 not now\r\n"}, Deferred, 451, "4.3.0", false},
		{"DATA odd", &fakeLMTP{data: "250 2.0.0 sure\r\n"}, Deferred, 250, "2.0.0", false},
		{"all RCPT refused", &fakeLMTP{rcpt: func(string) string { return "550 5.1.1 unknown\r\n" }}, Bounced, 550, "5.1.1", false},
		{"all RCPT refused lockstep", &fakeLMTP{lhlo: lhloPlain, rcpt: func(string) string { return "550 5.1.1 unknown\r\n" }}, Bounced, 550, "5.1.1", false},
		{"RCPT malformed", &fakeLMTP{rcpt: func(string) string { return "2x0 what\r\n" }}, Deferred, 0, "4.4.2", false},
		{"final malformed", &fakeLMTP{final: func(string) string { return "250-2.0.0 ok\r\n550 5.0.0 no\r\n" }}, Deferred, 0, "4.4.2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.finalCount = -1
			c := newTestLMTP(t, tt.f.start(t))
			targets := targetsFor("a@example.org", "b@example.org")
			res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x\n"), targets)
			for _, r := range res {
				if r.Status() != tt.status || r.Code != tt.code || r.Enhanced != tt.enhanced {
					t.Errorf("%s: %s %d %q (%s), want %s %d %q", r.Mailbox, r.Status(), r.Code, r.Enhanced, r.Reply(), tt.status, tt.code, tt.enhanced)
				}
			}
			s := tt.f.session(t)
			if (len(s.wire) > 0) != tt.sentData {
				t.Errorf("message data sent: %q, want sent %v", s.wire, tt.sentData)
			}
			if !tt.sentData && slices.Contains(s.cmds, "DATA") && strings.Contains(tt.name, "lockstep") {
				t.Errorf("DATA sent without accepted recipients: %q", s.cmds)
			}
		})
	}
}

func TestLMTPDialFailure(t *testing.T) {
	c := newTestLMTP(t, "unix:"+filepath.Join(t.TempDir(), "missing.sock"))
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x"), targetsFor("a@example.org", "b@example.org"))
	for _, r := range res {
		if r.Status() != Deferred || r.Enhanced != "4.4.1" || r.Err == nil || !strings.Contains(r.Reply(), "missing.sock") {
			t.Errorf("%+v", r)
		}
	}
}

// TestLMTPAddressChecks: addresses that could smuggle commands never reach the server.
func TestLMTPAddressChecks(t *testing.T) {
	f := &fakeLMTP{finalCount: -1}
	c := newTestLMTP(t, f.start(t))
	targets := []Target{
		{Rcpt: "r1", Mailbox: Mailbox{Domain: "example.org", User: "a>\r\nRSET\r\nRCPT TO:<x"}},
		{Rcpt: "r2", Mailbox: Mailbox{Domain: "example.org", User: "good"}},
		{Rcpt: "r3", Mailbox: Mailbox{Domain: "example.org", User: "a<b"}},
	}
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x"), targets)
	if res[0].Status() != Bounced || res[1].Status() != Delivered || res[2].Status() != Bounced {
		t.Errorf("results %s %s %s", res[0].Reply(), res[1].Reply(), res[2].Reply())
	}
	s := f.session(t)
	if want := []string{"LHLO mx.example", "MAIL FROM:<>", "RCPT TO:<good@example.org>", "DATA", "QUIT"}; !slices.Equal(s.cmds, want) {
		t.Errorf("commands %q, want %q", s.cmds, want)
	}

	// A bad sender fails everything without a connection.
	res = c.Deliver(context.Background(), Envelope{From: "x\r\nQUIT"}, strings.NewReader("x"), targetsFor("a@example.org"))
	if res[0].Status() != Bounced || res[0].Enhanced != "5.1.7" {
		t.Errorf("bad sender: %+v", res[0])
	}
}

func TestLMTPSMTPUTF8(t *testing.T) {
	t.Run("offered", func(t *testing.T) {
		f := &fakeLMTP{finalCount: -1}
		c := newTestLMTP(t, f.start(t))
		res := c.Deliver(context.Background(), Envelope{From: "jörg@example.de"}, strings.NewReader("x"), targetsFor("andré@example.org"))
		if res[0].Status() != Delivered {
			t.Fatal(res[0].Reply())
		}
		if s := f.session(t); s.cmds[1] != "MAIL FROM:<jörg@example.de> SMTPUTF8" {
			t.Errorf("MAIL command %q", s.cmds[1])
		}
	})
	t.Run("not offered, needed", func(t *testing.T) {
		f := &fakeLMTP{finalCount: -1, lhlo: lhloPlain}
		c := newTestLMTP(t, f.start(t))
		res := c.Deliver(context.Background(), Envelope{SMTPUTF8: true}, strings.NewReader("x"), targetsFor("andré@example.org"))
		if res[0].Status() != Bounced || res[0].Enhanced != "5.6.7" {
			t.Errorf("%+v", res[0])
		}
	})
	t.Run("not offered, headers only", func(t *testing.T) {
		f := &fakeLMTP{finalCount: -1, lhlo: "250 fake\r\n"}
		c := newTestLMTP(t, f.start(t))
		res := c.Deliver(context.Background(), Envelope{SMTPUTF8: true, EightBit: true}, strings.NewReader("Subject: é\n"), targetsFor("a@example.org"))
		if res[0].Status() != Delivered {
			t.Fatal(res[0].Reply())
		}
		if s := f.session(t); s.cmds[1] != "MAIL FROM:<>" {
			t.Errorf("MAIL command %q, want no parameters", s.cmds[1])
		}
	})
}

// errReader fails after giving some data.
type errReader struct{ n int }

func (e *errReader) Read(p []byte) (int, error) {
	if e.n == 0 {
		return 0, errDisk
	}
	k := min(e.n, len(p))
	for i := range k {
		p[i] = 'y'
	}
	e.n -= k
	return k, nil
}

// TestLMTPBodyError: if the body cannot be read to the end, the final dot must never be
// sent, or the store would keep a truncated message.
func TestLMTPBodyError(t *testing.T) {
	f := &fakeLMTP{finalCount: -1}
	c := newTestLMTP(t, f.start(t))
	res := c.Deliver(context.Background(), Envelope{}, &errReader{n: 100 << 10}, targetsFor("a@example.org", "b@example.org"))
	for _, r := range res {
		if r.Status() != Deferred || !errors.Is(r.Err, errDisk) {
			t.Errorf("%+v", r)
		}
	}
	if s := f.session(t); s.complete {
		t.Error("the server received the final dot")
	}
}

// TestLMTPManyRecipients goes past the pipelining window.
func TestLMTPManyRecipients(t *testing.T) {
	f := &fakeLMTP{finalCount: -1}
	f.rcpt = func(addr string) string {
		if strings.HasPrefix(addr, "x7") {
			return "550 5.1.1 no\r\n"
		}
		return "250 2.1.5 OK\r\n"
	}
	c := newTestLMTP(t, f.start(t))
	var addrs []string
	for i := range 3*pipelineWindow + 5 {
		addrs = append(addrs, fmt.Sprintf("x%03d@example.org", i))
	}
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x"), targetsFor(addrs...))
	for i, r := range res {
		want := Delivered
		if strings.HasPrefix(addrs[i], "x7") {
			want = Bounced
		}
		if r.Status() != want || r.Mailbox != addrs[i] {
			t.Errorf("%s: %s", addrs[i], r.Reply())
		}
	}
}

func TestLMTPOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLMTP{finalCount: -1}
	f.serve(t, ln)
	c := newTestLMTP(t, "tcp:"+ln.Addr().String())
	res := c.Deliver(context.Background(), Envelope{}, strings.NewReader("x"), targetsFor("a@example.org"))
	if res[0].Status() != Delivered {
		t.Fatal(res[0].Reply())
	}
}

func TestNewLMTP(t *testing.T) {
	for _, addr := range []string{"", "unix:", "/run/lmtp", "tcp:localhost", "tcp:", "udp:127.0.0.1:24", "inet:127.0.0.1:24"} {
		if _, err := NewLMTP(addr, ""); err == nil {
			t.Errorf("NewLMTP(%q) succeeded", addr)
		}
	}
	if _, err := NewLMTP("unix:/run/lmtp", "bad host"); err == nil {
		t.Error("host name with a space accepted")
	}
	for _, addr := range []string{"unix:/run/dovecot/lmtp", "tcp:127.0.0.1:24", "tcp:[::1]:24"} {
		c, err := NewLMTP(addr, "")
		if err != nil {
			t.Errorf("NewLMTP(%q): %v", addr, err)
			continue
		}
		if c.String() != addr || c.hostname != "localhost" {
			t.Errorf("NewLMTP(%q) = %v / %q", addr, c, c.hostname)
		}
	}
}

func TestResultStatusAndReply(t *testing.T) {
	tests := []struct {
		r      Result
		status Status
		reply  string
	}{
		{Result{Code: 250, Enhanced: "2.0.0", Text: "Saved"}, Delivered, "250 2.0.0 Saved"},
		{Result{Code: 550, Enhanced: "5.1.1", Text: "no such user"}, Bounced, "550 5.1.1 no such user"},
		{Result{Code: 452, Enhanced: "4.2.2", Temporary: true}, Deferred, "452 4.2.2"},
		{Result{Enhanced: "4.4.2", Temporary: true, Err: errDisk}, Deferred, "4.4.2: input/output error"},
		{Result{Enhanced: "5.6.7", Err: errDisk}, Bounced, "5.6.7: input/output error"},
		{Result{Code: 250, Err: errDisk, Temporary: true}, Deferred, "250: input/output error"},
		{Result{}, Deferred, ""},
		{Result{Code: 354}, Deferred, "354"},
	}
	for _, tt := range tests {
		if got := tt.r.Status(); got != tt.status {
			t.Errorf("%+v.Status() = %s, want %s", tt.r, got, tt.status)
		}
		if got := tt.r.Reply(); got != tt.reply {
			t.Errorf("%+v.Reply() = %q, want %q", tt.r, got, tt.reply)
		}
	}
}
