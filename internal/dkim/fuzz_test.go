package dkim

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// ParseSignature never panics, and what it accepts obeys the rules it promises: the
// required tags, From signed, no l=, i= within d=.
func FuzzParseSignature(f *testing.F) {
	f.Add(strings.TrimPrefix(strings.ReplaceAll(rfc8463Header, "\n", "\r\n"), "DKIM-Signature:"))
	f.Add("v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA")
	f.Add("v=1; a=rsa-sha256; c=simple; d=example.com; s=s; h=From:To; i=a@sub.example.com; t=1; x=2; q=dns/txt; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA;")
	f.Add("v=1; l=5; a=ed25519-sha256")
	f.Add("a=;;=b;\r\n c")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignature(s)
		if err != nil {
			return
		}
		from := false
		for _, h := range sig.Headers {
			from = from || strings.EqualFold(h, "from")
		}
		if !from || len(sig.BodyHash) != 32 || len(sig.Signature) == 0 || sig.Domain == "" || sig.Selector == "" {
			t.Errorf("accepted %q as %+v", s, sig)
		}
		if strings.Contains(s, "l=") && strings.Contains(strings.ReplaceAll(s, " ", ""), ";l=") {
			t.Errorf("accepted l= in %q", s)
		}
		at := strings.LastIndexByte(sig.Identity, '@')
		if dom := strings.ToLower(strings.TrimSuffix(sig.Identity[at+1:], ".")); dom != sig.Domain && !strings.HasSuffix(dom, "."+sig.Domain) {
			t.Errorf("i=%s outside d=%s", sig.Identity, sig.Domain)
		}
	})
}

// ParseKeyRecord never panics; an accepted record has a key of its type, and an RSA
// key is never short.
func FuzzParseKeyRecord(f *testing.F) {
	f.Add(rfc8463Record)
	f.Add("v=DKIM1; p=")
	f.Add("v=DKIM1; h=sha256; k=rsa; s=email; t=y:s; n=note; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB")
	f.Add("k=ed25519;p=AAAA;;")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeyRecord(s)
		if err != nil {
			return
		}
		if k.PublicKey == nil {
			t.Fatalf("accepted %q without a key", s)
		}
		alg, err := KeyAlgorithm(k.PublicKey)
		if err != nil || alg.keyType() != k.Type {
			t.Errorf("accepted %q: type %s, key %T, %v", s, k.Type, k.PublicKey, err)
		}
	})
}

// Canonicalization is stable: applying it to its own output changes nothing, and
// relaxed output has no white space at line ends, no runs of white space and no
// trailing empty lines. Signing arbitrary input and verifying the result as the wire
// carries it always succeeds.
func FuzzCanonicalize(f *testing.F) {
	f.Add("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n")
	f.Add("From: a@example.com\n\nbody\rmore\r\n\r\n")
	f.Add("")
	f.Add("\r\n\r\n")
	f.Add("From:\r\n\r\n \t\r\n")
	key := rfc8463Key(f)
	rec, _ := KeyRecord(key.Public())
	keys := staticKeys{"s._domainkey.example.com.": rec}
	f.Fuzz(func(t *testing.T, msg string) {
		for _, c := range []Canonicalization{Simple, Relaxed} {
			once := canonBody(msg, c)
			if twice := canonBody(once, c); twice != once {
				t.Errorf("%s not idempotent: %q -> %q -> %q", c, msg, once, twice)
			}
			if c == Relaxed {
				if strings.Contains(once, " \r\n") || strings.Contains(once, "\t") || strings.Contains(once, "  ") ||
					strings.HasSuffix(once, "\r\n\r\n") {
					t.Errorf("relaxed body %q", once)
				}
			}
		}
		fields, err := readHeader(newTestReader(msg))
		if err != nil {
			return
		}
		for _, fl := range fields {
			if fl.name == "" {
				continue // not a field any h= can name
			}
			h := canonicalHeader(nil, fl, Relaxed)
			if bytes.Count(h, []byte("\r\n")) != 1 || bytes.Contains(h, []byte("  ")) || bytes.Contains(h, []byte("\t")) {
				t.Errorf("relaxed header %q from %q", h, fl.raw)
			}
		}
		s := &Signer{Domain: "example.com", Selector: "s", Key: key}
		for _, hc := range []Canonicalization{Simple, Relaxed} {
			s.HeaderCanon, s.BodyCanon = hc, hc
			h, err := s.Sign(strings.NewReader(msg))
			if errors.Is(err, ErrMalformed) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := &Verifier{Lookup: keys.lookup, Now: time.Now}
			res, err := v.Verify(context.Background(), strings.NewReader(string(h)+wireForm(msg)))
			if err != nil || len(res) == 0 || res[0].Err != nil {
				t.Errorf("%s: message %q: %v %+v\n%s", hc, msg, err, res, h)
			}
		}
	})
}

// wireForm is msg as the SMTP client sends it: every line end CRLF, the last line
// terminated.
func wireForm(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; c {
		case '\r':
			b.WriteString("\r\n")
			if i+1 < len(msg) && msg[i+1] == '\n' {
				i++
			}
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(c)
		}
	}
	if s := b.String(); s != "" && !strings.HasSuffix(s, "\r\n") {
		b.WriteString("\r\n")
	}
	return b.String()
}

// BenchmarkSign10KB signs a 10 KB message, the cost mxward adds to each delivery
// attempt.
func BenchmarkSign10KB(b *testing.B) {
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n", 140)
	msg := crlf(testMessage) + body
	b.SetBytes(int64(len(msg)))
	for _, tc := range []struct {
		name string
		s    *Signer
	}{
		{"ed25519", &Signer{Domain: "example.com", Selector: "s", Key: rfc8463Key(b)}},
		{"rsa2048", &Signer{Domain: "example.com", Selector: "s", Key: testRSAKey(b)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := tc.s.Sign(strings.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
