package bench

// TestAccept measures how fast mxward and a private Postfix accept mail on the same
// machine in the same run, how much memory each uses, and what an idle connection
// costs each. docs/performance.md describes the method and records the figures.
//
//	MXWARD_BENCH=1 go test ./bench/ -run TestAccept -v -timeout 30m
//
// Settings (environment):
//
//	MXWARD_BENCH_MESSAGES   messages per cell and server and round (default 20000)
//	MXWARD_BENCH_DURATION   time limit per cell and server and round (default 10s)
//	MXWARD_BENCH_ROUNDS     rounds over the whole matrix; the median is reported (default 3)
//	MXWARD_BENCH_IDLE       idle connections opened to mxward (default 1000)
//	MXWARD_BENCH_POSTFIX_IDLE  idle connections opened to Postfix (default 100)
//	MXWARD_BENCH_OUT        file to write the markdown report to
//	MXWARD_BENCH_PROFILE    directory: also run a profiling pass and write CPU and
//	                        heap profiles of mxward and their pprof summaries there
//
// All traffic goes to 127.0.0.1, and every loop is bounded in count and time.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

const (
	sender    = "sender@client.bench.test"
	recipient = "rcpt@remote.bench.test" // not local to either server: relayed, so queued
	heloName  = "client.bench.test"

	sessionTimeout = 60 * time.Second
	sampleEvery    = 200 * time.Millisecond
	// settle is how long the servers are left alone between runs and before
	// memory is read, so one run's tail does not land in the next.
	settle = 500 * time.Millisecond
	// wantFiles is the open file limit the benchmark needs: the idle test holds
	// both ends of every connection to mxward in this process and mxward.
	wantFiles = 8192
)

type settings struct {
	messages    int
	duration    time.Duration
	rounds      int
	idle        int
	postfixIdle int
	out         string
	profileDir  string
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{
		messages: 20000, duration: 10 * time.Second, rounds: 3, idle: 1000, postfixIdle: 100,
		out: os.Getenv("MXWARD_BENCH_OUT"), profileDir: os.Getenv("MXWARD_BENCH_PROFILE"),
	}
	ints := []struct {
		env string
		dst *int
		max int
	}{
		{"MXWARD_BENCH_MESSAGES", &s.messages, 1_000_000},
		{"MXWARD_BENCH_ROUNDS", &s.rounds, 20},
		{"MXWARD_BENCH_IDLE", &s.idle, 5000},
		{"MXWARD_BENCH_POSTFIX_IDLE", &s.postfixIdle, 500},
	}
	for _, e := range ints {
		v := os.Getenv(e.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > e.max {
			t.Fatalf("%s=%q: want an integer from 1 to %d", e.env, v, e.max)
		}
		*e.dst = n
	}
	if v := os.Getenv("MXWARD_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			t.Fatalf("MXWARD_BENCH_DURATION=%q: want a duration up to 10m", v)
		}
		s.duration = d
	}
	return s
}

func TestAccept(t *testing.T) {
	if os.Getenv("MXWARD_BENCH") != "1" {
		t.Skip("acceptance benchmark against Postfix: set MXWARD_BENCH=1 to run it")
	}
	testpeer.RequireTool(t, testpeer.PostfixPath)
	set := loadSettings(t)
	raiseFileLimit(t, wantFiles)
	ctx, cancel := context.WithTimeout(context.Background(), testBudget(t))
	defer cancel()

	bin := buildMxward(t, t.TempDir(), "")
	rep := &report{set: set, machine: describeMachine()}
	perCreate, err := probeCreate(t.TempDir(), 1000)
	if err != nil {
		t.Fatalf("file creation probe: %v", err)
	}
	rep.machine = append(rep.machine, fmt.Sprintf("file creation probe: %.0f µs per new file in a new directory of the spool file system (1,000 files)", float64(perCreate)/float64(time.Microsecond)))
	t.Run("throughput", func(t *testing.T) { runThroughput(ctx, t, bin, set, rep) })
	t.Run("idle", func(t *testing.T) { runIdle(ctx, t, bin, set, rep) })

	out := rep.markdown()
	t.Logf("report:\n%s", out)
	if set.out != "" {
		if err := os.WriteFile(set.out, []byte(out), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	if set.profileDir != "" {
		t.Run("profile", func(t *testing.T) { runProfile(ctx, t, set) })
	}
}

// testBudget is the time the whole benchmark may take: the test deadline less a
// margin for stopping the servers, or 25 minutes without one.
func testBudget(t *testing.T) time.Duration {
	if d, ok := t.Deadline(); ok {
		return max(time.Until(d)-time.Minute, time.Minute)
	}
	return 25 * time.Minute
}

// cell is one point of the matrix.
type cell struct {
	size     int
	clients  int
	startTLS bool
}

func (c cell) String() string {
	mode := "plain"
	if c.startTLS {
		mode = "STARTTLS"
	}
	return fmt.Sprintf("%s, %d clients, %s", sizeString(c.size), c.clients, mode)
}

func sizeString(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func matrix() []cell {
	var cells []cell
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, clients := range []int{1, 32} {
			for _, startTLS := range []bool{false, true} {
				cells = append(cells, cell{size, clients, startTLS})
			}
		}
	}
	return cells
}

// clientTLS is the TLS configuration of every benchmark client. The servers'
// certificates are self-signed, as most MTA-to-MTA TLS is never verified.
// Key exchange is pinned to X25519: Go's default would offer the post-quantum
// hybrid X25519MLKEM768, which the OpenSSL 3.0 that Debian 12's Postfix links
// does not know, so mxward alone would pay for the bigger handshake. Session
// resumption is off (no session cache), as between MTAs that rarely meet.
func clientTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
}

// target is a server under test: where it listens and which process tree it is.
type target struct {
	name string
	addr string
	pid  int // mxward's process, Postfix's master
}

func (tg target) cpu() (time.Duration, error) { return treeCPU(tg.pid) }
func (tg target) memory() (memory, error)     { return treeMemory(tg.pid) }
func (tg target) String() string              { return tg.name }
func (tg target) session(c cell, msg []byte) session {
	return session{
		addr: tg.addr, helo: heloName, from: sender, to: recipient, message: msg,
		startTLS: c.startTLS, tls: clientTLS(), timeout: sessionTimeout,
	}
}

// runOnce is one server's run of one cell.
type runOnce struct {
	res       loadResult
	cpu       time.Duration // CPU time of the server's processes during the run
	clientCPU time.Duration // CPU time of this process (the load client) during the run
	// otherCPU is the CPU time the rest of the machine used during the run:
	// all busy time less the server's and the load client's. On a quiet
	// machine it is near zero; a high figure means the run was disturbed.
	otherCPU time.Duration
}

// Names of the targets in the report.
const (
	nameMxward      = "mxward"
	namePostfixHold = "Postfix (hold)"
	namePostfixDead = "Postfix (dead relay)"
)

func runThroughput(ctx context.Context, t *testing.T, bin string, set settings, rep *report) {
	mx := startMxward(t, bin, nil)
	pfHold := startPostfix(t, true)
	pfDead := startPostfix(t, false)
	targets := []target{mx.target(), postfixTarget(pfHold, namePostfixHold), postfixTarget(pfDead, namePostfixDead)}
	for _, tg := range targets {
		rep.targets = append(rep.targets, tg.name)
		desc, err := probeTLS(ctx, tg.addr)
		if err != nil {
			t.Fatalf("%s: STARTTLS probe: %v", tg, err)
		}
		rep.tls = append(rep.tls, fmt.Sprintf("%s: %s", tg, desc))
	}
	messages := map[int][]byte{}
	for _, c := range matrix() {
		messages[c.size] = makeMessage(c.size, sender, recipient)
	}

	rep.peaks = map[string]*peak{}
	accepted := map[string]int{}
	measure := func(tg target, c cell, maxMessages int, maxDuration time.Duration) runOnce {
		if ctx.Err() != nil {
			t.Fatalf("out of time: %v", ctx.Err())
		}
		cpu0, err := tg.cpu()
		if err != nil {
			t.Fatalf("%s: %v", tg, err)
		}
		stop := sampleMemory(tg, rep.peaks[tg.name])
		client0 := selfCPU()
		busy0 := machineBusy()
		res := load{
			session: tg.session(c, messages[c.size]), concurrency: c.clients,
			maxMessages: maxMessages, maxDuration: maxDuration,
		}.run(ctx)
		client1 := selfCPU()
		busy1 := machineBusy()
		stop()
		cpu1, err := tg.cpu()
		if err != nil {
			t.Fatalf("%s: %v", tg, err)
		}
		accepted[tg.name] += res.sent
		if res.failed > 0 {
			t.Errorf("%s, %v: %d of %d sessions failed; first: %v", tg, c, res.failed, res.failed+res.sent, res.firstErr)
		}
		time.Sleep(settle)
		r := runOnce{res: res, cpu: cpu1 - cpu0, clientCPU: client1 - client0}
		r.otherCPU = max(busy1-busy0-r.cpu-r.clientCPU, 0)
		return r
	}

	// Warm-up: start Postfix's smtpd and cleanup processes, grow mxward's heap
	// and spool index, and get TLS code paged in, on all, before anything counts.
	for _, tg := range targets {
		rep.peaks[tg.name] = &peak{}
		for _, c := range []cell{{1 << 10, 32, false}, {1 << 10, 32, true}} {
			r := measure(tg, c, 5000, 3*time.Second)
			t.Logf("warm-up %s, %v: %d messages, %.0f/s", tg, c, r.res.sent, r.res.rate())
		}
	}

	// Every round runs every cell on every target, in an order that rotates
	// from cell to cell and round to round, so that no target always runs
	// first (on a fresh page cache) or last (after the others' writeback).
	cells := matrix()
	rep.runs = map[cell]map[string][]runOnce{}
	for round := range set.rounds {
		for i, c := range cells {
			k := (round + i) % len(targets)
			order := append(slices.Clone(targets[k:]), targets[:k]...)
			for _, tg := range order {
				r := measure(tg, c, set.messages, set.duration)
				if rep.runs[c] == nil {
					rep.runs[c] = map[string][]runOnce{}
				}
				rep.runs[c][tg.name] = append(rep.runs[c][tg.name], r)
				t.Logf("round %d, %v, %s: %d messages in %v, %.0f/s, CPU ms/message: server %.3f, load client %.3f; other processes %.2f cores",
					round+1, c, tg, r.res.sent, r.res.elapsed.Round(time.Millisecond), r.res.rate(),
					cpuPerMessage(r), float64(r.clientCPU)/float64(time.Millisecond)/float64(max(r.res.sent, 1)), otherCores(r))
			}
		}
	}

	hwm, err := statusKiB(mx.pid, "VmHWM")
	if err != nil {
		t.Fatalf("mxward VmHWM: %v", err)
	}
	rep.mxwardHWM = hwm

	// Every server must have queued exactly what it acknowledged; the held
	// Postfix must have held all of it, and nothing may have left the machine.
	if n, err := countFiles(filepath.Join(mx.dataDir, "spool", "messages")); err != nil {
		t.Errorf("count mxward spool: %v", err)
	} else if n != accepted[nameMxward] {
		t.Errorf("mxward spool holds %d messages, %d were acknowledged", n, accepted[nameMxward])
	} else {
		rep.checks = append(rep.checks, fmt.Sprintf("mxward's spool holds all %d acknowledged messages", n))
	}
	if err := mx.checkLoopbackOnly(); err != nil {
		t.Error(err)
	} else {
		rep.checks = append(rep.checks, "every delivery attempt mxward logged went to 127.0.0.1")
	}
	if q, err := postfixQueues(pfHold); err != nil {
		t.Errorf("count Postfix queue: %v", err)
	} else if q["hold"] != accepted[namePostfixHold] || q["incoming"]+q["active"]+q["deferred"] != 0 {
		t.Errorf("%s: queues %v, %d messages were acknowledged", namePostfixHold, q, accepted[namePostfixHold])
	} else {
		rep.checks = append(rep.checks, fmt.Sprintf("%s: the hold queue holds all %d acknowledged messages; incoming, active and deferred are empty", namePostfixHold, q["hold"]))
	}
	if q, err := postfixQueues(pfDead); err != nil {
		t.Errorf("count Postfix queue: %v", err)
	} else if n := q["incoming"] + q["active"] + q["deferred"]; n != accepted[namePostfixDead] || q["hold"] != 0 {
		t.Errorf("%s: queues %v, %d messages were acknowledged", namePostfixDead, q, accepted[namePostfixDead])
	} else {
		rep.checks = append(rep.checks, fmt.Sprintf("%s: its queues hold all %d acknowledged messages (%d deferred)", namePostfixDead, n, q["deferred"]))
	}
}

// cpuPerMessage is the server's CPU time per accepted message, in milliseconds.
func cpuPerMessage(r runOnce) float64 {
	if r.res.sent == 0 {
		return 0
	}
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.res.sent)
}

// peak is the highest memory seen for a server, each figure maximised on its own.
type peak struct {
	mu  sync.Mutex
	rss memory // the sample with the highest rssKiB
	pss int64
	err error
}

// sampleMemory samples tg's memory every sampleEvery into p until the returned
// function is called. Every server is sampled by the same code at the same rate,
// so the sampler's own cost falls equally on all.
func sampleMemory(tg target, p *peak) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	take := func() {
		m, err := tg.memory()
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			if p.err == nil {
				p.err = err
			}
			return
		}
		if m.rssKiB > p.rss.rssKiB {
			p.rss = m
		}
		p.pss = max(p.pss, m.pssKiB)
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			take()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// idleResult is the memory cost of idle connections to one server.
type idleResult struct {
	server        string
	conns         int
	startTLS      bool
	before, after memory
}

func (r idleResult) perConn(kib func(memory) int64) float64 {
	return float64(kib(r.after)-kib(r.before)) / float64(r.conns)
}

func runIdle(ctx context.Context, t *testing.T, bin string, set settings, rep *report) {
	for _, startTLS := range []bool{false, true} {
		mode := "plain"
		if startTLS {
			mode = "starttls"
		}
		t.Run("mxward/"+mode, func(t *testing.T) {
			mx := startMxward(t, bin, nil)
			rep.idle = append(rep.idle, measureIdle(ctx, t, mx.target(), set.idle, startTLS))
		})
		t.Run("postfix/"+mode, func(t *testing.T) {
			pf := startPostfix(t, true)
			rep.idle = append(rep.idle, measureIdle(ctx, t, postfixTarget(pf, "Postfix"), set.postfixIdle, startTLS))
		})
	}
}

// measureIdle opens n connections to a freshly started server, each reading the
// greeting (and with startTLS also completing STARTTLS and EHLO) and then idling,
// and reads the server's memory before and after. One complete session of each
// kind runs first, so one-time costs (the first TLS handshake, lazily
// initialised tables) are in "before" rather than spread over the connections.
func measureIdle(ctx context.Context, t *testing.T, tg target, n int, startTLS bool) idleResult {
	msg := makeMessage(1<<10, sender, recipient)
	for _, c := range []cell{{1 << 10, 1, false}, {1 << 10, 1, true}} {
		s := tg.session(c, msg)
		if err := s.send(ctx, &net.Dialer{}); err != nil {
			t.Fatalf("%s: warm-up session: %v", tg, err)
		}
	}
	time.Sleep(2 * settle)
	before, err := tg.memory()
	if err != nil {
		t.Fatal(err)
	}
	conns, err := openIdle(ctx, tg.addr, n, startTLS)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		t.Fatalf("%s: %d of %d idle connections open: %v", tg, len(conns), n, err)
	}
	time.Sleep(4 * settle)
	after, err := tg.memory()
	if err != nil {
		t.Fatal(err)
	}
	r := idleResult{server: tg.name, conns: n, startTLS: startTLS, before: before, after: after}
	t.Logf("%s, %d idle connections (STARTTLS %v): RSS %d -> %d KiB, PSS %d -> %d KiB, %d -> %d processes; %.1f KiB RSS per connection",
		tg, n, startTLS, before.rssKiB, after.rssKiB, before.pssKiB, after.pssKiB, before.procs, after.procs,
		r.perConn(func(m memory) int64 { return m.rssKiB }))
	return r
}

// openIdle opens n idle connections, a few at a time so that the listen queue
// never overflows, and returns those it opened.
func openIdle(ctx context.Context, addr string, n int, startTLS bool) ([]net.Conn, error) {
	const parallel = 16
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		conns    []net.Conn
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan struct{})
	d := &net.Dialer{Timeout: 10 * time.Second}
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := dialIdle(ctx, d, addr, startTLS, clientTLS(), heloName)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					cancel()
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	for range n {
		select {
		case next <- struct{}{}:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
	if firstErr == nil && len(conns) < n {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}

// probeTLS completes one STARTTLS handshake and describes what was negotiated,
// so the report shows that every server did the same cryptographic work.
func probeTLS(ctx context.Context, addr string) (string, error) {
	c, err := dialIdle(ctx, &net.Dialer{Timeout: 10 * time.Second}, addr, true, clientTLS(), heloName)
	if err != nil {
		return "", err
	}
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	if !ok {
		return "", errors.New("no TLS connection")
	}
	st := tc.ConnectionState()
	key := "?"
	if len(st.PeerCertificates) > 0 {
		key = st.PeerCertificates[0].PublicKeyAlgorithm.String()
		if sa := st.PeerCertificates[0].SignatureAlgorithm; sa != 0 {
			key += " certificate (" + sa.String() + ")"
		}
	}
	return fmt.Sprintf("%s, %s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, key), nil
}

// mxwardProc is a running mxward started by the benchmark.
type mxwardProc struct {
	addr    string
	pid     int
	dataDir string
	logPath string // mxward's standard output and error
}

func (m *mxwardProc) target() target { return target{name: nameMxward, addr: m.addr, pid: m.pid} }

// logTail returns the end of mxward's log, for failure messages.
func (m *mxwardProc) logTail() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = append([]byte("..."), b[len(b)-keep:]...)
	}
	return string(b)
}

// checkLoopbackOnly reads mxward's log and reports an error if any delivery
// record names a host or address other than 127.0.0.1: the configuration sends
// everything to a closed loopback port, and this makes sure it did.
func (m *mxwardProc) checkLoopbackOnly() error {
	f, err := os.Open(m.logPath)
	if err != nil {
		return fmt.Errorf("read mxward log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			MX string `json:"mx"`
			IP string `json:"ip"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		for _, v := range []string{rec.MX, rec.IP} {
			if v != "" && v != "127.0.0.1" {
				return fmt.Errorf("mxward logged a delivery attempt to %q: %s", v, sc.Text())
			}
		}
	}
	return sc.Err()
}

// mxwardConfig is the benchmark's configuration: one inbound listener with
// STARTTLS on loopback, loopback trusted for relay (the load client sends to a
// remote domain, so every message is queued for outbound delivery), connection
// limits high enough for the idle test, and logging only of warnings: a
// per-message "connect"/"queued" line is a cost this configuration chooses not
// to pay. The "ready" record is an info record, so readiness is seen by the
// banner instead.
//
// Outbound delivery goes to a smarthost on a loopback port nobody listens on,
// and the resolver is a loopback port too, so mxward never looks up the
// recipient domain or reaches beyond the machine: each message is tried once,
// refused at connect, and deferred (which mxward logs at warn level).
func mxwardConfig(dir string, port, deadPort int) string {
	return fmt.Sprintf(`hostname = "mx.bench.test"
data_dir = %q
log_format = "json"
log_level = "warn"

[[listener]]
name = "inbound"
address = "127.0.0.1:%d"
role = "inbound"
tls = "starttls"

[relay]
trusted_networks = ["127.0.0.0/8"]

[limits]
max_connections = 2000
max_connections_per_ip = 2000

[sendmail]
socket = %q

[admin]
address = ""

[dns]
mode = "trust-ad"
resolvers = ["127.0.0.1:%d"]

[delivery]
smarthost = "[127.0.0.1]:%d"
`, filepath.Join(dir, "data"), port, filepath.Join(dir, "sendmail.sock"), deadPort, deadPort)
}

// startMxward starts bin with the benchmark configuration in a new temporary
// directory and waits for its greeting. It is stopped with SIGTERM when the test
// ends.
func startMxward(t *testing.T, bin string, env []string) *mxwardProc {
	t.Helper()
	return runMxward(t, bin, env, func(dir string, port int) string { return mxwardConfig(dir, port, freePort(t)) })
}

// runMxward starts bin with the configuration config writes for a new temporary
// directory and the inbound port, waits for its greeting, and stops it with SIGTERM
// when the test ends.
func runMxward(t *testing.T, bin string, env []string, config func(dir string, port int) string) *mxwardProc {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "mxward.toml")
	if err := os.WriteFile(cfg, []byte(config(dir, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mxwardProc{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "mxward.log"),
	}
	logFile, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mxward: %v", err)
	}
	m.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			t.Errorf("mxward exited before the test ended:\n%s", m.logTail())
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("mxward did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("mxward log:\n%s", m.logTail())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("mxward exited during start-up:\n%s", m.logTail())
		default:
		}
		err := greets(m.addr)
		if err == nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mxward not greeting on %s after 20s (%v):\n%s", m.addr, err, m.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// greets connects to addr, expects a 220 greeting and says QUIT.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cc := newConn(c)
	if _, err := cc.expect(220); err != nil {
		return err
	}
	_, err = cc.cmd(221, "QUIT")
	return err
}

// startPostfix starts a private Postfix that accepts relay from loopback and
// offers STARTTLS. Its relay host is a closed loopback port, so it can never
// deliver anything.
//
// With hold, smtpd tells cleanup to put every message on the hold queue at the
// end of DATA: qmgr never sees it and no delivery process runs, so this instance
// does nothing but accept. The queue file is written, moved to hold/ and fsynced
// before cleanup answers smtpd, so the 250 is as durable as mxward's.
//
// Without hold, qmgr hands every message to smtp(8), whose connection to the
// relay host is refused, and the message is deferred: the same work mxward does
// when its next hop is down.
//
// Both restore Postfix's own defaults where the test harness shortens them for
// interop tests (queue scans every second, TLS logging), turn off inflow flow
// control (in_flow_delay), which paces smtpd by qmgr's progress and has no
// counterpart in mxward, and raise the process limit from 100 to 200 so the idle
// test's 100 connections get an smtpd each.
func startPostfix(t *testing.T, hold bool) *testpeer.Postfix {
	t.Helper()
	mainCF := map[string]string{
		"default_process_limit":     "200",
		"in_flow_delay":             "0",
		"smtpd_tls_loglevel":        "0",
		"smtpd_tls_received_header": "no",
		"queue_run_delay":           "300s",
		"minimal_backoff_time":      "300s",
		"maximal_backoff_time":      "4000s",
	}
	if hold {
		mainCF["smtpd_end_of_data_restrictions"] = "check_client_access static:HOLD"
	}
	return testpeer.StartPostfix(t, testpeer.PostfixOptions{
		Hostname:  "postfix.bench.test",
		RelayHost: fmt.Sprintf("[127.0.0.1]:%d", freePort(t)),
		ServerTLS: true,
		MainCF:    mainCF,
	})
}

func postfixTarget(pf *testpeer.Postfix, name string) target {
	return target{name: name, addr: pf.Addr(), pid: pf.MasterPID()}
}

// postfixQueues counts the queue files in each of an instance's queues.
func postfixQueues(pf *testpeer.Postfix) (map[string]int, error) {
	out, err := exec.Command("/usr/sbin/postconf", "-c", pf.ConfigDir(), "-h", "queue_directory").Output()
	if err != nil {
		return nil, fmt.Errorf("postconf queue_directory: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	counts := map[string]int{}
	for _, q := range []string{"incoming", "active", "deferred", "hold"} {
		n, err := countFiles(filepath.Join(dir, q))
		if err != nil {
			return nil, err
		}
		counts[q] = n
	}
	return counts, nil
}

// countFiles counts the regular files below dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n, err
}

// buildMxward builds the mxward command into dir. overlay, if not empty, is a
// go build -overlay file that adds files to the build without touching the tree.
func buildMxward(t *testing.T, dir, overlay string) string {
	t.Helper()
	bin := filepath.Join(dir, "mxward")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	out, err := exec.Command("go", append(args, "mxward/cmd/mxward")...).CombinedOutput()
	if err != nil {
		t.Fatalf("build mxward: %v\n%s", err, out)
	}
	return bin
}

// raiseFileLimit raises this process's soft open file limit to want (within the
// hard limit); mxward, started from here, inherits it.
func raiseFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("get open file limit: %v", err)
	}
	if lim.Cur >= want {
		return
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise open file limit to %d: %v", lim.Cur, err)
	}
	if lim.Cur < want {
		t.Logf("open file limit is %d (hard limit); the idle test may run out", lim.Cur)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// describeMachine returns what the report says about the machine and software.
func describeMachine() []string {
	lines := []string{fmt.Sprintf("CPUs (nproc): %d", runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib, err := parseKiBField(b, "MemTotal"); err == nil {
			lines = append(lines, fmt.Sprintf("memory: %.1f GiB", float64(kib)/(1<<20)))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		lines = append(lines, "kernel: Linux "+strings.TrimSpace(string(b)))
	}
	lines = append(lines, "Go: "+runtime.Version())
	if out, err := exec.Command("/usr/sbin/postconf", "-d", "-h", "mail_version").Output(); err == nil {
		lines = append(lines, "Postfix: "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("openssl", "version").Output(); err == nil {
		lines = append(lines, "OpenSSL: "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("df", "-T", os.TempDir()).Output(); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] != "Filesystem" {
				lines = append(lines, fmt.Sprintf("spool file system: %s (%s, %s)", f[1], f[0], os.TempDir()))
			}
		}
	}
	return lines
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// selfCPU returns the CPU time this process has used: the load client's cost.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probeCreate creates n empty files in a new directory below dir and returns the
// mean time per file. mxward and Postfix each create one new file per message, and on some
// file systems (ext4 without a journal after many recent deletions, for one)
// that costs far more than usual; the report shows the figure so such a machine
// is recognised. The files stay until the test's temporary directory is
// removed: deleting them now would itself slow later creations down.
func probeCreate(dir string, n int) (time.Duration, error) {
	d := filepath.Join(dir, "create-probe")
	if err := os.Mkdir(d, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		f, err := os.OpenFile(filepath.Join(d, strconv.Itoa(i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// machineBusy returns the CPU time all CPUs have spent other than idle or
// waiting for I/O since boot, from the first line of /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	busy, err := parseCPULine(b)
	if err != nil {
		return 0
	}
	return busy
}

// parseCPULine parses the aggregate "cpu" line of /proc/stat into busy time:
// user, nice, system, irq, softirq and steal; not idle or iowait. Guest time is
// already part of user time.
func parseCPULine(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: unexpected first line %q", line)
	}
	var ticks uint64
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: field %d: %w", i+1, err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		ticks += n
	}
	if ticks > uint64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("parse /proc/stat: %d ticks is out of range", ticks)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// otherCores is the other processes' CPU use during a run, in cores.
func otherCores(r runOnce) float64 {
	if r.res.elapsed <= 0 {
		return 0
	}
	return r.otherCPU.Seconds() / r.res.elapsed.Seconds()
}
