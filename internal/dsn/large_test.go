package dsn

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/emersion/go-message/mail"

	"mxward/internal/spool"
)

// generated is a deterministic message of a given size, produced as it is read so that
// the test itself holds no large buffer: a header section, then numbered lines of
// varying text, each ending in CRLF.
type generated struct {
	size, off int64
	line      []byte // the current line
	pos       int    // read position in line
	n         int    // lines made
}

const generatedHeader = "From: alice@example.net\r\nTo: bob@example.com\r\nSubject: large\r\n\r\n"

func newGenerated(size int64) *generated {
	return &generated{size: size, line: []byte(generatedHeader), pos: 0}
}

func (g *generated) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && g.off < g.size {
		if g.pos == len(g.line) {
			g.next()
		}
		n := copy(p, g.line[g.pos:])
		if rest := g.size - g.off; int64(n) > rest {
			n = int(rest)
		}
		g.pos += n
		g.off += int64(n)
		p = p[n:]
		total += n
	}
	return total, nil
}

// next makes the next body line: a number and letters shifted by it. The last line is
// cut so that the message ends with CRLF at exactly size octets; no line is shorter than
// its CRLF, so the cut always leaves room for one.
func (g *generated) next() {
	g.n++
	g.line = strconv.AppendInt(g.line[:0], int64(g.n), 10)
	g.line = append(g.line, ' ')
	for i := range 70 {
		g.line = append(g.line, 'a'+byte((g.n+i)%26))
	}
	rest := g.size - g.off
	switch {
	case int64(len(g.line))+2 > rest:
		g.line = append(g.line[:rest-2], "\r\n"...)
	case int64(len(g.line))+3 == rest:
		// One octet would be left over, too few for a line: take it into this one.
		g.line = append(g.line, "z\r\n"...)
	default:
		g.line = append(g.line, "\r\n"...)
	}
	g.pos = 0
}

func TestLargeOriginal(t *testing.T) {
	const size = 20 << 20
	want := sha256.New()
	if n, err := io.Copy(want, newGenerated(size)); err != nil || n != size {
		t.Fatalf("generate: %d, %v", n, err)
	}
	msg := fixed(Message{
		Original:   spool.Envelope{From: "alice@example.net", RET: "FULL", Size: size},
		Recipients: []RecipientStatus{{Rcpt: "bob@example.com", Action: ActionFailed, Status: "5.2.3"}},
	})
	msg.Boundary = "" // random, as in production

	t.Run("content", func(t *testing.T) {
		// The DSN goes through go-message as it is written; the returned part must hash
		// like the original.
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(Write(pw, msg, newGenerated(size))) }()
		defer pr.Close()
		mr, err := mail.CreateReader(pr)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		var got []byte
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			h := headerOf(p.Header)
			mt, _, _ := h.ContentType()
			types = append(types, mt)
			sum := sha256.New()
			if _, err := io.Copy(sum, p.Body); err != nil {
				t.Fatal(err)
			}
			got = sum.Sum(nil)
		}
		if len(types) != 3 || types[2] != "message/rfc822" {
			t.Fatalf("parts %v, want three ending in message/rfc822", types)
		}
		if !bytes.Equal(got, want.Sum(nil)) {
			t.Error("the returned message differs from the original")
		}
	})

	t.Run("memory", func(t *testing.T) {
		out := sha256.New()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := Write(out, msg, newGenerated(size)); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("Write of a %d-octet original allocated %d octets", size, allocated)
		if allocated > 1<<20 {
			t.Errorf("Write allocated %d octets for a %d-octet original; it must stream", allocated, size)
		}
	})
}
