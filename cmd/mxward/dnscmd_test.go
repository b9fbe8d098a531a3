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
