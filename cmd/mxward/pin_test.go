package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mxward/internal/dns/dnstest"
	"mxward/internal/pin"
	"mxward/internal/probe"
	"mxward/internal/testpeer"
)

// pinConfig writes a configuration with pinning enabled and its data in dir.
func pinConfig(t *testing.T, dir string, enabled bool) string {
	t.Helper()
	path := filepath.Join(dir, "mxward.toml")
	body := fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[dns]\nresolvers = [\"127.0.0.1:9\"]\n[pinning]\nenabled = %v\n",
		filepath.Join(dir, "data"), enabled)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPin runs `mxward pin ARGS` in-process and returns its output and exit status.
func runPin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errs bytes.Buffer
	err := cmdPin(context.Background(), args, &out, &errs)
	code = 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		}
	}
	return out.String(), errs.String(), code
}

// TestPinCommand: list, show and forget on the store the server writes, with and
// without --json, and the exit statuses of missing entries and bad usage.
func TestPinCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := pinConfig(t, dir, true)

	// Nothing recorded yet, and the directory does not exist: the commands must not
	// create it (a root-run CLI would leave it unwritable for the server).
	if out, _, code := runPin(t, "list", "--config", cfg); code != 0 || out != "no pins\n" {
		t.Errorf("list of nothing: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "pins")); !os.IsNotExist(err) {
		t.Errorf("list created the pin directory: %v", err)
	}

	store, err := pin.Open(filepath.Join(dir, "data", "pins"), pin.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ctx := context.Background()
	for i, o := range []pin.Observation{{MXHost: "mx1.example.net", TLSVersion: "TLSv1.2"}, {MXHost: "mx2.example.net", TLSVersion: "TLSv1.3"}} {
		if _, err := store.Observe(ctx, "example.net", o, now.Add(time.Duration(i-3)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Observe(ctx, "observed.example", pin.Observation{MXHost: "mx.observed.example", TLSVersion: "TLSv1.3"}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	out, _, code := runPin(t, "list", "--config", cfg, "--json")
	var list pinListJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("list --json: %d %v\n%s", code, err, out)
	}
	if !list.Enabled || len(list.Pins) != 2 || list.Pins[0].Domain != "example.net" || list.Pins[0].State != "pinned" ||
		list.Pins[0].Count != 2 || list.Pins[1].State != "observed" || list.Pins[0].Pinned == "" || list.Pins[1].Pinned != "" {
		t.Errorf("list --json: %+v", list)
	}
	out, _, _ = runPin(t, "list", "--config", cfg)
	if !strings.Contains(out, "example.net") || !strings.Contains(out, "pinned") || !strings.Contains(out, "observed.example") {
		t.Errorf("list:\n%s", out)
	}

	out, _, code = runPin(t, "show", "example.net.", "--config", cfg, "--json")
	var one pinJSON
	if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 {
		t.Fatalf("show --json: %d %v\n%s", code, err, out)
	}
	if one.Domain != "example.net" || one.State != "pinned" || strings.Join(one.MXHosts, " ") != "mx1.example.net mx2.example.net" ||
		strings.Join(one.TLSVersions, " ") != "TLSv1.2 TLSv1.3" || one.Expires == "" {
		t.Errorf("show --json: %+v", one)
	}
	out, _, _ = runPin(t, "show", "--config", cfg, "EXAMPLE.net")
	for _, want := range []string{"state:      pinned", "count:      2 TLS deliveries (2 counted towards pinning, min_observations 2)", "mx hosts:   mx1.example.net mx2.example.net"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	if out, _, code := runPin(t, "forget", "--config", cfg, "example.net"); code != 0 || out != "forgot the pin of example.net\n" {
		t.Errorf("forget: %d %q", code, out)
	}
	if _, live, _ := store.Lookup("example.net", now); live {
		t.Error("example.net still pinned after forget")
	}
	if _, errs, code := runPin(t, "show", "--config", cfg, "example.net"); code != 1 {
		t.Errorf("show after forget: exit %d (%s), want 1", code, errs)
	}
	if out, _, code := runPin(t, "forget", "--config", cfg, "example.net"); code != 0 || !strings.Contains(out, "nothing to forget") {
		t.Errorf("forget again: %d %q", code, out)
	}

	for _, args := range [][]string{{}, {"drop", "example.net"}, {"show"}, {"list", "extra"}, {"forget"}, {"forget", "--json", "example.net"}} {
		if _, _, code := runPin(t, append(args, "--config", cfg)...); code != 64 {
			t.Errorf("%q: exit %d, want 64", args, code)
		}
	}

	// With pinning disabled the entries are still shown, and said to enforce nothing.
	off := pinConfig(t, t.TempDir(), false)
	if _, errs, code := runPin(t, "list", "--config", off); code != 0 || !strings.Contains(errs, "pinning is disabled") {
		t.Errorf("list with pinning off: %d %q", code, errs)
	}
}

// stripSwitch is a man in the middle between mxward and a receiver that, once turned
// on, removes STARTTLS from the EHLO replies of new sessions (ST-10).
type stripSwitch struct {
	port   int
	target string

	mu    sync.Mutex
	strip bool
	conns map[net.Conn]bool
}

func startStripSwitch(t *testing.T, targetPort int) *stripSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stripSwitch{port: ln.Addr().(*net.TCPAddr).Port, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(targetPort)),
		conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.set(false); wg.Wait() })
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
				p.serve(c)
			}()
		}
	}()
	return p
}

// set turns stripping on or off and ends the sessions in progress, so that a session
// kept open for reuse does not slip past the change.
func (p *stripSwitch) set(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.strip = on
	for c := range p.conns {
		c.Close()
	}
}

func (p *stripSwitch) serve(cli net.Conn) {
	p.mu.Lock()
	strip := p.strip
	p.conns[cli] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, cli)
		p.mu.Unlock()
		cli.Close()
	}()
	srv, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := cli.Read(buf)
			if n > 0 {
				srv.Write(buf[:n])
			}
			if err != nil {
				srv.Close()
				return
			}
		}
	}()
	// Server to client a line at a time; a continuation line is held back until the
	// next shows whether it has become the last line of its reply. After the reply to
	// STARTTLS (the second 220) the bytes are TLS records and are copied as they come.
	br := bufio.NewReader(srv)
	var held string
	greetings := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "220 ") {
			if greetings++; greetings == 2 {
				cli.Write([]byte(line))
				io.Copy(cli, br)
				return
			}
		}
		if strip && len(line) >= 12 && strings.EqualFold(strings.TrimRight(line[4:], "\r\n"), "STARTTLS") {
			if line[3] == '-' {
				continue
			}
			if held == "" {
				continue
			}
			line, held = held[:3]+" "+held[4:], ""
		}
		if held != "" {
			cli.Write([]byte(held))
			held = ""
		}
		if len(line) > 3 && line[3] == '-' {
			held = line
			continue
		}
		cli.Write([]byte(line))
	}
}

// TestPinEndToEnd runs mxward serve with pinning enabled against a Postfix receiver
// with STARTTLS, behind a switch that can strip it. Two deliveries over TLS pin the
// domain; a stripped STARTTLS then defers the next message with 4.7.4 and Postfix gets
// nothing; `mxward pin list` and `mxward check` show the pin; after `mxward pin forget`
// the retried message is delivered, in clear, as opportunistic TLS does.
func TestPinEndToEnd(t *testing.T) {
	testpeer.RequireTool(t, testpeer.PostfixPath)
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{Hostname: "mx.example.net", Deliver: true,
		Domains: []string{"example.net"}, ServerTLS: true})
	mitm := startStripSwitch(t, pf.Port())
	dns := dnstest.NewServer(t)
	dns.Add("example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"example.net. 300 IN MX 10 mx.example.net.", "mx.example.net. 300 IN A 127.0.0.1",
		// A validated root SOA for the resolver self-test, which `mxward check` runs
		// first (DANE-01); example.net stays unsigned.
		". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400")
	dns.SecureName(".")
	in := startInstanceDNS(t,
		fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q]\n[pinning]\nenabled = true\nmin_interval = \"1s\"\n", dns.Addr),
		fmt.Sprintf("retry_first = \"1h\"\n[delivery.transport]\n\"example.net\" = \"example.net:%d\"\n", mitm.port))
	send := func(rcpt string) {
		t.Helper()
		if out, err := in.mxward("Subject: pin test\n\nHello "+rcpt+".\n", "sendmail", "-f", "alice@example.test", rcpt); err != nil {
			t.Fatalf("sendmail %s: %v %s", rcpt, err, out)
		}
	}

	send("u1@example.net")
	rec := in.deliveryRecord("u1@example.net", "delivered")
	if rec["policy"] != "opportunistic" || rec["tls"] != "untrusted" {
		t.Fatalf("first delivery: %v", rec)
	}
	time.Sleep(1100 * time.Millisecond) // min_interval
	send("u2@example.net")
	rec = in.deliveryRecord("u2@example.net", "delivered")
	if rec["tls"] != "untrusted" {
		t.Fatalf("second delivery: %v", rec)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(in.logRecords("tls pin created")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no 'tls pin created' record:\n%s", in.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := in.logRecords("tls pin created")[0]; r["domain"] != "example.net" || r["component"] != "pin" {
		t.Errorf("tls pin created: %v", r)
	}

	// The attacker strips STARTTLS.
	mitm.set(true)
	send("u3@example.net")
	rec = in.deliveryRecord("u3@example.net", "deferred")
	if rec["policy"] != "pin" || !strings.Contains(fmt.Sprint(rec["reply"]), "451 4.7.4") ||
		!strings.Contains(fmt.Sprint(rec["reason"]), "starttls_not_offered: pinned: STARTTLS completed 2 times") {
		t.Errorf("delivery under attack: %v", rec)
	}
	if n := len(pf.Maildir(t, "u3@example.net")); n != 0 {
		t.Errorf("Postfix got %d messages through the stripping attacker", n)
	}

	out, _, code := runPin(t, "list", "--config", in.cfgPath, "--json")
	var list pinListJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Pins) != 1 ||
		list.Pins[0].Domain != "example.net" || list.Pins[0].State != "pinned" || list.Pins[0].Count != 2 {
		t.Fatalf("pin list: %d %v %s", code, err, out)
	}
	// check reports the pin and counts it against stripping, not against a forged MX.
	cmd := exec.Command(mxwardBin, "check", "--config", in.cfgPath, "--json", "--connect=false", "example.net")
	b, _ := cmd.Output()
	var rep struct {
		Pinning struct {
			Enabled bool   `json:"enabled"`
			State   string `json:"state"`
			Entry   *struct {
				Count int `json:"count"`
			} `json:"entry"`
		} `json:"pinning"`
		Threats []struct {
			Threat    string `json:"threat"`
			Protected bool   `json:"protected"`
		} `json:"threats"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, b)
	}
	if !rep.Pinning.Enabled || rep.Pinning.State != "pinned" || rep.Pinning.Entry == nil || rep.Pinning.Entry.Count != 2 ||
		len(rep.Threats) != 4 || !rep.Threats[1].Protected || rep.Threats[2].Protected {
		t.Errorf("check: %s", b)
	}

	// The operator decides the domain really dropped TLS, and forgets the pin.
	if out, _, code := runPin(t, "forget", "--config", in.cfgPath, "example.net"); code != 0 {
		t.Fatalf("pin forget: %d %s", code, out)
	}
	if out, err := in.mxward("", "queue", "retry", "--all"); err != nil {
		t.Fatalf("queue retry: %v %s", err, out)
	}
	rec = in.deliveryRecord("u3@example.net", "delivered")
	if rec["policy"] != "opportunistic" || rec["tls"] != "none" {
		t.Errorf("delivery after forget: %v", rec)
	}
	pf.WaitMaildir(t, "u3@example.net", 1, 30*time.Second)
	// A delivery in clear creates nothing.
	if out, _, _ := runPin(t, "list", "--config", in.cfgPath); out != "no pins\n" {
		t.Errorf("pins after a clear delivery:\n%s", out)
	}
}

// The pinning line of `mxward check DOMAIN` in each state.
func TestPrintPinning(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	e := &pin.Entry{Domain: "example.net", FirstSeen: now.Add(-72 * time.Hour), Count: 5,
		Expires: now.Add(30 * 24 * time.Hour), MXHosts: []string{"mx1.example.net"}, TLSVersions: []string{"TLSv1.3"}}
	for _, tc := range []struct {
		p    probe.Pinning
		want string
	}{
		{probe.Pinning{}, "pinning:  disabled here (pinning.enabled = false)\n"},
		{probe.Pinning{Enabled: true, State: "none"}, "pinning:  none (no TLS delivery recorded)\n"},
		{probe.Pinning{Enabled: true, State: "none", Error: "permission denied"}, "pinning:  UNREADABLE, delivery applies no pin: permission denied\n"},
		{probe.Pinning{Enabled: true, State: "pinned", Entry: e},
			"pinning:  pinned: STARTTLS completed 5 times since 2026-11-25T12:00:00Z, expires 2026-12-28T12:00:00Z; mx mx1.example.net, TLSv1.3\n"},
		{probe.Pinning{Enabled: true, State: "observed", Entry: e},
			"pinning:  observed: 5 TLS deliveries since 2026-11-25T12:00:00Z, not yet pinned (nothing enforced)\n"},
		{probe.Pinning{Enabled: true, State: "none", Entry: e}, "pinning:  none (the pin expired 2026-12-28T12:00:00Z)\n"},
	} {
		var b bytes.Buffer
		printPinning(&b, tc.p)
		if b.String() != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.p, b.String(), tc.want)
		}
	}
}
