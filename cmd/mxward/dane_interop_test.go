package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dnslab"
	"mxward/internal/testpeer"
)

// startInstanceDNS starts mxward with baseConfig whose [dns] table is replaced by
// dnsTable, with env added to its environment.
func startInstanceDNS(t *testing.T, dnsTable, extra string, env ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	ports := map[string]int{"inbound": freePort(t), "submission": freePort(t), "submissions": freePort(t)}
	in := &instance{t: t, dir: dir, ports: ports, cfgPath: filepath.Join(dir, "mxward.toml"), env: env}
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

// forgeMX answers MX questions for the zone with an unsigned MX naming target: what an
// attacker on the path, or a poisoned cache, hands a sender for a signed domain.
func forgeMX(target string) dnslab.Rewrite {
	return func(_ context.Context, req, resp *mdns.Msg, _ dnslab.Upstream) {
		q := req.Question[0]
		if q.Qtype != mdns.TypeMX {
			return
		}
		resp.Rcode = mdns.RcodeSuccess
		resp.Answer = []mdns.RR{&mdns.MX{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeMX, Class: mdns.ClassINET, Ttl: 300},
			Preference: 10, Mx: target}}
		resp.Ns = nil
	}
}

// TestDANEWithPostfix: mxward delivers over the DNSSEC lab (zones signed by the real
// signers, NSD, Unbound) to real Postfix receivers, in both DNS modes, through every
// outcome of RFC 7672 that a receiver can show. Authenticated sessions for DANE-EE in
// all its forms (whatever the certificate's name, DANE-20) and for DANE-TA with the
// right name (DANE-21); deferral with nothing sent for a wrong digest, a wrong DANE-TA
// name, a bogus TLSA RRset, a receiver without STARTTLS behind TLSA records, STARTTLS
// stripped by a man in the middle, a bogus zone, and a forged unsigned MX for a signed
// domain pointing at an attacker with a CA-issued certificate (DANE-03, DANE-04,
// DANE-18); TLS without authentication when every record is unusable (DANE-18);
// opportunistic TLS where DANE does not apply (DANE-10, DANE-13); half-DANE over an
// insecure MX (DANE-07); CNAME'd and implicit MX hosts (DANE-11); the next MX when the
// first refuses connections, never a reordering by security (DANE-08).
func TestDANEWithPostfix(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	// Receivers: one with a self-signed key (DANE-EE), one with a certificate from a
	// private CA for mx.ta.test (DANE-TA), one without STARTTLS, and a stripper in
	// front of the first.
	ee := []string{"good.test", "misnamed.test", "full.test", "cert.test", "sha512.test", "rollover.test",
		"pkix.test", "notlsa.test", "wrong.test", "bogustlsa.test", "expired.test", "plain.test",
		"insecuremx.test", "cname.test", "implicit.test", "firstdown.test", "unsignedhost.test", "stripped.test",
		"audit.test", "optout.test"}
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.good.test", Deliver: true, Domains: ee, ServerTLS: true})
	ca, err := testpeer.NewCA("mxward lab CA")
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := ca.Issue([]string{"mx.ta.test", "mx.attacker.test"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	taDomains := []string{"ta.test", "tawrongname.test", "forged.test"}
	pfCA := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.ta.test", Deliver: true, Domains: taDomains,
		ServerTLS: true, Cert: caCert})
	pfPlain := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.nostarttls.test", Deliver: true,
		Domains: []string{"nostarttls.test"}})
	// A certificate that expired yesterday: DANE-EE ignores its dates (DANE-20).
	oldCert, err := ca.Issue([]string{"mx.expiredcert.test"}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pfOld := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.expiredcert.test", Deliver: true,
		Domains: []string{"expiredcert.test"}, ServerTLS: true, Cert: oldCert})
	port, caPort, plainPort, oldPort := pf.Port(), pfCA.Port(), pfPlain.Port(), pfOld.Port()
	strip := startStripSwitch(t, port)
	strip.set(true)
	stripPort := strip.port

	leafDER, _ := pem.Decode(pf.Cert().CertPEM)
	sum256 := sha256.Sum256(leafDER.Bytes)
	sum512 := sha512.Sum512(mustSPKI(t, pf.Cert()))
	caSum := sha256.Sum256(ca.Cert.Raw)
	digest := spkiSHA256(t, pf.Cert())
	tlsa := func(port int, owner string, recs ...string) []string {
		var out []string
		for _, r := range recs {
			out = append(out, fmt.Sprintf("_%d._tcp.%s TLSA %s", port, owner, r))
		}
		return out
	}
	mail := func(port int, recs ...string) []string {
		return append([]string{"@ MX 10 mx", "mx A 127.0.0.1"}, tlsa(port, "mx", recs...)...)
	}
	zone := func(name string, alg uint8, records []string) dnslab.Zone {
		signer, denial := dnslab.LDNS, dnslab.NSEC
		if len(name)%2 == 0 {
			signer, denial = dnslab.BIND, dnslab.NSEC3
		}
		return dnslab.Zone{Name: name, Signer: signer, Algorithm: alg, Denial: denial, Records: records}
	}
	zones := []dnslab.Zone{
		{Name: ".", Signer: dnslab.LDNS, Algorithm: mdns.RSASHA256, Denial: dnslab.NSEC},
		{Name: "test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC3},
		zone("good.test.", mdns.ECDSAP256SHA256, mail(port, "3 1 1 "+digest)),
		zone("misnamed.test.", mdns.ED25519, mail(port, "3 1 1 "+digest)),
		zone("full.test.", mdns.RSASHA256, mail(port, "3 1 0 "+hex.EncodeToString(mustSPKI(t, pf.Cert())))),
		zone("cert.test.", mdns.ECDSAP384SHA384, mail(port, "3 0 1 "+hex.EncodeToString(sum256[:]))),
		zone("sha512.test.", mdns.RSASHA512, mail(port, "3 1 2 "+hex.EncodeToString(sum512[:]))),
		zone("rollover.test.", mdns.ECDSAP256SHA256, mail(port, "3 1 1 "+strings.Repeat("cd", 32), "3 1 1 "+digest)),
		zone("pkix.test.", mdns.ECDSAP256SHA256, mail(port, "1 1 1 "+digest)),
		zone("notlsa.test.", mdns.ECDSAP256SHA256, mail(port)),
		zone("wrong.test.", mdns.ED25519, mail(port, "3 1 1 "+strings.Repeat("ab", 32))),
		zone("audit.test.", mdns.ED25519, mail(port, "3 1 1 "+strings.Repeat("ab", 32))),
		zone("optout.test.", mdns.ED25519, mail(port, "3 1 1 "+strings.Repeat("ab", 32))),
		zone("expiredcert.test.", mdns.ECDSAP256SHA256, mail(oldPort, "3 1 1 "+hex.EncodeToString(sha256Of(mustSPKI(t, oldCert))))),
		zone("nostarttls.test.", mdns.ECDSAP384SHA384, mail(plainPort, "3 1 1 "+digest)),
		zone("stripped.test.", mdns.ECDSAP256SHA256, mail(stripPort, "3 1 1 "+digest)),
		zone("ta.test.", mdns.ECDSAP256SHA256, mail(caPort, "2 0 1 "+hex.EncodeToString(caSum[:]))),
		zone("tawrongname.test.", mdns.ECDSAP256SHA256, mail(caPort, "2 0 1 "+hex.EncodeToString(caSum[:]))),
		zone("cname.test.", mdns.ECDSAP256SHA256, []string{"@ MX 10 mx", "mx CNAME mx.good.test."}),
		zone("implicit.test.", mdns.ECDSAP256SHA256, append([]string{"@ A 127.0.0.1"}, tlsa(port, "implicit.test.", "3 1 1 "+digest)...)),
		zone("firstdown.test.", mdns.ECDSAP256SHA256, append([]string{"@ MX 10 down", "@ MX 20 mx", "down A 127.0.0.2", "mx A 127.0.0.1"},
			append(tlsa(port, "down", "3 1 1 "+digest), tlsa(port, "mx", "3 1 1 "+digest)...)...)),
		zone("unsignedhost.test.", mdns.ECDSAP256SHA256, []string{"@ MX 10 mx.plain.test."}),
		zone("attacker.test.", mdns.ECDSAP256SHA256, []string{"mx A 127.0.0.1"}),
		{Name: "plain.test.", Unsigned: true, Records: append(mail(port), tlsa(port, "mx", "3 1 1 "+strings.Repeat("ef", 32))...)},
		{Name: "insecuremx.test.", Unsigned: true, Records: []string{"@ MX 10 mx.good.test."}},
		{Name: "bogustlsa.test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC,
			Records: mail(port, "3 1 1 "+digest), Break: dnslab.Break{CorruptSig: fmt.Sprintf("_%d._tcp.mx.bogustlsa.test. TLSA", port)}},
		{Name: "expired.test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC,
			Records: mail(port, "3 1 1 "+digest), Break: dnslab.Break{ExpiredSigs: true}},
		{Name: "forged.test.", Signer: dnslab.LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC,
			Records: mail(caPort, "3 1 1 "+digest), Rewrite: forgeMX("mx.attacker.test.")},
	}
	lab := dnslab.Start(t, zones, dnslab.Options{})

	// Each destination is reached on its receiver's port: the TLSA records above name
	// the port actually connected to (DANE-12).
	transports := "\n[delivery.transport]\n"
	for _, d := range ee {
		p := port
		if d == "stripped.test" {
			p = stripPort
		}
		transports += fmt.Sprintf("%q = \"%s:%d\"\n", d, d, p)
	}
	for _, d := range taDomains {
		transports += fmt.Sprintf("%q = \"%s:%d\"\n", d, d, caPort)
	}
	transports += fmt.Sprintf("\"nostarttls.test\" = \"nostarttls.test:%d\"\n", plainPort)
	transports += fmt.Sprintf("\"expiredcert.test\" = \"expiredcert.test:%d\"\n", oldPort)
	// The operator's per-destination choices (DANE-19): audit logs what DANE would do
	// and delivers; an explicit level opts a destination out of DANE altogether.
	transports += "\n[delivery.tls_policy]\n\"audit.test\" = \"dane audit\"\n\"optout.test\" = \"may\"\n"

	type want struct {
		result, policy, tls, auth string
		reply                     string // for deferrals: a substring of the reply
	}
	wants := map[string]want{
		"good.test":         {"delivered", "dane", "verified", "dane-ee", ""},
		"misnamed.test":     {"delivered", "dane", "verified", "dane-ee", ""},
		"full.test":         {"delivered", "dane", "verified", "dane-ee", ""},
		"cert.test":         {"delivered", "dane", "verified", "dane-ee", ""},
		"sha512.test":       {"delivered", "dane", "verified", "dane-ee", ""},
		"rollover.test":     {"delivered", "dane", "verified", "dane-ee", ""},
		"ta.test":           {"delivered", "dane", "verified", "dane-ta", ""},
		"cname.test":        {"delivered", "dane", "verified", "dane-ee", ""},
		"implicit.test":     {"delivered", "dane", "verified", "dane-ee", ""},
		"firstdown.test":    {"delivered", "dane", "verified", "dane-ee", ""},
		"expiredcert.test":  {"delivered", "dane", "verified", "dane-ee", ""},
		"audit.test":        {"delivered", "local", "untrusted", "none", ""},
		"optout.test":       {"delivered", "local", "untrusted", "none", ""},
		"pkix.test":         {"delivered", "dane", "untrusted", "none", ""},
		"insecuremx.test":   {"delivered", "dane", "trusted", "dane-ee", ""},
		"notlsa.test":       {"delivered", "opportunistic", "untrusted", "none", ""},
		"plain.test":        {"delivered", "opportunistic", "untrusted", "none", ""},
		"unsignedhost.test": {"delivered", "opportunistic", "untrusted", "none", ""},
		"wrong.test":        {"deferred", "", "", "", "4.7.5"},
		"tawrongname.test":  {"deferred", "", "", "", "4.7.5"},
		"bogustlsa.test":    {"deferred", "", "", "", "4.7.5"},
		"nostarttls.test":   {"deferred", "", "", "", "4.7."},
		"stripped.test":     {"deferred", "", "", "", "4.7."},
		"expired.test":      {"deferred", "", "", "", "4.7.5"},
		"forged.test":       {"deferred", "", "", "", "4.7.5"},
	}
	receiver := func(d string) *testpeer.Postfix {
		switch {
		case d == "nostarttls.test":
			return pfPlain
		case d == "expiredcert.test":
			return pfOld
		case slices.Contains(taDomains, d):
			return pfCA
		}
		return pf
	}

	for i, mode := range []string{"validate", "trust-ad"} {
		t.Run(mode, func(t *testing.T) {
			in := startInstanceDNS(t, fmt.Sprintf("mode = %q\nresolvers = [%q]\ntrust_anchor_file = %q", mode, lab.Resolver, lab.AnchorFile()),
				"retry_first = \"1h\"\nconnect_timeout = \"5s\"\n"+transports)
			user := fmt.Sprintf("u%d", i)
			for d := range wants {
				out, err := in.mxward("Subject: dane\n\nHello.\n", "sendmail", "-f", "alice@example.test", user+"@"+d)
				if err != nil {
					t.Fatalf("sendmail %s: %v %s", d, err, out)
				}
			}
			for d, w := range wants {
				rcpt := user + "@" + d
				rec := in.deliveryRecord(rcpt, w.result)
				t.Logf("%-18s %-9s policy=%v tls=%v auth=%v reason=%q reply=%q", d, w.result, rec["policy"], rec["tls"], rec["auth"], rec["reason"], rec["reply"])
				if w.result == "delivered" {
					if rec["policy"] != w.policy || rec["tls"] != w.tls || rec["auth"] != w.auth {
						t.Errorf("%s: policy %v tls %v auth %v (reason %q); want %s %s %s",
							d, rec["policy"], rec["tls"], rec["auth"], rec["reason"], w.policy, w.tls, w.auth)
					}
					receiver(d).WaitMaildir(t, rcpt, 1, 30*time.Second)
					continue
				}
				if !strings.Contains(fmt.Sprint(rec["reply"]), w.reply) {
					t.Errorf("%s: deferred with %q (reason %q), want %q", d, rec["reply"], rec["reason"], w.reply)
				}
			}
			// Nothing deferred ever reached a receiver, in TLS or in plaintext.
			for d, w := range wants {
				if w.result == "deferred" {
					if n := len(receiver(d).Maildir(t, user+"@"+d)); n != 0 {
						t.Errorf("%s: deferred, yet %d messages reached the receiver", d, n)
					}
				}
			}

			// `mxward check DOMAIN` with the same configuration, against the same NSD,
			// Unbound and Postfix receivers: its verdict agrees with what delivery did.
			for _, c := range []struct {
				domain  string
				port    int
				code    int
				verdict string
			}{
				{"good.test", port, 0, "protected"},
				{"ta.test", caPort, 0, "protected"},
				{"wrong.test", port, 2, "broken"},
				{"nostarttls.test", plainPort, 2, "broken"},
				{"expired.test", port, 2, "broken"},
				{"forged.test", caPort, 2, "broken"},
				{"plain.test", port, 1, "opportunistic"},
				{"insecuremx.test", port, 1, "opportunistic"},
			} {
				out, code := runMxward(t, "check", "--config", in.cfgPath, "--json", "--port", fmt.Sprint(c.port), c.domain)
				var rep struct {
					Verdict string `json:"verdict"`
				}
				if err := json.Unmarshal([]byte(out), &rep); err != nil || code != c.code || rep.Verdict != c.verdict {
					t.Errorf("check %s: exit %d, verdict %q (%v); want %d %s\n%s", c.domain, code, rep.Verdict, err, c.code, c.verdict, out)
				}
			}
		})
	}
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func mustSPKI(t *testing.T, c *testpeer.Cert) []byte {
	t.Helper()
	b, _ := pem.Decode(c.CertPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.RawSubjectPublicKeyInfo
}
