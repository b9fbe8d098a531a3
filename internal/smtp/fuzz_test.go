package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"EHLO x", "MAIL FROM:<a@b> SIZE=1", `RCPT TO:<"a b"@c> NOTIFY=NEVER ORCPT=rfc822;a+40b`, "BDAT 10 LAST", "DATA", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseCommand(line)
		if err != nil {
			return
		}
		switch c.Verb {
		case MAIL, RCPT:
			path, params, err := ParsePathArg(c.Arg, "FROM:")
			if err != nil {
				path, params, err = ParsePathArg(c.Arg, "TO:")
			}
			if err != nil {
				return
			}
			for _, p := range params {
				if p.Key == "" || strings.ContainsAny(p.Value, " \r\n") {
					t.Fatalf("bad param %+v from %q", p, line)
				}
				DecodeXtext(p.Value)
			}
			if path != "" {
				ParseAddress(path, true)
			}
		}
	})
}

func FuzzReadData(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "a\n.\n.\r\n", "..x\r\n.\r\n", "a\r.\r\n.\r\n", ""} {
		f.Add([]byte(s), uint8(16))
	}
	f.Fuzz(func(t *testing.T, in []byte, buf uint8) {
		r := bufio.NewReaderSize(bytes.NewReader(in), int(buf)+16)
		var out bytes.Buffer
		c := &LineChecker{W: &out, MaxLine: 80, MaxSize: 4096}
		err := ReadData(r, c)
		if err != nil {
			return
		}
		// Accepted content must be clean: CRLF line ends only, and re-stuffing it must
		// reproduce a prefix of the input that ends with the terminator.
		body := out.Bytes()
		if bytes.Contains(bytes.ReplaceAll(body, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(body, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("accepted bare CR/LF: %q", body)
		}
		if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
			t.Fatalf("accepted content not ending in CRLF: %q", body)
		}
		var stuffed bytes.Buffer
		for _, line := range bytes.SplitAfter(body, []byte("\r\n")) {
			if len(line) > 0 && line[0] == '.' {
				stuffed.WriteByte('.')
			}
			stuffed.Write(line)
		}
		stuffed.WriteString(".\r\n")
		if !bytes.HasPrefix(in, stuffed.Bytes()) {
			t.Fatalf("round trip mismatch: in %q, restuffed %q", in, stuffed.Bytes())
		}
	})
}
