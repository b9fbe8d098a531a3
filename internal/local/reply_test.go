package local

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func parseReplyString(s string) (reply, error) {
	return readReply(bufio.NewReaderSize(strings.NewReader(s), maxReplyLine+96))
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in       string
		code     int
		enhanced string
		lines    []string
	}{
		{in: "250 OK\r\n", code: 250, lines: []string{"OK"}},
		{in: "250\r\n", code: 250, lines: []string{""}},
		{in: "250 \r\n", code: 250, lines: []string{""}},
		{in: "220 host ESMTP\n", code: 220, lines: []string{"host ESMTP"}},
		{in: "250 2.1.5 OK\r\n", code: 250, enhanced: "2.1.5", lines: []string{"OK"}},
		{in: "550 5.1.1\r\n", code: 550, enhanced: "5.1.1", lines: []string{""}},
		{in: "550 5.1.1 <bob@example.org> User doesn't exist: bob@example.org\r\n", code: 550, enhanced: "5.1.1",
			lines: []string{"<bob@example.org> User doesn't exist: bob@example.org"}},
		{in: "250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n", code: 250,
			lines: []string{"mx.example", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}},
		{in: "452-4.2.2 Mailbox full\r\n452-4.2.2 quota is 1G\r\n452 4.2.2 try later\r\n", code: 452, enhanced: "4.2.2",
			lines: []string{"Mailbox full", "quota is 1G", "try later"}},
		// Enhanced codes must match the reply's class and have the right shape.
		{in: "250 5.1.1 odd\r\n", code: 250, lines: []string{"5.1.1 odd"}},
		{in: "550 5.1.1234 odd\r\n", code: 550, lines: []string{"5.1.1234 odd"}},
		{in: "550 5.1. odd\r\n", code: 550, lines: []string{"5.1. odd"}},
		{in: "550 5.1.1.1 odd\r\n", code: 550, lines: []string{"5.1.1.1 odd"}},
		{in: "550 3.1.1 odd\r\n", code: 550, lines: []string{"3.1.1 odd"}},
		{in: "550 5.123.456 x\r\n", code: 550, enhanced: "5.123.456", lines: []string{"x"}},
		// Control characters do not get through.
		{in: "250 a\x00b\tc\x1b[31m\r\n", code: 250, lines: []string{"a?b c?[31m"}},
		{in: "250 caf\xe9\r\n", code: 250, lines: []string{"caf?"}},
	}
	for _, tt := range tests {
		rep, err := parseReplyString(tt.in)
		if err != nil {
			t.Errorf("readReply(%q): %v", tt.in, err)
			continue
		}
		if rep.Code != tt.code || rep.Enhanced != tt.enhanced || !slices.Equal(rep.Lines, tt.lines) {
			t.Errorf("readReply(%q) = %d %q %q, want %d %q %q", tt.in, rep.Code, rep.Enhanced, rep.Lines, tt.code, tt.enhanced, tt.lines)
		}
	}
}

func TestReadReplyErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"250 OK", io.ErrUnexpectedEOF},
		{"250-one\r\n", io.ErrUnexpectedEOF},
		{"250-one\r\n250", io.ErrUnexpectedEOF},
		{"25\r\n", errMalformed},
		{"\r\n", errMalformed},
		{"abc OK\r\n", errMalformed},
		{"150 OK\r\n", errMalformed},
		{"650 OK\r\n", errMalformed},
		{"260 OK\r\n", errMalformed},
		{"250_OK\r\n", errMalformed},
		{"2500 OK\r\n", errMalformed},
		{"250-one\r\n251 two\r\n", errMalformed},
		{"250 " + strings.Repeat("x", maxReplyLine) + "\r\n", errMalformed},
		{strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n", errMalformed},
	}
	for _, tt := range tests {
		_, err := parseReplyString(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("readReply(%.40q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

// TestReadReplySequence reads replies back to back from one stream, as the client does
// with pipelined commands.
func TestReadReplySequence(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("250 2.1.0 ok\r\n250-a\r\n250 b\r\n550 5.1.1 no\r\n"), maxReplyLine+96)
	var codes []int
	for {
		rep, err := readReply(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, rep.Code)
	}
	if !slices.Equal(codes, []int{250, 250, 550}) {
		t.Errorf("codes = %v", codes)
	}
}

// FuzzReadReply feeds arbitrary server output to the reply parser: it must return a
// well-formed reply or an error, never panic or loop.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 no\r\n", "452-4.2.2 a\r\n452 4.2.2 b\r\n", "250\r\n",
		"25", "250-", "250-x\r\n251 y\r\n", "999 x\r\n", "250 5.5.5.5\r\n", "\x00\xff\r\n", "220 \xe9\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), maxReplyLine+96)
		// Every reply takes at least four bytes ("250\n"), which bounds the loop.
		for range len(data)/4 + 1 {
			rep, err := readReply(br)
			if err != nil {
				return
			}
			if rep.Code < 200 || rep.Code > 559 {
				t.Fatalf("code %d", rep.Code)
			}
			if len(rep.Lines) == 0 || len(rep.Lines) > maxReplyLines {
				t.Fatalf("%d lines", len(rep.Lines))
			}
			if rep.Enhanced != "" && !validEnhanced(rep.Enhanced, rep.Code) {
				t.Fatalf("enhanced code %q in reply %d", rep.Enhanced, rep.Code)
			}
			for _, l := range rep.Lines {
				if hasControl(l) {
					t.Fatalf("line %q has control characters", l)
				}
			}
		}
		t.Fatalf("more replies than %d bytes can hold", len(data))
	})
}

// validEnhanced reports whether s is an RFC 3463 status code of the class of code.
func validEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	return len(parts) == 3 && len(parts[0]) == 1 && parts[0][0] == byte('0'+code/100) &&
		digits(parts[1], 3) && digits(parts[2], 3)
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
