package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		verb    Verb
		arg     string
		wantErr error
	}{
		{"EHLO client.example", EHLO, "client.example", nil},
		{"ehlo client.example", EHLO, "client.example", nil},
		{"MAIL FROM:<a@b.example> SIZE=10", MAIL, "FROM:<a@b.example> SIZE=10", nil},
		{"DATA", DATA, "", nil},
		{"STARTTLS", STARTTLS, "", nil},
		{"BDAT 100 LAST", BDAT, "100 LAST", nil},
		{"XYZZY", "", "", ErrUnknownCommand},
		{"", "", "", ErrUnknownCommand},
		{"MAIL FROM:<a@b>\x00", "", "", ErrSyntax},
		{"RCPT TO:<a@b>\rDATA", "", "", ErrSyntax},
	}
	for _, tt := range tests {
		c, err := ParseCommand(tt.line)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseCommand(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.Verb != tt.verb || c.Arg != tt.arg {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %s %q", tt.line, c, err, tt.verb, tt.arg)
		}
	}
}

func TestParsePathArg(t *testing.T) {
	tests := []struct {
		arg, prefix string
		path        string
		params      []Param
		ok          bool
	}{
		{"FROM:<a@b.example>", "FROM:", "a@b.example", nil, true},
		{"from:<>", "FROM:", "", nil, true},
		{"FROM: <a@b.example>", "FROM:", "a@b.example", nil, true},
		{"FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", "FROM:", "a@b.example", []Param{{"SIZE", "1000", false}, {"BODY", "8BITMIME", false}}, true},
		{"FROM:<a@b.example> SMTPUTF8", "FROM:", "a@b.example", []Param{{"SMTPUTF8", "", true}}, true},
		{"TO:<@relay.example:a@b.example>", "TO:", "a@b.example", nil, true},
		{`TO:<"x>y"@b.example> NOTIFY=NEVER`, "TO:", `"x>y"@b.example`, []Param{{"NOTIFY", "NEVER", false}}, true},
		{"TO:a@b.example", "TO:", "", nil, false},
		{"TO:<a@b.example", "TO:", "", nil, false},
		{"TO:<a@b.example>junk", "TO:", "", nil, false},
		{"TO:<a@b.example> =x", "TO:", "", nil, false},
		{"TO:<a@b.example> K=", "TO:", "", nil, false},
		{"FROM:<a@b.example>", "TO:", "", nil, false},
		{"TO:<@relay.example>", "TO:", "", nil, false},
	}
	for _, tt := range tests {
		path, params, err := ParsePathArg(tt.arg, tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePathArg(%q) error = %v, want ok=%v", tt.arg, err, tt.ok)
			continue
		}
		if !tt.ok {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("ParsePathArg(%q) error %v is not ErrSyntax", tt.arg, err)
			}
			continue
		}
		if path != tt.path || len(params) != len(tt.params) {
			t.Errorf("ParsePathArg(%q) = %q %+v", tt.arg, path, params)
			continue
		}
		for i := range params {
			if params[i] != tt.params[i] {
				t.Errorf("ParsePathArg(%q) param %d = %+v, want %+v", tt.arg, i, params[i], tt.params[i])
			}
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in     string
		utf8OK bool
		ok     bool
	}{
		{"alice@example.org", false, true},
		{"a.b+c@mx-1.example.org", false, true},
		{`"john doe"@example.org`, false, true},
		{`"a\"b"@example.org`, false, true},
		{"user@[192.0.2.1]", false, true},
		{"user@[IPv6:2001:db8::1]", false, true},
		{"user@[300.0.0.1]", false, false},
		{"user@[IPv6:192.0.2.1]", false, false},
		{"jörg@example.org", false, false},
		{"jörg@example.org", true, true},
		{"user@bücher.example", true, true},
		{"user@bücher.example", false, false},
		{"a..b@example.org", false, false},
		{".a@example.org", false, false},
		{"a@example..org", false, false},
		{"a@-example.org", false, false},
		{"a@example.org.", false, false},
		{"a@exa_mple.org", false, false},
		{"@example.org", false, false},
		{"a@", false, false},
		{"noat", false, false},
		{strings.Repeat("a", 65) + "@example.org", false, false},
		{"a@" + strings.Repeat("b", 64) + ".org", false, false},
		{"a b@example.org", false, false},
		{"a@b@example.org", false, false},
		{"\xff@example.org", true, false},
	}
	for _, tt := range tests {
		_, err := ParseAddress(tt.in, tt.utf8OK)
		if (err == nil) != tt.ok {
			t.Errorf("ParseAddress(%q, %v) error = %v, want ok=%v", tt.in, tt.utf8OK, err, tt.ok)
		}
	}
}

func TestXtext(t *testing.T) {
	for _, s := range []string{"", "abc", "a+b=c d", "rfc822;user@example.org", "\x01\xff"} {
		enc := EncodeXtext(s)
		dec, err := DecodeXtext(enc)
		if err != nil || dec != s {
			t.Errorf("xtext round trip of %q: %q, %v", s, dec, err)
		}
	}
	for _, bad := range []string{"+", "+4", "+4g", "a=b", "a b", "+4a"} {
		if _, err := DecodeXtext(bad); err == nil {
			t.Errorf("DecodeXtext(%q) accepted", bad)
		}
	}
}

func TestReplyFormat(t *testing.T) {
	r := Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"first", "second"}}
	if got, want := r.Format(), "250-2.0.0 first\r\n250 2.0.0 second\r\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got, want := R(354, "", "go ahead").Format(), "354 go ahead\r\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

// readData runs ReadData on input and reports content, violation, and what is left in the
// reader afterwards (the next command).
func readData(t *testing.T, input string, maxLine int, maxSize int64, bufSize int) (string, error, string) {
	t.Helper()
	r := bufio.NewReaderSize(strings.NewReader(input), bufSize)
	var out bytes.Buffer
	c := &LineChecker{W: &out, MaxLine: maxLine, MaxSize: maxSize}
	err := ReadData(r, c)
	rest, _ := io.ReadAll(r)
	return out.String(), err, string(rest)
}

func TestReadData(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		maxSize int64
		want    string
		wantErr error
		rest    string
	}{
		{"simple", "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 1000, 0, "Subject: x\r\n\r\nbody\r\n", nil, "QUIT\r\n"},
		{"empty", ".\r\n", 1000, 0, "", nil, ""},
		{"dot stuffing", "..leading dot\r\n...\r\n.\r\n", 1000, 0, ".leading dot\r\n..\r\n", nil, ""},
		{"dot not at line start", "a.\r\n.\r\n", 1000, 0, "a.\r\n", nil, ""},
		// SMTP smuggling: none of these end the data; the message is rejected and the text
		// after the fake terminator never becomes a command.
		{"smuggle LF.LF", "a\r\n\n.\nMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrBareLF, "NOOP\r\n"},
		{"smuggle CRLF.LF", "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrBareLF, "NOOP\r\n"},
		{"smuggle LF.CRLF", "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrBareLF, "NOOP\r\n"},
		{"smuggle CR.CR", "a\r.\rMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrBareCR, "NOOP\r\n"},
		{"smuggle CR.CRLF", "a\r.\r\nMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrBareCR, "NOOP\r\n"},
		{"bare CR at end", "a\r", 1000, 0, "", io.ErrUnexpectedEOF, ""},
		{"line at limit", strings.Repeat("x", 998) + "\r\n.\r\n", 1000, 0, strings.Repeat("x", 998) + "\r\n", nil, ""},
		{"line over limit", strings.Repeat("x", 999) + "\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrLineTooLong, "NOOP\r\n"},
		{"endless line", strings.Repeat("x", 100000) + "\r\n.\r\nNOOP\r\n", 1000, 0, "", ErrLineTooLong, "NOOP\r\n"},
		{"size at limit", "12345678\r\n.\r\n", 1000, 10, "12345678\r\n", nil, ""},
		{"size over limit", "123456789\r\n.\r\nNOOP\r\n", 1000, 10, "", ErrTooBig, "NOOP\r\n"},
		{"eof", "abc\r\n", 1000, 0, "", io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{16, 4096} {
			got, err, rest := readData(t, tt.in, tt.maxLine, tt.maxSize, bufSize)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s (buf %d): err = %v, want %v", tt.name, bufSize, err, tt.wantErr)
				continue
			}
			if tt.wantErr == nil && got != tt.want {
				t.Errorf("%s (buf %d): content = %q, want %q", tt.name, bufSize, got, tt.want)
			}
			if rest != tt.rest {
				t.Errorf("%s (buf %d): left over %q, want %q", tt.name, bufSize, rest, tt.rest)
			}
		}
	}
}

// A CRLF split across two reads must still count as a line end for the terminator.
func TestReadDataSplitCRLF(t *testing.T) {
	in := "abc\r\n.\r\nNOOP\r\n"
	r := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16)
	var out bytes.Buffer
	if err := ReadData(r, &LineChecker{W: &out, MaxLine: 1000}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "abc\r\n" {
		t.Errorf("content %q", out.String())
	}
	// Line exactly filling the 16-byte buffer up to the CR, so the LF comes in the next read.
	in = strings.Repeat("y", 15) + "\r\n.\r\n"
	r = bufio.NewReaderSize(strings.NewReader(in), 16)
	out.Reset()
	if err := ReadData(r, &LineChecker{W: &out, MaxLine: 1000}); err != nil {
		t.Fatal(err)
	}
	if out.String() != strings.Repeat("y", 15)+"\r\n" {
		t.Errorf("content %q", out.String())
	}
}

func TestLineCheckerChunks(t *testing.T) {
	// BDAT chunks may split a CRLF; the checker must carry state across writes.
	var out bytes.Buffer
	c := &LineChecker{W: &out, MaxLine: 1000}
	for _, p := range []string{"a\r", "\nb", "\r\n"} {
		c.Write([]byte(p))
	}
	if err := c.Close(); err != nil || out.String() != "a\r\nb\r\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	c = &LineChecker{W: io.Discard}
	c.Write([]byte("a\r"))
	c.Write([]byte("b"))
	if !errors.Is(c.Close(), ErrBareCR) {
		t.Error("bare CR across chunks not caught")
	}
}

func TestReadReplyShared(t *testing.T) {
	// A clean end before a reply is io.EOF; inside one, io.ErrUnexpectedEOF.
	if _, err := ReadReply(bufio.NewReader(strings.NewReader(""))); err != io.EOF {
		t.Errorf("empty input: %v", err)
	}
	if _, err := ReadReply(bufio.NewReader(strings.NewReader("250-a\r\n"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	// The line limit does not depend on the reader's buffer size.
	long := "250 " + strings.Repeat("x", MaxReplyLine) + "\r\n"
	if _, err := ReadReply(bufio.NewReaderSize(strings.NewReader(long), 16)); !errors.Is(err, ErrMalformedReply) {
		t.Errorf("long line with a small buffer: %v", err)
	}
	r, err := ReadReply(bufio.NewReaderSize(strings.NewReader("250-2.0.0 "+strings.Repeat("y", 100)+"\r\n250 2.0.0 done\r\n"), 16))
	if err != nil || r.Enhanced != "2.0.0" || r.Text() != strings.Repeat("y", 100)+" done" {
		t.Errorf("reply %+v %v", r, err)
	}
	for _, v := range []string{"NEVER", "SUCCESS", "FAILURE,DELAY", "SUCCESS,FAILURE,DELAY"} {
		if !ValidNotify(v) {
			t.Errorf("ValidNotify(%q) = false", v)
		}
	}
	for _, v := range []string{"", "NEVER,SUCCESS", "SUCCESS,SUCCESS", "success", "FAILURE,"} {
		if ValidNotify(v) {
			t.Errorf("ValidNotify(%q) = true", v)
		}
	}
}
