package main

// End-to-end tests of the mxward binary: built once, run as a real process with its own
// configuration in a temporary directory, and driven by real clients (swaks, Postfix,
// `mxward sendmail`). Every socket is on 127.0.0.1 or in the temporary directory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var mxwardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxward-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mxwardBin = filepath.Join(dir, "mxward")
	out, err := exec.Command("go", "build", "-o", mxwardBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mxward: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for inspection while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance is one running mxward with its directory and ports.
type instance struct {
	t       *testing.T
	dir     string
	cfgPath string
	ports   map[string]int
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{}
	env     []string // added to the environment of mxward serve
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const testPassword = "correct horse battery staple"

// baseConfig is a production-like configuration on loopback ports: example.test is local
// with two mailboxes and a postmaster alias; loopback is NOT a trusted network, so relay
// needs AUTH.
func baseConfig(t testing.TB, dir string, ports map[string]int, extra string) string {
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`hostname = "mx.example.test"
data_dir = %q
log_format = "json"
log_level = "debug"

[[listener]]
name = "inbound"
address = "127.0.0.1:%d"
role = "inbound"
tls = "starttls"

[[listener]]
name = "submission"
address = "127.0.0.1:%d"
role = "submission"
tls = "starttls"

[[listener]]
name = "submissions"
address = "127.0.0.1:%d"
role = "submission"
tls = "implicit"

[relay]
trusted_networks = []

[[user]]
name = "alice@example.test"
password_hash = %q

[admin]
address = ""

# Tests never resolve real names: nothing answers on this loopback port, so every
# outbound lookup fails temporarily and relayed mail stays queued.
[dns]
mode = "trust-ad"
resolvers = ["127.0.0.1:9"]

[delivery]
%s
[local]
domains = ["example.test"]
mailboxes = ["alice@example.test", "bob@example.test"]
[local.aliases]
"postmaster@example.test" = ["alice@example.test"]
`, filepath.Join(dir, "data"), ports["inbound"], ports["submission"], ports["submissions"], string(hash), extra)
}

func startInstance(t *testing.T, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	ports := map[string]int{"inbound": freePort(t), "submission": freePort(t), "submissions": freePort(t)}
	in := &instance{t: t, dir: dir, ports: ports, cfgPath: filepath.Join(dir, "mxward.toml")}
	if err := os.WriteFile(in.cfgPath, []byte(baseConfig(t, dir, ports, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	in.start()
	t.Cleanup(func() { in.stop(syscall.SIGTERM) })
	return in
}

func (in *instance) start() {
	in.t.Helper()
	in.log = &syncBuffer{}
	in.cmd = exec.Command(mxwardBin, "serve", "--config", in.cfgPath)
	if in.env != nil {
		in.cmd.Env = append(os.Environ(), in.env...)
	}
	in.cmd.Stderr = in.log
	in.cmd.Stdout = in.log
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.exited = make(chan struct{})
	go func() { in.cmd.Wait(); close(in.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(in.log.String(), `"msg":"ready"`) {
		select {
		case <-in.exited:
			in.t.Fatalf("mxward exited during start-up:\n%s", in.log.String())
		default:
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("mxward not ready after 20s:\n%s", in.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the process (it was started by this test, so its pid is ours to signal)
// and waits for it to exit.
func (in *instance) stop(sig syscall.Signal) {
	select {
	case <-in.exited:
		return
	default:
	}
	in.cmd.Process.Signal(sig)
	select {
	case <-in.exited:
	case <-time.After(40 * time.Second):
		in.cmd.Process.Kill()
		<-in.exited
		in.t.Errorf("mxward did not stop on %v", sig)
	}
}

func (in *instance) addr(listener string) string {
	return fmt.Sprintf("127.0.0.1:%d", in.ports[listener])
}

// mxward runs a CLI subcommand against this instance's configuration.
func (in *instance) mxward(stdin string, args ...string) (string, error) {
	cmd := exec.Command(mxwardBin, args...)
	cmd.Env = append(os.Environ(), "MXWARD_CONFIG="+in.cfgPath)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// logRecords returns the JSON log records whose msg is msg.
func (in *instance) logRecords(msg string) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(in.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			recs = append(recs, rec)
		}
	}
	return recs
}

// maildir waits for n messages in a local mailbox and returns their contents.
func (in *instance) maildir(user string, n int) []string {
	in.t.Helper()
	dir := filepath.Join(in.dir, "data", "mail", "example.test", user, "new")
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= n {
			var msgs []string
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					in.t.Fatal(err)
				}
				msgs = append(msgs, string(b))
			}
			return msgs
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%d messages in %s after 20s, want %d\nlog:\n%s", len(entries), dir, n, in.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("MXWARD_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s is required (MXWARD_REQUIRE_INTEROP=1) but missing", path)
	}
	t.Skipf("%s not installed", path)
}

func swaks(t *testing.T, args ...string) string {
	t.Helper()
	requireTool(t, "/usr/bin/swaks")
	cmd := exec.Command("/usr/bin/swaks", append([]string{"--timeout", "20"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// swaks as an inbound MTA would: STARTTLS on the inbound port, delivered to a Maildir, with
// the TLS details in the Received header.
func TestSwaksInboundSTARTTLS(t *testing.T) {
	in := startInstance(t, "")
	out := swaks(t, "--server", in.addr("inbound"), "--tls", "--from", "someone@remote.test",
		"--to", "alice@example.test", "--ehlo", "client.remote.test", "--header", "Subject: e2e inbound")
	if !strings.Contains(out, "250 2.0.0 Ok: queued as") {
		t.Fatalf("swaks output:\n%s", out)
	}
	msg := in.maildir("alice", 1)[0]
	for _, want := range []string{"Return-Path: <someone@remote.test>", "Delivered-To: alice@example.test",
		"with ESMTPS", "(using TLSv1.3 with cipher", "Subject: e2e inbound"} {
		if !strings.Contains(msg, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, msg)
		}
	}
	// The Maildir file appears before the delivery is recorded and logged.
	var recs []map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if recs = in.logRecords("delivery"); len(recs) > 0 {
			break
		}
	}
	if len(recs) != 1 || recs[0]["result"] != "delivered" || recs[0]["rcpt"] != "alice@example.test" {
		t.Errorf("delivery log records: %v", recs)
	}
}

func TestRelayDeniedAndUnknownUser(t *testing.T) {
	in := startInstance(t, "")
	requireTool(t, "/usr/bin/swaks")
	for _, tc := range []struct{ to, want string }{
		{"someone@elsewhere.test", "554 5.7.1"},
		{"nobody@example.test", "550 5.1.1"},
	} {
		out, _ := exec.Command("/usr/bin/swaks", "--timeout", "20", "--server", in.addr("inbound"), "--from", "x@remote.test", "--to", tc.to).CombinedOutput()
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("RCPT %s: want %s in\n%s", tc.to, tc.want, out)
		}
	}
	if out, _ := in.mxward("", "queue", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("queue not empty after refused mail: %s", out)
	}
}

// Submission: AUTH only after STARTTLS (587) or on implicit TLS (465); an authenticated
// user may relay.
func TestSubmissionAuthRelay(t *testing.T) {
	in := startInstance(t, "")
	requireTool(t, "/usr/bin/swaks")
	out, _ := exec.Command("/usr/bin/swaks", "--timeout", "20", "--server", in.addr("submission"), "--from", "alice@example.test",
		"--to", "friend@elsewhere.test", "--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", testPassword).CombinedOutput()
	if strings.Contains(string(out), "235 2.7.0") {
		t.Fatalf("AUTH succeeded without TLS:\n%s", out)
	}
	swaks(t, "--server", in.addr("submission"), "--tls", "--from", "alice@example.test", "--to", "friend@elsewhere.test",
		"--auth", "LOGIN", "--auth-user", "alice@example.test", "--auth-password", testPassword)
	swaks(t, "--server", in.addr("submissions"), "--tlsc", "--from", "alice@example.test", "--to", "friend2@elsewhere.test",
		"--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", testPassword)
	list, err := in.mxward("", "queue", "list", "--json")
	if err != nil {
		t.Fatalf("queue list: %v\n%s", err, list)
	}
	var msgs []msgJSON
	if err := json.Unmarshal([]byte(list), &msgs); err != nil {
		t.Fatalf("queue list --json: %v\n%s", err, list)
	}
	if len(msgs) != 2 || msgs[0].AuthUser != "alice@example.test" || msgs[0].Recipients[0].Local {
		t.Errorf("queued: %+v", msgs)
	}
}

func TestSendmailInjection(t *testing.T) {
	in := startInstance(t, "")
	msg := "To: bob@example.test\nCc: postmaster@example.test\nBcc: alice@example.test\nSubject: from cron\n\nline one\n.leading dot\n"
	out, err := in.mxward(msg, "sendmail", "-t", "-i", "-f", "cron@example.test")
	if err != nil {
		t.Fatalf("sendmail: %v\n%s", err, out)
	}
	bob := in.maildir("bob", 1)[0]
	alice := in.maildir("alice", 1) // as postmaster and as Bcc: stored once
	if len(alice) != 1 {
		t.Errorf("alice got %d copies", len(alice))
	}
	for _, want := range []string{"Subject: from cron", "\n.leading dot\n", "Return-Path: <cron@example.test>", "from local (uid "} {
		if !strings.Contains(bob, want) {
			t.Errorf("message lacks %q:\n%q", want, bob)
		}
	}
	if strings.Contains(bob, "Bcc:") || strings.Contains(alice[0], "Bcc:") {
		t.Errorf("Bcc header delivered:\n%s", bob)
	}
}

func TestQueueCommands(t *testing.T) {
	in := startInstance(t, "")
	swaks(t, "--server", in.addr("submission"), "--tls", "--from", "alice@example.test", "--to", "far@elsewhere.test",
		"--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", testPassword)
	out, err := in.mxward("", "queue", "list", "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var msgs []msgJSON
	if err := json.Unmarshal([]byte(out), &msgs); err != nil || len(msgs) != 1 {
		t.Fatalf("queue list: %v %s", err, out)
	}
	id := msgs[0].ID
	for _, step := range []struct {
		args  []string
		state string
	}{
		{[]string{"queue", "hold", id}, "held"},
		{[]string{"queue", "release", id}, "queued"},
	} {
		if out, err := in.mxward("", step.args...); err != nil {
			t.Fatalf("%v: %v %s", step.args, err, out)
		}
		out, _ := in.mxward("", "queue", "show", "--json", id)
		var m msgJSON
		if err := json.Unmarshal([]byte(out), &m); err != nil || m.Recipients[0].State != step.state {
			t.Fatalf("after %v: %v %s", step.args, err, out)
		}
	}
	if out, err := in.mxward("", "queue", "show", id); err != nil || !strings.Contains(out, "far@elsewhere.test") {
		t.Errorf("queue show: %v\n%s", err, out)
	}
	if out, err := in.mxward("", "queue", "delete", id); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	if out, _ := in.mxward("", "queue", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("queue after delete: %s", out)
	}
	out, err = in.mxward("", "queue", "show", id)
	if err == nil || !strings.Contains(out, "no such message") {
		t.Errorf("show of deleted message: %v %s", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("hostname = \"mx.example.test\"\n\n[limits]\nmax_recipents = 5\n"), 0o644)
	out, err := exec.Command(mxwardBin, "config", "check", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 {
		t.Fatalf("config check of a bad file: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "bad.toml:4") || !strings.Contains(string(out), "limits.max_recipents") {
		t.Errorf("error does not name file:line and key:\n%s", out)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(baseConfig(t, dir, map[string]int{"inbound": 2525, "submission": 2587, "submissions": 2465}, "")), 0o644)
	if out, err := exec.Command(mxwardBin, "config", "check", good).CombinedOutput(); err != nil {
		t.Fatalf("config check of a good file: %v\n%s", err, out)
	}
	example, _ := filepath.Abs("../../docs/mxward.example.toml")
	if out, err := exec.Command(mxwardBin, "config", "check", example).CombinedOutput(); err != nil {
		t.Fatalf("config check of the example: %v\n%s", err, out)
	}
}

// SIGHUP reloads the configuration: a new alias works without a restart, and a session
// that was open across the reload is not dropped.
func TestReloadOnSIGHUP(t *testing.T) {
	in := startInstance(t, "")
	conn, err := net.Dial("tcp", in.addr("inbound"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	br.ReadString('\n')

	cfg, _ := os.ReadFile(in.cfgPath)
	cfg = append(cfg, []byte("\"sales@example.test\" = [\"bob@example.test\"]\n")...)
	os.WriteFile(in.cfgPath, cfg, 0o644)
	in.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for len(in.logRecords("configuration reloaded")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", in.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(conn, "NOOP\r\n")
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "250") {
		t.Fatalf("session open across reload: %q %v", l, err)
	}
	swaks(t, "--server", in.addr("inbound"), "--from", "x@remote.test", "--to", "sales@example.test")
	in.maildir("bob", 1)

	// A key that cannot be loaded on reload is an error in the log, not a silent
	// "reloaded" with the old key still in service.
	key := filepath.Join(in.dir, "data", "tls", "selfsigned-key.pem")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	in.cmd.Process.Signal(syscall.SIGHUP)
	for len(in.logRecords("tls certificate reload failed, keeping current certificate")) == 0 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("no reload failure logged for an unusable key:\n%s", in.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	port := freePort(t)
	in := startInstance(t, "")
	// Restart with the admin listener on a free loopback port.
	in.stop(syscall.SIGTERM)
	cfg, _ := os.ReadFile(in.cfgPath)
	cfg = bytes.Replace(cfg, []byte("[admin]\naddress = \"\""), []byte(fmt.Sprintf("[admin]\naddress = \"127.0.0.1:%d\"", port)), 1)
	os.WriteFile(in.cfgPath, cfg, 0o644)
	in.start()
	swaks(t, "--server", in.addr("inbound"), "--from", "x@remote.test", "--to", "alice@example.test")
	in.maildir("alice", 1)
	wants := []string{
		`mxward_deliveries_total{policy="local-delivery",result="delivered",tls="none"} 1`,
		"mxward_queue_messages 0",
		"go_goroutines",
		"mxward_mta_sts_refresh_alerts_total 0",
		// Nothing answers at the test resolver: the DNSSEC self-test says so (DANE-01).
		`mxward_dns_resolver_ok{mode="trust-ad",resolver="127.0.0.1:9"} 0`,
	}
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		missing := false
		for _, want := range wants {
			missing = missing || !strings.Contains(string(body), want)
		}
		if !missing || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if recs := in.logRecords("dns resolver self-test FAILED: DNSSEC status will be wrong and DANE cannot protect mail"); len(recs) == 0 || recs[0]["resolver"] != "127.0.0.1:9" {
		t.Errorf("self-test failure not logged: %v", recs)
	}
}

// `queue retry` and `queue bounce`: an operator gives up on a message, and the sender
// gets a failure DSN that mxward delivers to her mailbox.
func TestQueueRetryAndBounce(t *testing.T) {
	in := startInstance(t, "")
	swaks(t, "--server", in.addr("submission"), "--tls", "--from", "alice@example.test", "--to", "far@elsewhere.test",
		"--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", testPassword, "--header", "Subject: doomed")
	out, _ := in.mxward("", "queue", "list", "--json")
	var msgs []msgJSON
	if err := json.Unmarshal([]byte(out), &msgs); err != nil || len(msgs) != 1 {
		t.Fatalf("queue list: %v %s", err, out)
	}
	id := msgs[0].ID
	if out, err := in.mxward("", "queue", "retry", "--all"); err != nil || !strings.Contains(out, id+": due now") {
		t.Fatalf("retry --all: %v %s", err, out)
	}
	if out, err := in.mxward("", "queue", "retry"); err == nil {
		t.Errorf("retry without ids accepted: %s", out)
	}
	if out, err := in.mxward("", "queue", "bounce", id); err != nil {
		t.Fatalf("bounce: %v %s", err, out)
	}
	dsn := in.maildir("alice", 1)[0]
	for _, want := range []string{"Subject: Undelivered Mail Returned to Sender", "Final-Recipient: rfc822; far@elsewhere.test",
		"Action: failed", "Status: 5.0.0", "Subject: doomed", "Return-Path: <>"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}
