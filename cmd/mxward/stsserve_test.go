package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/testpeer"
)

// stsPolicyConfig is the [mta_sts_policy] table of the end-to-end tests: the listener
// on a loopback port and one certificate.
func stsPolicyConfig(port int, mode string, cert string) string {
	return fmt.Sprintf("\n[mta_sts_policy]\nlisten = \"127.0.0.1:%d\"\nmode = %q\n[[mta_sts_policy.certificate]]\ncert_file = %q\nkey_file = %q\n",
		port, mode, cert+".pem", cert+".key")
}

// writePolicyCert issues a certificate for names from ca and writes it as path.pem and
// path.key, replacing any previous pair by rename as certbot does.
func writePolicyCert(t *testing.T, ca *testpeer.CA, path string, names ...string) *x509.Certificate {
	t.Helper()
	c, err := ca.Issue(names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for ext, data := range map[string][]byte{".pem": c.CertPEM, ".key": c.KeyPEM} {
		if err := os.WriteFile(path+ext+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+ext+".tmp", path+ext); err != nil {
			t.Fatal(err)
		}
	}
	return c.TLS.Leaf
}

// mxward serve publishes its own MTA-STS policy: a sender using mxward's MTA-STS client
// (Web PKI against the test CA, SNI mta-sts.example.test, STS-05 … STS-08) fetches a
// policy that parses, whose values give the id `mxward dns-records --json` prints, and
// which matches this host. A client naming another host gets no certificate. On SIGHUP a
// changed mode is served with a new id, and a renewed certificate is presented.
func TestServeOwnMTASTSPolicy(t *testing.T) {
	ca, err := testpeer.NewCA("mxward e2e policy CA")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	certPath := filepath.Join(t.TempDir(), "mta-sts")
	first := writePolicyCert(t, ca, certPath, "mta-sts.example.test")
	port := freePort(t)
	in := startInstance(t, stsPolicyConfig(port, "enforce", certPath))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var peer *x509.Certificate
	fetcher := &mtasts.HTTPFetcher{
		RootCAs: pool,
		Timeout: 10 * time.Second,
		// The sender asks for mta-sts.<domain>:443; the test sends it to the listener.
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			if hostport != "mta-sts.example.test:443" {
				return nil, fmt.Errorf("unexpected policy host %s", hostport)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	fetch := func() *mtasts.Policy {
		t.Helper()
		body, err := fetcher.Fetch(t.Context(), "example.test")
		if err != nil {
			t.Fatalf("fetch the policy: %v\nlog:\n%s", err, in.log.String())
		}
		p, err := mtasts.ParsePolicy(body)
		if err != nil {
			t.Fatalf("served policy %q: %v", body, err)
		}
		// The certificate presented, read with a second handshake as the fetcher
		// does not expose it.
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "mta-sts.example.test"})
		if err != nil {
			t.Fatal(err)
		}
		peer = conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		return p
	}
	records := func() recordsJSON {
		t.Helper()
		out, err := in.mxward("", "dns-records", "--json")
		var j recordsJSON
		if err != nil || json.Unmarshal([]byte(out), &j) != nil {
			t.Fatalf("dns-records: %v\n%s", err, out)
		}
		return j
	}
	// checkID: the id in the TXT record dns-records prints is the id of the policy
	// served (RFC 8461 §3.1), and the text is the same.
	checkID := func(p *mtasts.Policy) string {
		t.Helper()
		j := records()
		var txt []string
		for _, r := range j.Records {
			if r.Name == "_mta-sts.example.test." && r.Type == "TXT" {
				v, err := strconv.Unquote(r.Value)
				if err != nil {
					t.Fatalf("TXT value %s: %v", r.Value, err)
				}
				txt = append(txt, v)
			}
		}
		rec, err := mtasts.ParseRecord(txt)
		if err != nil {
			t.Fatalf("_mta-sts TXT %q: %v", txt, err)
		}
		served, err := mtasts.Publish(*p)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != served.ID || j.PolicyID != rec.ID || j.Policies["example.test"] != p.Raw {
			t.Errorf("TXT id %s, dns-records id %s, id of the policy served %s; text printed %q, served %q",
				rec.ID, j.PolicyID, served.ID, j.Policies["example.test"], p.Raw)
		}
		if h := j.PolicyHosts["example.test"]; h.ServedBy != "mxward" || h.Listen != addr || h.CertFile != certPath+".pem" {
			t.Errorf("policy host: %+v", h)
		}
		return rec.ID
	}

	p := fetch()
	if p.Mode != mtasts.ModeEnforce || !p.Matches("mx.example.test") || p.MaxAge != 7*24*time.Hour {
		t.Errorf("served policy %+v", p)
	}
	if peer.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("presented certificate %v, want the configured one", peer.SerialNumber)
	}
	enforceID := checkID(p)

	// STS-06: a client asking for any other name gets no certificate, and the sender's
	// fetcher fails for a domain mxward does not serve.
	for _, sni := range []string{"mx.example.test", "mta-sts.other.test", ""} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Errorf("handshake with SNI %q succeeded", sni)
		}
	}
	other := *fetcher
	other.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	if _, err := other.Fetch(t.Context(), "other.test"); err == nil {
		t.Error("the policy of a domain that is not local was fetched")
	}

	if recs := in.logRecords("listening"); !stsHasRecord(recs, "listener", "mta-sts") {
		t.Errorf("no listening record for the policy listener: %v", recs)
	}
	if recs := in.logRecords("mta-sts policy served"); len(recs) == 0 || recs[0]["component"] != "mta-sts-server" ||
		recs[0]["domain"] != "example.test" || recs[0]["policy_id"] != enforceID {
		t.Errorf("served records: %v", recs)
	}

	// SIGHUP: back to testing, and a renewed certificate.
	renewed := writePolicyCert(t, ca, certPath, "mta-sts.example.test")
	if err := os.WriteFile(in.cfgPath, []byte(baseConfig(t, in.dir, in.ports, stsPolicyConfig(port, "testing", certPath))), 0o644); err != nil {
		t.Fatal(err)
	}
	in.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); len(in.logRecords("configuration reloaded")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", in.log.String())
		}
	}
	p = fetch()
	if p.Mode != mtasts.ModeTesting {
		t.Errorf("after reload the policy is %+v", p)
	}
	if peer.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Error("after reload the old certificate is still presented")
	}
	if testingID := checkID(p); testingID == enforceID {
		t.Errorf("the id %s did not change with the mode", testingID)
	} else if recs := in.logRecords("mta-sts policy changed: publish the new id in the _mta-sts TXT records (mxward dns-records)"); len(recs) != 1 || recs[0]["policy_id"] != testingID {
		t.Errorf("policy change records: %v", recs)
	}
}

// A policy listener that cannot be bound fails the start, before anything is served.
func TestServeMTASTSPolicyPortInUse(t *testing.T) {
	ca, err := testpeer.NewCA("mxward e2e policy CA")
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(t.TempDir(), "mta-sts")
	writePolicyCert(t, ca, certPath, "mta-sts.example.test")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	ports := map[string]int{"inbound": freePort(t), "submission": freePort(t), "submissions": freePort(t)}
	cfg := filepath.Join(dir, "mxward.toml")
	os.WriteFile(cfg, []byte(baseConfig(t, dir, ports, stsPolicyConfig(busy.Addr().(*net.TCPAddr).Port, "testing", certPath))), 0o644)
	out, code := runMxward(t, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(out, "mta_sts_policy.listen") || strings.Contains(out, `"msg":"ready"`) {
		t.Errorf("serve with the policy port in use: exit %d\n%s", code, out)
	}
}

func stsHasRecord(recs []map[string]any, key, value string) bool {
	for _, r := range recs {
		if r[key] == value {
			return true
		}
	}
	return false
}
