package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mxward/internal/smtp"
)

func TestReadReply(t *testing.T) {
	long := "250 " + strings.Repeat("x", maxReplyLine) + "\r\n"
	tests := []struct {
		name     string
		in       string
		code     int
		enhanced string
		lines    []string
		err      error // nil for success
	}{
		{"simple", "250 OK\r\n", 250, "", []string{"OK"}, nil},
		{"code only", "250\r\n", 250, "", []string{""}, nil},
		{"empty text", "250 \r\n", 250, "", []string{""}, nil},
		{"enhanced", "550 5.1.1 No such user\r\n", 550, "5.1.1", []string{"No such user"}, nil},
		{"enhanced only", "250 2.0.0\r\n", 250, "2.0.0", []string{""}, nil},
		{"enhanced on every line", "451-4.3.0 Try\r\n451 4.3.0 later\r\n", 451, "4.3.0", []string{"Try", "later"}, nil},
		{"enhanced class mismatch kept as text", "250 5.1.1 odd\r\n", 250, "", []string{"5.1.1 odd"}, nil},
		{"not an enhanced code", "250 2.0 OK\r\n", 250, "", []string{"2.0 OK"}, nil},
		{"enhanced too many digits", "550 5.1000.1 x\r\n", 550, "", []string{"5.1000.1 x"}, nil},
		{"354 has none", "354 3.0.0 go\r\n", 354, "", []string{"3.0.0 go"}, nil},
		{"multi-line EHLO", "250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 250, "", []string{"mx.example.test", "PIPELINING", "SIZE 100"}, nil},
		{"bare LF", "250 OK\n", 250, "", []string{"OK"}, nil},
		{"control characters cleaned", "250 a\x00b\tc\x1b\r\n", 250, "", []string{"a?b c?"}, nil},
		{"invalid UTF-8 cleaned", "250 caf\xe9\r\n", 250, "", []string{"caf?"}, nil},
		{"UTF-8 kept", "250 café\r\n", 250, "", []string{"café"}, nil},
		{"code mismatch", "250-a\r\n251 b\r\n", 0, "", nil, ErrMalformedReply},
		{"bad separator", "250:x\r\n", 0, "", nil, ErrMalformedReply},
		{"short", "25\r\n", 0, "", nil, ErrMalformedReply},
		{"not digits", "abc def\r\n", 0, "", nil, ErrMalformedReply},
		{"class 1", "150 x\r\n", 0, "", nil, ErrMalformedReply},
		{"class 6", "650 x\r\n", 0, "", nil, ErrMalformedReply},
		{"second digit 6", "260 x\r\n", 0, "", nil, ErrMalformedReply},
		{"too long", long, 0, "", nil, ErrMalformedReply},
		{"too many lines", strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n", 0, "", nil, ErrMalformedReply},
		{"empty", "", 0, "", nil, io.ErrUnexpectedEOF},
		{"truncated line", "250 OK", 0, "", nil, io.ErrUnexpectedEOF},
		{"truncated reply", "250-more\r\n", 0, "", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), maxReplyLine))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != tt.code || r.Enhanced != tt.enhanced || !slices.Equal(r.Lines, tt.lines) {
				t.Errorf("got %d %q %q, want %d %q %q", r.Code, r.Enhanced, r.Lines, tt.code, tt.enhanced, tt.lines)
			}
		})
	}
}

// TestReadReplyMaxLine: a line of exactly the limit is accepted.
func TestReadReplyMaxLine(t *testing.T) {
	in := "250 " + strings.Repeat("x", maxReplyLine-6) + "\r\n"
	if len(in) != maxReplyLine {
		t.Fatalf("test line is %d octets", len(in))
	}
	if _, err := readReply(bufio.NewReaderSize(strings.NewReader(in), maxReplyLine)); err != nil {
		t.Fatal(err)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n",
		"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
		"550 5.1.1 No\r\n",
		"451-4.3.0 a\r\n451 4.3.0 b\r\n",
		"250-a\r\n251 b\r\n",
		"220 ready\r\n250 fake\r\n",
		"25",
		"250 \xff\x00\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), maxReplyLine)
		for range 10 {
			r, err := readReply(br)
			if err != nil {
				return
			}
			if r.Code < 200 || r.Code > 559 || len(r.Lines) == 0 || len(r.Lines) > maxReplyLines {
				t.Fatalf("accepted bad reply %+v", r)
			}
			if r.Enhanced != "" && r.Enhanced[0] != byte('0'+r.Code/100) {
				t.Fatalf("enhanced %q with code %d", r.Enhanced, r.Code)
			}
			for _, l := range r.Lines {
				if strings.ContainsFunc(l, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\uFFFD' }) {
					t.Fatalf("line with control characters: %q", l)
				}
			}
		}
	})
}

// FuzzBodyWriter checks the wire form of any body: read back with mxward's own
// smuggling-proof DATA reader it must parse cleanly (no bare CR or LF), end exactly at
// the terminator the client appended, and yield the body with normalized line ends.
func FuzzBodyWriter(f *testing.F) {
	for _, s := range []string{"", ".\r\n", "a\r\n.\r\nb", "\n.\n", "\r.\r", "x\r", ".", "..\r\n...", "a\r\n\r\n.\r\n\r\n"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, split uint8) {
		var wire bytes.Buffer
		w := &bodyWriter{w: &wire, stuff: true}
		step := int(split%16) + 1
		for p := body; len(p) > 0; {
			n := min(step, len(p))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wire.WriteString(".\r\n")
		var got bytes.Buffer
		br := bufio.NewReader(bytes.NewReader(wire.Bytes()))
		if err := smtp.ReadData(br, &smtp.LineChecker{W: &got}); err != nil {
			t.Fatalf("wire form %q rejected: %v", wire.Bytes(), err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("terminator found early in %q", wire.Bytes())
		}
		if want := normalizeLines(body); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("round trip of %q: got %q, want %q", body, got.Bytes(), want)
		}
	})
}

// normalizeLines is the reference for bodyWriter's line handling: CRLF, CR and LF each
// end a line, written as CRLF, and a last unterminated line is terminated.
func normalizeLines(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case b[i] == '\r' || b[i] == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b[i])
		}
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// scriptConn is a net.Conn whose peer sends a fixed byte stream, in pieces of step
// octets, and then closes; whatever the client writes is kept.
type scriptConn struct {
	r       *bytes.Reader
	step    int
	written bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.step > 0 && len(p) > c.step {
		p = p[:c.step]
	}
	return c.r.Read(p)
}
func (c *scriptConn) Write(p []byte) (int, error)      { return c.written.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSession feeds arbitrary server byte streams to a whole session: setup, two
// transactions and QUIT. It must neither panic nor hang, and its results must keep their
// documented invariants.
func FuzzSession(f *testing.F) {
	ehlo := "220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-DSN\r\n250 8BITMIME\r\n"
	for _, s := range []string{
		ehlo + "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n250 queued\r\n250 ok\r\n",
		"220 mx\r\n250-mx\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n",
		"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 ready\r\n250 fake\r\n",
		"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 ready\r\n\x16\x03\x01\x00\x05hello",
		"220 mx\r\n500 no\r\n250 helo\r\n250 ok\r\n421 bye\r\n",
		"554 go away\r\n",
		"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		conn := &scriptConn{r: bytes.NewReader(data), step: int(step % 8)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		opts := Options{Hostname: "client.example.test", Security: Security{Mode: TLSOpportunistic}}
		c, err := NewClient(ctx, conn, opts)
		if err != nil {
			if c != nil {
				t.Fatal("client returned with an error")
			}
			return
		}
		rcpts := []Recipient{{Addr: "a@example.net", Notify: "SUCCESS"}, {Addr: "b@example.net"}}
		for range 2 {
			res, err := c.Send(ctx, Envelope{From: "s@example.org", Size: 10, RET: "HDRS"}, rcpts, strings.NewReader("a\r\n.\r\nb\r\n"))
			if len(res.Rcpts) != len(rcpts) {
				t.Fatalf("%d results", len(res.Rcpts))
			}
			for _, r := range res.Rcpts {
				if (r.Err == nil) != (r.Reply.Code/100 == 2) {
					t.Fatalf("recipient %+v: Err and Reply disagree", r)
				}
			}
			if err == nil && res.Data != nil && res.Data.Code/100 != 2 {
				t.Fatalf("nil error with data reply %v", res.Data)
			}
		}
		c.Quit(ctx)
		if ctx.Err() != nil {
			t.Fatal("session did not end in time")
		}
		// BDAT carries the body unstuffed; with DATA a lone dot line must be stuffed.
		if w := conn.written.String(); !strings.Contains(w, "BDAT") && strings.Contains(w, "\r\n.\r\nb") {
			t.Fatal("unstuffed dot line on the wire")
		}
	})
}
