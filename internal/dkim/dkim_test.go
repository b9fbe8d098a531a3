package dkim

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// crlf turns a test message written with LF line ends into wire form.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// staticKeys answers key lookups from a map; a name missing from it does not exist.
type staticKeys map[string]string

func (k staticKeys) lookup(_ context.Context, name string) ([]string, error) {
	rec, ok := k[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNoKey)
	}
	return []string{rec}, nil
}

// The example of RFC 8463 Appendix A: the Ed25519 key of A.2 (the key of RFC 8032
// §7.1, test 1) and the relaxed/relaxed signature of A.3 on the message of RFC 6376
// Appendix A. The message's RSA signature is left out: its key is not needed.
const (
	rfc8463Seed   = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	rfc8463Record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	rfc8463Header = `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
`
	rfc6376Message = `From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`
	rfc8463BodyHash = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
)

var rfc8463Keys = staticKeys{"brisbane._domainkey.football.example.com.": rfc8463Record}

func rfc8463Key(t testing.TB) ed25519.PrivateKey {
	seed, err := base64.StdEncoding.DecodeString(rfc8463Seed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// verifyOne verifies msg and returns the outcome of its only signature.
func verifyOne(t *testing.T, keys staticKeys, msg string, now time.Time) error {
	t.Helper()
	v := &Verifier{Lookup: keys.lookup, Now: func() time.Time { return now }}
	res, err := v.Verify(context.Background(), strings.NewReader(msg))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("Verify gave %d results, want 1", len(res))
	}
	return res[0].Err
}

// The published signature verifies with the published key (a known-answer test of
// canonicalization, header selection, hashing and Ed25519), and stops verifying when
// any signed part changes.
func TestRFC8463Example(t *testing.T) {
	now := time.Unix(1528637909, 0)
	msg := crlf(rfc8463Header + rfc6376Message)
	if err := verifyOne(t, rfc8463Keys, msg, now); err != nil {
		t.Fatalf("RFC 8463 A.3 signature: %v", err)
	}
	// The published key is the public half of the published private key.
	rec, err := KeyRecord(rfc8463Key(t).Public())
	if err != nil || rec != rfc8463Record {
		t.Errorf("KeyRecord = %q, %v; want %q", rec, err, rfc8463Record)
	}
	for name, tamper := range map[string]func(string) string{
		"subject":     func(m string) string { return strings.Replace(m, "Is dinner ready?", "Is lunch ready?", 1) },
		"body":        func(m string) string { return strings.Replace(m, "We lost", "We won", 1) },
		"second from": func(m string) string { return strings.Replace(m, "To:", "From: <ceo@football.example.com>\r\nTo:", 1) },
		"signature":   func(m string) string { return strings.Replace(m, "b=/gCr", "b=/gCs", 1) },
		"t= tag":      func(m string) string { return strings.Replace(m, "t=1528637909", "t=1528637910", 1) },
	} {
		if err := verifyOne(t, rfc8463Keys, tamper(msg), now); err == nil || IsTemporary(err) {
			t.Errorf("%s changed: got %v, want a permanent failure", name, err)
		}
	}
	// Changes relaxed canonicalization absorbs keep it valid: header case, refolding,
	// white space inside lines and at their ends, extra empty lines at the end.
	loose := strings.NewReplacer("Subject: Is dinner", "SUBJECT:   Is\r\n\tdinner", "We lost the game.", "We lost  the\tgame.  ",
		"Joe.\r\n", "Joe.\r\n\r\n\r\n").Replace(msg)
	if err := verifyOne(t, rfc8463Keys, loose, now); err != nil {
		t.Errorf("after changes relaxed canonicalization tolerates: %v", err)
	}
}

// Signing the RFC 6376 example message reproduces the published body hash, and the
// signature made with the published key verifies.
func TestSignRFC8463Key(t *testing.T) {
	s := &Signer{Domain: "football.example.com", Selector: "brisbane", Key: rfc8463Key(t),
		Now: func() time.Time { return time.Unix(1528637909, 0) }}
	h, err := s.Sign(strings.NewReader(crlf(rfc6376Message)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(h), "bh="+rfc8463BodyHash+";") {
		t.Errorf("body hash differs from RFC 8463 A.3:\n%s", h)
	}
	if err := verifyOne(t, rfc8463Keys, string(h)+crlf(rfc6376Message), time.Unix(1528637909, 0)); err != nil {
		t.Errorf("own signature: %v\n%s", err, h)
	}
}

// RFC 6376 §3.4.5: the canonicalization example.
func TestCanonicalizationRFC6376Example(t *testing.T) {
	msg := "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"
	lr := newTestReader(msg)
	fields, err := readHeader(lr)
	if err != nil {
		t.Fatal(err)
	}
	var relaxed, simple []byte
	for _, f := range fields {
		relaxed = canonicalHeader(relaxed, f, Relaxed)
		simple = canonicalHeader(simple, f, Simple)
	}
	if want := "a:X\r\nb:Y Z\r\n"; string(relaxed) != want {
		t.Errorf("relaxed header = %q, want %q", relaxed, want)
	}
	if want := "A: X\r\nB : Y\t\r\n\tZ  \r\n"; string(simple) != want {
		t.Errorf("simple header = %q, want %q", simple, want)
	}
	body := " C \r\nD \t E\r\n\r\n\r\n"
	for _, tc := range []struct {
		c    Canonicalization
		want string
	}{
		{Relaxed, " C\r\nD E\r\n"},
		{Simple, " C \r\nD \t E\r\n"},
	} {
		if got := canonBody(body, tc.c); got != tc.want {
			t.Errorf("%s body = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func newTestReader(s string) *lineReader {
	return &lineReader{r: bufio.NewReader(strings.NewReader(s))}
}

func canonBody(body string, c Canonicalization) string {
	var b bytes.Buffer
	bc := &bodyCanon{w: &b, relaxed: c == Relaxed}
	bc.Write([]byte(body))
	bc.Close()
	return b.String()
}

// Body canonicalization edge cases (RFC 6376 §3.4.3, §3.4.4 and the errata on empty
// bodies), and line ends as the SMTP client sends them.
func TestBodyCanonicalization(t *testing.T) {
	for _, tc := range []struct {
		name, body      string
		simple, relaxed string
	}{
		{"empty", "", "\r\n", ""},
		{"only empty lines", "\r\n\r\n", "\r\n", ""},
		{"only white space", "  \r\n\t\r\n", "  \r\n\t\r\n", ""},
		{"unterminated", "abc", "abc\r\n", "abc\r\n"},
		{"trailing empty lines", "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"bare CR", "a\rb\r", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
		{"leading white space", "\t x", "\t x\r\n", " x\r\n"},
		{"trailing white space then empty", "x \t\r\n \r\n", "x \t\r\n \r\n", "x\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonBody(tc.body, Simple); got != tc.simple {
				t.Errorf("simple = %q, want %q", got, tc.simple)
			}
			if got := canonBody(tc.body, Relaxed); got != tc.relaxed {
				t.Errorf("relaxed = %q, want %q", got, tc.relaxed)
			}
			// Fed one byte at a time, the result is the same.
			var b bytes.Buffer
			bc := &bodyCanon{w: &b, relaxed: true}
			for i := range len(tc.body) {
				bc.Write([]byte{tc.body[i]})
			}
			bc.Close()
			if b.String() != tc.relaxed {
				t.Errorf("relaxed byte by byte = %q, want %q", b.String(), tc.relaxed)
			}
		})
	}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey generates one 2048-bit key for the whole run.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := GenerateKey(RSASHA256)
		if err != nil {
			t.Fatal(err)
		}
		rsaKey = k.(*rsa.PrivateKey)
	})
	return rsaKey
}

const testMessage = `Received: from client (client [192.0.2.1]) by mx.example.com
From: Alice <alice@example.com>
To: bob@example.net
Cc: carol@example.net
Subject: Quarterly figures
Date: Sat, 28 Nov 2026 20:00:00 +0000
Message-ID: <q4@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

The figures are attached.
.
A line with a dot above.
`

// Both algorithms and all four canonicalization pairs sign and verify, and every
// line of the signature field fits in 78 characters.
func TestRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	for _, key := range []crypto.Signer{rfc8463Key(t), testRSAKey(t)} {
		for _, hc := range []Canonicalization{Simple, Relaxed} {
			for _, bc := range []Canonicalization{Simple, Relaxed} {
				alg, _ := KeyAlgorithm(key.Public())
				t.Run(fmt.Sprintf("%s/%s/%s", alg, hc, bc), func(t *testing.T) {
					s := &Signer{Domain: "example.com", Selector: "sel1", Key: key, HeaderCanon: hc, BodyCanon: bc,
						Expiry: 7 * 24 * time.Hour, Now: func() time.Time { return now }}
					h, err := s.Sign(strings.NewReader(crlf(testMessage)))
					if err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(strings.TrimSuffix(string(h), "\r\n"), "\r\n") {
						if len(line) > lineLimit {
							t.Errorf("line of %d characters: %q", len(line), line)
						}
					}
					rec, _ := KeyRecord(key.Public())
					keys := staticKeys{"sel1._domainkey.example.com.": rec}
					if err := verifyOne(t, keys, string(h)+crlf(testMessage), now.Add(time.Hour)); err != nil {
						t.Fatalf("%v\n%s", err, h)
					}
					sig, err := ParseSignature(string(field{raw: h}.value()))
					if err != nil {
						t.Fatal(err)
					}
					if sig.Algorithm != alg || sig.HeaderCanon != hc || sig.BodyCanon != bc || !sig.Timestamp.Equal(now) ||
						!sig.Expiration.Equal(now.Add(7*24*time.Hour)) {
						t.Errorf("parsed signature %+v", sig)
					}
					if strings.Contains(string(h), "l=") {
						t.Errorf("signature has l=:\n%s", h)
					}
					if err := verifyOne(t, keys, string(h)+crlf(testMessage), now.Add(8*24*time.Hour)); err == nil {
						t.Errorf("verified after x=")
					}
				})
			}
		}
	}
}

// The signed field list: From always and oversigned, the default fields as often as
// they occur, the oversigned ones once more even when absent, Received never.
func TestHeaderNames(t *testing.T) {
	lr := newTestReader(crlf(testMessage))
	fields, err := readHeader(lr)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    Signer
		want string
	}{
		{"defaults", Signer{}, "from:from:reply-to:sender:subject:subject:date:date:message-id:message-id:to:to:cc:cc:" +
			"mime-version:mime-version:content-type:content-type:content-transfer-encoding"},
		{"override without from", Signer{Headers: []string{"Subject"}, Oversign: []string{}}, "from:from:subject"},
		{"oversign only", Signer{Headers: []string{"To", "X-Absent"}, Oversign: []string{"Subject"}}, "from:from:to:subject:subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.s.headerNames(fields), ":"); got != tc.want {
				t.Errorf("h = %s\nwant  %s", got, tc.want)
			}
		})
	}
}

// Tampering after signing fails the signature (a permanent failure), except for
// fields that are not signed.
func TestTamper(t *testing.T) {
	now := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	for _, key := range []crypto.Signer{rfc8463Key(t), testRSAKey(t)} {
		s := &Signer{Domain: "example.com", Selector: "sel1", Key: key, Now: func() time.Time { return now }}
		h, err := s.Sign(strings.NewReader(crlf(testMessage)))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := KeyRecord(key.Public())
		keys := staticKeys{"sel1._domainkey.example.com.": rec}
		signed := string(h) + crlf(testMessage)
		for _, tc := range []struct {
			name  string
			edit  func(string) string
			valid bool
		}{
			{"unchanged", func(m string) string { return m }, true},
			{"Received added on top", func(m string) string { return "Received: by relay.example.org\r\n" + m }, true},
			{"unsigned field added", func(m string) string { return strings.Replace(m, "MIME-Version", "X-Spam: no\r\nMIME-Version", 1) }, true},
			{"subject changed", func(m string) string { return strings.Replace(m, "Quarterly", "Annual", 1) }, false},
			{"from changed", func(m string) string { return strings.Replace(m, "alice@", "mallory@", 1) }, false},
			{"body changed", func(m string) string { return strings.Replace(m, "attached", "enclosed", 1) }, false},
			{"body appended", func(m string) string { return m + "P.S. wire the money.\r\n" }, false},
			{"second From added above", func(m string) string {
				return strings.Replace(m, "Received:", "From: <ceo@example.com>\r\nReceived:", 1)
			}, false},
			{"second From added below", func(m string) string { return strings.Replace(m, "To:", "From: <ceo@example.com>\r\nTo:", 1) }, false},
			{"second Subject added", func(m string) string { return strings.Replace(m, "MIME-Version", "Subject: Urgent\r\nMIME-Version", 1) }, false},
			{"absent Reply-To added", func(m string) string {
				return strings.Replace(m, "MIME-Version", "Reply-To: <x@evil.test>\r\nMIME-Version", 1)
			}, false},
			{"d= changed", func(m string) string { return strings.Replace(m, "d=example.com", "d=example.org", 1) }, false},
		} {
			keys := keys
			if tc.name == "d= changed" {
				keys = staticKeys{"sel1._domainkey.example.org.": rec}
			}
			err := verifyOne(t, keys, tc.edit(signed), now)
			if tc.valid && err != nil {
				t.Errorf("%T %s: %v", key, tc.name, err)
			}
			if !tc.valid && (err == nil || IsTemporary(err)) {
				t.Errorf("%T %s: got %v, want a permanent failure", key, tc.name, err)
			}
		}
	}
}

// Signatures a strict verifier refuses, each for its own rule.
func TestVerifyRefuses(t *testing.T) {
	now := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	key := rfc8463Key(t)
	rec, _ := KeyRecord(key.Public())
	small := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 767), E: 65537}
	small.N.Add(small.N, big.NewInt(1))
	der, err := x509.MarshalPKIXPublicKey(small)
	if err != nil {
		t.Fatal(err)
	}
	rsaRec, _ := KeyRecord(testRSAKey(t).Public())
	smallRec := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	sign := func(edit func(*Signer)) string {
		s := &Signer{Domain: "example.com", Selector: "sel1", Key: key, Now: func() time.Time { return now }}
		if edit != nil {
			edit(s)
		}
		h, err := s.Sign(strings.NewReader(crlf(testMessage)))
		if err != nil {
			t.Fatal(err)
		}
		return string(h) + crlf(testMessage)
	}
	good := sign(nil)
	keys := staticKeys{"sel1._domainkey.example.com.": rec}
	for _, tc := range []struct {
		name string
		msg  string
		keys staticKeys
		want string // in the error
		temp bool
	}{
		{"l= present", strings.Replace(good, "v=1;", "v=1; l=10;", 1), keys, "l=", false},
		{"rsa-sha1", strings.Replace(good, "a=ed25519-sha256", "a=rsa-sha1", 1), keys, "rsa-sha1", false},
		{"unknown algorithm", strings.Replace(good, "a=ed25519-sha256", "a=ed448-sha256", 1), keys, "unknown algorithm", false},
		{"h without from", strings.Replace(strings.Replace(good, "h=from:from:", "h=", 1), "h=from:", "h=", 1), keys, "From", false},
		{"expired", sign(func(s *Signer) { s.Expiry = time.Minute; s.Now = func() time.Time { return now.Add(-time.Hour) } }), keys, "expired", false},
		{"no key record", good, staticKeys{}, "no key record", false},
		{"revoked key", good, staticKeys{"sel1._domainkey.example.com.": "v=DKIM1; k=ed25519; p="}, "revoked", false},
		{"RSA key too small", strings.Replace(good, "a=ed25519-sha256", "a=rsa-sha256", 1),
			staticKeys{"sel1._domainkey.example.com.": smallRec}, "shorter than 1024", false},
		{"key type mismatch", good, staticKeys{"sel1._domainkey.example.com.": rsaRec}, "does not match", false},
		{"i= outside d=", strings.Replace(good, "v=1;", "v=1; i=@example.org;", 1), keys, "not within", false},
		{"duplicate tag", strings.Replace(good, "v=1;", "v=1; s=sel1;", 1), keys, "twice", false},
		{"t=s with subdomain i=", strings.Replace(good, "v=1;", "v=1; i=@sub.example.com;", 1),
			staticKeys{"sel1._domainkey.example.com.": rec + "; t=s"}, "t=s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyOne(t, tc.keys, tc.msg, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) || IsTemporary(err) != tc.temp {
				t.Errorf("got %v, want a failure mentioning %q (temporary %v)", err, tc.want, tc.temp)
			}
		})
	}
}

// A lookup that fails for any reason but a missing record is a temporary failure
// (RFC 6376 §6.1.2): a resolver outage must not turn into a DKIM fail.
func TestVerifyTemporaryLookupFailure(t *testing.T) {
	msg := crlf(rfc8463Header + rfc6376Message)
	timeout := errors.New("i/o timeout")
	v := &Verifier{
		Lookup: func(context.Context, string) ([]string, error) { return nil, timeout },
		Now:    func() time.Time { return time.Unix(1528637909, 0) },
	}
	res, err := v.Verify(context.Background(), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !IsTemporary(res[0].Err) || !errors.Is(res[0].Err, timeout) {
		t.Errorf("results %+v, want one temporary failure wrapping the lookup error", res)
	}
}

// Unsigned messages give no results; more than maxSignatures are not all checked.
func TestVerifyCounts(t *testing.T) {
	v := &Verifier{Lookup: rfc8463Keys.lookup, Now: func() time.Time { return time.Unix(1528637909, 0) }}
	res, err := v.Verify(context.Background(), strings.NewReader(crlf(rfc6376Message)))
	if err != nil || len(res) != 0 {
		t.Errorf("unsigned message: %v, %v", res, err)
	}
	msg := crlf(strings.Repeat(rfc8463Header, maxSignatures+2) + rfc6376Message)
	res, err = v.Verify(context.Background(), strings.NewReader(msg))
	if err != nil || len(res) != maxSignatures+2 {
		t.Fatalf("%d results, %v", len(res), err)
	}
	for i, r := range res {
		if ok := r.Err == nil; ok != (i < maxSignatures) {
			t.Errorf("signature %d: %v", i, r.Err)
		}
	}
}

// SignMessage signs with the keys chosen for the From domain only.
func TestSignMessageChoosesByFrom(t *testing.T) {
	key := rfc8463Key(t)
	for _, tc := range []struct {
		name, header string
		want         string
	}{
		{"plain", "From: a@Example.COM\r\n", "example.com"},
		{"display name", "From: \"Alice, A.\" <a@example.com>\r\n", "example.com"},
		{"folded", "From: Alice\r\n <a@example.com>\r\n", "example.com"},
		{"none", "To: b@example.net\r\n", ""},
		{"two From fields", "From: a@example.com\r\nFrom: b@example.org\r\n", ""},
		{"two addresses", "From: a@example.com, b@example.org\r\n", ""},
		{"unparsable", "From: <<<\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			h, err := SignMessage(strings.NewReader(tc.header+"\r\nbody\r\n"), func(d string) []*Signer {
				got = d
				if d == "example.com" {
					return []*Signer{{Domain: d, Selector: "a", Key: key}, {Domain: d, Selector: "b", Key: testRSAKey(t)}}
				}
				return nil
			})
			if err != nil || got != tc.want {
				t.Fatalf("domain %q, %v; want %q", got, err, tc.want)
			}
			if n := bytes.Count(h, []byte("DKIM-Signature:")); (n == 2) != (tc.want != "") || n == 1 {
				t.Errorf("%d signatures:\n%s", n, h)
			}
		})
	}
}

// Message shapes that must not trip the reader: no body, no empty line, a huge
// header section.
func TestMessageShapes(t *testing.T) {
	key := rfc8463Key(t)
	rec, _ := KeyRecord(key.Public())
	keys := staticKeys{"s._domainkey.example.com.": rec}
	s := &Signer{Domain: "example.com", Selector: "s", Key: key}
	for _, msg := range []string{"From: a@example.com\r\n", "From: a@example.com", "From: a@example.com\r\n\r\n",
		"From: a@example.com\nSubject: lf only\n\nbody\n", "From: a@example.com\rSubject: cr only\r\rbody"} {
		h, err := s.Sign(strings.NewReader(msg))
		if err != nil {
			t.Fatalf("%q: %v", msg, err)
		}
		// The message as the SMTP client would send it: line ends made CRLF.
		wire := strings.NewReplacer("\r\n", "\r\n", "\r", "\r\n", "\n", "\r\n").Replace(msg)
		if !strings.HasSuffix(wire, "\r\n") {
			wire += "\r\n"
		}
		if err := verifyOne(t, keys, string(h)+wire, time.Now()); err != nil {
			t.Errorf("%q: %v", msg, err)
		}
	}
	huge := "From: a@example.com\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n"
	if _, err := s.Sign(strings.NewReader(huge)); !errors.Is(err, ErrHeaderTooLarge) || !errors.Is(err, ErrMalformed) {
		t.Errorf("huge header: %v", err)
	}
	if _, err := s.Sign(strings.NewReader(" folded\r\nFrom: a@example.com\r\n\r\n")); !errors.Is(err, ErrLeadingWhitespace) {
		t.Errorf("leading white space: %v", err)
	}
}

func TestWithoutSignature(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"DKIM-Signature: v=1; bh=abc; b=xyz\r\n", "DKIM-Signature: v=1; bh=abc; b="},
		{"DKIM-Signature: v=1; b=x\r\n y; bh=abc;\r\n", "DKIM-Signature: v=1; b=; bh=abc;"},
		{"DKIM-Signature: b = xyz ;d=x", "DKIM-Signature: b =;d=x"},
		{"DKIM-Signature: bh=b=;", "DKIM-Signature: bh=b=;"},
	} {
		if got := string(withoutSignature([]byte(tc.in))); got != tc.want {
			t.Errorf("withoutSignature(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseTagList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // name=value|... or "error"
	}{
		{"a=1", "a=1"},
		{"a=1;", "a=1"},
		{" a = 1 ; b=x y ;", "a=1|b=x y"},
		{"a=1;\r\n b=2", "a=1|b=2"},
		{"a=", "a="},
		{"a=b=c", "a=b=c"},
		{"", "error"},
		{";", "error"},
		{"a=1;;b=2", "error"},
		{"a=1; a=2", "error"},
		{"1a=1", "error"},
		{"a-b=1", "error"},
		{"a", "error"},
		{"a=1\nb", "error"},
		{"a=1\r\nb=2", "error"},
		{"a=\x7f", "error"},
		{"a=é", "error"},
	} {
		tags, err := parseTagList(tc.in)
		got := "error"
		if err == nil {
			var parts []string
			for _, t := range tags {
				parts = append(parts, t.name+"="+t.value)
			}
			got = strings.Join(parts, "|")
		}
		if got != tc.want {
			t.Errorf("parseTagList(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestParseKeyRecord(t *testing.T) {
	edRec, _ := KeyRecord(rfc8463Key(t).Public())
	rsaRec, _ := KeyRecord(testRSAKey(t).Public())
	pkcs1 := "k=rsa; p=" + base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&testRSAKey(t).PublicKey))
	edP := strings.TrimPrefix(edRec, "v=DKIM1; k=ed25519; ")
	for _, tc := range []struct {
		name, rec string
		wantType  string // "" for an error
	}{
		{"ed25519", edRec, "ed25519"},
		{"rsa spki", rsaRec, "rsa"},
		{"rsa pkcs1, no v=", pkcs1, "rsa"},
		{"rsa default k", strings.Replace(rsaRec, "k=rsa; ", "", 1), "rsa"},
		{"h=sha256", edRec + "; h=sha1:sha256", "ed25519"},
		{"s=email", edRec + "; s=email", "ed25519"},
		{"s=*", edRec + "; s=*", "ed25519"},
		{"flags", edRec + "; t=y:s", "ed25519"},
		{"unknown tag", edRec + "; zz=1", "ed25519"},
		{"v not first", "k=ed25519; v=DKIM1; " + edP, ""},
		{"v wrong", "v=DKIM2; k=ed25519; " + edP, ""},
		{"h=sha1 only", edRec + "; h=sha1", ""},
		{"s=tlsrpt only", edRec + "; s=tlsrpt", ""},
		{"unknown k", "v=DKIM1; k=dsa; " + edP, ""},
		{"no p", "v=DKIM1; k=ed25519", ""},
		{"revoked", "v=DKIM1; k=ed25519; p=", ""},
		{"bad base64", "v=DKIM1; k=ed25519; p=!!!", ""},
		{"ed25519 wrong length", "v=DKIM1; k=ed25519; p=AAAA", ""},
		{"rsa key in ed25519 record", strings.Replace(rsaRec, "k=rsa", "k=ed25519", 1), ""},
		{"ed25519 key in rsa record", strings.Replace(edRec, "k=ed25519", "k=rsa", 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKeyRecord(tc.rec)
			if tc.wantType == "" {
				if err == nil {
					t.Errorf("accepted: %+v", k)
				}
				return
			}
			if err != nil || k.Type != tc.wantType || k.PublicKey == nil {
				t.Fatalf("got %+v, %v", k, err)
			}
			if tc.name == "flags" && (!k.Testing || !k.Strict) {
				t.Errorf("flags not parsed: %+v", k)
			}
		})
	}
	if k, err := ParseKeyRecord("v=DKIM1; p="); !errors.Is(err, ErrKeyRevoked) || !k.Revoked {
		t.Errorf("revoked key: %+v, %v", k, err)
	}
}

func TestSplitTXT(t *testing.T) {
	rec, _ := KeyRecord(testRSAKey(t).Public())
	parts := SplitTXT(rec)
	if len(parts) != 2 || len(parts[0]) != 255 || strings.Join(parts, "") != rec {
		t.Errorf("SplitTXT of %d bytes: %d parts", len(rec), len(parts))
	}
	if v := TXTValue(rec); !strings.HasPrefix(v, `"v=DKIM1; k=rsa; p=`) || strings.Count(v, `"`) != 4 {
		t.Errorf("TXTValue = %s", v)
	}
	ed, _ := KeyRecord(rfc8463Key(t).Public())
	if v := TXTValue(ed); v != `"`+rfc8463Record+`"` {
		t.Errorf("TXTValue = %s", v)
	}
	if n := KeyName("sel", "example.com."); n != "sel._domainkey.example.com." {
		t.Errorf("KeyName = %s", n)
	}
}

func TestSignerCheck(t *testing.T) {
	key := rfc8463Key(t)
	for _, tc := range []struct {
		name string
		s    Signer
		ok   bool
	}{
		{"ok", Signer{Domain: "example.com", Selector: "s1", Key: key}, true},
		{"dotted selector", Signer{Domain: "example.com", Selector: "2026.s1", Key: key}, true},
		{"no key", Signer{Domain: "example.com", Selector: "s1"}, false},
		{"bad selector", Signer{Domain: "example.com", Selector: "s_1", Key: key}, false},
		{"empty selector", Signer{Domain: "example.com", Key: key}, false},
		{"single label domain", Signer{Domain: "localhost", Selector: "s1", Key: key}, false},
		{"bad canon", Signer{Domain: "example.com", Selector: "s1", Key: key, BodyCanon: "loose"}, false},
	} {
		if err := tc.s.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
