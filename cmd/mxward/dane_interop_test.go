package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dnslab"
	"mxward/internal/testpeer"
)

// startInstanceDNS starts mxward with baseConfig whose [dns] table is replaced by
// dnsTable.
func startInstanceDNS(t *testing.T, dnsTable, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	ports := map[string]int{"inbound": freePort(t), "submission": freePort(t), "submissions": freePort(t)}
	in := &instance{t: t, dir: dir, ports: ports, cfgPath: filepath.Join(dir, "mxward.toml")}
	cfg := baseConfig(t, dir, ports, extra)
	const testDNS = "[dns]\nmode = \"trust-ad\"\nresolvers = [\"127.0.0.1:9\"]\n"
	if !strings.Contains(cfg, testDNS) {
		t.Fatal("baseConfig's [dns] table changed")
	}
	cfg = strings.Replace(cfg, testDNS, "[dns]\n"+dnsTable+"\n", 1)
	if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	in.start()
	t.Cleanup(func() { in.stop(syscall.SIGTERM) })
	return in
}

// spkiSHA256 returns the hex SHA-256 digest of the certificate's public key, the data of
// a "3 1 1" TLSA record.
func spkiSHA256(t *testing.T, c *testpeer.Cert) string {
	t.Helper()
	b, _ := pem.Decode(c.CertPEM)
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// waitDeferred waits for a deferred delivery record for rcpt whose reply carries want.
func (in *instance) waitDeferred(rcpt, want string) map[string]any {
	in.t.Helper()
	rec := in.deliveryRecord(rcpt, "deferred")
	if !strings.Contains(fmt.Sprint(rec["reply"]), want) {
		in.t.Errorf("%s deferred with %v, want %q", rcpt, rec, want)
	}
	return rec
}

// TestDANEWithPostfix: mxward delivers over the DNSSEC lab (zones signed by the real
// signers, NSD, Unbound) to real Postfix receivers, in both DNS modes. A destination
// whose TLSA record matches Postfix's key gets an authenticated session (DANE-20); a
// wrong digest, a receiver without STARTTLS behind a TLSA record and a bogus zone are
// deferred with nothing sent (DANE-04, DANE-18, DANE-03); an unsigned domain gets
// opportunistic TLS.
func TestDANEWithPostfix(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	domains := []string{"good.test", "wrong.test", "plain.test", "expired.test"}
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.good.test", Deliver: true,
		Domains: domains, ServerTLS: true})
	pfPlain := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.nostarttls.test", Deliver: true,
		Domains: []string{"nostarttls.test"}})
	port, plainPort := pf.Port(), pfPlain.Port()
	digest := spkiSHA256(t, pf.Cert())
	mail := func(port int, tlsa string) []string {
		recs := []string{"@ MX 10 mx", "mx A 127.0.0.1"}
		if tlsa != "" {
			recs = append(recs, fmt.Sprintf("_%d._tcp.mx TLSA %s", port, tlsa))
		}
		return recs
	}
	zones := []dnslab.Zone{
		{Name: ".", Signer: dnslab.LDNS, Algorithm: mdns.RSASHA256, Denial: dnslab.NSEC},
		{Name: "test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC3},
		{Name: "good.test.", Signer: dnslab.LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC,
			Records: mail(port, "3 1 1 "+digest)},
		{Name: "wrong.test.", Signer: dnslab.BIND, Algorithm: mdns.ED25519, Denial: dnslab.NSEC3,
			Records: mail(port, "3 1 1 "+strings.Repeat("ab", 32))},
		{Name: "nostarttls.test.", Signer: dnslab.LDNS, Algorithm: mdns.ECDSAP384SHA384, Denial: dnslab.NSEC,
			Records: mail(plainPort, "3 1 1 "+digest)},
		{Name: "plain.test.", Unsigned: true, Records: mail(port, "")},
		{Name: "expired.test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC,
			Records: mail(port, "3 1 1 "+digest), Break: dnslab.Break{ExpiredSigs: true}},
	}
	lab := dnslab.Start(t, zones, dnslab.Options{})
	transports := "\n[delivery.transport]\n"
	for _, d := range domains {
		transports += fmt.Sprintf("%q = \"%s:%d\"\n", d, d, port)
	}
	transports += fmt.Sprintf("\"nostarttls.test\" = \"nostarttls.test:%d\"\n", plainPort)

	for i, mode := range []string{"validate", "trust-ad"} {
		t.Run(mode, func(t *testing.T) {
			in := startInstanceDNS(t, fmt.Sprintf("mode = %q\nresolvers = [%q]\ntrust_anchor_file = %q", mode, lab.Resolver, lab.AnchorFile()),
				"tls_level = \"dane\"\nretry_first = \"1h\"\n"+transports)
			send := func(rcpt string) {
				out, err := in.mxward("Subject: dane\n\nHello.\n", "sendmail", "-f", "alice@example.test", rcpt)
				if err != nil {
					t.Fatalf("sendmail %s: %v %s", rcpt, err, out)
				}
			}
			user := fmt.Sprintf("u%d", i)
			for _, d := range append(domains, "nostarttls.test") {
				send(user + "@" + d)
			}

			// DANE-EE 3 1 1 matching Postfix's key: authenticated, whatever the
			// self-signed certificate's name (DANE-20).
			rec := in.deliveryRecord(user+"@good.test", "delivered")
			if rec["policy"] != "dane" || rec["tls"] != "verified" || rec["auth"] != "dane-ee" {
				t.Errorf("good.test: %v", rec)
			}
			pf.WaitMaildir(t, user+"@good.test", 1, 30*time.Second)

			// An unsigned domain: opportunistic TLS, not DANE.
			rec = in.deliveryRecord(user+"@plain.test", "delivered")
			if rec["policy"] != "opportunistic" || rec["tls"] != "untrusted" {
				t.Errorf("plain.test: %v", rec)
			}

			// A digest that matches nothing: deferred with 4.7.5, never delivered.
			in.waitDeferred(user+"@wrong.test", "4.7.5")
			// TLSA published but no STARTTLS: deferred, never plaintext (DANE-18).
			in.waitDeferred(user+"@nostarttls.test", "4.7.")
			// A zone whose signatures expired: bogus, deferred (DANE-03).
			in.deliveryRecord(user+"@expired.test", "deferred")

			time.Sleep(500 * time.Millisecond)
			for _, rcpt := range []string{user + "@wrong.test", user + "@expired.test"} {
				if n := len(pf.Maildir(t, rcpt)); n != 0 {
					t.Errorf("%s: %d messages reached the receiver", rcpt, n)
				}
			}
			if n := len(pfPlain.Maildir(t, user+"@nostarttls.test")); n != 0 {
				t.Errorf("nostarttls.test: %d messages sent in plaintext", n)
			}
		})
	}
}
