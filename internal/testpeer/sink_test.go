package testpeer

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a minimal SMTP server that accepts every transaction and records it. It
// exists only to test this package's Postfix harness, so that those tests do not
// depend on mxward's own SMTP server.
type sink struct {
	ln       net.Listener
	hostname string
	tls      *tls.Config // nil: STARTTLS is not offered

	mu      sync.Mutex
	msgs    []sinkMessage
	changed chan struct{} // closed and replaced whenever msgs grows

	wg sync.WaitGroup
}

// sinkMessage is one accepted transaction.
type sinkMessage struct {
	Helo string
	From string
	To   []string
	Data []byte // as sent, dot-unstuffed, CRLF line endings
	TLS  bool   // whether the transaction ran after STARTTLS
}

// maxSinkData bounds a message body; test messages are tiny.
const maxSinkData = 10 << 20

// startSink listens on 127.0.0.1 and serves until the test ends. With cert it
// offers STARTTLS.
func startSink(t testing.TB, hostname string, cert *Cert) *sink {
	t.Helper()
	return startSinkAt(t, "127.0.0.1:0", hostname, cert)
}

// startSinkAt is startSink on a given loopback address.
func startSinkAt(t testing.TB, addr, hostname string, cert *Cert) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("sink: listen on %s: %v", addr, err)
	}
	s := &sink{ln: ln, hostname: hostname, changed: make(chan struct{})}
	if cert != nil {
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *sink) Addr() string { return s.ln.Addr().String() }

func (s *sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

// wait returns the recorded messages once there are at least n, failing the test
// after timeout.
func (s *sink) wait(t testing.TB, n int, timeout time.Duration) []sinkMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		msgs, changed := append([]sinkMessage(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("sink: %d of %d messages after %v", len(msgs), n, timeout)
		}
	}
}

func (s *sink) record(m sinkMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// serve runs one SMTP session. Errors end the session; the peer under test
// reports them from its side.
func (s *sink) serve(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(code int, lines ...string) error {
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			fmt.Fprintf(w, "%d%s%s\r\n", code, sep, l)
		}
		return w.Flush()
	}

	var (
		helo  string
		from  string
		inTx  bool
		rcpts []string
		inTLS bool
	)
	reset := func() { from, inTx, rcpts = "", false, nil }

	if reply(220, s.hostname+" ESMTP sink") != nil {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg := parseCommand(strings.TrimRight(line, "\r\n"))
		switch verb {
		case "EHLO", "HELO":
			reset()
			helo = arg
			ext := []string{s.hostname, "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"}
			if s.tls != nil && !inTLS {
				ext = append(ext, "STARTTLS")
			}
			if verb == "HELO" {
				ext = ext[:1]
			}
			err = reply(250, ext...)
		case "STARTTLS":
			if s.tls == nil || inTLS {
				err = reply(502, "5.5.1 STARTTLS not available")
				break
			}
			if err := reply(220, "2.0.0 ready to start TLS"); err != nil {
				return
			}
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			// Anything pipelined before the handshake is discarded with the
			// old reader, as RFC 3207 requires.
			c, r, w = tc, bufio.NewReader(tc), bufio.NewWriter(tc)
			inTLS = true
			helo = ""
			reset()
		case "MAIL":
			addr, _, perr := parsePath(arg, "FROM")
			switch {
			case inTx:
				err = reply(503, "5.5.1 nested MAIL")
			case perr != nil:
				err = reply(501, "5.5.4 "+perr.Error())
			default:
				from, inTx = addr, true
				err = reply(250, "2.1.0 ok")
			}
		case "RCPT":
			addr, _, perr := parsePath(arg, "TO")
			switch {
			case !inTx:
				err = reply(503, "5.5.1 need MAIL first")
			case perr != nil || addr == "":
				err = reply(501, "5.1.3 bad recipient")
			default:
				rcpts = append(rcpts, addr)
				err = reply(250, "2.1.5 ok")
			}
		case "DATA":
			if len(rcpts) == 0 {
				err = reply(503, "5.5.1 need RCPT first")
				break
			}
			if err := reply(354, "end with <CRLF>.<CRLF>"); err != nil {
				return
			}
			data, derr := readData(r, maxSinkData)
			if derr != nil {
				return
			}
			s.record(sinkMessage{Helo: helo, From: from, To: rcpts, Data: data, TLS: inTLS})
			reset()
			err = reply(250, "2.0.0 queued")
		case "RSET":
			reset()
			err = reply(250, "2.0.0 ok")
		case "NOOP":
			err = reply(250, "2.0.0 ok")
		case "QUIT":
			_ = reply(221, "2.0.0 bye")
			return
		default:
			err = reply(502, "5.5.2 command not implemented")
		}
		if err != nil {
			return
		}
	}
}

// parseCommand splits an SMTP command line into its upper-cased verb and the
// argument after the first space.
func parseCommand(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(verb), strings.TrimSpace(arg)
}

// parsePath parses the argument of MAIL or RCPT: keyword ("FROM" or "TO"), a colon,
// optional spaces, a path in angle brackets and optional parameters after a
// space. It does not handle quoted local parts containing brackets or spaces,
// which no test here sends.
func parsePath(arg, keyword string) (addr, params string, err error) {
	if len(arg) <= len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) || arg[len(keyword)] != ':' {
		return "", "", fmt.Errorf("expected %s:<path>", keyword)
	}
	rest := strings.TrimLeft(arg[len(keyword)+1:], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", "", errors.New("path not in angle brackets")
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", "", errors.New("unterminated path")
	}
	addr = rest[1:end]
	if strings.ContainsAny(addr, "< \t\r\n") {
		return "", "", errors.New("invalid character in path")
	}
	rest = rest[end+1:]
	if rest != "" && rest[0] != ' ' {
		return "", "", errors.New("no space before parameters")
	}
	params = strings.TrimSpace(rest)
	if strings.ContainsAny(params, "\r\n") {
		return "", "", errors.New("line break in parameters")
	}
	return addr, params, nil
}

// readData reads a DATA body up to the terminating "." line and undoes dot
// stuffing. Line endings are kept as sent. A body over max bytes, or a stream that
// ends before the terminator, is an error.
func readData(r *bufio.Reader, max int) ([]byte, error) {
	var body bytes.Buffer
	atLineStart := true
	for {
		// A line longer than the reader's buffer comes in several chunks;
		// only a chunk that starts a line can be the terminator or stuffed.
		chunk, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if atLineStart {
			if err == nil && (string(chunk) == ".\r\n" || string(chunk) == ".\n") {
				return body.Bytes(), nil
			}
			chunk = bytes.TrimPrefix(chunk, []byte("."))
		}
		body.Write(chunk)
		if body.Len() > max {
			return nil, errors.New("message too large")
		}
		atLineStart = err == nil
	}
}
