package testpeer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOptionsWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		opts    PostfixOptions
		wantErr string // substring; "" for success
	}{
		{"zero value", PostfixOptions{}, ""},
		{"relay", PostfixOptions{RelayHost: "[127.0.0.1]:2525", ClientTLS: "encrypt"}, ""},
		{"deliver", PostfixOptions{Deliver: true, Domains: []string{"Example.TEST", "b.test"}}, ""},
		{"unqualified hostname", PostfixOptions{Hostname: "localhost"}, "fully qualified"},
		{"hostname with space", PostfixOptions{Hostname: "a b.test"}, "fully qualified"},
		{"bad TLS level", PostfixOptions{ClientTLS: "secure"}, "client TLS level"},
		{"relay without port", PostfixOptions{RelayHost: "[127.0.0.1]"}, ""},
		{"relay on IPv6 loopback", PostfixOptions{RelayHost: "[ipv6:::1]:25"}, ""},
		{"two relay hosts", PostfixOptions{RelayHost: "[127.0.0.1]:1, [127.0.0.1]:2"}, "loopback address"},
		{"relay by name", PostfixOptions{RelayHost: "localhost:25"}, "loopback address"},
		{"relay by bracketed name", PostfixOptions{RelayHost: "[localhost]:25"}, "loopback address"},
		{"relay elsewhere", PostfixOptions{RelayHost: "[192.0.2.1]:25"}, "loopback address"},
		{"relay with bad port", PostfixOptions{RelayHost: "[127.0.0.1]:0"}, "loopback address"},
		{"relay with junk after port", PostfixOptions{RelayHost: "[127.0.0.1]:25x"}, "loopback address"},
		{"deliver without domains", PostfixOptions{Deliver: true}, "at least one domain"},
		{"domains without deliver", PostfixOptions{Domains: []string{"a.test"}}, "without deliver"},
		{"domain with slash", PostfixOptions{Deliver: true, Domains: []string{"a/b.test"}}, "plain DNS name"},
		{"domain with regexp", PostfixOptions{Deliver: true, Domains: []string{"a.*"}}, "plain DNS name"},
		{"bad parameter name", PostfixOptions{MainCF: map[string]string{"a b": "c"}}, "parameter name"},
		{"value with newline", PostfixOptions{MainCF: map[string]string{"relayhost": "x\nmynetworks = 0.0.0.0/0"}}, "line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.withDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("withDefaults() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("withDefaults(): %v", err)
			}
			if got.Hostname == "" || got.ClientTLS == "" {
				t.Errorf("defaults not filled in: %+v", got)
			}
			for _, d := range got.Domains {
				if d != strings.ToLower(d) {
					t.Errorf("domain %q not folded to lower case", d)
				}
			}
		})
	}
}

func TestOptionsWithDefaultsKeepsCallerDomains(t *testing.T) {
	domains := []string{"Example.TEST"}
	if _, err := (PostfixOptions{Deliver: true, Domains: domains}).withDefaults(); err != nil {
		t.Fatal(err)
	}
	if domains[0] != "Example.TEST" {
		t.Errorf("withDefaults changed the caller's slice: %q", domains)
	}
}

func TestMainCF(t *testing.T) {
	l := newLayout("/tmp/x")
	tests := []struct {
		name   string
		opts   PostfixOptions
		want   map[string]string // parameters that must have these values
		absent []string          // parameters that must not be set
	}{
		{
			name: "relay",
			opts: PostfixOptions{RelayHost: "[127.0.0.1]:2525", ClientTLS: "encrypt"},
			want: map[string]string{
				"relayhost":               "[127.0.0.1]:2525",
				"smtp_tls_security_level": "encrypt",
				"smtp_tls_loglevel":       "1",
				"mynetworks":              "127.0.0.0/8",
				"inet_interfaces":         "127.0.0.1",
				"inet_protocols":          "ipv4",
				"smtp_dns_support_level":  "disabled",
				"smtpd_peername_lookup":   "no",
				"compatibility_level":     "3.6",
				"maillog_file":            "/tmp/x/maillog",
				"maillog_file_prefixes":   "/tmp/x",
				"mydestination":           "",
				"queue_directory":         "/tmp/x/spool",
			},
			absent: []string{"default_transport", "virtual_mailbox_maps", "smtpd_tls_cert_file"},
		},
		{
			name: "no relay host refuses to route",
			opts: PostfixOptions{},
			want: map[string]string{"relayhost": "", "smtp_tls_security_level": "may"},
		},
		{
			name: "deliver with server TLS",
			opts: PostfixOptions{Deliver: true, Domains: []string{"a.test", "b.test"}, ServerTLS: true},
			want: map[string]string{
				"virtual_mailbox_domains":  "a.test b.test",
				"virtual_mailbox_base":     "/tmp/x/maildir",
				"virtual_mailbox_maps":     "regexp:/tmp/x/etc/virtual_mailbox.regexp",
				"virtual_uid_maps":         "static:65534",
				"virtual_gid_maps":         "static:65533",
				"smtpd_tls_security_level": "may",
				"smtpd_tls_cert_file":      "/tmp/x/etc/cert.pem",
				"smtpd_tls_key_file":       "/tmp/x/etc/key.pem",
			},
		},
		{
			name: "overrides win",
			opts: PostfixOptions{RelayHost: "[127.0.0.1]:1", MainCF: map[string]string{"relayhost": "[127.0.0.1]:2", "message_size_limit": "1000"}},
			want: map[string]string{"relayhost": "[127.0.0.1]:2", "message_size_limit": "1000"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.opts.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			got := mainCF(opts, l, 65534, 65533)
			for k, v := range tc.want {
				if gv, ok := got[k]; !ok || gv != v {
					t.Errorf("%s = %q (set %v), want %q", k, gv, ok, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %q, want unset", k, v)
				}
			}
			if opts.RelayHost == "" && !strings.HasPrefix(got["default_transport"], "error:") {
				t.Errorf("without a relay host default_transport = %q, want the error transport", got["default_transport"])
			}
			if !strings.HasPrefix(got["local_transport"], "error:") {
				t.Errorf("local_transport = %q, want the error transport", got["local_transport"])
			}
		})
	}
}

func TestRenderMainCF(t *testing.T) {
	got := string(renderMainCF(map[string]string{"b": "2", "a": "1 2", "c": ""}))
	var lines []string
	for _, line := range strings.Split(got, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	want := []string{"a = 1 2", "b = 2", "c = "}
	if !slices.Equal(lines, want) {
		t.Errorf("renderMainCF lines = %q, want %q", lines, want)
	}
}

func TestMasterCF(t *testing.T) {
	got := string(masterCF(2525))
	if !strings.Contains(got, "\n127.0.0.1:2525 inet n - n - - smtpd\n") {
		t.Errorf("master.cf lacks the loopback smtpd service:\n%s", got)
	}
	for _, line := range strings.Split(got, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 8 {
			t.Errorf("service line has %d fields: %q", len(f), line)
			continue
		}
		if f[4] != "n" {
			t.Errorf("service %s runs chrooted: %q", f[0], line)
		}
	}
}

// TestMailboxMapWithPostmap checks the generated regexp table with Postfix's own
// lookup code, which is what decides which recipients exist.
func TestMailboxMapWithPostmap(t *testing.T) {
	const postmap = "/usr/sbin/postmap"
	RequireTool(t, postmap)
	dir := t.TempDir()
	// postmap reads main.cf; an empty one keeps it away from /etc/postfix.
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(dir, "map.regexp")
	if err := os.WriteFile(table, mailboxMap([]string{"example.test", "b-c.test"}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want string // "" for no match
	}{
		{"alice@example.test", "example.test/"},
		{"Alice.Smith+tag@EXAMPLE.test", "example.test/"},
		{"x=y@b-c.test", "b-c.test/"},
		{".hidden@example.test", ""},
		{"a/b@example.test", ""},
		{"alice@exampleXtest", ""},
		{"alice@sub.example.test", ""},
		{"alice@example.test.evil", ""},
		{"alice@other.test", ""},
	}
	for _, tc := range tests {
		cmd := exec.Command(postmap, "-c", dir, "-q", tc.addr, "regexp:"+table)
		cmd.Env = commandEnv(dir)
		out, err := cmd.CombinedOutput()
		got := strings.TrimSpace(string(out))
		var exitErr *exec.ExitError
		switch {
		case tc.want == "" && errors.As(err, &exitErr) && exitErr.ExitCode() == 1 && got == "":
		case tc.want != "" && err == nil && got == tc.want:
		default:
			t.Errorf("postmap -q %s = %q (%v), want %q", tc.addr, got, err, tc.want)
		}
	}
}

func TestNamesServer(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.test"}, true},
		{[]string{"--server=127.0.0.1:25"}, true},
		{[]string{"-s", "127.0.0.1:25"}, true},
		{[]string{"--socket", "/tmp/s"}, true},
		{[]string{"--pipe", "cat"}, true},
		{[]string{"--to", "a@b.test"}, false},
		{[]string{"--to", "--server-ish"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := namesServer(tc.args); got != tc.want {
			t.Errorf("namesServer(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestSwaksRefusesWithoutServer(t *testing.T) {
	RequireTool(t, SwaksPath)
	if _, err := Swaks(t, "--to", "a@b.test"); err == nil {
		t.Fatal("Swaks without --server ran, want a refusal")
	}
}

func TestSwaksAgainstSink(t *testing.T) {
	RequireTool(t, SwaksPath)
	if !SwaksAvailable() {
		t.Fatal("SwaksAvailable() = false although swaks is installed")
	}
	sk := startSink(t, "sink.test", nil)
	out, err := Swaks(t, "--server", sk.Addr(), "--helo", "client.test",
		"--from", "a@client.test", "--to", "b@sink.test", "--body", "swaks body")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	m := sk.wait(t, 1, 10*time.Second)[0]
	if m.From != "a@client.test" || !slices.Equal(m.To, []string{"b@sink.test"}) || !strings.Contains(string(m.Data), "swaks body") {
		t.Errorf("sink recorded %+v", m)
	}
}

// recordingTB stands in for a test so that RequireTool's skip and failure paths
// can be observed without skipping or failing the real test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = true
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = true
	runtime.Goexit()
}

func TestRequireTool(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		path        string
		require     string
		wantSkip    bool
		wantFail    bool
		wantProceed bool
	}{
		{"present", exe, "", false, false, true},
		{"present, required", exe, "1", false, false, true},
		{"missing", "/nonexistent/tool", "", true, false, false},
		{"missing, required", "/nonexistent/tool", "1", false, true, false},
		{"not executable", plain, "", true, false, false},
		{"directory, required", t.TempDir(), "1", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequireInteropEnv, tc.require)
			rec := &recordingTB{TB: t}
			proceeded := false
			done := make(chan struct{})
			go func() {
				defer close(done)
				RequireTool(rec, tc.path)
				proceeded = true
			}()
			<-done
			if rec.skipped != tc.wantSkip || rec.failed != tc.wantFail || proceeded != tc.wantProceed {
				t.Errorf("skipped=%v failed=%v proceeded=%v, want %v %v %v",
					rec.skipped, rec.failed, proceeded, tc.wantSkip, tc.wantFail, tc.wantProceed)
			}
		})
	}
}

func TestNewCert(t *testing.T) {
	c, err := NewCert("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mx.example.test", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: c.Pool()}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: c.Pool()}); err == nil {
		t.Errorf("certificate verifies for other.test")
	}
}

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		in            string
		local, domain string
		ok            bool
	}{
		{"Alice@Example.TEST", "alice", "example.test", true},
		{`"a@b"@c.test`, `"a@b"`, "c.test", true},
		{"@c.test", "", "", false},
		{"a@", "", "", false},
		{"nodomain", "", "", false},
	}
	for _, tc := range tests {
		local, domain, ok := splitAddress(tc.in)
		if local != tc.local || domain != tc.domain || ok != tc.ok {
			t.Errorf("splitAddress(%q) = %q, %q, %v, want %q, %q, %v", tc.in, local, domain, ok, tc.local, tc.domain, tc.ok)
		}
	}
}

func TestDeliveredTo(t *testing.T) {
	tests := []struct {
		msg  string
		want string
	}{
		{"Return-Path: <s@x.test>\nDelivered-To: a@example.test\nDelivered-To: old@elsewhere.test\nSubject: x\n\nbody\n", "a@example.test"},
		{"Delivered-To:  b@example.test \r\n\r\nbody", "b@example.test"},
		{"Subject: none\n\nDelivered-To: body@example.test\n", ""},
		{"not a header", ""},
	}
	for _, tc := range tests {
		if got := deliveredTo(tc.msg); got != tc.want {
			t.Errorf("deliveredTo(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestReadMaildir(t *testing.T) {
	dir := t.TempDir()
	if msgs, err := readMaildir(filepath.Join(dir, "missing")); err != nil || len(msgs) != 0 {
		t.Fatalf("readMaildir(missing) = %q, %v, want nothing", msgs, err)
	}
	base := time.Now().Add(-time.Hour)
	files := []struct {
		name string
		age  time.Duration
	}{
		{"c", 1 * time.Second}, // newest
		{"a", 3 * time.Second},
		{"b", 2 * time.Second},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.name), 0o644); err != nil {
			t.Fatal(err)
		}
		mod := base.Add(-f.age)
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	msgs, err := readMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(msgs, want) {
		t.Errorf("readMaildir = %q, want %q (oldest first, no directories)", msgs, want)
	}
}

func TestMakeTraversable(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "instance")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := makeTraversable(dir); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]os.FileMode{dir: 0o755, parent: 0o711} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&want != want {
			t.Errorf("%s mode %v, want at least %v", d, got, want)
		}
	}
}

// TestStartReportsPortInUse checks the failure StartPostfix retries on: a port
// taken between choosing and binding it.
func TestStartReportsPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newPostfix(t, PostfixOptions{})
	err = p.start(ln.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken port: %v, want errPortInUse", err)
	}
	if left := processesIn(p.layout.dir); len(left) > 0 {
		t.Errorf("failed start left processes %v behind", left)
	}
}

// TestSinkSTARTTLS checks the sink itself with the standard library's client.
func TestSinkSTARTTLS(t *testing.T) {
	cert, err := NewCert("sink.test")
	if err != nil {
		t.Fatal(err)
	}
	sk := startSink(t, "sink.test", cert)
	c, err := smtp.Dial(sk.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "sink.test", RootCAs: cert.Pool()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@client.test"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"b@sink.test", "c@sink.test"} {
		if err := c.Rcpt(rcpt); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: s\r\n\r\n.leading dot\r\n.\r\nend\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	m := sk.wait(t, 1, 5*time.Second)[0]
	want := sinkMessage{
		Helo: "client.test",
		From: "a@client.test",
		To:   []string{"b@sink.test", "c@sink.test"},
		Data: []byte("Subject: s\r\n\r\n.leading dot\r\n.\r\nend\r\n"),
		TLS:  true,
	}
	if m.Helo != want.Helo || m.From != want.From || !slices.Equal(m.To, want.To) || string(m.Data) != string(want.Data) || m.TLS != want.TLS {
		t.Errorf("sink recorded %+v\nwant %+v", m, want)
	}
}

func TestReadDataLongLine(t *testing.T) {
	long := strings.Repeat("x", 10000)
	in := "." + long + "\r\n..\r\n.\r\n"
	got, err := readData(bufio.NewReaderSize(strings.NewReader(in), 16), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := long + "\r\n.\r\n"; string(got) != want {
		t.Errorf("readData unstuffed %d bytes, want %d", len(got), len(want))
	}
	if _, err := readData(bufio.NewReader(strings.NewReader(long+"\r\n.\r\n")), 100); err == nil {
		t.Errorf("readData accepted a body over the limit")
	}
	if _, err := readData(bufio.NewReader(strings.NewReader("no end\r\n")), 100); err == nil {
		t.Errorf("readData accepted a body without terminator")
	}
}
