package inject

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeConfig scripts the fake server. Empty fields take the defaults of a healthy
// mxward local listener.
type fakeConfig struct {
	greeting string            // default "220 fake.example ESMTP"
	ehlo     []string          // EHLO keyword lines; nil means the full mxward set
	ehloErr  string            // reply to EHLO instead of the extension list
	mail     string            // reply to MAIL; default 250
	rcpt     map[string]string // reply to RCPT by address; default 250
	data     string            // reply to DATA; default 354
	final    string            // reply after the final dot; default "250 2.0.0 Ok: queued as <id>"
	hangUp   string            // hang up without replying after this verb ("" never; "." after the data)
	stall    string            // stop answering after this verb ("." after the data)
}

// fakeSession is what the fake server saw in one session.
type fakeSession struct {
	commands []string // every command line, DATA content excluded
	raw      string   // DATA content as on the wire, without the final dot line
	data     string   // DATA content with the dot-stuffing removed
	dot      bool     // the final dot arrived
	ended    bool     // the server side of the session is over
}

type fakeServer struct {
	path string
	cfg  fakeConfig
	done chan struct{}

	mu    sync.Mutex
	sess  []*fakeSession
	conns []net.Conn
	n     int
}

func startFake(t *testing.T, cfg fakeConfig) *fakeServer {
	t.Helper()
	s := &fakeServer{path: filepath.Join(t.TempDir(), "inject.sock"), cfg: cfg, done: make(chan struct{})}
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		close(s.done)
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *fakeServer) sessions() []*fakeSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*fakeSession(nil), s.sess...)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	sess := &fakeSession{}
	s.mu.Lock()
	s.sess = append(s.sess, sess)
	s.n++
	id := fmt.Sprintf("0fake%03d", s.n)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		sess.ended = true
		s.mu.Unlock()
	}()

	r := bufio.NewReader(c)
	say := func(reply string) { io.WriteString(c, reply+"\r\n") }
	// record updates the session under the lock, since the test reads it concurrently.
	record := func(f func()) {
		s.mu.Lock()
		f()
		s.mu.Unlock()
	}
	say(or(s.cfg.greeting, "220 fake.example ESMTP"))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		record(func() { sess.commands = append(sess.commands, line) })
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		if strings.HasPrefix(verb, "MAIL") || strings.HasPrefix(verb, "RCPT") {
			verb = verb[:4]
		}
		if verb == s.cfg.hangUp {
			return
		}
		if verb == s.cfg.stall {
			<-s.done
			return
		}
		switch verb {
		case "EHLO":
			if s.cfg.ehloErr != "" {
				say(s.cfg.ehloErr)
				continue
			}
			ext := s.cfg.ehlo
			if ext == nil {
				ext = []string{"PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"}
			}
			lines := append([]string{"fake.example"}, ext...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				say("250" + sep + l)
			}
		case "HELO":
			say("250 fake.example")
		case "MAIL":
			say(or(s.cfg.mail, "250 2.1.0 Ok"))
		case "RCPT":
			_, addr, _ := strings.Cut(line, "<")
			addr, _, _ = strings.Cut(addr, ">")
			say(or(s.cfg.rcpt[addr], "250 2.1.5 Ok"))
		case "DATA":
			reply := or(s.cfg.data, "354 End data with <CR><LF>.<CR><LF>")
			say(reply)
			if !strings.HasPrefix(reply, "354") {
				continue
			}
			var raw, data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					record(func() { sess.raw, sess.data = raw.String(), data.String() })
					return
				}
				if l == ".\r\n" {
					break
				}
				raw.WriteString(l)
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			record(func() { sess.raw, sess.data, sess.dot = raw.String(), data.String(), true })
			switch "." {
			case s.cfg.hangUp:
				return
			case s.cfg.stall:
				<-s.done
				return
			}
			say(or(s.cfg.final, "250 2.0.0 Ok: queued as "+id))
		case "RSET":
			say("250 2.0.0 Ok")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

func testEnvelope(rcpts ...string) Envelope {
	if len(rcpts) == 0 {
		rcpts = []string{"r@example.org"}
	}
	return Envelope{Sender: "s@example.org", Recipients: rcpts}
}

func TestSendHappyPath(t *testing.T) {
	srv := startFake(t, fakeConfig{})
	body := "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n. \r\n."
	env := Envelope{
		Sender:     "s@example.org",
		Recipients: []string{"a@example.org", "jörg@bücher.example"},
		Notify:     "SUCCESS,FAILURE",
		Ret:        "HDRS",
		EnvID:      "job 1+x=y",
		BodyType:   "8BITMIME",
		SMTPUTF8:   true,
		Size:       int64(len(body)),
	}
	id, err := Send(t.Context(), srv.path, env, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != "0fake001" {
		t.Errorf("queue ID = %q, want 0fake001", id)
	}
	sess := srv.sessions()
	if len(sess) != 1 {
		t.Fatalf("%d sessions, want 1", len(sess))
	}
	wantCmds := []string{
		"EHLO localhost",
		fmt.Sprintf("MAIL FROM:<s@example.org> SIZE=%d BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=job+201+2Bx+3Dy", len(body)),
		"RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE",
		"RCPT TO:<jörg@bücher.example> NOTIFY=SUCCESS,FAILURE",
		"DATA",
		"QUIT",
	}
	if !reflect.DeepEqual(sess[0].commands, wantCmds) {
		t.Errorf("commands\n got  %q\n want %q", sess[0].commands, wantCmds)
	}
	wantRaw := "Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nmid.dle\r\n.. \r\n..\r\n"
	if sess[0].raw != wantRaw {
		t.Errorf("on the wire\n got  %q\n want %q", sess[0].raw, wantRaw)
	}
	if want := body + "\r\n"; sess[0].data != want {
		t.Errorf("unstuffed data\n got  %q\n want %q", sess[0].data, want)
	}
	if !sess[0].dot {
		t.Error("no final dot")
	}
}

// TestSendCanonicalisesBody checks that a body with LF or lone CR line ends goes out
// as CRLF.
func TestSendCanonicalisesBody(t *testing.T) {
	srv := startFake(t, fakeConfig{})
	if _, err := Send(t.Context(), srv.path, testEnvelope(), strings.NewReader("a\nb\rc\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := srv.sessions()[0].data; got != "a\r\nb\r\nc\r\n" {
		t.Errorf("data = %q", got)
	}
}

// TestSendEmptyBody checks that an empty body still makes a well-formed DATA.
func TestSendEmptyBody(t *testing.T) {
	srv := startFake(t, fakeConfig{})
	if _, err := Send(t.Context(), srv.path, testEnvelope(), strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	if s := srv.sessions()[0]; !s.dot {
		t.Errorf("session %+v has no final dot", s)
	}
}

func TestSendExtensions(t *testing.T) {
	full := Envelope{
		Sender: "s@example.org", Recipients: []string{"r@example.org"},
		Notify: "NEVER", Ret: "FULL", EnvID: "e", BodyType: "8BITMIME", Size: 10,
	}
	tests := []struct {
		name string
		cfg  fakeConfig
		env  Envelope
		want []string // commands up to DATA
	}{
		{"all extensions", fakeConfig{}, full, []string{
			"EHLO localhost", "MAIL FROM:<s@example.org> SIZE=10 BODY=8BITMIME RET=FULL ENVID=e",
			"RCPT TO:<r@example.org> NOTIFY=NEVER", "DATA"}},
		{"no extensions", fakeConfig{ehlo: []string{"PIPELINING"}}, full, []string{
			"EHLO localhost", "MAIL FROM:<s@example.org>", "RCPT TO:<r@example.org>", "DATA"}},
		{"HELO fallback", fakeConfig{ehloErr: "502 5.5.2 Error: command not recognized"}, full, []string{
			"EHLO localhost", "HELO localhost", "MAIL FROM:<s@example.org>", "RCPT TO:<r@example.org>", "DATA"}},
		{"null sender, no parameters", fakeConfig{}, Envelope{Recipients: []string{"r@example.org"}}, []string{
			"EHLO localhost", "MAIL FROM:<>", "RCPT TO:<r@example.org>", "DATA"}},
		{"quoted local part", fakeConfig{}, Envelope{Sender: `"a b"@example.org`, Recipients: []string{`"c\"d"@example.org`}}, []string{
			"EHLO localhost", `MAIL FROM:<"a b"@example.org>`, `RCPT TO:<"c\"d"@example.org>`, "DATA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFake(t, tt.cfg)
			if _, err := Send(t.Context(), srv.path, tt.env, strings.NewReader("x\r\n")); err != nil {
				t.Fatal(err)
			}
			got := srv.sessions()[0].commands
			if len(got) < len(tt.want) || !reflect.DeepEqual(got[:len(tt.want)], tt.want) {
				t.Errorf("commands\n got  %q\n want %q...", got, tt.want)
			}
		})
	}
}

func TestSendReplies(t *testing.T) {
	tests := []struct {
		name     string
		cfg      fakeConfig
		rcpts    []string
		wantID   bool
		wantErr  string // substring; "" for success
		wantCode int
		wantDot  bool // the message reached the server
		wantCmds []string
	}{
		{name: "partial recipient rejection", wantDot: true,
			cfg:      fakeConfig{rcpt: map[string]string{"bad@example.org": "550 5.1.1 No such user here"}},
			rcpts:    []string{"good@example.org", "bad@example.org", "good2@example.org"},
			wantID:   true,
			wantErr:  "recipient refused: RCPT TO:<bad@example.org>: 550 5.1.1 No such user here",
			wantCode: EX_NOUSER,
			wantCmds: []string{"EHLO localhost", "MAIL FROM:<s@example.org>", "RCPT TO:<good@example.org>",
				"RCPT TO:<bad@example.org>", "RCPT TO:<good2@example.org>", "DATA", "QUIT"}},
		{name: "partial temporary rejection", wantDot: true,
			cfg:      fakeConfig{rcpt: map[string]string{"later@example.org": "450 4.2.0 Mailbox busy"}},
			rcpts:    []string{"good@example.org", "later@example.org"},
			wantID:   true,
			wantErr:  "RCPT TO:<later@example.org>: 450 4.2.0 Mailbox busy",
			wantCode: EX_TEMPFAIL},
		{name: "mixed rejections give NOUSER", wantDot: true,
			cfg: fakeConfig{rcpt: map[string]string{
				"later@example.org": "450 4.2.0 Mailbox busy", "bad@example.org": "550 5.1.1 No such user here"}},
			rcpts:    []string{"later@example.org", "good@example.org", "bad@example.org"},
			wantID:   true,
			wantErr:  "2 recipients refused: RCPT TO:<later@example.org>: 450 4.2.0 Mailbox busy; RCPT TO:<bad@example.org>: 550 5.1.1 No such user here",
			wantCode: EX_NOUSER},
		{name: "all recipients rejected",
			cfg:      fakeConfig{rcpt: map[string]string{"a@example.org": "550 5.1.1 No", "b@example.org": "553 5.1.3 Bad"}},
			rcpts:    []string{"a@example.org", "b@example.org"},
			wantErr:  "2 recipients refused",
			wantCode: EX_NOUSER,
			wantCmds: []string{"EHLO localhost", "MAIL FROM:<s@example.org>", "RCPT TO:<a@example.org>",
				"RCPT TO:<b@example.org>", "QUIT"}},
		{name: "multi-line rejection", wantDot: true,
			cfg:      fakeConfig{rcpt: map[string]string{"bad@example.org": "550-5.1.1 first line\r\n550 5.1.1 second line"}},
			rcpts:    []string{"ok@example.org", "bad@example.org"},
			wantID:   true,
			wantErr:  "RCPT TO:<bad@example.org>: 550 5.1.1 first line 5.1.1 second line",
			wantCode: EX_NOUSER},
		{name: "421 on RCPT ends the session",
			cfg:      fakeConfig{rcpt: map[string]string{"b@example.org": "421 4.3.2 Shutting down"}},
			rcpts:    []string{"a@example.org", "b@example.org"},
			wantErr:  "RCPT TO:<b@example.org>: 421 4.3.2 Shutting down",
			wantCode: EX_TEMPFAIL},
		{name: "4xx on MAIL",
			cfg:      fakeConfig{mail: "451 4.3.0 Queue file write error"},
			wantErr:  "MAIL FROM:<s@example.org>: 451 4.3.0 Queue file write error",
			wantCode: EX_TEMPFAIL,
			wantCmds: []string{"EHLO localhost", "MAIL FROM:<s@example.org>", "QUIT"}},
		{name: "5xx on MAIL",
			cfg:      fakeConfig{mail: "553 5.7.1 Sender address rejected"},
			wantErr:  "MAIL FROM:<s@example.org>: 553 5.7.1 Sender address rejected",
			wantCode: EX_UNAVAILABLE},
		{name: "DATA refused",
			cfg:      fakeConfig{data: "554 5.5.1 No valid recipients"},
			wantErr:  "DATA: 554 5.5.1 No valid recipients",
			wantCode: EX_UNAVAILABLE},
		{name: "message refused after the dot", wantDot: true,
			cfg:      fakeConfig{final: "552 5.3.4 Message size exceeds fixed limit"},
			wantErr:  "end of data: 552 5.3.4 Message size exceeds fixed limit",
			wantCode: EX_UNAVAILABLE},
		{name: "temporary failure after the dot", wantDot: true,
			cfg:      fakeConfig{final: "451 4.3.0 Error: queue file write error"},
			wantErr:  "end of data: 451 4.3.0",
			wantCode: EX_TEMPFAIL},
		{name: "greeting refused",
			cfg:      fakeConfig{greeting: "554 5.3.2 Not accepting mail"},
			wantErr:  "greeting: 554 5.3.2 Not accepting mail",
			wantCode: EX_UNAVAILABLE},
		{name: "multi-line greeting", wantDot: true,
			cfg:    fakeConfig{greeting: "220-fake.example first\r\n220 second"},
			wantID: true},
		{name: "EHLO temporary failure",
			cfg:      fakeConfig{ehloErr: "421 4.3.2 Service not available"},
			wantErr:  "EHLO localhost: 421 4.3.2 Service not available",
			wantCode: EX_TEMPFAIL,
			wantCmds: []string{"EHLO localhost"}},
		{name: "malformed greeting",
			cfg:      fakeConfig{greeting: "hello there"},
			wantErr:  "malformed reply line",
			wantCode: EX_SOFTWARE},
		{name: "queue ID missing from reply", wantDot: true,
			cfg: fakeConfig{final: "250 2.0.0 Ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFake(t, tt.cfg)
			rcpts := tt.rcpts
			if rcpts == nil {
				rcpts = []string{"r@example.org"}
			}
			id, err := Send(t.Context(), srv.path, testEnvelope(rcpts...), strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			if (id != "") != tt.wantID {
				t.Errorf("queue ID = %q, want one: %v", id, tt.wantID)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send error = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("ExitCode = %d, want %d", got, tt.wantCode)
			}
			sess := srv.sessions()
			if len(sess) != 1 {
				t.Fatalf("%d sessions, want 1", len(sess))
			}
			if tt.wantCmds != nil && !reflect.DeepEqual(sess[0].commands, tt.wantCmds) {
				t.Errorf("commands\n got  %q\n want %q", sess[0].commands, tt.wantCmds)
			}
			srv.mu.Lock()
			dot := sess[0].dot
			srv.mu.Unlock()
			if dot != tt.wantDot {
				t.Errorf("message reached the server = %v, want %v", dot, tt.wantDot)
			}
		})
	}
}

// TestSendRecipientErrorDetails checks the structure the CLI prints refused recipients
// from.
func TestSendRecipientErrorDetails(t *testing.T) {
	srv := startFake(t, fakeConfig{rcpt: map[string]string{"bad@example.org": "550 5.1.1 No such user here"}})
	id, err := Send(t.Context(), srv.path, testEnvelope("ok@example.org", "bad@example.org"), strings.NewReader("x\r\n"))
	var re *RecipientError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *RecipientError", err)
	}
	if id == "" {
		t.Error("no queue ID although a recipient was accepted")
	}
	if len(re.Rejected) != 1 {
		t.Fatalf("Rejected = %v", re.Rejected)
	}
	r := re.Rejected[0]
	if r.Command != "RCPT TO:<bad@example.org>" || r.Code != 550 || r.Text != "5.1.1 No such user here" {
		t.Errorf("rejection = %+v", r)
	}
	if got := srv.sessions()[0].data; got != "x\r\n" {
		t.Errorf("accepted recipient got %q", got)
	}
}

func TestSendHangUp(t *testing.T) {
	for _, verb := range []string{"EHLO", "MAIL", "RCPT", "DATA", "."} {
		t.Run(verb, func(t *testing.T) {
			srv := startFake(t, fakeConfig{hangUp: verb})
			id, err := Send(t.Context(), srv.path, testEnvelope(), strings.NewReader("x\r\n"))
			if err == nil {
				t.Fatalf("Send succeeded with id %q", id)
			}
			if id != "" {
				t.Errorf("queue ID %q after a lost connection", id)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("error %v does not report the lost connection", err)
			}
			if got := ExitCode(err); got != EX_TEMPFAIL {
				t.Errorf("ExitCode = %d, want EX_TEMPFAIL", got)
			}
		})
	}
}

func TestSendServerNotRunning(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	for _, path := range []string{filepath.Join(dir, "missing.sock"), stale} {
		_, err := Send(t.Context(), path, testEnvelope(), strings.NewReader("x\r\n"))
		if !errors.Is(err, ErrServerNotRunning) {
			t.Errorf("%s: error %v is not ErrServerNotRunning", path, err)
		}
		if !strings.Contains(fmt.Sprint(err), path) {
			t.Errorf("%s: error %v does not name the socket", path, err)
		}
		if got := ExitCode(err); got != EX_TEMPFAIL {
			t.Errorf("%s: ExitCode = %d, want EX_TEMPFAIL", path, got)
		}
	}
}

func TestSendPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores socket permissions")
	}
	srv := startFake(t, fakeConfig{})
	if err := os.Chmod(filepath.Dir(srv.path), 0o000); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Dir(srv.path), 0o700)
	_, err := Send(t.Context(), srv.path, testEnvelope(), strings.NewReader("x\r\n"))
	if !errors.Is(err, fs.ErrPermission) || ExitCode(err) != EX_NOPERM {
		t.Errorf("err = %v, exit %d", err, ExitCode(err))
	}
}

func TestSendTimeout(t *testing.T) {
	const timeout, final = 50 * time.Millisecond, 300 * time.Millisecond
	for _, verb := range []string{"EHLO", "RCPT", "DATA", "."} {
		t.Run(verb, func(t *testing.T) {
			srv := startFake(t, fakeConfig{stall: verb})
			start := time.Now()
			_, err := send(t.Context(), srv.path, testEnvelope(), strings.NewReader("x\r\n"), timeout, final)
			d := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("error %v is not a timeout", err)
			}
			if d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if verb == "." && d < final {
				t.Errorf("gave up on the final reply after %v, before the final timeout %v", d, final)
			}
			if got := ExitCode(err); got != EX_TEMPFAIL {
				t.Errorf("ExitCode = %d, want EX_TEMPFAIL", got)
			}
		})
	}
}

// TestSendQuitStall checks that a server that stops answering after queueing the
// message does not turn the delivery into a failure.
func TestSendQuitStall(t *testing.T) {
	srv := startFake(t, fakeConfig{stall: "QUIT"})
	id, err := send(t.Context(), srv.path, testEnvelope(), strings.NewReader("x\r\n"), 50*time.Millisecond, time.Second)
	if err != nil || id == "" {
		t.Fatalf("send = %q, %v; want the queue ID", id, err)
	}
}

func TestSendContextCancel(t *testing.T) {
	srv := startFake(t, fakeConfig{stall: "MAIL"})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := Send(ctx, srv.path, testEnvelope(), strings.NewReader("x\r\n"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancellation took %v", d)
	}
	if got := ExitCode(err); got != EX_TEMPFAIL {
		t.Errorf("ExitCode = %d, want EX_TEMPFAIL", got)
	}
}

// TestSendBodyReadError checks that a failure reading the message drops the
// connection before the final dot, so no truncated message is queued.
func TestSendBodyReadError(t *testing.T) {
	srv := startFake(t, fakeConfig{})
	boom := errors.New("disk on fire")
	body := &failingReader{data: []byte("Subject: x\r\n\r\npartial"), err: boom}
	id, err := Send(t.Context(), srv.path, testEnvelope(), body)
	if !errors.Is(err, boom) || id != "" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	if got := ExitCode(err); got != EX_IOERR {
		t.Errorf("ExitCode = %d, want EX_IOERR", got)
	}
	// Wait for the server to see the hang-up.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := srv.sessions()[0]
		srv.mu.Lock()
		ended, dot := s.ended, s.dot
		srv.mu.Unlock()
		if dot {
			t.Fatal("the server received the final dot")
		}
		if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendBadEnvelope(t *testing.T) {
	tests := []struct {
		name string
		env  Envelope
		code int
	}{
		{"no recipients", Envelope{Sender: "s@example.org"}, EX_DATAERR},
		{"recipient with CRLF", testEnvelope("a@example.org>\r\nRCPT TO:<b@example.org"), EX_DATAERR},
		{"sender with CRLF", Envelope{Sender: "s@example.org>\r\nRSET", Recipients: []string{"r@example.org"}}, EX_DATAERR},
		{"unqualified recipient", testEnvelope("root"), EX_DATAERR},
		{"bad NOTIFY", Envelope{Recipients: []string{"r@example.org"}, Notify: "SOMETIMES"}, EX_SOFTWARE},
		{"bad RET", Envelope{Recipients: []string{"r@example.org"}, Ret: "BODY"}, EX_SOFTWARE},
		{"bad BODY", Envelope{Recipients: []string{"r@example.org"}, BodyType: "BINARYMIME"}, EX_SOFTWARE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No server: the envelope must be refused before connecting.
			_, err := Send(t.Context(), filepath.Join(t.TempDir(), "none.sock"), tt.env, strings.NewReader("x\r\n"))
			if err == nil || errors.Is(err, ErrServerNotRunning) {
				t.Fatalf("Send error = %v, want an envelope error", err)
			}
			if got := ExitCode(err); got != tt.code {
				t.Errorf("ExitCode = %d, want %d", got, tt.code)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, EX_OK},
		{&UsageError{Msg: "x"}, EX_USAGE},
		{fmt.Errorf("wrapped: %w", &UsageError{Msg: "x"}), EX_USAGE},
		{&RecipientError{Rejected: []*ReplyError{{Code: 550}}}, EX_NOUSER},
		{&RecipientError{Rejected: []*ReplyError{{Code: 450}, {Code: 550}}}, EX_NOUSER},
		{&RecipientError{Rejected: []*ReplyError{{Code: 450}, {Code: 421}}}, EX_TEMPFAIL},
		{&ReplyError{Code: 451}, EX_TEMPFAIL},
		{&ReplyError{Code: 554}, EX_UNAVAILABLE},
		{fmt.Errorf("connect: %w", ErrServerNotRunning), EX_TEMPFAIL},
		{ErrNoRecipients, EX_DATAERR},
		{ErrHeaderTooLarge, EX_DATAERR},
		{&AddressError{Source: "To header", Value: "x", Err: errNoAddress}, EX_DATAERR},
		{fmt.Errorf("connect: %w", syscall.EACCES), EX_NOPERM},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), EX_TEMPFAIL},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), EX_TEMPFAIL},
		{context.Canceled, EX_TEMPFAIL},
		{&ioError{op: "read message", err: errors.New("x")}, EX_IOERR},
		{&ioError{op: "write message copy", err: syscall.ENOSPC}, EX_TEMPFAIL},
		{errors.New("something else"), EX_SOFTWARE},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
