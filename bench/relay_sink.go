package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sink is the relay benchmark's next hop: an SMTP server on loopback that takes
// every message it is offered, counts it and throws the body away. It offers
// PIPELINING, 8BITMIME and (with a TLS configuration) STARTTLS, accepts every
// sender and recipient, and records when it acknowledged each message's final
// dot, which is when a message has gone end to end.
//
// It runs in the benchmark's own process, so that it adds no process of its own
// to the machine; its goroutines carry the profiler label role=sink, so that a CPU
// profile of the process can tell its cost apart from the load client's.
type sink struct {
	host string
	tls  *tls.Config // nil: no STARTTLS
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	acks   []time.Time // when each message's final dot was acknowledged, in order
	st     sinkStats
}

// sinkStats counts what a sink has received. Its maps are copies when it comes
// from snapshot.
type sinkStats struct {
	sessions   int   // connections accepted
	handshakes int   // completed STARTTLS handshakes
	messages   int   // messages whose final dot was acknowledged
	plaintext  int   // of which received without TLS
	bytes      int64 // message bytes as received, dot-stuffing included, final dot not
	// tls counts messages by what their connection negotiated: "TLS 1.3,
	// TLS_AES_128_GCM_SHA256, X25519".
	tls map[string]int
	// envelopes counts messages by "sender > recipient, recipient", up to
	// maxEnvelopeKinds kinds; the rest are counted under "other".
	envelopes map[string]int
	noQuit    int   // connections that ended without QUIT outside a transaction
	failures  int   // connections that ended in a protocol or transport error
	firstFail error // the first of them
}

const (
	// sinkTimeout bounds the wait for one command or one read of message data.
	sinkTimeout = 2 * time.Minute
	// sinkLineMax bounds a command line, CRLF included; a longer one ends the
	// connection.
	sinkLineMax = 4096
	// maxEnvelopeKinds bounds the envelope counts kept.
	maxEnvelopeKinds = 32
	// sinkAck is the reply to a message's final dot.
	sinkAck = "250 2.0.0 Ok: received and discarded"
)

// sinkTLS is the sink's TLS configuration. Key exchange is X25519 only: Go's
// client in mxward would otherwise agree on the hybrid X25519MLKEM768, which
// Postfix's OpenSSL 3.0 does not offer, and so pay for a bigger handshake than
// Postfix. Session tickets are off, so that every connection costs one full
// handshake for both servers (Postfix's client keeps no TLS session cache by
// default).
func sinkTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS12,
		CurvePreferences:       []tls.CurveID{tls.X25519},
		SessionTicketsDisabled: true,
	}
}

// minus returns the counts that s has and before had not: what one run added.
func (s sinkStats) minus(before sinkStats) sinkStats {
	d := sinkStats{
		sessions: s.sessions - before.sessions, handshakes: s.handshakes - before.handshakes,
		messages: s.messages - before.messages, plaintext: s.plaintext - before.plaintext,
		bytes: s.bytes - before.bytes, noQuit: s.noQuit - before.noQuit, failures: s.failures - before.failures,
		tls: map[string]int{}, envelopes: map[string]int{},
	}
	if d.failures > 0 {
		d.firstFail = s.firstFail
	}
	for k, v := range s.tls {
		if n := v - before.tls[k]; n != 0 {
			d.tls[k] = n
		}
	}
	for k, v := range s.envelopes {
		if n := v - before.envelopes[k]; n != 0 {
			d.envelopes[k] = n
		}
	}
	return d
}

// startSink listens on a free port of 127.0.0.1 and serves until close.
func startSink(host string, cfg *tls.Config) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the sink: %w", err)
	}
	s := &sink{
		host: host, tls: cfg, ln: ln, conns: map[net.Conn]struct{}{},
		st: sinkStats{tls: map[string]int{}, envelopes: map[string]int{}},
	}
	s.wg.Add(1)
	// Goroutines inherit the labels of the goroutine that starts them, so every
	// connection's goroutine is labelled too.
	pprof.Do(context.Background(), pprof.Labels("role", "sink"), func(context.Context) {
		go s.acceptLoop()
	})
	return s, nil
}

func (s *sink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or similar: wait instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.st.sessions++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			err := s.serve(c)
			c.Close()
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.conns, c)
			if err != nil && !s.closed {
				s.st.failures++
				if s.st.firstFail == nil {
					s.st.firstFail = err
				}
			}
		}()
	}
}

// close stops listening, closes every connection and waits for their goroutines.
func (s *sink) close() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// snapshot returns the counts so far.
func (s *sink) snapshot() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.tls = maps.Clone(s.st.tls)
	st.envelopes = maps.Clone(s.st.envelopes)
	return st
}

// waitMessages waits until the sink has acknowledged n messages in all and
// returns when it acknowledged the n-th. It polls: every 5 ms is a cost too
// small to show beside the servers' and puts at most 5 ms on the measured time of
// the caller, not on the time returned.
func (s *sink) waitMessages(ctx context.Context, n int) (time.Time, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		got := len(s.acks)
		var at time.Time
		if got >= n && n > 0 {
			at = s.acks[n-1]
		}
		s.mu.Unlock()
		if got >= n {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("sink received %d of %d messages: %w", got, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// sinkConn is one connection's state.
type sinkConn struct {
	s    *sink
	raw  net.Conn
	conn net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	bw   *bufio.Writer

	tlsDesc string // what TLS negotiated; "" in plaintext
	greeted bool
	from    string
	rcpts   []string
	inMail  bool
}

// errSinkProtocol is wrapped by errors for a client that broke the protocol.
var errSinkProtocol = errors.New("sink: protocol violation")

// serve runs one SMTP session. It returns nil when the client said QUIT or
// closed the connection between transactions.
func (s *sink) serve(raw net.Conn) error {
	c := &sinkConn{s: s, raw: raw, conn: raw}
	c.setConn(raw)
	c.reply("220 " + s.host + " ESMTP relay benchmark sink")
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && !c.inMail {
				s.mu.Lock()
				s.st.noQuit++
				s.mu.Unlock()
				return nil
			}
			return err
		}
		verb, arg := splitCommand(line)
		switch verb {
		case "EHLO":
			c.greeted = true
			c.reset()
			c.reply("250-" + s.host)
			c.reply("250-PIPELINING")
			c.reply("250-8BITMIME")
			if s.tls != nil && c.tlsDesc == "" {
				c.reply("250-STARTTLS")
			}
			c.reply("250 ENHANCEDSTATUSCODES")
		case "HELO":
			c.greeted = true
			c.reset()
			c.reply("250 " + s.host)
		case "STARTTLS":
			if s.tls == nil || c.tlsDesc != "" {
				c.reply("502 5.5.1 STARTTLS not available")
				continue
			}
			if err := c.startTLS(); err != nil {
				return err
			}
		case "MAIL":
			addr, ok := parsePath(arg, "FROM:")
			switch {
			case !c.greeted:
				c.reply("503 5.5.1 EHLO first")
			case c.inMail:
				c.reply("503 5.5.1 nested MAIL")
			case !ok:
				c.reply("501 5.5.4 bad MAIL FROM")
			default:
				c.inMail, c.from = true, addr
				c.reply("250 2.1.0 Ok")
			}
		case "RCPT":
			addr, ok := parsePath(arg, "TO:")
			switch {
			case !c.inMail:
				c.reply("503 5.5.1 MAIL first")
			case !ok || addr == "":
				c.reply("501 5.5.4 bad RCPT TO")
			case len(c.rcpts) >= 1000:
				c.reply("452 4.5.3 too many recipients")
			default:
				c.rcpts = append(c.rcpts, addr)
				c.reply("250 2.1.5 Ok")
			}
		case "DATA":
			if len(c.rcpts) == 0 {
				c.reply("503 5.5.1 RCPT first")
				continue
			}
			c.reply("354 End data with <CR><LF>.<CR><LF>")
			n, err := c.readBody()
			if err != nil {
				return fmt.Errorf("read message data: %w", err)
			}
			c.reply(sinkAck)
			if err := c.bw.Flush(); err != nil {
				return fmt.Errorf("acknowledge message: %w", err)
			}
			c.record(n)
			c.reset()
		case "RSET":
			c.reset()
			c.reply("250 2.0.0 Ok")
		case "NOOP":
			c.reply("250 2.0.0 Ok")
		case "QUIT":
			c.reply("221 2.0.0 Bye")
			return c.bw.Flush()
		default:
			c.reply("502 5.5.2 command not recognised")
		}
	}
}

func (c *sinkConn) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, sinkLineMax)
	c.bw = bufio.NewWriterSize(conn, 4096)
}

func (c *sinkConn) reset() {
	c.inMail, c.from, c.rcpts = false, "", c.rcpts[:0]
}

func (c *sinkConn) reply(line string) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
}

// fill is called before every read: with nothing buffered, the client may be
// waiting for the replies written so far (RFC 2920: replies to a pipelined
// group are sent once the group has been read), so they are flushed, and the
// read that follows gets a fresh deadline.
func (c *sinkConn) fill() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return c.conn.SetReadDeadline(time.Now().Add(sinkTimeout))
}

func (c *sinkConn) readLine() ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: command line longer than %d bytes", errSinkProtocol, sinkLineMax)
	}
	if err != nil {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: connection closed in a command line", errSinkProtocol)
		}
		return nil, err
	}
	return line, nil
}

// readBody reads message data up to the line holding a single dot and returns
// its size.
func (c *sinkConn) readBody() (int64, error) {
	var n int64
	atLineStart := true
	for {
		if err := c.fill(); err != nil {
			return n, err
		}
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			n += int64(len(line))
			atLineStart = false
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: connection closed in message data", errSinkProtocol)
			}
			return n, err
		}
		if atLineStart && string(line) == ".\r\n" {
			return n, nil
		}
		n += int64(len(line))
		atLineStart = true
	}
}

// startTLS answers STARTTLS and completes the handshake. Plaintext that arrived
// after the command would be read as if it came over TLS (CVE-2011-0411), so it
// ends the connection.
func (c *sinkConn) startTLS() error {
	if c.br.Buffered() > 0 {
		c.reply("554 5.5.1 no pipelining after STARTTLS")
		c.bw.Flush()
		return fmt.Errorf("%w: data pipelined after STARTTLS", errSinkProtocol)
	}
	c.reply("220 2.0.0 Ready to start TLS")
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("answer STARTTLS: %w", err)
	}
	tc := tls.Server(c.raw, c.s.tls)
	c.raw.SetDeadline(time.Now().Add(sinkTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.tlsDesc = fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID)
	c.greeted = false
	c.reset()
	c.setConn(tc)
	c.s.mu.Lock()
	c.s.st.handshakes++
	c.s.mu.Unlock()
	return nil
}

// record counts an acknowledged message.
func (c *sinkConn) record(n int64) {
	env := c.from + " > " + strings.Join(c.rcpts, ", ")
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, time.Now())
	s.st.messages++
	s.st.bytes += n
	if c.tlsDesc == "" {
		s.st.plaintext++
	} else {
		s.st.tls[c.tlsDesc]++
	}
	if _, ok := s.st.envelopes[env]; !ok && len(s.st.envelopes) >= maxEnvelopeKinds {
		env = "other"
	}
	s.st.envelopes[env]++
}

// splitCommand splits a command line into its verb, in upper case, and the rest
// with surrounding white space and the line end removed.
func splitCommand(line []byte) (verb, arg string) {
	line = bytes.TrimRight(line, "\r\n")
	v, a, _ := bytes.Cut(line, []byte(" "))
	return strings.ToUpper(string(v)), strings.TrimSpace(string(a))
}

// parsePath takes the argument of MAIL or RCPT ("FROM:<a@b> BODY=8BITMIME") and
// returns the address between the angle brackets; prefix is "FROM:" or "TO:",
// matched without regard to case. Parameters after the path are accepted and
// ignored; a space between the colon and the path is tolerated, as most servers
// do.
func parsePath(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	addr := rest[1:end]
	if strings.ContainsAny(addr, "<> \t") {
		return "", false
	}
	if after := rest[end+1:]; after != "" && after[0] != ' ' {
		return "", false
	}
	return addr, true
}

// describeCounts lists counted kinds, most frequent first, for the report: with
// the sink's TLS counts, "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 (20000)".
func describeCounts(counts map[string]int) string {
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " (" + strconv.Itoa(counts[k]) + ")"
	}
	return strings.Join(parts, "; ")
}
