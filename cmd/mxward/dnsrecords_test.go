package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/dns/dnstest"
	"mxward/internal/mtasts"
	"mxward/internal/testpeer"
)

// mxward dns-records: TLSA 3 1 1 for the key in service and for the next key (stable
// across runs, so an operator can publish it ahead of a rollover), the MX, the MTA-STS
// TXT record with a policy that parses, and the TLS-RPT record.
func TestDNSRecordsCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[local]\ndomains = [\"example.test\", \"example.org\"]\n",
		filepath.Join(dir, "data"))), 0o644)
	run := func() recordsJSON {
		out, code := runMxward(t, "dns-records", "--config", cfg, "--json")
		var j recordsJSON
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		return j
	}
	j := run()
	var tlsa []string
	byName := map[string][]string{}
	for _, r := range j.Records {
		byName[r.Name+" "+r.Type] = append(byName[r.Name+" "+r.Type], r.Value)
		if r.Type == "TLSA" {
			tlsa = append(tlsa, r.Value)
		}
	}
	if len(tlsa) != 2 || tlsa[0] == tlsa[1] || !strings.HasPrefix(tlsa[0], "3 1 1 ") || len(tlsa[1]) != len("3 1 1 ")+64 ||
		len(byName["_25._tcp.mx.example.test. TLSA"]) != 2 {
		t.Errorf("TLSA records: %v", tlsa)
	}
	if v := byName["example.org. MX"]; len(v) != 1 || v[0] != "10 mx.example.test." {
		t.Errorf("MX: %v", v)
	}
	if v := byName["_mta-sts.example.test. TXT"]; len(v) != 1 || !strings.HasPrefix(v[0], `"v=STSv1; id=`) {
		t.Errorf("MTA-STS TXT: %v", v)
	}
	if v := byName["_smtp._tls.example.test. TXT"]; len(v) != 1 || v[0] != `"v=TLSRPTv1; rua=mailto:tlsrpt@example.test"` {
		t.Errorf("TLS-RPT TXT: %v", v)
	}
	p, err := mtasts.ParsePolicy([]byte(j.Policies["example.test"]))
	if err != nil || !p.Matches("mx.example.test") {
		t.Errorf("MTA-STS policy %q: %v", j.Policies["example.test"], err)
	}
	// The next key stays the same until a rollover, so what was published stays right.
	if again := run(); fmt.Sprint(again.Records) != fmt.Sprint(j.Records) {
		t.Errorf("records changed between runs:\n%v\n%v", j.Records, again.Records)
	}
	// The key in service is the one serve presents: its TLSA is the one serve logs.
	out, _ := runMxward(t, "dns-records", "--config", cfg)
	if !strings.Contains(out, "_25._tcp.mx.example.test. IN TLSA "+tlsa[0]) || !strings.Contains(out, "mode: testing") {
		t.Errorf("text output:\n%s", out)
	}
}

// mxward tls rollover switches to the next key only once its TLSA record is visible in
// DNS; dns-records then shows the new key in service, a new next key, and the old key
// as the record to remove later.
func TestTLSRolloverCommand(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.Add("example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 300")
	srv.Secure("example.test")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[dns]\nmode = \"trust-ad\"\nresolvers = [%q]\n[local]\ndomains = [\"example.test\"]\n",
		filepath.Join(dir, "data"), srv.Addr)), 0o644)
	tlsa := func() []string {
		out, code := runMxward(t, "dns-records", "--config", cfg, "--json")
		var j recordsJSON
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
			t.Fatalf("dns-records: exit %d\n%s", code, out)
		}
		var v []string
		for _, r := range j.Records {
			if r.Type == "TLSA" {
				v = append(v, strings.TrimPrefix(r.Value, "3 1 1 "))
			}
		}
		return v
	}
	before := tlsa()
	cur, next := before[0], before[1]
	srv.Add("_25._tcp.mx.example.test. 300 IN TLSA 3 1 1 " + cur)
	out, code := runMxward(t, "tls", "rollover", "--config", cfg)
	if code != 1 || !strings.Contains(out, "_25._tcp.mx.example.test. IN TLSA 3 1 1 "+next) {
		t.Fatalf("rollover before the next key is published: exit %d\n%s", code, out)
	}
	if after := tlsa(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused rollover changed the keys: %v → %v", before, after)
	}
	srv.Add("_25._tcp.mx.example.test. 300 IN TLSA 3 1 1 " + next)
	if out, code = runMxward(t, "tls", "rollover", "--config", cfg); code != 0 || !strings.Contains(out, "switched to the next key") {
		t.Fatalf("rollover: exit %d\n%s", code, out)
	}
	after := tlsa()
	if len(after) != 3 || after[0] != next || after[1] == cur || after[1] == next || after[2] != cur {
		t.Errorf("after the rollover: %v (was current %s, next %s)", after, cur, next)
	}
}

// dns-records says who serves each domain's MTA-STS policy: the operator when
// mta_sts_policy.listen is empty; mxward, with the CNAME of the policy host, for a
// domain whose mta-sts name a configured certificate covers; and for a domain no
// certificate covers, that mxward does not serve it. The policy and its id come from
// [mta_sts_policy] (RFC 8461 §3.1: the id changes with the policy).
func TestDNSRecordsPolicyHosts(t *testing.T) {
	ca, err := testpeer.NewCA("dns-records test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath := filepath.Join(dir, "mta-sts")
	writePolicyCert(t, ca, certPath, "mta-sts.example.test")
	write := func(table string) string {
		cfg := filepath.Join(dir, "mxward.toml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[local]\ndomains = [\"example.test\", \"example.org\"]\n%s",
			filepath.Join(dir, "data"), table)), 0o644)
		return cfg
	}
	run := func(cfg string) (recordsJSON, string) {
		t.Helper()
		out, code := runMxward(t, "dns-records", "--config", cfg, "--json")
		var j recordsJSON
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		text, _ := runMxward(t, "dns-records", "--config", cfg)
		return j, text
	}
	cnames := func(j recordsJSON) map[string]string {
		m := map[string]string{}
		for _, r := range j.Records {
			if r.Type == "CNAME" {
				m[r.Name] = r.Value
			}
		}
		return m
	}

	j, text := run(write(""))
	for _, d := range []string{"example.test", "example.org"} {
		if h := j.PolicyHosts[d]; h.ServedBy != "operator" || h.URL != "https://mta-sts."+d+"/.well-known/mta-sts.txt" || h.Problem != "" {
			t.Errorf("without a listener, %s: %+v", d, h)
		}
	}
	if len(cnames(j)) != 0 || !strings.Contains(text, "to serve as text/plain at https://mta-sts.example.test/.well-known/mta-sts.txt") {
		t.Errorf("without a listener: CNAMEs %v, text:\n%s", cnames(j), text)
	}
	testingID := j.PolicyID

	j, text = run(write(fmt.Sprintf("[mta_sts_policy]\nlisten = \"127.0.0.1:8443\"\nmode = \"enforce\"\nmx = [\"mx.example.test\", \"*.backup.example.test\"]\nmax_age = \"14d\"\n"+
		"[[mta_sts_policy.certificate]]\ncert_file = %q\nkey_file = %q\n", certPath+".pem", certPath+".key")))
	if h := j.PolicyHosts["example.test"]; h.ServedBy != "mxward" || h.Listen != "127.0.0.1:8443" || h.CertFile != certPath+".pem" {
		t.Errorf("covered domain: %+v", h)
	}
	if h := j.PolicyHosts["example.org"]; h.ServedBy != "operator" || !strings.Contains(h.Problem, "mta-sts.example.org") {
		t.Errorf("uncovered domain: %+v", h)
	}
	if c := cnames(j); len(c) != 1 || c["mta-sts.example.test."] != "mx.example.test." {
		t.Errorf("CNAME records: %v", c)
	}
	p, err := mtasts.ParsePolicy([]byte(j.Policies["example.test"]))
	if err != nil || p.Mode != mtasts.ModeEnforce || p.MaxAge != 14*24*time.Hour || !p.Matches("a.backup.example.test") {
		t.Errorf("policy %q: %+v %v", j.Policies["example.test"], p, err)
	}
	if pub, err := mtasts.Publish(*p); err != nil || pub.ID != j.PolicyID || j.PolicyID == testingID {
		t.Errorf("id %s (was %s), want the id of the policy printed: %+v %v", j.PolicyID, testingID, pub, err)
	}
	for _, want := range []string{
		"served by mxward at https://mta-sts.example.test/.well-known/mta-sts.txt (listener 127.0.0.1:8443",
		"MTA-STS policy for example.org: mxward does NOT serve it",
		`_mta-sts.example.org. IN TXT "v=STSv1; id=` + j.PolicyID + `"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "mode testing first") {
		t.Errorf("advice for mode testing printed for an enforce policy:\n%s", text)
	}
}
