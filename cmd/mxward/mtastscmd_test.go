package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/dns/dnstest"
	"mxward/internal/testpeer"
)

// policyHost serves an MTA-STS policy over HTTPS on loopback with a certificate for
// mta-sts.<domain> from a test CA, and returns its port and a file holding the CA, for
// SSL_CERT_FILE.
func policyHost(t *testing.T, domain, policy string) (int, string) {
	t.Helper()
	ca, err := testpeer.NewCA("mxward test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mta-sts." + domain}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, policy)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().(*net.TCPAddr).Port, caFile
}

// mxward mta-sts refresh, show and forget against a policy host on loopback: the TXT
// record from a test DNS server, the policy over HTTPS with a certificate from a CA
// trusted through SSL_CERT_FILE, the cache on disk (STS-01, STS-06, STS-13).
func TestMTASTSCommand(t *testing.T) {
	port, caFile := policyHost(t, "example.net", "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\nmx: *.mail.example.net\r\nmax_age: 86400\r\n")
	srv := dnstest.NewServer(t)
	srv.Add(
		"example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		`_mta-sts.example.net. 300 IN TXT "v=STSv1; id=20261128T1;"`,
		"mta-sts.example.net. 300 IN A 127.0.0.1",
	)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n[dns]\nmode = \"trust-ad\"\nresolvers = [%q]\n[mta_sts]\nhttps_port = %d\n",
		filepath.Join(dir, "data"), srv.Addr, port)), 0o644)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(mxwardBin, append([]string{"mta-sts"}, append(args, "--config", cfg)...)...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(t, err)
	}
	out, code := run("refresh", "--json", "example.net")
	var j mtastsJSON
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
		t.Fatalf("refresh: exit %d\n%s", code, out)
	}
	if j.ID != "20261128T1" || j.Mode != "enforce" || len(j.MX) != 2 || j.MX[1] != "*.mail.example.net" || j.MaxAge != 86400 || !j.Fresh {
		t.Errorf("refresh: %+v", j)
	}
	if out, code = run("show", "example.net"); code != 0 || !strings.Contains(out, "mode:     enforce") || !strings.Contains(out, "mx:       mx1.example.net") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	// Without the test CA the policy host's certificate is not trusted: no policy.
	cmd := exec.Command(mxwardBin, "mta-sts", "refresh", "example.net", "--config", cfg)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+filepath.Join(dir, "none.pem"))
	if o, err := cmd.CombinedOutput(); exitCode(t, err) != 75 {
		t.Errorf("refresh with an untrusted certificate: %s", o)
	}
	if out, code = run("forget", "example.net"); code != 0 {
		t.Errorf("forget: exit %d %s", code, out)
	}
	if out, code = run("show", "example.net"); code != 1 {
		t.Errorf("show after forget: exit %d %s", code, out)
	}
	if _, code = run("show"); code != 64 {
		t.Errorf("show without a domain: exit %d", code)
	}
}

// exitCode returns the exit status of a finished command.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}
