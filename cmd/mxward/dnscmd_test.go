package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mxward/internal/dns/dnstest"
	"mxward/internal/dnslab"
)

// mxward dns lookup against a test DNS server on loopback: records, rcode, status and the
// CNAME chain, in text and JSON.
func TestDNSLookupCommand(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.Add(
		"example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"example.net. 300 IN MX 10 mx1.example.net.",
		"mail.example.net. 300 IN CNAME mx1.example.net.",
		"mx1.example.net. 300 IN A 127.0.0.1",
	)
	srv.Secure("example.net")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n[dns]\nmode = \"trust-ad\"\nresolvers = [%q]\n", filepath.Join(dir, "data"), srv.Addr)), 0o644)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(mxwardBin, append([]string{"dns", "lookup", "--config", cfg}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	out, code := run("example.net", "MX")
	if code != 0 || !strings.Contains(out, "record:  10 mx1.example.net") || !strings.Contains(out, "status:  secure") {
		t.Errorf("MX lookup (exit %d):\n%s", code, out)
	}
	out, code = run("--json", "mail.example.net", "A")
	var j lookupJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 {
		t.Fatalf("json (exit %d): %v\n%s", code, err, out)
	}
	if j.Name != "mail.example.net" || j.Type != "A" || j.Rcode != "NOERROR" || len(j.Records) != 1 || j.Records[0] != "127.0.0.1" ||
		len(j.Chain) != 1 || j.Chain[0].Target != "mx1.example.net" {
		t.Errorf("json %+v", j)
	}
	out, code = run("--json", "nope.example.net", "MX")
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 || j.Rcode != "NXDOMAIN" {
		t.Errorf("NXDOMAIN (exit %d): %v %s", code, err, out)
	}
	if out, code = run("example.net", "SRV"); code != 64 {
		t.Errorf("unsupported type: exit %d %s", code, out)
	}
}

// runMxward runs the built binary and returns its combined output and exit status.
func runMxward(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(mxwardBin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// writeDNSConfig writes a configuration with the given [dns] table body.
func writeDNSConfig(t *testing.T, dnsTable string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	body := fmt.Sprintf("data_dir = %q\n[dns]\n%s\n", filepath.Join(dir, "data"), dnsTable)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mxward dns lookup in mode "validate" over the DNSSEC lab (zones signed by the real
// signers, served by NSD, Unbound as the upstream resolver asked with CD): secure,
// insecure through a CNAME, and bogus with its Extended DNS Error (DANE-02, DANE-05).
func TestDNSLookupValidate(t *testing.T) {
	zones, _ := dnslab.DefaultTree()
	lab := dnslab.Start(t, zones, dnslab.Options{})
	cfg := writeDNSConfig(t, fmt.Sprintf("mode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q", lab.Resolver, lab.AnchorFile()))
	lookup := func(name, typ string) (lookupJSON, int) {
		out, code := runMxward(t, "dns", "lookup", "--config", cfg, "--json", name, typ)
		var j lookupJSON
		if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:strings.LastIndex(out, "}")+1]), &j) != nil {
			t.Fatalf("%s %s: exit %d, output:\n%s", name, typ, code, out)
		}
		return j, code
	}
	if j, code := lookup("secure.test", "MX"); code != 0 || j.Status != "secure" || len(j.Records) != 1 {
		t.Errorf("secure MX: exit %d %+v", code, j)
	}
	if j, code := lookup("_25._tcp.mx.ed.test", "TLSA"); code != 0 || j.Status != "secure" || len(j.Records) != 1 {
		t.Errorf("secure TLSA: exit %d %+v", code, j)
	}
	if j, code := lookup("nx.nsec3.example", "MX"); code != 0 || j.Status != "secure" || j.Rcode != "NXDOMAIN" {
		t.Errorf("secure NXDOMAIN: exit %d %+v", code, j)
	}
	j, code := lookup("out.secure.test", "A")
	if code != 0 || j.Status != "insecure" || len(j.Chain) != 1 || j.Chain[0].Status != "secure" {
		t.Errorf("secure CNAME into an unsigned zone: exit %d %+v", code, j)
	}
	j, code = lookup("www.expired.test", "A")
	if code != 75 || j.Status != "bogus" || len(j.Records) != 0 || !hasEDE(j, 7) {
		t.Errorf("expired signatures: exit %d %+v", code, j)
	}
	// The text form names the EDE too.
	out, _ := runMxward(t, "dns", "lookup", "--config", cfg, "www.nokey.test", "A")
	if !strings.Contains(out, "status:  bogus") || !strings.Contains(out, "ede:     9 (DNSKEY Missing") {
		t.Errorf("text output:\n%s", out)
	}
}

func hasEDE(j lookupJSON, code uint16) bool {
	for _, e := range j.EDE {
		if e.Code == code {
			return true
		}
	}
	return false
}

// mxward check tells a resolver fit for the DNS mode from one that is not: the lab's
// Unbound validates (trust-ad) and passes signatures through (validate); a plain test
// server does neither (DANE-01).
func TestCheckResolvers(t *testing.T) {
	zones, _ := dnslab.DefaultTree()
	lab := dnslab.Start(t, zones, dnslab.Options{})
	plain := dnstest.NewServer(t)
	plain.Add(". 86400 IN SOA a.root.test. hostmaster.test. 1 1800 900 604800 86400")

	for _, tt := range []struct {
		name, table string
		code        int
		verdict     string
		problem     string
	}{
		{"validate over unbound", fmt.Sprintf("mode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q", lab.Resolver, lab.AnchorFile()), 0, "ok", ""},
		{"trust-ad over unbound", fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q]\ntrust_anchor_file = %q", lab.Resolver, lab.AnchorFile()), 0, "ok", ""},
		{"trust-ad over a non-validating server", fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q]", plain.Addr), 2, "broken", "does not validate"},
		{"validate over a server without signatures", fmt.Sprintf("mode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q", plain.Addr, lab.AnchorFile()), 2, "broken", "strips DNSSEC signatures"},
		{"one of two", fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q, %q]", lab.Resolver, plain.Addr), 1, "degraded", "does not validate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeDNSConfig(t, tt.table)
			out, code := runMxward(t, "check", "--config", cfg, "--json")
			var j hostCheckJSON
			if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:strings.LastIndex(out, "}")+1]), &j) != nil {
				t.Fatalf("exit %d, output:\n%s", code, out)
			}
			if code != tt.code || j.Verdict != tt.verdict || (tt.problem != "" && !strings.Contains(out, tt.problem)) {
				t.Errorf("exit %d, verdict %q; want %d %q with %q:\n%s", code, j.Verdict, tt.code, tt.verdict, tt.problem, out)
			}
		})
	}
}
