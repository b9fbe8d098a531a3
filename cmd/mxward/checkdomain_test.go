package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mxward/internal/lab"
	"mxward/internal/testpeer"
)

// shortHex matches an abbreviated digest as messages print it.
var shortHex = regexp.MustCompile(`[0-9a-f]{8,}…`)

var updateGolden = flag.Bool("update-check-golden", false, "rewrite testdata/check/*.json")

// starttlsResponder is a minimal receiver on loopback: it greets, offers STARTTLS,
// completes the handshake with cert and then answers QUIT. It is enough for the probe
// of `mxward check DOMAIN`, which sends no mail.
func starttlsResponder(t *testing.T, cert tls.Certificate) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveSTARTTLS(c, cert)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func serveSTARTTLS(c net.Conn, cert tls.Certificate) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "220 mx.test ESMTP\r\n")
	r := bufio.NewReader(c)
	tlsUp := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); {
		case (verb == "EHLO" || verb == "HELO") && !tlsUp:
			fmt.Fprint(c, "250-mx.test\r\n250 STARTTLS\r\n")
		case verb == "EHLO" || verb == "HELO":
			fmt.Fprint(c, "250 mx.test\r\n")
		case verb == "STARTTLS" && !tlsUp:
			fmt.Fprint(c, "220 go ahead\r\n")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			if tc.Handshake() != nil {
				return
			}
			c, r, tlsUp = tc, bufio.NewReader(tc), true
		case verb == "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "502 not here\r\n")
		}
	}
}

// `mxward check DOMAIN` against the lab internet (signed DNS tree on loopback, validated
// in-process) and a STARTTLS receiver with a known certificate: a DANE domain whose TLSA
// record matches (exit 0), one whose record matches nothing (exit 2, the self-inflicted
// outage), and an unsigned domain with opportunistic TLS only (exit 1). The JSON output,
// with volatile fields replaced, is compared with testdata/check/*.json.
func TestCheckDomain(t *testing.T) {
	cert, err := testpeer.NewCert("mx.test")
	if err != nil {
		t.Fatal(err)
	}
	port := starttlsResponder(t, cert.TLS)
	digest := spkiSHA256(t, cert)
	wrong := strings.Repeat("ab", 32)
	mail := func(tlsa string) []string {
		rs := []string{"@ MX 10 mx", "mx A 127.0.0.1", "_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.test\""}
		if tlsa != "" {
			rs = append(rs, fmt.Sprintf("_%d._tcp.mx TLSA 3 1 1 %s", port, tlsa))
		}
		return rs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{
		{Name: "dane.lab", Signed: true, Records: mail(digest)},
		{Name: "wrong.lab", Signed: true, Records: mail(wrong)},
		{Name: "plain.lab", Signed: false, Records: mail("")},
		{Name: "forged.lab", Signed: true, Records: mail(digest)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	in.SetAttack("forged.lab", lab.ForgeMX)

	dir := t.TempDir()
	anchorFile := filepath.Join(dir, "anchors")
	if err := in.WriteAnchors(anchorFile); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mxward.toml")
	body := fmt.Sprintf("hostname = \"sender.test\"\ndata_dir = %q\n[dns]\nmode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q\n",
		filepath.Join(dir, "data"), in.DNSAddr(), anchorFile)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}

	norm := strings.NewReplacer(strconv.Itoa(port), "PORT", digest, "DIGEST", wrong, "WRONG")
	for _, tc := range []struct {
		domain string
		code   int
		text   []string // in the human output
	}{
		{"dane.lab", 0, []string{"TLSA:      authenticate", "DANE:    match: ", "verdict: protected"}},
		{"wrong.lab", 2, []string{"DANE:    no match", "BROKEN: no MX host's certificate matches", "verdict: broken"}},
		// An unsigned MX answer forged into a signed zone is bogus: no route at all.
		{"forged.lab", 2, []string{"route:    FAILED", "BROKEN: no route", "verdict: broken"}},
		{"plain.lab", 1, []string{"MX:       DNSSEC insecure", "TLS:     TLSv1.3", "starttls_stripping:    NOT protected", "verdict: opportunistic"}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(ctx, []string{"check", "--config", cfg, "--port", strconv.Itoa(port), tc.domain}, nil, &out, &errs)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s\n%s", code, tc.code, errs.String(), out.String())
			}
			for _, s := range tc.text {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			t.Log("\n" + out.String())
			if !strings.Contains(out.String(), `"v=TLSRPTv1; rua=mailto:tlsrpt@example.test"`) || !strings.Contains(out.String(), "pinning:  disabled here (pinning.enabled = false)") {
				t.Errorf("output lacks the TLS-RPT record or the pinning line:\n%s", out.String())
			}

			out.Reset()
			code = run(ctx, []string{"check", "--json", "--config", cfg, "--port", strconv.Itoa(port), tc.domain}, nil, &out, &errs)
			if code != tc.code {
				t.Errorf("--json: exit %d, want %d", code, tc.code)
			}
			var m map[string]any
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatalf("--json output: %v\n%s", err, out.String())
			}
			m["time"] = "TIME"
			b, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			// Digests abbreviated in messages change with every certificate.
			compareGolden(t, filepath.Join("testdata", "check", tc.domain+".json"), shortHex.ReplaceAllString(norm.Replace(string(b)), "HEX…")+"\n")
		})
	}
}

// --resolver replaces dns.resolvers, for both forms of check: the lab's configuration
// with a closed resolver instead gives no verdict.
func TestCheckResolverOption(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{{Name: "dane.lab", Signed: true,
		MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned, TLSA: lab.TLSAMatch}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	dir := t.TempDir()
	anchorFile, cfg := filepath.Join(dir, "anchors"), filepath.Join(dir, "mxward.toml")
	if err := in.WriteAnchors(anchorFile); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("data_dir = %q\n[dns]\nresolvers = [\"127.0.0.1:9\"]\ntrust_anchor_file = %q\n", filepath.Join(dir, "data"), anchorFile)
	for f, b := range map[string]string{cfg: body} {
		if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := strconv.Itoa(in.SMTPPort)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"check", "--config", cfg, "--port", port, "dane.lab"}, 75},
		{[]string{"check", "--config", cfg, "--port", port, "--resolver", in.DNSAddr(), "dane.lab"}, 0},
		{[]string{"check", "--config", cfg}, 2},
		{[]string{"check", "--config", cfg, "--resolver", in.DNSAddr()}, 0},
		{[]string{"check", "--config", cfg, "--resolver", "not-an-address", "dane.lab"}, 64},
	} {
		var out, errs bytes.Buffer
		if code := run(ctx, tc.args, nil, &out, &errs); code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tc.args, code, tc.code, out.String(), errs.String())
		}
	}
}

// compareGolden compares got with the golden file, rewriting it first with
// -update-check-golden.
func compareGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("--json differs from %s:\n%s", golden, got)
	}
}

// Bad usage of `mxward check` fails with exit status 64 before any lookup.
func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check", "a.test", "b.test"},
		{"check", "--port", "0", "a.test"},
		{"check", "--port", "65536", "a.test"},
		{"check", "--no-such-flag", "a.test"},
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errs); code != 64 {
			t.Errorf("%q: exit %d, want 64; stderr %s", args, code, errs.String())
		}
	}
}

// `mxward check DOMAIN` against the lab's own receivers, one domain of every kind the
// lab can build: MTA-STS enforce with a CA-valid MX, enforce with a self-signed MX (a
// broken policy), testing mode, DANE and MTA-STS together, DANE on a host without
// STARTTLS, a TLSA record matching nothing, no STARTTLS at all, and a forged address in
// a signed zone. The binary runs as an operator would run it, with the lab CA as its Web
// PKI (SSL_CERT_FILE); the JSON output is compared with testdata/check/lab-*.json.
func TestCheckLabKinds(t *testing.T) {
	policy := func(mode, domain string) string {
		return "version: STSv1\r\nmode: " + mode + "\r\nmx: mx." + domain + "\r\nmax_age: 86400\r\n"
	}
	rpt := func(d string) []string { return []string{"_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@" + d + "\""} }
	zones := []lab.Zone{
		{Name: "sts.lab", MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertCA}}, Records: rpt("sts.lab")},
		{Name: "sts-selfsigned.lab", MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned}}},
		{Name: "sts-testing.lab", MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertCA}}},
		{Name: "all.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertCA, TLSA: lab.TLSAMatch}}, Records: rpt("all.lab")},
		{Name: "dane-nostarttls.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertNone, TLSA: lab.TLSAMatch}}},
		{Name: "tlsa-wrong.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned, TLSA: lab.TLSAWrong}}},
		{Name: "nostarttls.lab", MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertNone}}},
		{Name: "forged-signed.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertCA, TLSA: lab.TLSAMatch}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: zones, Policies: map[string]string{
		"sts.lab":            policy("enforce", "sts.lab"),
		"sts-selfsigned.lab": policy("enforce", "sts-selfsigned.lab"),
		"sts-testing.lab":    policy("testing", "sts-testing.lab"),
		"all.lab":            policy("enforce", "all.lab"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	in.SetAttack("forged-signed.lab", lab.ForgeSigned)

	dir := t.TempDir()
	anchorFile, caFile, cfg := filepath.Join(dir, "anchors"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "mxward.toml")
	if err := in.WriteAnchors(anchorFile); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("hostname = \"sender.test\"\ndata_dir = %q\n[dns]\nmode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q\n[mta_sts]\nhttps_port = %d\n",
		filepath.Join(dir, "data"), in.DNSAddr(), anchorFile, in.HTTPSPort)
	for f, b := range map[string]string{caFile: string(in.CAPEM()), cfg: body} {
		if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := strconv.Itoa(in.SMTPPort)
	// Keys, policy ids and fetch times are made afresh on every run.
	policyID := regexp.MustCompile(`\b1[0-9]{9}\b`)
	digest64 := regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	stamp := regexp.MustCompile(`"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"`)
	for _, tc := range []struct {
		domain string
		code   int
		text   []string
	}{
		{"sts.lab", 0, []string{"verdict: protected"}},
		{"sts-selfsigned.lab", 2, []string{"verdict: broken"}},
		{"sts-testing.lab", 1, []string{"verdict: opportunistic"}},
		{"all.lab", 0, []string{"DANE:    match: ", "verdict: protected"}},
		{"dane-nostarttls.lab", 2, []string{"verdict: broken"}},
		{"tlsa-wrong.lab", 2, []string{"DANE:    no match", "verdict: broken"}},
		{"nostarttls.lab", 1, []string{"verdict: opportunistic"}},
		{"forged-signed.lab", 2, []string{"verdict: broken"}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			check := func(args ...string) (string, int) {
				cmd := exec.Command(mxwardBin, append([]string{"check", "--config", cfg, "--port", port, tc.domain}, args...)...)
				cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
				var out bytes.Buffer
				cmd.Stdout = &out
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return out.String(), code
			}
			out, code := check()
			t.Log("\n" + out)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			out, code = check("--json")
			if code != tc.code {
				t.Errorf("--json: exit %d, want %d", code, tc.code)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("--json output: %v\n%s", err, out)
			}
			m["time"] = "TIME"
			b, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(b), port, "PORT")
			got = policyID.ReplaceAllString(got, "POLICY-ID")
			got = digest64.ReplaceAllString(got, "DIGEST")
			got = stamp.ReplaceAllString(got, `"TIMESTAMP"`)
			compareGolden(t, filepath.Join("testdata", "check", "lab-"+tc.domain+".json"), shortHex.ReplaceAllString(got, "HEX…")+"\n")
		})
	}
}

// A domain that is not a host name is refused before any lookup (exit 64); the
// configuration's resolver is a closed loopback port all the same.
func TestCheckDomainName(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	body := fmt.Sprintf("data_dir = %q\n[dns]\nresolvers = [\"127.0.0.1:9\"]\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bad..name", "-", "a-.test", "a b.test", "a@b.test", strings.Repeat("a", 64) + ".test"} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{"check", "--config", cfg, d}, nil, &out, &errs); code != 64 ||
			!strings.Contains(errs.String(), "not a domain name") {
			t.Errorf("check %q: exit %d, stderr %q; want 64", d, code, errs.String())
		}
	}
	// An internationalized name is checked by its A-labels: past the name check, the
	// closed resolver stops it (exit 75).
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", cfg, "bücher.test"}, nil, &out, &errs); code != 75 {
		t.Errorf("check bücher.test: exit %d, stderr %q; want 75", code, errs.String())
	}
}

// With no resolver fit for the DNS mode (here: none answering), `mxward check DOMAIN`
// gives no verdict: exit 75 and the reason, not a "broken" that would blame the domain.
func TestCheckDomainUnfitResolver(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxward.toml")
	body := fmt.Sprintf("data_dir = %q\n[dns]\nresolvers = [\"127.0.0.1:9\"]\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", cfg, "--json", "example.test"}, nil, &out, &errs)
	if code != 75 || out.Len() != 0 || !strings.Contains(errs.String(), "no resolver is fit") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 75, nothing, and the reason", code, out.String(), errs.String())
	}
}
