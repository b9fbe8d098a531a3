package smtpclient

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"mxward/internal/smtp"
)

// errEightBit stops a body declared 7BIT that turns out to hold 8-bit octets, when the
// server did not offer 8BITMIME: sending it would be the silent downgrade mxward exists
// to avoid.
var errEightBit = errors.New("body declared 7BIT contains 8-bit data, and the server does not offer 8BITMIME")

// bodyReadError marks a failure to read the message, as opposed to a failure to send it.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read message body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// sendData sends the message after a 354 reply and returns the reply to the final dot.
func (c *Client) sendData(p txPlan, body io.Reader) (*smtp.Reply, error) {
	c.wto = c.to.DataBlock
	w := &bodyWriter{w: c.bw, stuff: true, reject8bit: p.reject8bit}
	if err := copyBody(w, body); err != nil {
		return nil, c.abortBody("data", err)
	}
	if err := w.Close(); err != nil {
		return nil, c.abortBody("data", err)
	}
	c.bw.WriteString(".\r\n")
	if err := c.flush(c.to.DataBlock); err != nil {
		return nil, &Error{Stage: "data", Err: err}
	}
	r, err := c.readReply("data", c.to.DataTerm)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// sendBDAT sends the message in BDAT chunks (RFC 3030) and returns the reply to the last
// one. Chunks are sent one at a time, each waiting for its reply.
func (c *Client) sendBDAT(p txPlan, body io.Reader) (*smtp.Reply, error) {
	cw := &chunkWriter{c: c, buf: make([]byte, 0, chunkSize)}
	var w io.WriteCloser = nopCloser{cw}
	if p.body != BodyBinaryMIME {
		// Text bodies keep their line structure through BDAT too: a later hop may turn
		// them back into DATA.
		w = &bodyWriter{w: cw, reject8bit: p.reject8bit}
	}
	if err := copyBody(w, body); err != nil {
		return nil, c.abortBody("bdat", err)
	}
	if err := w.Close(); err != nil {
		return nil, c.abortBody("bdat", err)
	}
	r, err := c.chunk(cw.buf, true)
	if r.Code == 0 {
		return nil, err
	}
	if err != nil && r.Code != 421 && c.err == nil {
		c.rset()
	}
	return &r, nil
}

// abortBody ends a transaction whose message could not be sent completely. Unless the
// server itself refused a chunk (the session is then in step and RSET clears it), the
// connection is dropped: the server sees no end of data and so never delivers the
// partial message.
func (c *Client) abortBody(stage string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		if e.Reply.Code != 0 && c.err == nil {
			c.rset()
		}
		return e
	}
	c.fail(err)
	if errors.Is(err, errEightBit) {
		return &Error{Stage: stage, Local: true, Reply: smtp.R(554, "5.6.3", "conversion to 7 bit required but not supported"), Err: err}
	}
	return &Error{Stage: stage, Err: err}
}

// copyBody copies body to w, telling read errors from write errors.
func copyBody(w io.Writer, body io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &bodyReadError{err}
		}
	}
}

// bodyWriter puts a text message into wire form: every line ends in CRLF (a bare CR or LF
// becomes CRLF), the last line is terminated, and with stuff each line starting with "."
// gets another (RFC 5321 §4.5.2). Whatever the input, the output therefore contains no
// CRLF "." CRLF and no bare CR or LF, so neither this hop nor the next can be confused
// about where the message ends.
type bodyWriter struct {
	w          io.Writer
	stuff      bool
	reject8bit bool

	midLine bool // the last octet written was not the end of a line
	cr      bool // a CR was read and not yet written
	out     []byte
}

func (b *bodyWriter) Write(p []byte) (int, error) {
	out := b.out[:0]
	for _, ch := range p {
		if ch >= 0x80 && b.reject8bit {
			return 0, errEightBit
		}
		if b.cr {
			b.cr = false
			out = append(out, '\r', '\n')
			b.midLine = false
			if ch == '\n' {
				continue
			}
		}
		switch ch {
		case '\r':
			b.cr = true
			continue
		case '\n':
			out = append(out, '\r', '\n')
			b.midLine = false
			continue
		}
		if ch == '.' && b.stuff && !b.midLine {
			out = append(out, '.')
		}
		out = append(out, ch)
		b.midLine = true
	}
	b.out = out
	if _, err := b.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close terminates the last line.
func (b *bodyWriter) Close() error {
	if b.cr || b.midLine {
		b.cr, b.midLine = false, false
		_, err := b.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// chunkWriter collects message data into chunks and sends each full one as a non-final
// BDAT. The rest is sent with LAST by the caller, so that the final chunk is never
// empty unless the whole message is.
type chunkWriter struct {
	c   *Client
	buf []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			if _, err := w.c.chunk(w.buf, false); err != nil {
				return n, err
			}
			w.buf = w.buf[:0]
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

// chunk sends one BDAT command with its data and reads the reply. The reply to the last
// chunk is the reply to the end of data.
func (c *Client) chunk(data []byte, last bool) (smtp.Reply, error) {
	stage, timeout, line := "bdat", c.to.DataBlock, "BDAT "+strconv.Itoa(len(data))
	if last {
		stage, timeout, line = "data", c.to.DataTerm, line+" LAST"
	}
	c.wto = c.to.DataBlock
	if err := c.queue(line); err != nil {
		return smtp.Reply{}, &Error{Stage: stage, Err: err}
	}
	c.bw.Write(data)
	if err := c.flush(c.to.DataBlock); err != nil {
		return smtp.Reply{}, &Error{Stage: stage, Err: fmt.Errorf("write chunk: %w", err)}
	}
	r, err := c.readReply(stage, timeout)
	if err != nil {
		return r, err
	}
	if r.Code/100 != 2 {
		return r, &Error{Stage: stage, Reply: r}
	}
	return r, nil
}
