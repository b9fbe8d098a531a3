package testpeer

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func FuzzParsePath(f *testing.F) {
	for _, seed := range []string{
		"FROM:<a@b.test>",
		"from: <a@b.test> SIZE=10 BODY=8BITMIME",
		"TO:<>",
		"TO:<a@b.test",
		"FROM:a@b.test",
		"FROM:<a@b.test>X",
		"FROM:<<a>>",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		for _, kw := range []string{"FROM", "TO"} {
			addr, params, err := parsePath(arg, kw)
			if err != nil {
				continue
			}
			if strings.ContainsAny(addr, "<> \t\r\n") {
				t.Fatalf("parsePath(%q) address %q holds a delimiter", arg, addr)
			}
			// A parsed path must survive being written out canonically.
			canon := kw + ":<" + addr + ">"
			if params != "" {
				canon += " " + params
			}
			addr2, params2, err := parsePath(canon, kw)
			if err != nil || addr2 != addr || params2 != params {
				t.Fatalf("parsePath(%q) = %q, %q; canonical %q reparses as %q, %q, %v", arg, addr, params, canon, addr2, params2, err)
			}
		}
	})
}

// FuzzReadData checks that dot-stuffing any body and reading it back through
// readData, with any buffer size, returns the body.
func FuzzReadData(f *testing.F) {
	f.Add([]byte("Subject: x\n\nhello\n"), 16)
	f.Add([]byte(".\n..\n...\n"), 16)
	f.Add([]byte("\n.x\r\n."), 17)
	f.Add([]byte(strings.Repeat("long line ", 50)), 16)
	f.Fuzz(func(t *testing.T, raw []byte, size int) {
		// Normalise to CRLF lines, the form SMTP carries.
		lines := strings.Split(strings.ReplaceAll(string(raw), "\r", ""), "\n")
		var body, wire bytes.Buffer
		for _, l := range lines {
			body.WriteString(l + "\r\n")
			if strings.HasPrefix(l, ".") {
				wire.WriteString(".")
			}
			wire.WriteString(l + "\r\n")
		}
		wire.WriteString(".\r\n")
		size = 16 + (size&0xff)%256
		got, err := readData(bufio.NewReaderSize(&wire, size), body.Len())
		if err != nil {
			t.Fatalf("readData: %v", err)
		}
		if !bytes.Equal(got, body.Bytes()) {
			t.Fatalf("readData = %q, want %q", got, body.Bytes())
		}
	})
}

func FuzzDeliveredTo(f *testing.F) {
	f.Add("a@example.test", "Subject: x")
	f.Add(" spaced@example.test ", "")
	f.Add("", "Delivered-To: later@example.test")
	f.Fuzz(func(t *testing.T, addr, rest string) {
		if strings.ContainsAny(addr, "\r\n") || strings.ContainsAny(rest, "\r") ||
			strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t") {
			return // a line break in the value, or rest continuing it
		}
		msg := "Return-Path: <s@x.test>\nDelivered-To: " + addr + "\n" + rest + "\n\nbody\n"
		got := deliveredTo(msg)
		// Whatever follows, the first Delivered-To wins, or the header
		// section is unreadable and nothing is returned.
		if got != "" && got != strings.TrimSpace(addr) {
			t.Fatalf("deliveredTo(%q) = %q, want %q or nothing", msg, got, strings.TrimSpace(addr))
		}
	})
}
