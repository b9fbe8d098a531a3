package inject

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mxward/internal/smtp"
)

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("To: a@example.org\nBcc: b@example.org,\n c@example.org\n\nbody\n.\nmore\n"), uint8(0))
	f.Add([]byte("From x Mon Jan  2\r\nSubject: s\r\nbcc : x\r\n\r\n..\r\n.\r"), uint8(1))
	f.Add([]byte("To: g: a@example.org, root;\nResent-Bcc: r@example.org\nResent-To: q\n\n"), uint8(3))
	f.Add([]byte("no headers here\r\rBcc: body\n"), uint8(2))
	f.Add([]byte("To: =?utf-8?q?J=C3=B6rg?= <j\xc3\xb6@example.org>\n \n\tBcc: folded\n.\n"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		opts := baseOpts()
		opts.ExtractRecipients = flags&1 != 0
		opts.IgnoreDots = flags&2 != 0
		var out bytes.Buffer
		env, err := ReadMessage(bytes.NewReader(in), opts, &out)
		if err != nil {
			if ExitCode(err) != EX_DATAERR {
				t.Fatalf("unexpected error %v (exit %d)", err, ExitCode(err))
			}
			return
		}
		b := out.Bytes()
		if env.Size != int64(len(b)) {
			t.Errorf("Size = %d, output is %d bytes", env.Size, len(b))
		}
		for i, c := range b {
			if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, b)
			}
			if c == '\n' && (i == 0 || b[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, b)
			}
		}
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", b)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
		inHeader := true
		for _, l := range lines {
			if l == "" {
				inHeader = false
			}
			if !opts.IgnoreDots && l == "." {
				t.Fatalf("dot line in output: %q", b)
			}
			if !inHeader || l == "" || l[0] == ' ' || l[0] == '\t' {
				continue
			}
			name, ok := fieldName([]byte(l))
			if !ok {
				t.Fatalf("header section holds non-field line %q: %q", l, b)
			}
			if strings.EqualFold(name, "Bcc") || strings.EqualFold(name, "Resent-Bcc") {
				t.Fatalf("%s header left in output: %q", name, b)
			}
		}
		if len(env.Recipients) == 0 {
			t.Fatal("no recipients and no error")
		}
		for _, r := range env.Recipients {
			if _, err := smtp.ParseAddress(r, true); err != nil {
				t.Errorf("invalid recipient %q: %v", r, err)
			}
		}
	})
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"-t", "-ti\x00-f\x00<>", "-oi\x00-F\x00Cron\x00root", "-N\x00success,delay\x00-R\x00hdrs\x00a@example.org",
		"--socket=/s\x00--\x00-x@example.org", "-bs", "-tifs@example.org", "a@example.org, b\x00c", "-V\x00id\x00-B7bit\x00-t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		o, err := ParseArgs(args)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is %T, not *UsageError", err, err)
			}
			return
		}
		if len(o.Recipients) == 0 && !o.ExtractRecipients {
			t.Fatal("no recipients and no -t")
		}
		for _, r := range o.Recipients {
			if _, err := qualifyMailbox(r, "example.org"); err != nil {
				t.Errorf("recipient %q does not make an address: %v", r, err)
			}
		}
		if o.Sender != "" {
			if _, err := qualifyMailbox(o.Sender, "example.org"); err != nil {
				t.Errorf("sender %q does not make an address: %v", o.Sender, err)
			}
		}
		if strings.ContainsAny(o.FullName, "\r\n") {
			t.Errorf("full name %q holds a line break", o.FullName)
		}
		switch o.Ret {
		case "", "FULL", "HDRS":
		default:
			t.Errorf("Ret = %q", o.Ret)
		}
		if o.Notify != "" && o.Notify != "NEVER" {
			for _, w := range strings.Split(o.Notify, ",") {
				if w != "SUCCESS" && w != "FAILURE" && w != "DELAY" {
					t.Errorf("Notify = %q", o.Notify)
				}
			}
		}
	})
}

func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{
		"a@example.org", "Joe <joe>, root (Cron)", "g: a@example.org, \"x y\"@example.org;", "J\xf6rg <j@example.org>",
		"<a@[192.0.2.1]>", "a@example.org:b@example.org", `"a\"b" <c>`, "(unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseAddressList(s, "example.org")
		if err != nil {
			return
		}
		for _, m := range list {
			if _, err := smtp.ParseAddress(m, true); err != nil {
				t.Errorf("parseAddressList(%q) gave invalid %q: %v", s, m, err)
			}
		}
	})
}

// FuzzReadReply feeds arbitrary server output to the reply reader.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 ok\r\n", "250-a\r\n250 b\r\n", "220\r\n", "250-a\r\n251 b\r\n", "2\r\n", "abc\r\n", "250-x\n250 y\n", "550 5.1.1 x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			io.WriteString(b, s)
			b.Close()
		}()
		c := &client{conn: a, r: newReplyReader(a)}
		rep, err := c.readReply("TEST", time.Second)
		if err != nil {
			return
		}
		if rep.code < 200 || rep.code > 599 || len(rep.lines) == 0 || len(rep.lines) > maxReplyLines {
			t.Errorf("readReply(%q) = %+v", s, rep)
		}
	})
}
