package lab

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func FuzzStripSTARTTLS(f *testing.F) {
	for _, s := range []string{
		"250-mx.secure.lab\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
		"250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
		"250 STARTTLS\r\n",
		"220 ready\r\n",
		"250-\r\n25\r\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		stripReplies(&out, strings.NewReader(in))
		// No line offers STARTTLS, and only lines were removed.
		for _, l := range strings.SplitAfter(out.String(), "\n") {
			if len(l) >= 4 && strings.EqualFold(strings.TrimSpace(l[4:]), "STARTTLS") {
				t.Fatalf("STARTTLS left in %q", out.String())
			}
		}
		if out.Len() > len(in) {
			t.Fatalf("output %q longer than input %q", out.String(), in)
		}
		// A reply that kept lines ends with a last line.
		lines := stripSTARTTLS(strings.SplitAfter(in, "\n"))
		if n := len(lines); n > 0 && len(lines[n-1]) >= 4 && len(lines) < len(strings.SplitAfter(in, "\n")) && lines[n-1][3] != ' ' {
			t.Fatalf("last line %q not marked last", lines[n-1])
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"MAIL FROM:<a@b.lab> SIZE=10", "rcpt to:<b@c.lab>", "EHLO x", "DATA", "MAIL FROM:", "RCPT TO:<unterminated"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c := parseCommand(line)
		if c.verb != strings.ToUpper(c.verb) {
			t.Fatalf("verb %q not upper case", c.verb)
		}
		for _, prefix := range []string{"FROM:", "TO:"} {
			if p, err := parsePath(c.arg, prefix); err == nil && strings.ContainsAny(p, "<>") && !strings.Contains(c.arg, p) {
				t.Fatalf("path %q not from %q", p, c.arg)
			}
		}
	})
}

func FuzzReadData(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "..x\r\n.\r\n", "no end", ".\r\n", "a\n.\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		data, err := readData(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		// Each line gains at most a CR.
		if len(data) > 2*len(in) {
			t.Fatalf("data %q longer than possible from %q", data, in)
		}
	})
}

// FuzzDNSReply feeds arbitrary queries to the resolver: it must answer each without
// panicking, with a reply that packs and fits the client's buffer.
func FuzzDNSReply(f *testing.F) {
	tree, err := buildTree([]*zone{newZone(".", true), newZone("lab.", true), withLines(newZone("secure.lab.", true),
		"@ MX 10 mx", "mx A 127.0.1.1", "_25._tcp.mx TLSA 3 1 1 00"), newZone("plain.lab.", false)}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	h := &dnsHandler{tree: tree, attacks: new(attacks), mxOf: map[string][]string{"secure.lab.": {"mx.secure.lab."}}}
	h.attacks.set("secure.lab", ForgeMX|ForgeSigned)
	for _, q := range []struct {
		name string
		t    uint16
		do   bool
	}{{"secure.lab.", mdns.TypeMX, true}, {"mx.secure.lab.", mdns.TypeA, false}, {"x.plain.lab.", mdns.TypeDS, true}, {"nope.", mdns.TypeNS, true}} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.t)
		m.SetEdns0(1232, q.do)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(mdns.Msg)
		if r.Unpack(b) != nil || len(r.Question) != 1 {
			return
		}
		m := h.reply(r, false)
		out, err := m.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, m)
		}
		if opt := r.IsEdns0(); opt == nil && len(out) > mdns.MinMsgSize {
			t.Fatalf("reply of %d octets to a query without EDNS", len(out))
		}
	})
}

func withLines(z *zone, lines ...string) *zone {
	for _, l := range lines {
		if err := z.addLine(l); err != nil {
			panic(err)
		}
	}
	return z
}
