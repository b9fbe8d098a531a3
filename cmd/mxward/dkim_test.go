package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/config"
	"mxward/internal/dkim"
	"mxward/internal/spool"
)

// keygen runs "mxward dkim keygen" in-process and returns its output.
func keygen(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := cmdDKIM(context.Background(), append([]string{"keygen"}, args...), &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// keygen writes a private key only its owner can read, never over an existing file,
// and prints a record that holds the key's public half and a [[dkim]] entry that
// loads.
func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"ed25519", "rsa"} {
		t.Run(alg, func(t *testing.T) {
			path := filepath.Join(dir, alg+".pem")
			out, err := keygen(t, "--domain", "Example.ORG", "--selector", "s2026", "--algorithm", alg, "--out", path)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file %v, %v", st, err)
			}
			data, _ := os.ReadFile(path)
			key, err := dkim.ParsePrivateKey(data)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := dkim.KeyRecord(key.Public())
			if !strings.Contains(out, "s2026._domainkey.example.org. IN TXT "+dkim.TXTValue(rec)) {
				t.Errorf("record missing from output:\n%s", out)
			}
			_, entry, _ := strings.Cut(out, "[[dkim]]")
			c, err := config.Parse("entry", []byte("hostname = \"mx.example.org\"\n[[dkim]]"+entry))
			if err != nil {
				t.Fatalf("printed entry does not parse: %v\n%s", err, out)
			}
			if err := config.LoadDKIMKeys(c); err != nil || c.DKIM[0].Algorithm != map[string]string{"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}[alg] {
				t.Errorf("printed entry does not load: %v %+v", err, c.DKIM)
			}
			if out, err := keygen(t, "--domain", "example.org", "--selector", "s2026", "--out", path); err == nil {
				t.Errorf("overwrote an existing key:\n%s", out)
			}
			if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
				t.Error("existing key file changed")
			}
		})
	}
	for _, args := range [][]string{
		{"--domain", "example.org", "--selector", "s", "--out", filepath.Join(dir, "x"), "--algorithm", "dsa"},
		{"--domain", "org", "--selector", "s", "--out", filepath.Join(dir, "x")},
		{"--domain", "example.org", "--selector", "s_1", "--out", filepath.Join(dir, "x")},
		{"--domain", "example.org", "--selector", "s"},
		{"--domain", "example.org", "--selector", "s", "--out", filepath.Join(dir, "x"), "extra"},
	} {
		out, err := keygen(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 64 {
			t.Errorf("keygen %v: %v\n%s", args, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
			t.Fatalf("keygen %v wrote a key", args)
		}
	}
	if err := cmdDKIM(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Error("dkim without a subcommand succeeded")
	}
}

// writeKeyFile generates a key with keygen and returns its path.
func writeKeyFile(t *testing.T, dir, domain, selector, alg string) string {
	t.Helper()
	path := filepath.Join(dir, selector+"."+domain+".pem")
	if out, err := keygen(t, "--domain", domain, "--selector", selector, "--algorithm", alg, "--out", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return path
}

// mxward signs only mail it speaks for: authenticated, injected locally (which covers
// its own DSNs) or from a trusted network. Mail from anywhere else (an internet sender
// whose message an alias forwards) is never signed, whatever its From says: signing it
// would make a forged From pass DKIM and DMARC.
func TestSignerSignsOnlyOwnMail(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t", []byte(fmt.Sprintf(`hostname = "mx.example.org"
[relay]
trusted_networks = ["192.0.2.0/24"]
[local]
domains = ["example.org"]
[[dkim]]
domain = "example.org"
selector = "a"
key_file = %q
[[dkim]]
domain = "example.org"
selector = "b"
key_file = %q
`, writeKeyFile(t, dir, "example.org", "a", "ed25519"), writeKeyFile(t, dir, "example.org", "b", "rsa"))))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := newSigner(cfg, slog.New(slog.DiscardHandler))
	if err != nil || signer == nil {
		t.Fatalf("newSigner: %v", err)
	}
	sign := signer.sign
	const msg = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"
	for _, tc := range []struct {
		name string
		env  spool.Envelope
		msg  string
		sigs int
	}{
		{"authenticated submission", spool.Envelope{ClientIP: "203.0.113.9", AuthUser: "alice@example.org"}, msg, 2},
		{"local injection", spool.Envelope{ClientIP: "local"}, msg, 2},
		{"trusted network", spool.Envelope{ClientIP: "192.0.2.7"}, msg, 2},
		{"trusted network, mapped", spool.Envelope{ClientIP: "::ffff:192.0.2.7"}, msg, 2},
		{"internet sender forwarded", spool.Envelope{ClientIP: "203.0.113.9"}, msg, 0},
		{"garbage client address", spool.Envelope{ClientIP: "nowhere"}, msg, 0},
		{"other From domain", spool.Envelope{ClientIP: "local"}, strings.Replace(msg, "example.org", "example.com", 1), 0},
		{"From subdomain", spool.Envelope{ClientIP: "local"}, strings.Replace(msg, "example.org", "sub.example.org", 1), 0},
		{"unsignable message", spool.Envelope{ClientIP: "local"}, " leading space\r\n" + msg, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := sign(context.Background(), &tc.env, strings.NewReader(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(h, []byte("DKIM-Signature:")); n != tc.sigs {
				t.Errorf("%d signatures, want %d:\n%s", n, tc.sigs, h)
			}
		})
	}
	// No [[dkim]]: no hook at all.
	if s, err := newSigner(&config.Config{}, slog.New(slog.DiscardHandler)); s != nil || err != nil {
		t.Errorf("newSigner without keys: %v", err)
	}
	count := func() int {
		t.Helper()
		h, err := sign(context.Background(), &spool.Envelope{ClientIP: "local"}, strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(h, []byte("DKIM-Signature:"))
	}
	// Reload (SIGHUP) swaps the keys: the RSA key retired, the Ed25519 key signs alone.
	retired := *cfg
	retired.DKIM = cfg.DKIM[:1:1]
	if err := signer.reload(&retired); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("after a reload with one key: %d signatures, want 1", n)
	}
	// A key that cannot be loaded stops the start, and a reload keeps the keys in force.
	cfg.DKIM[1].KeyFile = filepath.Join(dir, "missing.pem")
	if _, err := newSigner(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "dkim[1].key_file") {
		t.Errorf("newSigner with a missing key: %v", err)
	}
	if err := signer.reload(cfg); err == nil {
		t.Error("reload with a missing key: no error")
	}
	if n := count(); n != 1 {
		t.Errorf("after a failed reload: %d signatures, want the 1 in force", n)
	}
}

// sink is a minimal SMTP receiver on loopback that hands each message it accepts to
// its channel. It offers no extensions, so mxward sends with plain DATA.
type sink struct {
	ln   net.Listener
	msgs chan string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, msgs: make(chan string, 10)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return s
}

func (s *sink) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 sink.example.net ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(verb, "EHLO"), strings.HasPrefix(verb, "HELO"):
			fmt.Fprint(c, "250 sink.example.net\r\n")
		case verb == "DATA":
			fmt.Fprint(c, "354 go ahead\r\n")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(strings.TrimPrefix(l, ".")) // RFC 5321 §4.5.2 transparency
			}
			s.msgs <- msg.String()
			fmt.Fprint(c, "250 2.0.0 accepted\r\n")
		case verb == "QUIT":
			fmt.Fprint(c, "221 2.0.0 bye\r\n")
			return
		default: // MAIL, RCPT, RSET, NOOP
			fmt.Fprint(c, "250 2.0.0 ok\r\n")
		}
	}
}

// End to end: mxward serve with an Ed25519 and an RSA key for example.test signs a
// message that leaves for a remote domain; both signatures verify against the records
// `mxward dns-records --json` prints, and a From added on the way breaks them.
func TestDKIMEndToEnd(t *testing.T) {
	sk := startSink(t)
	keyDir := t.TempDir()
	ed := writeKeyFile(t, keyDir, "example.test", "ed2026", "ed25519")
	rsaKey := writeKeyFile(t, keyDir, "example.test", "rsa2026", "rsa")
	in := startInstance(t, fmt.Sprintf(`
[delivery.transport]
"example.net" = "[127.0.0.1]:%d"

[[dkim]]
domain = "example.test"
selector = "ed2026"
key_file = %q

[[dkim]]
domain = "example.test"
selector = "rsa2026"
key_file = %q
algorithm = "rsa-sha256"
expiry = "168h"
`, sk.ln.Addr().(*net.TCPAddr).Port, ed, rsaKey))

	out, err := in.mxward("From: Alice <alice@example.test>\nTo: bob@example.net\nSubject: signed\n\nHello, signed world.\n.dot line\n",
		"sendmail", "-f", "alice@example.test", "bob@example.net")
	if err != nil {
		t.Fatalf("sendmail: %v %s", err, out)
	}
	var got string
	select {
	case got = <-sk.msgs:
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing delivered to the sink:\n%s", in.log.String())
	}
	in.deliveryRecord("bob@example.net", "delivered")
	if n := strings.Count(got, "DKIM-Signature:"); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, got)
	}

	// The key records, as an operator would publish them.
	cmd := exec.Command(mxwardBin, "dns-records", "--json")
	cmd.Env = append(os.Environ(), "MXWARD_CONFIG="+in.cfgPath)
	js, err := cmd.Output()
	if err != nil {
		t.Fatalf("dns-records: %v", err)
	}
	var recs recordsJSON
	if err := json.Unmarshal(js, &recs); err != nil {
		t.Fatal(err)
	}
	published := map[string]string{}
	for _, r := range recs.Records {
		if r.Type == "TXT" && strings.Contains(r.Name, "._domainkey.") {
			published[r.Name] = joinTXT(t, r.Value)
		}
	}
	if len(published) != 2 || published["ed2026._domainkey.example.test."] == "" || published["rsa2026._domainkey.example.test."] == "" {
		t.Fatalf("dns-records DKIM records: %v", published)
	}
	lookup := func(_ context.Context, name string) ([]string, error) {
		if rec, ok := published[name]; ok {
			return []string{rec}, nil
		}
		return nil, dkim.ErrNoKey
	}
	v := &dkim.Verifier{Lookup: lookup}
	res, err := v.Verify(context.Background(), strings.NewReader(got))
	if err != nil || len(res) != 2 {
		t.Fatalf("verify: %v %v", res, err)
	}
	algs := map[dkim.Algorithm]bool{}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("signature does not verify: %v\n%s", r.Err, got)
			continue
		}
		algs[r.Signature.Algorithm] = true
		if r.Signature.Domain != "example.test" {
			t.Errorf("d=%s", r.Signature.Domain)
		}
	}
	if !algs[dkim.Ed25519SHA256] || !algs[dkim.RSASHA256] {
		t.Errorf("verified algorithms %v", algs)
	}
	forged := strings.Replace(got, "Subject: signed", "From: <ceo@example.test>\r\nSubject: signed", 1)
	res, err = v.Verify(context.Background(), strings.NewReader(forged))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err == nil {
			t.Errorf("signature %s still verifies with a second From", r.Signature.Selector)
		}
	}
	if n := len(in.logRecords("dkim key loaded")); n != 2 {
		t.Errorf("%d \"dkim key loaded\" records, want 2", n)
	}
}

// joinTXT turns a zone-file TXT value ("..." "...") into the record text a verifier
// sees: the character-strings concatenated (RFC 6376 §3.6.2.2).
func joinTXT(t *testing.T, v string) string {
	t.Helper()
	var b strings.Builder
	in := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			in = !in
		case in:
			b.WriteByte(c)
		case c != ' ':
			t.Fatalf("TXT value %q has %q outside quotes", v, c)
		}
	}
	if in {
		t.Fatalf("TXT value %q has an open quote", v)
	}
	return b.String()
}
