package dsn

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message/textproto"
)

func TestCopyOriginal(t *testing.T) {
	long := strings.Repeat("h", 2500)
	tests := []struct {
		name    string
		in      string
		full    string // copy of the whole message
		headers string // copy of the header section
	}{
		{
			name:    "clean",
			in:      "A: 1\r\nB: 2\r\n\r\nbody\r\n",
			full:    "A: 1\r\nB: 2\r\n\r\nbody\r\n",
			headers: "A: 1\r\nB: 2\r\n",
		},
		{
			name:    "bare LF",
			in:      "A: 1\nB: 2\n\nbody\nmore\n",
			full:    "A: 1\r\nB: 2\r\n\r\nbody\r\nmore\r\n",
			headers: "A: 1\r\nB: 2\r\n",
		},
		{
			name:    "bare CR",
			in:      "A: 1\rB: 2\r\rbody\rx\r\n",
			full:    "A: 1\r\nB: 2\r\n\r\nbody\r\nx\r\n",
			headers: "A: 1\r\nB: 2\r\n",
		},
		{
			name:    "no final line end",
			in:      "A: 1\r\n\r\nlast",
			full:    "A: 1\r\n\r\nlast\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "continuation lines",
			in:      "A: 1\r\n\tand more\r\n  still\r\nB:2\r\n\r\n\tbody\r\n",
			full:    "A: 1\r\n\tand more\r\n  still\r\nB:2\r\n\r\n\tbody\r\n",
			headers: "A: 1\r\n\tand more\r\n  still\r\nB:2\r\n",
		},
		{
			name:    "white space before colon",
			in:      "Subject : x\r\n\r\nb\r\n",
			full:    "Subject : x\r\n\r\nb\r\n",
			headers: "Subject : x\r\n",
		},
		{
			name:    "body without separator",
			in:      "A: 1\r\nthis is body text\r\nB: 2\r\n",
			full:    "A: 1\r\n\r\nthis is body text\r\nB: 2\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "no header section",
			in:      "just text\r\n",
			full:    "\r\njust text\r\n",
			headers: "",
		},
		{
			name:    "first line continued",
			in:      " A: 1\r\nB: 2\r\n",
			full:    "\r\n A: 1\r\nB: 2\r\n",
			headers: "",
		},
		{
			name:    "empty line first",
			in:      "\r\nbody\r\n",
			full:    "\r\nbody\r\n",
			headers: "",
		},
		{
			name:    "headers only",
			in:      "A: 1\r\nB: 2\r\n",
			full:    "A: 1\r\nB: 2\r\n",
			headers: "A: 1\r\nB: 2\r\n",
		},
		{
			name:    "empty",
			in:      "",
			full:    "",
			headers: "",
		},
		{
			name:    "long header folded",
			in:      "X-Long: " + long + "\r\n\r\nb\r\n",
			full:    "X-Long: " + long[:990] + "\r\n " + long[990:1987] + "\r\n " + long[1987:] + "\r\n\r\nb\r\n",
			headers: "X-Long: " + long[:990] + "\r\n " + long[990:1987] + "\r\n " + long[1987:] + "\r\n",
		},
		{
			name:    "long body line broken",
			in:      "A: 1\r\n\r\n" + long + "\r\n",
			full:    "A: 1\r\n\r\n" + long[:998] + "\r\n" + long[998:1996] + "\r\n" + long[1996:] + "\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "line of exactly 998",
			in:      "A: 1\r\n\r\n" + long[:998] + "\r\nz\r\n",
			full:    "A: 1\r\n\r\n" + long[:998] + "\r\nz\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "line of 998 then bare LF",
			in:      "A: 1\n\n" + long[:998] + "\nz",
			full:    "A: 1\r\n\r\n" + long[:998] + "\r\nz\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "line of 998 at the end",
			in:      "A: 1\r\n\r\n" + long[:998],
			full:    "A: 1\r\n\r\n" + long[:998] + "\r\n",
			headers: "A: 1\r\n",
		},
		{
			name:    "field name too long to be one",
			in:      long + ": v\r\n\r\nb\r\n",
			full:    "\r\n" + long[:998] + "\r\n" + long[998:1996] + "\r\n" + long[1996:] + ": v\r\n\r\nb\r\n",
			headers: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, full := range []bool{true, false} {
				want := tt.headers
				if full {
					want = tt.full
				}
				// One byte at a time too, so that pieces and terminators straddle reads.
				for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
					var out bytes.Buffer
					if err := copyOriginal(&out, r, full); err != nil {
						t.Fatal(err)
					}
					if out.String() != want {
						t.Errorf("full=%v:\n got %q\nwant %q", full, out.String(), want)
					}
				}
			}
		})
	}
}

// FuzzCopyOriginal checks the guards on arbitrary input: CRLF only, short lines, the
// header section readable as such, and nothing lost but line terminators.
func FuzzCopyOriginal(f *testing.F) {
	f.Add([]byte("A: 1\r\nB: 2\r\n\r\nbody\r\n"), true)
	f.Add([]byte("A: 1\nB: 2\n\nbody\n"), false)
	f.Add([]byte("A: 1\r \r\n\r\r\n\n"), true)
	f.Add([]byte(" x\r\n"), true)
	f.Add([]byte("X: "+strings.Repeat("a", 1200)+"\r\n\tb\r\n\r\n"+strings.Repeat("c ", 700)), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, in []byte, full bool) {
		var out bytes.Buffer
		if err := copyOriginal(&out, bytes.NewReader(in), full); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		if len(b) > 0 {
			checkWire(t, b)
		}
		br := bufio.NewReader(bytes.NewReader(b))
		if _, err := textproto.ReadHeader(br); err != nil {
			t.Fatalf("header section does not parse: %v\n%q", err, b)
		}
		if _, err := br.Peek(1); !full && err != io.EOF {
			t.Fatalf("headers-only copy %q holds more than a header section", b)
		}
		// Apart from line terminators and the space of a fold, the content is kept.
		strip := func(p []byte) []byte {
			var s []byte
			for _, c := range p {
				if c != '\r' && c != '\n' && c != ' ' {
					s = append(s, c)
				}
			}
			return s
		}
		if full && !bytes.Equal(strip(b), strip(in)) {
			t.Fatalf("full copy changed content:\n in %q\nout %q", in, b)
		}
		if !full && !bytes.HasPrefix(strip(in), strip(b)) {
			t.Fatalf("headers-only copy is not a prefix of the original:\n in %q\nout %q", in, b)
		}
	})
}
