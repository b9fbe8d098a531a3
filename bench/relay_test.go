package bench

// TestRelay measures relay throughput end to end: how fast mxward and a private
// Postfix, on the same machine in the same run, accept mail from local clients and
// deliver it over STARTTLS to a next hop, until the next hop has every message.
// docs/performance.md ("Relay throughput (end to end)") describes the method and
// records the figures.
//
//	MXWARD_BENCH=1 go test ./bench/ -run TestRelay -v -timeout 40m
//
// Settings (environment):
//
//	MXWARD_BENCH_MESSAGES   messages per server and round (default 20000)
//	MXWARD_BENCH_DURATION   time limit of the load per server and round (default 3m)
//	MXWARD_BENCH_DRAIN      time limit, after the load, for delivering what was accepted (default 3m)
//	MXWARD_BENCH_ROUNDS     rounds over the servers, the order rotating (default 1)
//	MXWARD_BENCH_CLIENTS    concurrent clients (default 32)
//	MXWARD_BENCH_INBOUND_STARTTLS  1: the clients use STARTTLS too (default: plaintext inbound)
//	MXWARD_BENCH_RELAY_OUT      file to write the markdown report to
//	MXWARD_BENCH_RELAY_PROFILE  directory to keep the profiling pass's files in
//	                            (default: a temporary directory; the summaries
//	                            are in the test log either way)
//
// All traffic goes to 127.0.0.1, and every wait is bounded in count and time.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

type relaySettings struct {
	messages   int
	duration   time.Duration
	drain      time.Duration
	rounds     int
	clients    int
	inboundTLS bool
	out        string
	profileDir string
}

func loadRelaySettings(t *testing.T) relaySettings {
	t.Helper()
	s := relaySettings{
		messages: 20000, duration: 3 * time.Minute, drain: 3 * time.Minute, rounds: 1, clients: 32,
		inboundTLS: os.Getenv("MXWARD_BENCH_INBOUND_STARTTLS") == "1",
		out:        os.Getenv("MXWARD_BENCH_RELAY_OUT"), profileDir: os.Getenv("MXWARD_BENCH_RELAY_PROFILE"),
	}
	ints := []struct {
		env string
		dst *int
		max int
	}{
		{"MXWARD_BENCH_MESSAGES", &s.messages, 1_000_000},
		{"MXWARD_BENCH_ROUNDS", &s.rounds, 20},
		{"MXWARD_BENCH_CLIENTS", &s.clients, 500},
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
	durs := []struct {
		env string
		dst *time.Duration
	}{
		{"MXWARD_BENCH_DURATION", &s.duration},
		{"MXWARD_BENCH_DRAIN", &s.drain},
	}
	for _, e := range durs {
		v := os.Getenv(e.env)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			t.Fatalf("%s=%q: want a duration up to 10m", e.env, v)
		}
		*e.dst = d
	}
	return s
}

// Names of the relay benchmark's servers.
const (
	nameRelayMxward     = "mxward"
	nameRelayMxwardInfo = "mxward (log_level info)"
	nameRelayPostfix    = "Postfix"
	nameRelayPostfixTLS = "Postfix (smtp_tls_connection_reuse)"
)

// warmUpMessages is each server's warm-up load before anything counts.
const warmUpMessages = 2000

// relayTarget is a server under test with its own sink.
type relayTarget struct {
	target
	sink *sink
	// queued returns how many messages the server still holds.
	queued func() (int, error)
}

// relayRun is one server's run of the load.
type relayRun struct {
	res        loadResult    // the load: what was accepted, and how fast
	duringLoad int           // messages the sink had received when the load ended
	e2e        time.Duration // load start to the sink's acknowledgement of the run's last message
	drained    time.Duration // load start to the server's queue being empty
	cpu        time.Duration // the server's CPU time, load start to empty queue
	// The benchmark process's CPU time over the same span, split by profiler
	// label: the load client, the sink, and the rest (the Go runtime's
	// garbage collector, memory sampling, waiting). Without a profile (the
	// profiler was busy) only selfCPU is known.
	selfCPU, clientCPU, sinkCPU time.Duration
	profiled                    bool
	otherCPU                    time.Duration // the rest of the machine
	sink                        sinkStats     // what the sink received in this run
}

func (r relayRun) e2eRate() float64 {
	if r.e2e <= 0 {
		return 0
	}
	return float64(r.res.sent) / r.e2e.Seconds()
}

func (r relayRun) cpuPerMessage() float64 {
	return float64(r.cpu) / float64(time.Millisecond) / float64(max(r.res.sent, 1))
}

func TestRelay(t *testing.T) {
	if os.Getenv("MXWARD_BENCH") != "1" {
		t.Skip("relay benchmark against Postfix: set MXWARD_BENCH=1 to run it")
	}
	testpeer.RequireTool(t, testpeer.PostfixPath)
	set := loadRelaySettings(t)
	raiseFileLimit(t, wantFiles)
	ctx, cancel := context.WithTimeout(context.Background(), testBudget(t))
	defer cancel()

	bin := buildMxward(t, t.TempDir(), "")
	cert, err := testpeer.NewCert("sink.bench.test")
	if err != nil {
		t.Fatal(err)
	}
	newSink := func() *sink {
		s, err := startSink("sink.bench.test", sinkTLS(cert.TLS))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		return s
	}
	rep := &relayReport{set: set, machine: describeMachine(), runs: map[string][]relayRun{}, peaks: map[string]*peak{}, hwm: map[string]int64{}}
	perCreate, err := probeCreate(t.TempDir(), 1000)
	if err != nil {
		t.Fatalf("file creation probe: %v", err)
	}
	rep.machine = append(rep.machine, fmt.Sprintf("file creation probe: %.0f µs per new file in a new directory of the spool file system (1,000 files)", float64(perCreate)/float64(time.Microsecond)))

	// Every server gets its own sink, so each run's count is its server's.
	var targets []relayTarget
	mxs := map[string]*mxwardProc{}
	for _, v := range []struct{ name, level string }{{nameRelayMxward, "warn"}, {nameRelayMxwardInfo, "info"}} {
		sk := newSink()
		mx := startRelayMxward(t, bin, sk.port(), set.clients, v.level, nil)
		mxs[v.name] = mx
		targets = append(targets, mx.relayTarget(v.name, sk))
	}
	pfs := map[string]*testpeer.Postfix{}
	for _, v := range []struct {
		name     string
		tlsReuse bool
	}{{nameRelayPostfix, false}, {nameRelayPostfixTLS, true}} {
		sk := newSink()
		pf := startRelayPostfix(t, sk.port(), set.clients, v.tlsReuse)
		pfs[v.name] = pf
		tg, err := postfixRelayTarget(pf, v.name, sk)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	for _, tg := range targets {
		rep.targets = append(rep.targets, tg.name)
		rep.peaks[tg.name] = &peak{}
	}

	msg := makeMessage(1<<10, sender, recipient)
	accepted := map[string]int{}
	run := func(tg relayTarget, n int) relayRun {
		if ctx.Err() != nil {
			t.Fatalf("out of time: %v", ctx.Err())
		}
		r, err := measureRelay(ctx, tg, set, msg, n, rep.peaks[tg.name])
		accepted[tg.name] += r.res.sent
		if r.res.failed > 0 {
			t.Errorf("%s: %d of %d sessions failed; first: %v", tg.name, r.res.failed, r.res.failed+r.res.sent, r.res.firstErr)
		}
		if err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
		time.Sleep(settle)
		return r
	}

	// Warm-up: Postfix's smtpd, cleanup and smtp processes started, mxward's
	// heap grown, TLS code paged in, on every server before anything counts.
	for _, tg := range targets {
		r := run(tg, min(warmUpMessages, set.messages))
		t.Logf("warm-up %s: %d messages, accepted %.0f/s, end to end %.0f/s", tg.name, r.res.sent, r.res.rate(), r.e2eRate())
	}
	for round := range set.rounds {
		k := round % len(targets)
		for _, tg := range append(slices.Clone(targets[k:]), targets[:k]...) {
			r := run(tg, set.messages)
			rep.runs[tg.name] = append(rep.runs[tg.name], r)
			t.Logf("round %d, %s: %d messages; accepted in %v (%.0f/s); end to end %v (%.0f/s), %d delivered during the load; server CPU %.3f ms/message; sink CPU %v, load client CPU %v; %d outbound connections",
				round+1, tg.name, r.res.sent, r.res.elapsed.Round(time.Millisecond), r.res.rate(), r.e2e.Round(time.Millisecond), r.e2eRate(),
				r.duringLoad, r.cpuPerMessage(), r.sinkCPU.Round(time.Millisecond), r.clientCPU.Round(time.Millisecond), r.sink.sessions)
		}
	}

	for name, mx := range mxs {
		hwm, err := statusKiB(mx.pid, "VmHWM")
		if err != nil {
			t.Fatalf("%s VmHWM: %v", name, err)
		}
		rep.hwm[name] = hwm
	}
	rep.checks = checkRelay(t, targets, mxs, pfs, accepted)

	if ctx.Err() == nil {
		rep.profile = runRelayProfile(ctx, t, set, msg)
	}

	out := rep.markdown()
	t.Logf("report:\n%s", out)
	if set.out != "" {
		if err := os.WriteFile(set.out, []byte(out), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
}

// measureRelay sends n messages (or as many as set.duration allows) to tg, waits
// until its sink has all of them and its queue is empty, and reads what it cost.
func measureRelay(ctx context.Context, tg relayTarget, set relaySettings, msg []byte, n int, pk *peak) (relayRun, error) {
	var r relayRun
	before := tg.sink.snapshot()
	cpu0, err := tg.cpu()
	if err != nil {
		return r, err
	}
	self0, busy0 := selfCPU(), machineBusy()
	var prof bytes.Buffer
	r.profiled = pprof.StartCPUProfile(&prof) == nil
	stopSampling := sampleMemoryEvery(tg.target, pk, relaySampleEvery)

	start := time.Now()
	pprof.Do(ctx, pprof.Labels("role", "client"), func(ctx context.Context) {
		r.res = load{
			session: session{
				addr: tg.addr, helo: heloName, from: sender, to: recipient, message: msg,
				startTLS: set.inboundTLS, tls: clientTLS(), timeout: sessionTimeout,
			},
			concurrency: set.clients, maxMessages: n, maxDuration: set.duration,
		}.run(ctx)
	})
	r.duringLoad = tg.sink.snapshot().messages - before.messages

	dctx, cancel := context.WithTimeout(ctx, set.drain)
	defer cancel()
	last, waitErr := tg.sink.waitMessages(dctx, before.messages+r.res.sent)
	if waitErr == nil {
		r.e2e = last.Sub(start)
		waitErr = waitQueueEmpty(dctx, tg)
		r.drained = time.Since(start)
	}

	stopSampling()
	if r.profiled {
		pprof.StopCPUProfile()
	}
	cpu1, err := tg.cpu()
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	r.selfCPU = selfCPU() - self0
	r.otherCPU = max(machineBusy()-busy0-r.cpu-r.selfCPU, 0)
	if r.profiled {
		byRole, total, err := cpuByLabel(prof.Bytes(), "role")
		if err != nil {
			return r, fmt.Errorf("read the benchmark's own CPU profile: %w", err)
		}
		// The profile samples the process's CPU time; its shares are applied
		// to the exact total from getrusage.
		if total > 0 {
			share := func(d time.Duration) time.Duration {
				return time.Duration(float64(r.selfCPU) * float64(d) / float64(total))
			}
			r.clientCPU, r.sinkCPU = share(byRole["client"]), share(byRole["sink"])
		}
	}
	r.sink = tg.sink.snapshot().minus(before)
	if waitErr != nil {
		return r, fmt.Errorf("%d accepted, %d delivered: %w", r.res.sent, r.sink.messages, waitErr)
	}
	if r.sink.messages != r.res.sent {
		return r, fmt.Errorf("the sink received %d messages, %d were accepted", r.sink.messages, r.res.sent)
	}
	return r, nil
}

// relaySampleEvery is how often the relay benchmark samples the servers' memory.
// Reading the smaps of a hundred Postfix processes costs the benchmark process
// tens of milliseconds of CPU, taken from the server on a small machine; once a
// second keeps that cost small, and the memory of these servers changes slowly.
const relaySampleEvery = time.Second

// sampleMemoryEvery is sampleMemory with its own interval.
func sampleMemoryEvery(tg target, p *peak, every time.Duration) (stop func()) {
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
		tick := time.NewTicker(every)
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

// waitQueueEmpty waits until tg holds no message: the sink may acknowledge the
// last message a moment before the server has removed it from its queue.
func waitQueueEmpty(ctx context.Context, tg relayTarget) error {
	for {
		n, err := tg.queued()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d messages still queued: %w", n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkRelay checks, after the runs, that every server delivered exactly what it
// accepted, all of it over TLS to the sink on 127.0.0.1, at the first attempt.
// It returns what it verified, for the report.
func checkRelay(t *testing.T, targets []relayTarget, mxs map[string]*mxwardProc, pfs map[string]*testpeer.Postfix, accepted map[string]int) []string {
	t.Helper()
	var checks []string
	for _, tg := range targets {
		st := tg.sink.snapshot()
		ok := true
		if st.messages != accepted[tg.name] {
			t.Errorf("%s: the sink received %d messages, %d were accepted", tg.name, st.messages, accepted[tg.name])
			ok = false
		}
		if st.plaintext != 0 {
			t.Errorf("%s: %d messages reached the sink without TLS", tg.name, st.plaintext)
			ok = false
		}
		if want := sender + " > " + recipient; st.envelopes[want] != st.messages {
			t.Errorf("%s: envelopes at the sink %v, want all %s", tg.name, st.envelopes, want)
			ok = false
		}
		if st.failures > 0 {
			t.Errorf("%s: %d connections to the sink failed; first: %v", tg.name, st.failures, st.firstFail)
			ok = false
		}
		if ok {
			checks = append(checks, fmt.Sprintf("%s: the sink received exactly the %d messages it acknowledged (warm-up included), every one after STARTTLS (%s), with the envelope sent; no connection to the sink failed",
				tg.name, st.messages, describeCounts(st.tls)))
		}
		if n, err := tg.queued(); err != nil || n != 0 {
			t.Errorf("%s: %d messages still queued (%v)", tg.name, n, err)
		} else {
			checks = append(checks, fmt.Sprintf("%s: its queue is empty", tg.name))
		}
	}

	for _, name := range slices.Sorted(maps.Keys(mxs)) {
		mx := mxs[name]
		f, err := os.Open(mx.logPath)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		l, err := summariseMxwardLog(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(l.offLoopback) > 0 {
			t.Errorf("%s logged deliveries beyond 127.0.0.1: %q", name, l.offLoopback)
		}
		if len(l.notEncrypted) > 0 {
			t.Errorf("%s logged deliveries without TLS: %q", name, l.notEncrypted)
		}
		switch name {
		case nameRelayMxwardInfo:
			if l.deliveries != accepted[name] || l.results["delivered"] != l.deliveries {
				t.Errorf("%s: %d delivery records (%v), %d messages accepted", name, l.deliveries, l.results, accepted[name])
			} else {
				checks = append(checks, fmt.Sprintf("%s: its log has one delivery record per message (%d), every one result \"delivered\", ip 127.0.0.1, TLS: %s; %d log records in all (%.1f per message)",
					name, l.deliveries, describeCounts(l.tls), l.records, float64(l.records)/float64(max(accepted[name], 1))))
			}
		default:
			// At warn level a delivered message leaves no record; any delivery
			// record is a deferral or a bounce.
			if l.deliveries != 0 {
				t.Errorf("%s: %d delivery records at warn level (%v): something was deferred", name, l.deliveries, l.results)
			} else {
				checks = append(checks, fmt.Sprintf("%s: no delivery record at warn level, so no deferral and no bounce (%d log records in all)", name, l.records))
			}
		}
	}

	for _, tg := range targets {
		pf := pfs[tg.name]
		if pf == nil {
			continue
		}
		relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", tg.sink.port())
		p := summarisePostfixLog(pf.Log(), relay)
		if p.statuses["sent"] != accepted[tg.name] || len(p.statuses) != 1 || len(p.offRelay) > 0 {
			t.Errorf("%s: delivery statuses %v (relay other than %s: %q), %d messages accepted", tg.name, p.statuses, relay, p.offRelay, accepted[tg.name])
		} else {
			checks = append(checks, fmt.Sprintf("%s: its maillog has status=sent, relay=%s for every message (%d) and no other status", tg.name, relay, p.statuses["sent"]))
		}
		if p.nWarnings > 0 {
			t.Logf("%s logged %d warnings or errors, first: %q", tg.name, p.nWarnings, p.warnings)
			checks = append(checks, fmt.Sprintf("%s logged %d warnings or errors; first: %q", tg.name, p.nWarnings, p.warnings[0]))
		}
	}
	return checks
}

// relayMxwardConfig is mxward's configuration for the relay benchmark: one
// inbound listener with loopback trusted for relay, and all outbound mail to the
// sink through a smarthost, STARTTLS required (tls_level "encrypt": encrypted,
// certificate not verified, as the sink's is self-signed). The resolver is a
// loopback port nobody listens on, so mxward never looks anything up and never
// reaches beyond the machine.
//
// Outbound concurrency: as many sessions to the destination as there are clients
// (32 by default) and twice that in all; messages per session stay at the
// default, 50. Inbound, one client address may hold four times as many
// connections as there are clients (the default, 20, would refuse the load).
// log_level is "warn" or "info": at warn, a delivered message leaves no record.
func relayMxwardConfig(dir string, port, sinkPort, deadPort, clients int, logLevel string) string {
	return fmt.Sprintf(`hostname = "mx.bench.test"
data_dir = %q
log_format = "json"
log_level = %q

[[listener]]
name = "inbound"
address = "127.0.0.1:%d"
role = "inbound"
tls = "starttls"

[relay]
trusted_networks = ["127.0.0.0/8"]

[limits]
max_connections_per_ip = %d

[sendmail]
socket = %q

[admin]
address = ""

[dns]
mode = "trust-ad"
resolvers = ["127.0.0.1:%d"]

[delivery]
smarthost = "[127.0.0.1]:%d"
tls_level = "encrypt"
max_connections = %d
max_connections_per_domain = %d
`, filepath.Join(dir, "data"), logLevel, port, 4*clients, filepath.Join(dir, "sendmail.sock"), deadPort, sinkPort, 2*clients, clients)
}

// startRelayMxward starts bin with the relay configuration for the given number
// of clients in a new temporary directory and waits for its greeting; it is
// stopped with SIGTERM when the test ends.
func startRelayMxward(t *testing.T, bin string, sinkPort, clients int, logLevel string, env []string) *mxwardProc {
	t.Helper()
	return runMxward(t, bin, env, func(dir string, port int) string {
		return relayMxwardConfig(dir, port, sinkPort, freePort(t), clients, logLevel)
	})
}

func (m *mxwardProc) relayTarget(name string, sk *sink) relayTarget {
	messages := filepath.Join(m.dataDir, "spool", "messages")
	return relayTarget{
		target: target{name: name, addr: m.addr, pid: m.pid},
		sink:   sk,
		queued: func() (int, error) { return countFiles(messages) },
	}
}

// startRelayPostfix starts a private Postfix that accepts relay from loopback and
// relays everything to the sink with STARTTLS required.
//
// Settings other than the harness's (internal/testpeer) and Postfix's defaults:
//
//   - relayhost = [127.0.0.1]:SINK and smtp_tls_security_level = encrypt
//     (PostfixOptions.RelayHost and ClientTLS): every message to the sink, over
//     TLS, certificate not verified, the same as mxward's "encrypt";
//   - default_destination_concurrency_limit and
//     smtp_destination_concurrency_limit = the number of clients (default 32,
//     Postfix's default is 20), mxward's max_connections_per_domain; the
//     process limit of smtp(8) stays at 100;
//   - queue_run_delay, minimal_backoff_time, maximal_backoff_time,
//     smtp_tls_loglevel, smtpd_tls_loglevel and smtpd_tls_received_header
//     back at Postfix's defaults, where the harness changes them for interop
//     tests.
//
// Connection caching is Postfix's default: smtp_connection_cache_on_demand =
// yes keeps a connection for a destination with a backlog, but
// smtp_tls_connection_reuse = no, so a TLS connection is never reused and every
// message costs a connection and a handshake. With tlsReuse, the instance sets
// smtp_tls_connection_reuse = yes and adds the tlsproxy(8) service it needs to
// master.cf (Debian ships it commented out), which lets Postfix carry several
// messages per TLS connection as mxward does: Postfix at its best, beside
// Postfix as installed.
//
// Flow control (in_flow_delay = 1s) and slow start
// (initial_destination_concurrency = 5) stay at their defaults. The harness
// also sets smtp_connect_timeout = 5s and turns DNS off
// (smtp_dns_support_level = disabled), which play no part here.
func startRelayPostfix(t *testing.T, sinkPort, clients int, tlsReuse bool) *testpeer.Postfix {
	t.Helper()
	mainCF := map[string]string{
		"default_destination_concurrency_limit": strconv.Itoa(clients),
		"smtp_destination_concurrency_limit":    strconv.Itoa(clients),
		"queue_run_delay":                       "300s",
		"minimal_backoff_time":                  "300s",
		"maximal_backoff_time":                  "4000s",
		"smtp_tls_loglevel":                     "0",
		"smtpd_tls_loglevel":                    "0",
		"smtpd_tls_received_header":             "no",
	}
	if tlsReuse {
		mainCF["smtp_tls_connection_reuse"] = "yes"
	}
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{
		Hostname:  "postfix.bench.test",
		RelayHost: fmt.Sprintf("[127.0.0.1]:%d", sinkPort),
		ClientTLS: "encrypt",
		ServerTLS: true,
		MainCF:    mainCF,
	})
	if tlsReuse {
		// The harness writes master.cf at start; the service is added to this
		// instance's copy and the master told to read it again.
		for _, args := range [][]string{
			{"/usr/sbin/postconf", "-c", pf.ConfigDir(), "-M", "tlsproxy/unix=tlsproxy unix - - n - 0 tlsproxy"},
			{testpeer.PostfixPath, "-c", pf.ConfigDir(), "reload"},
		} {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "MAIL_CONFIG="+pf.ConfigDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		// The master rereads its configuration asynchronously; the warm-up
		// would find a missing tlsproxy (every message deferred) anyway.
		time.Sleep(time.Second)
	}
	return pf
}

// postfixRelayTarget describes pf as a relay target. Its queue is counted in the
// file system, not with postqueue, whose showq would run inside the instance and
// add to its CPU time.
func postfixRelayTarget(pf *testpeer.Postfix, name string, sk *sink) (relayTarget, error) {
	out, err := exec.Command("/usr/sbin/postconf", "-c", pf.ConfigDir(), "-h", "queue_directory").Output()
	if err != nil {
		return relayTarget{}, fmt.Errorf("postconf queue_directory: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	return relayTarget{
		target: postfixTarget(pf, name),
		sink:   sk,
		queued: func() (int, error) {
			total := 0
			for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
				n, err := countFiles(filepath.Join(dir, q))
				if err != nil {
					return 0, err
				}
				total += n
			}
			return total, nil
		},
	}, nil
}

// relayProfile is what the profiling pass found.
type relayProfile struct {
	dir    string
	run    relayRun
	cpuTop string // go tool pprof -top, flat then cumulative
}

// runRelayProfile builds mxward with the profiling hook of
// testdata/profilehook (added through go build -overlay, the tree untouched),
// runs the relay load once against it at log level warn with a sink of its own,
// and writes to the profile directory the binary, cpu.pprof, heap.pprof and
// cpu-top.txt (go tool pprof -top, flat and cumulative). The pass is not part
// of the comparison; it says where mxward's time goes.
func runRelayProfile(ctx context.Context, t *testing.T, set relaySettings, msg []byte) *relayProfile {
	t.Helper()
	dir := set.profileDir
	if dir == "" {
		dir = t.TempDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildProfiledMxward(t, dir)

	cert, err := testpeer.NewCert("sink.bench.test")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := startSink("sink.bench.test", sinkTLS(cert.TLS))
	if err != nil {
		t.Fatal(err)
	}
	defer sk.close()
	cpuPath, heapPath := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
	os.Remove(cpuPath + ".done")
	mx := startRelayMxward(t, bin, sk.port(), set.clients, "warn", []string{"MXWARD_BENCH_CPUPROFILE=" + cpuPath, "MXWARD_BENCH_HEAPPROFILE=" + heapPath})
	tg := mx.relayTarget("mxward (profiled)", sk)
	r, err := measureRelay(ctx, tg, set, msg, set.messages, &peak{})
	if err != nil {
		t.Errorf("profiling pass: %v", err)
	}
	t.Logf("profiling pass: %d messages, accepted %.0f/s, end to end %.0f/s, server CPU %.3f ms/message",
		r.res.sent, r.res.rate(), r.e2eRate(), r.cpuPerMessage())
	if err := syscall.Kill(mx.pid, syscall.SIGUSR1); err != nil {
		t.Fatalf("signal mxward to write its profiles: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(cpuPath + ".done"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mxward wrote no profiles within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var text []byte
	for _, a := range [][]string{{"-top", "-nodecount=40", bin, cpuPath}, {"-top", "-cum", "-nodecount=60", bin, cpuPath}} {
		out, err := exec.Command("go", append([]string{"tool", "pprof"}, a...)...).CombinedOutput()
		if err != nil {
			t.Errorf("go tool pprof %v: %v\n%s", a, err, out)
		}
		text = append(append(text, out...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu-top.txt"), text, 0o644); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", bin, heapPath).CombinedOutput(); err == nil {
		os.WriteFile(filepath.Join(dir, "heap-top.txt"), out, 0o644)
	}
	t.Logf("relay profile (%s):\n%s", dir, text)
	return &relayProfile{dir: dir, run: r, cpuTop: string(text)}
}
