package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/dns/dnstest"
	"mxward/internal/testpeer"
)

// policyServer serves MTA-STS policies over HTTPS at addr (on loopback) for several
// domains, by the Host header, with one certificate for every mta-sts.<domain> from ca.
// It returns its port.
func policyServer(t *testing.T, addr string, ca *testpeer.CA, policies map[string]string) int {
	t.Helper()
	var names []string
	for d := range policies {
		names = append(names, "mta-sts."+d)
	}
	cert, err := ca.Issue(names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		if host == "" {
			host = r.Host
		}
		p, ok := policies[strings.TrimPrefix(host, "mta-sts.")]
		if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, p)
	}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// TestMTASTSWithPostfix: mxward delivers to real Postfix receivers under MTA-STS
// policies served over HTTPS on loopback, with a test CA trusted through SSL_CERT_FILE.
// enforce with a CA-valid MX delivers, authenticated by the Web PKI (STS-18); enforce
// with a self-signed MX defers (STS-20); enforce where the MX record was forged to point
// at an attacker's host with a valid certificate for its own name defers without
// connecting (STS-17, the forged-MX attack); wildcards cover one label only; testing
// mode delivers (STS-22); a policy host with a bad certificate gives no policy; with
// DANE and MTA-STS on one domain DANE decides (§14 decision 8).
func TestMTASTSWithPostfix(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	ca, err := testpeer.NewCA("mxward sts CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := ca.Issue([]string{"mx.sts.test", "mx.wild.test", "mx.attacker.test", "a.b.deep.test"},
		time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stsDomains := []string{"sts.test", "attacked.test", "wild.test", "deep.test", "testing.test", "badhost.test", "both.test", "listed.test"}
	pfCA := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.sts.test", Deliver: true,
		Domains: stsDomains, ServerTLS: true, Cert: good})
	pfSelf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.selfsigned.test", Deliver: true,
		Domains: []string{"selfsigned.test", "listedbad.test"}, ServerTLS: true})

	enforce := func(mx ...string) string {
		p := "version: STSv1\r\nmode: enforce\r\n"
		for _, m := range mx {
			p += "mx: " + m + "\r\n"
		}
		return p + "max_age: 86400\r\n"
	}
	policies := map[string]string{
		"sts.test":        enforce("mx.sts.test"),
		"selfsigned.test": enforce("mx.selfsigned.test"),
		"attacked.test":   enforce("mx.attacked.test"),
		"wild.test":       enforce("*.wild.test"),
		"deep.test":       enforce("*.deep.test"),
		"testing.test":    strings.Replace(enforce("mx.testing.test"), "enforce", "testing", 1),
		"both.test":       enforce("mx.both.test"),
	}
	httpsPort := policyServer(t, "127.0.0.1:0", ca, policies)
	// badhost.test's policy host, on another loopback address and the same port,
	// presents a certificate from a CA nobody trusts.
	other, err := testpeer.NewCA("untrusted CA")
	if err != nil {
		t.Fatal(err)
	}
	policyServer(t, fmt.Sprintf("127.0.0.9:%d", httpsPort), other, map[string]string{"badhost.test": enforce("mx.sts.test")})

	dns := dnstest.NewServer(t)
	for _, d := range append(stsDomains, "selfsigned.test") {
		dns.Add(d+". 3600 IN SOA ns."+d+". hostmaster."+d+". 1 7200 900 1209600 300",
			`_mta-sts.`+d+`. 300 IN TXT "v=STSv1; id=1;"`,
			"mta-sts."+d+". 300 IN A 127.0.0.1")
	}
	dns.Add(
		"sts.test. 300 IN MX 10 mx.sts.test.", "mx.sts.test. 300 IN A 127.0.0.1",
		"selfsigned.test. 300 IN MX 10 mx.selfsigned.test.", "mx.selfsigned.test. 300 IN A 127.0.0.1",
		// The attacker's forged MX: a host with a valid certificate for its own name.
		"attacked.test. 300 IN MX 10 mx.attacker.test.", "mx.attacker.test. 300 IN A 127.0.0.1",
		"wild.test. 300 IN MX 10 mx.wild.test.", "mx.wild.test. 300 IN A 127.0.0.1",
		"deep.test. 300 IN MX 10 a.b.deep.test.", "a.b.deep.test. 300 IN A 127.0.0.1",
		"testing.test. 300 IN MX 10 mx.sts.test.",
		"badhost.test. 300 IN MX 10 mx.sts.test.",
		"both.test. 300 IN MX 10 mx.both.test.", "mx.both.test. 300 IN A 127.0.0.1",
		// Domains without MTA-STS that the static list knows.
		"listed.test. 300 IN MX 10 mx.sts.test.",
		"listedbad.test. 300 IN MX 10 mx.selfsigned.test.",
	)
	for _, d := range []string{"listed.test", "listedbad.test"} {
		dns.Remove("_mta-sts." + d)
	}
	// both.test is DNSSEC-signed (the test server sets AD) with a TLSA record for the
	// receiver's key, while its MTA-STS policy names a host that is not its MX: DANE
	// decides, and delivers.
	dns.Add(fmt.Sprintf("_%d._tcp.mx.both.test. 300 IN TLSA 3 1 1 %s", pfCA.Port(), spkiSHA256(t, good)))
	dns.Secure("both.test")
	// badhost.test's policy host lives at another address with an untrusted certificate.
	dns.Remove("mta-sts.badhost.test")
	dns.Add("mta-sts.badhost.test. 300 IN A 127.0.0.9")

	transports := "\n[delivery.transport]\n"
	for _, d := range stsDomains {
		transports += fmt.Sprintf("%q = \"%s:%d\"\n", d, d, pfCA.Port())
	}
	transports += fmt.Sprintf("\"selfsigned.test\" = \"selfsigned.test:%d\"\n", pfSelf.Port())
	transports += fmt.Sprintf("\"listedbad.test\" = \"listedbad.test:%d\"\n", pfSelf.Port())
	// The static list, in the EFF STARTTLS Everywhere format (LIST-01, LIST-02).
	now := time.Now()
	listFile := filepath.Join(t.TempDir(), "policy.json")
	list := fmt.Sprintf(`{"timestamp": %q, "expires": %q, "version": "0.1", "author": "mxward test",
  "policy-aliases": {"sts-hosts": {"mode": "enforce", "mxs": [".sts.test"]}},
  "policies": {"listed.test": {"policy-alias": "sts-hosts"},
               "listedbad.test": {"mode": "enforce", "mxs": ["mx.selfsigned.test"]}}}`,
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(14*24*time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(listFile, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	in := startInstanceDNS(t, fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q]\n[mta_sts]\nhttps_port = %d\n[policy_list]\nfile = %q", dns.Addr, httpsPort, listFile),
		"retry_first = \"1h\"\n"+transports, "SSL_CERT_FILE="+caFile)

	wants := map[string]struct{ result, policy, tls, auth, reply string }{
		"sts.test":        {"delivered", "mta-sts", "verified", "webpki", ""},
		"wild.test":       {"delivered", "mta-sts", "verified", "webpki", ""},
		"both.test":       {"delivered", "dane", "verified", "dane-ee", ""},
		"testing.test":    {"delivered", "", "", "", ""},
		"badhost.test":    {"delivered", "opportunistic", "untrusted", "none", ""},
		"selfsigned.test": {"deferred", "", "", "", "4.7.5"},
		"attacked.test":   {"deferred", "", "", "", "4.7."},
		"deep.test":       {"deferred", "", "", "", "4.7."},
		"listed.test":     {"delivered", "list", "verified", "webpki", ""},
		"listedbad.test":  {"deferred", "", "", "", "4.7.5"},
	}
	for d := range wants {
		if out, err := in.mxward("Subject: sts\n\nHello.\n", "sendmail", "-f", "alice@example.test", "u@"+d); err != nil {
			t.Fatalf("sendmail %s: %v %s", d, err, out)
		}
	}
	receiver := func(d string) *testpeer.Postfix {
		if d == "selfsigned.test" || d == "listedbad.test" {
			return pfSelf
		}
		return pfCA
	}
	for d, w := range wants {
		rec := in.deliveryRecord("u@"+d, w.result)
		t.Logf("%-16s %-9s policy=%v tls=%v auth=%v reason=%q reply=%q", d, w.result, rec["policy"], rec["tls"], rec["auth"], rec["reason"], rec["reply"])
		if w.result == "delivered" {
			if (w.policy != "" && rec["policy"] != w.policy) || (w.tls != "" && rec["tls"] != w.tls) || (w.auth != "" && rec["auth"] != w.auth) {
				t.Errorf("%s: policy %v tls %v auth %v; want %s %s %s", d, rec["policy"], rec["tls"], rec["auth"], w.policy, w.tls, w.auth)
			}
			receiver(d).WaitMaildir(t, "u@"+d, 1, 30*time.Second)
			continue
		}
		if !strings.Contains(fmt.Sprint(rec["reply"]), w.reply) {
			t.Errorf("%s: deferred with %q, want %q", d, rec["reply"], w.reply)
		}
		if n := len(receiver(d).Maildir(t, "u@"+d)); n != 0 {
			t.Errorf("%s: deferred, yet %d messages arrived", d, n)
		}
	}
	if rec := in.deliveryRecord("u@testing.test", "delivered"); !strings.Contains(fmt.Sprint(rec["reason"]), "testing") {
		t.Errorf("testing mode: the failure enforce would have caused is not recorded: %v", rec)
	}
}
