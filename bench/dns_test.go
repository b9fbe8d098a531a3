package bench

// TestDNSLookups measures the DNS lookups of a DANE delivery (RFC 7672 §2): the MX
// of a signed mail domain, then the A and AAAA records of its MX host, then the
// host's TLSA record, in sequence as delivery makes them. It compares mxward's two
// DNS modes on the loopback DNSSEC lab (internal/dnslab):
//
//   - Unbound: the client without a Validator (mode trust-ad) asking the lab's
//     validating Unbound, believing its AD bit. The client's own cache is off, so
//     every question reaches Unbound and a warm lookup is Unbound's cache hit.
//   - mxward: the client with an in-process dnssec.Validator (mode validate)
//     asking, with CD, a second Unbound that only iterates (dnslab
//     Options.PlainResolver), so the upstream does no validation on the side.
//
// The report (a markdown table, also written to MXWARD_BENCH_DNS_OUT) is meant for
// docs/performance.md, section "DNS lookups".
//
//	MXWARD_BENCH=1 go test ./bench/ -run TestDNSLookups -v -count=1
//
// Settings (environment):
//
//	MXWARD_BENCH_DNS_ROUNDS  rounds over every measurement, the order of the two
//	                         sides alternating; latencies pool all rounds, rates
//	                         are medians with their range (default 3)
//	MXWARD_BENCH_DNS_WARM    length of each warm run (default 2s)
//	MXWARD_BENCH_DNS_OUT     file to write the markdown report to
//
// Every query goes to 127.0.0.1, and every run is bounded in count or time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dnslab"
	"mxward/internal/dnssec"
)

const (
	// dnsBulkZone holds the mail domains of the "new names" runs: each domain
	// is a name in this one signed zone, so its keys are known after the first.
	dnsBulkZone = "bulk.test."
	// dnsTLSADigest is the association data of every TLSA record of the lab.
	dnsTLSADigest = "8f6e2c1a0b9d4e3f7a5c6b8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
	// dnsRunTimeout bounds one run; a lookup is bounded by the client's timeout.
	dnsRunTimeout = 2 * time.Minute
)

// dnsWorkers are the concurrency levels measured: one lookup at a time, as one
// delivery makes them, and many deliveries at once.
var dnsWorkers = []int{1, 16}

// dnsPlan is how many mail domains (names in dnsBulkZone) and zones each round
// uses up for its cold runs: a name is cold only once per resolver.
type dnsPlan struct {
	names map[int]int // per worker count
	zones map[int]int // per worker count
	fresh int         // zones for the fresh-Validator run (one worker)
	warm  int         // names cycled through by the warm runs
}

var defaultDNSPlan = dnsPlan{
	names: map[int]int{1: 500, 16: 2000},
	zones: map[int]int{1: 150, 16: 500},
	fresh: 100,
	warm:  200,
}

type dnsSettings struct {
	rounds int
	warm   time.Duration
	out    string
	plan   dnsPlan
}

func loadDNSSettings(t *testing.T) dnsSettings {
	t.Helper()
	s := dnsSettings{rounds: 3, warm: 2 * time.Second, out: os.Getenv("MXWARD_BENCH_DNS_OUT"), plan: defaultDNSPlan}
	if v := os.Getenv("MXWARD_BENCH_DNS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10 {
			t.Fatalf("MXWARD_BENCH_DNS_ROUNDS=%q: want an integer from 1 to 10", v)
		}
		s.rounds = n
	}
	if v := os.Getenv("MXWARD_BENCH_DNS_WARM"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Minute {
			t.Fatalf("MXWARD_BENCH_DNS_WARM=%q: want a duration up to 1m", v)
		}
		s.warm = d
	}
	return s
}

// counts returns how many mail domains and zones the lab needs for s.
func (s dnsSettings) counts() (names, zones int) {
	for _, w := range dnsWorkers {
		names += s.plan.names[w]
		zones += s.plan.zones[w]
	}
	return s.rounds * names, s.rounds * (zones + s.plan.fresh)
}

// dnsBenchTree returns the lab's zones: a root signed like the real one (RSA/SHA-256,
// NSEC), a TLD signed like most (ECDSA P-256, NSEC3), below it dnsBulkZone with
// names mail domains, and zones mail domains that are zones of their own, each with
// its DS in the TLD, as most signed domains are.
func dnsBenchTree(names, zones int) []dnslab.Zone {
	bulk := make([]string, 0, 4*names)
	for i := range names {
		d := fmt.Sprintf("d%04d", i)
		bulk = append(bulk,
			d+" MX 10 mx."+d,
			"mx."+d+" A 192.0.2.25",
			"mx."+d+" AAAA 2001:db8::25",
			"_25._tcp.mx."+d+" TLSA 3 1 1 "+dnsTLSADigest)
	}
	tree := []dnslab.Zone{
		{Name: ".", Signer: dnslab.LDNS, Algorithm: mdns.RSASHA256, Denial: dnslab.NSEC},
		{Name: "test.", Signer: dnslab.BIND, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC3},
		{Name: dnsBulkZone, Signer: dnslab.LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: dnslab.NSEC, Records: bulk},
	}
	for i := range zones {
		tree = append(tree, dnslab.Zone{
			Name: dnsZoneName(i), Signer: dnslab.LDNS, Algorithm: mdns.ECDSAP256SHA256, CSK: true, Denial: dnslab.NSEC,
			Records: []string{
				"@ MX 10 mx",
				"mx A 192.0.2.25",
				"mx AAAA 2001:db8::25",
				"_25._tcp.mx TLSA 3 1 1 " + dnsTLSADigest,
			},
		})
	}
	return tree
}

func dnsNameDomain(i int) string { return fmt.Sprintf("d%04d.%s", i, dnsBulkZone) }
func dnsZoneName(i int) string   { return fmt.Sprintf("z%04d.test.", i) }

// dnsPool hands out names, each once.
type dnsPool struct {
	names []string
	next  int
}

func newDNSPool(n int, name func(int) string) *dnsPool {
	p := &dnsPool{}
	for i := range n {
		p.names = append(p.names, name(i))
	}
	return p
}

func (p *dnsPool) take(t *testing.T, n int) []string {
	t.Helper()
	if p.next+n > len(p.names) {
		t.Fatalf("name pool exhausted: %d taken of %d, %d more wanted", p.next, len(p.names), n)
	}
	s := p.names[p.next : p.next+n]
	p.next += n
	return s
}

// dnsTriple makes the lookups of one DANE delivery to domain, in order: MX, the
// MX host's addresses (A and AAAA in parallel, as LookupIP does), its TLSA
// record. Each answer must be secure and carry the records the lab put there.
func dnsTriple(ctx context.Context, r *dns.Client, domain string) error {
	mx, err := r.LookupMX(ctx, domain)
	if err != nil {
		return err
	}
	if s := mx.Overall(); s != dns.Secure || len(mx.Records) != 1 {
		return fmt.Errorf("%s MX: %s with %d records (%s)", domain, s, len(mx.Records), mx.Reason)
	}
	host := mx.Records[0].Host
	ip, err := r.LookupIP(ctx, host)
	if err != nil {
		return err
	}
	if s := ip.Overall(); s != dns.Secure || len(ip.IPv4) != 1 || len(ip.IPv6) != 1 || ip.Partial != nil {
		return fmt.Errorf("%s A/AAAA: %s with %d+%d addresses (%s, %v)", host, s, len(ip.IPv4), len(ip.IPv6), ip.Reason, ip.Partial)
	}
	tlsa, err := r.LookupTLSA(ctx, "_25._tcp."+host)
	if err != nil {
		return err
	}
	if s := tlsa.Overall(); s != dns.Secure || len(tlsa.Records) != 1 {
		return fmt.Errorf("_25._tcp.%s TLSA: %s with %d records (%s)", host, s, len(tlsa.Records), tlsa.Reason)
	}
	return nil
}

// dnsQuestionsPerTriple is how many questions one triple asks: MX, A, AAAA, TLSA.
const dnsQuestionsPerTriple = 4

// countingValidator counts the questions a Validator sends upstream for the chain
// of trust (DS and DNSKEY), which a validating resolver sends on its own.
type countingValidator struct {
	v       dns.Validator
	fetches *atomic.Int64
}

func (c countingValidator) Validate(ctx context.Context, ex dns.Exchanger, resp *mdns.Msg) dns.Validation {
	return c.v.Validate(ctx, countingExchanger{ex, c.fetches}, resp)
}

type countingExchanger struct {
	ex      dns.Exchanger
	fetches *atomic.Int64
}

func (c countingExchanger) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	c.fetches.Add(1)
	return c.ex.Exchange(ctx, name, qtype)
}

// tripleRun is the outcome of one run of triples.
type tripleRun struct {
	triples  int
	failed   int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // of the successful triples, sorted
	// CPU used during the run: this process (the client, and for mxward the
	// validator), the resolver asked, and NSD.
	self, resolver, nsd time.Duration
	// fetches counts the validator's own questions upstream; -1 for the
	// Unbound side, which has no validator in this process.
	fetches int64
	// other is the CPU time the rest of the machine used during the run: on a
	// shared machine, the noise the figures carry.
	other time.Duration
}

func (r tripleRun) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.triples) / r.elapsed.Seconds()
}

// cpuPerTriple is the CPU time of the whole system (this process, the resolver,
// NSD) per successful triple.
func (r tripleRun) cpuPerTriple() (self, resolver, nsd time.Duration) {
	n := time.Duration(max(r.triples, 1))
	return r.self / n, r.resolver / n, r.nsd / n
}

// dnsCPU reads the CPU time of the processes a run is charged for.
type dnsCPU struct {
	resolverPID, nsdPID int
}

// cpuReading is the CPU time used so far by this process, the resolver, NSD and
// the whole machine.
type cpuReading struct{ self, resolver, nsd, busy time.Duration }

func (c dnsCPU) read() (cpuReading, error) {
	var r cpuReading
	r.busy = machineBusy()
	r.self = selfCPU()
	var err error
	if r.resolver, err = treeSchedCPU(c.resolverPID); err != nil {
		return r, err
	}
	if r.nsd, err = treeSchedCPU(c.nsdPID); err != nil {
		return r, err
	}
	return r, nil
}

// dnsSideRun is one side's way of making a triple, and what to charge it for.
type dnsSideRun struct {
	lookup  func(ctx context.Context, domain string) error
	cpu     dnsCPU
	fetches *atomic.Int64 // nil for the Unbound side
}

// treeSchedCPU returns the CPU time root and its live descendants have used, as
// the scheduler counts it in nanoseconds (the first field of
// /proc/PID/task/TID/schedstat, summed over threads). A cold run costs Unbound
// and NSD a few hundred milliseconds, which the 10 ms clock ticks of
// /proc/PID/stat would measure to a few per cent only; where schedstat is not
// available the ticks are used.
func treeSchedCPU(root int) (time.Duration, error) {
	pids, err := processTree(root)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for i, pid := range pids {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			if i == 0 {
				return treeCPU(root)
			}
			continue // gone since the listing
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
			if err != nil {
				if i == 0 {
					return treeCPU(root) // no schedstat on this kernel
				}
				continue
			}
			d, err := parseSchedstat(b)
			if err != nil {
				return treeCPU(root)
			}
			total += d
		}
	}
	return total, nil
}

// parseSchedstat returns the time on the CPU from the contents of a schedstat
// file: "run-ns wait-ns timeslices".
func parseSchedstat(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, fmt.Errorf("parse schedstat: %d fields, want 3", len(f))
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("parse schedstat: run time %q", f[0])
	}
	return time.Duration(ns), nil
}

// runTriples makes triples with workers goroutines: over domains once when
// cycle is zero, or round and round for cycle when it is not. lookup makes one
// triple.
func runTriples(ctx context.Context, t *testing.T, workers int, domains []string, cycle time.Duration, s dnsSideRun) tripleRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, dnsRunTimeout)
	defer cancel()
	runtime.GC()
	var fetches0 int64
	if s.fetches != nil {
		fetches0 = s.fetches.Load()
	}
	before, err := s.cpu.read()
	if err != nil {
		t.Fatalf("read CPU time: %v", err)
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      tripleRun
		wg       sync.WaitGroup
		deadline time.Time
	)
	start := time.Now()
	if cycle > 0 {
		deadline = start.Add(cycle)
	}
	for range workers {
		wg.Go(func() {
			var lat []time.Duration
			failed := 0
			var firstErr error
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if cycle == 0 && i >= len(domains) {
					break
				}
				if cycle > 0 && !time.Now().Before(deadline) {
					break
				}
				t0 := time.Now()
				err := s.lookup(ctx, domains[i%len(domains)])
				d := time.Since(t0)
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	after, err := s.cpu.read()
	if err != nil {
		t.Fatalf("read CPU time: %v", err)
	}
	res.fetches = -1
	if s.fetches != nil {
		res.fetches = s.fetches.Load() - fetches0
	}
	res.self = after.self - before.self
	res.resolver = after.resolver - before.resolver
	res.nsd = after.nsd - before.nsd
	res.other = max(after.busy-before.busy-res.self-res.resolver-res.nsd, 0)
	res.triples = len(res.lat)
	slices.Sort(res.lat)
	if res.failed > 0 {
		t.Errorf("%d of %d triples failed; first: %v", res.failed, res.failed+res.triples, res.firstErr)
	}
	return res
}

// dnsRowKey names one row of the report.
type dnsRowKey struct {
	scenario string
	side     string
	workers  int
}

// The scenarios.
const (
	scenColdNames = "cold: new names, zone keys warm"
	scenColdZone  = "cold: new zone, root and TLD keys warm"
	scenFresh     = "cold: new zone, fresh Validator (no keys cached)"
	scenWarm      = "warm: cache hit"
	scenNoCache   = "warm: client cache off, keys cached"
)

const (
	sideUnbound = "Unbound (validating; AD trusted)"
	sideMxward  = "mxward validate (over iterating Unbound)"
)

type dnsReport struct {
	set     dnsSettings
	machine []string
	labTime time.Duration
	names   int
	zones   int
	rows    map[dnsRowKey][]tripleRun
	order   []dnsRowKey
}

func (r *dnsReport) add(k dnsRowKey, run tripleRun) {
	if _, ok := r.rows[k]; !ok {
		r.order = append(r.order, k)
	}
	r.rows[k] = append(r.rows[k], run)
}

func TestDNSLookups(t *testing.T) {
	if os.Getenv("MXWARD_BENCH") != "1" {
		t.Skip("DNS lookup benchmark, in-process validation against Unbound: set MXWARD_BENCH=1 to run it")
	}
	set := loadDNSSettings(t)
	nNames, nZones := set.counts()
	nNames++ // d0000 warms the chain of trust up and is never measured

	begin := time.Now()
	lab := dnslab.Start(t, dnsBenchTree(nNames, nZones+1), dnslab.Options{PlainResolver: true})
	rep := &dnsReport{set: set, machine: dnsMachine(), labTime: time.Since(begin),
		names: nNames, zones: nZones + 1, rows: map[dnsRowKey][]tripleRun{}}
	t.Logf("lab of %d zones and %d mail domains started in %v", nZones+4, nNames+nZones+1, rep.labTime.Round(time.Millisecond))

	pids := map[string]int{}
	for _, p := range lab.Processes() {
		pids[p.Name] = p.PID
	}
	cpuUnbound := dnsCPU{resolverPID: pids["Unbound"], nsdPID: pids["NSD"]}
	cpuPlain := dnsCPU{resolverPID: pids["Unbound (iterator)"], nsdPID: pids["NSD"]}
	if cpuUnbound.resolverPID == 0 || cpuPlain.resolverPID == 0 || cpuUnbound.nsdPID == 0 {
		t.Fatalf("lab processes %v: want NSD and both Unbounds", lab.Processes())
	}

	anchors, err := dnssec.ReadAnchors(lab.AnchorFile())
	if err != nil {
		t.Fatal(err)
	}
	newValidator := func() *dnssec.Validator {
		v, err := dnssec.New(dnssec.Config{Anchors: anchors})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	newClient := func(server string, v dns.Validator, cacheSize int) *dns.Client {
		c, err := dns.NewClient(dns.Config{Servers: []string{server}, Validator: v, CacheSize: cacheSize, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The Unbound side asks Unbound every question: its client keeps no cache.
	unbound := newClient(lab.Resolver, nil, -1)
	// The mxward side as it runs in production: one validator, a client cache;
	// and the same validator behind a client without a cache, so that every
	// lookup is asked and validated anew.
	var fetches atomic.Int64
	shared := countingValidator{newValidator(), &fetches}
	mxward := newClient(lab.PlainResolver, shared, 0)
	mxwardNoCache := newClient(lab.PlainResolver, shared, -1)

	triple := func(c *dns.Client) func(context.Context, string) error {
		return func(ctx context.Context, d string) error { return dnsTriple(ctx, c, d) }
	}
	sideOf := map[string]dnsSideRun{
		sideUnbound: {lookup: triple(unbound), cpu: cpuUnbound},
		sideMxward:  {lookup: triple(mxward), cpu: cpuPlain, fetches: &fetches},
	}
	noCache := dnsSideRun{lookup: triple(mxwardNoCache), cpu: cpuPlain, fetches: &fetches}
	fresh := dnsSideRun{cpu: cpuPlain, fetches: &fetches, lookup: func(ctx context.Context, d string) error {
		return dnsTriple(ctx, newClient(lab.PlainResolver, countingValidator{newValidator(), &fetches}, 0), d)
	}}

	ctx := context.Background()
	names := newDNSPool(nNames, dnsNameDomain)
	zones := newDNSPool(nZones+1, func(i int) string { return strings.TrimSuffix(dnsZoneName(i), ".") })
	// The first mail domain of each kind warms the chain of trust up on both
	// sides (root, test. and bulk.test. keys) and proves the lab answers as
	// meant before anything is measured; neither is measured.
	warmUp := []string{names.take(t, 1)[0], zones.take(t, 1)[0]}
	for _, c := range []*dns.Client{unbound, mxward} {
		for _, d := range warmUp {
			if err := dnsTriple(ctx, c, d); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
		}
	}

	var warmSet []string
	for round := range set.rounds {
		// The side that goes first alternates between rounds.
		order := []string{sideUnbound, sideMxward}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		// Cold: both sides get the same fresh names, each fresh for the
		// resolver it asks, since the two Unbounds share no cache.
		for _, w := range dnsWorkers {
			batch := names.take(t, set.plan.names[w])
			if warmSet == nil && w == 1 {
				warmSet = batch[:min(set.plan.warm, len(batch))]
			}
			for _, side := range order {
				rep.add(dnsRowKey{scenColdNames, side, w}, runTriples(ctx, t, w, batch, 0, sideOf[side]))
			}
			batch = zones.take(t, set.plan.zones[w])
			for _, side := range order {
				rep.add(dnsRowKey{scenColdZone, side, w}, runTriples(ctx, t, w, batch, 0, sideOf[side]))
			}
		}
		rep.add(dnsRowKey{scenFresh, sideMxward, 1}, runTriples(ctx, t, 1, zones.take(t, set.plan.fresh), 0, fresh))

		// Warm: names that every resolver and cache has seen, after one
		// unmeasured pass so that every answer is a hit.
		type warmRun struct {
			key dnsRowKey
			run dnsSideRun
		}
		warm := []warmRun{
			{dnsRowKey{scenWarm, sideUnbound, 0}, sideOf[sideUnbound]},
			{dnsRowKey{scenWarm, sideMxward, 0}, sideOf[sideMxward]},
			{dnsRowKey{scenNoCache, sideMxward, 0}, noCache},
		}
		if round%2 == 1 {
			slices.Reverse(warm)
		}
		for _, wr := range warm {
			runTriples(ctx, t, 1, warmSet, 0, wr.run)
			for _, w := range dnsWorkers {
				k := wr.key
				k.workers = w
				rep.add(k, runTriples(ctx, t, w, warmSet, set.warm, wr.run))
			}
		}
		t.Logf("round %d of %d done after %v", round+1, set.rounds, time.Since(begin).Round(time.Second))
	}

	out := rep.markdown()
	t.Logf("report:\n%s", out)
	if set.out != "" {
		if err := os.WriteFile(set.out, []byte(out), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
}

// dnsMachine describes the machine and the DNS software for the report.
func dnsMachine() []string {
	lines := []string{fmt.Sprintf("CPUs (nproc): %d", runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(k) == "model name" {
				lines = append(lines, "CPU: "+strings.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib, err := parseKiBField(b, "MemTotal"); err == nil {
			lines = append(lines, fmt.Sprintf("memory: %.1f GiB", float64(kib)/(1<<20)))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		lines = append(lines, "kernel: Linux "+strings.TrimSpace(string(b)))
	}
	lines = append(lines, "Go: "+runtime.Version())
	if out, err := exec.Command("/usr/sbin/unbound", "-V").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		lines = append(lines, "Unbound: "+strings.TrimPrefix(strings.TrimSpace(first), "Version "))
	}
	// nsd -v prints its version on standard error and exits 0 or 1 by release.
	if out, err := exec.Command("/usr/sbin/nsd", "-v").CombinedOutput(); err == nil || errors.As(err, new(*exec.ExitError)) {
		first, _, _ := strings.Cut(string(out), "\n")
		lines = append(lines, "NSD: "+strings.TrimPrefix(strings.TrimSpace(first), "NSD version "))
	}
	return lines
}

// pct returns the p-th percentile (nearest rank) of sorted durations.
func pct(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// pooled merges the latencies of runs and sums their counts and CPU.
func pooled(runs []tripleRun) tripleRun {
	var p tripleRun
	for _, r := range runs {
		p.triples += r.triples
		p.failed += r.failed
		p.elapsed += r.elapsed
		p.lat = append(p.lat, r.lat...)
		p.self += r.self
		p.resolver += r.resolver
		p.nsd += r.nsd
		p.other += r.other
		if r.fetches < 0 || p.fetches < 0 {
			p.fetches = -1
		} else {
			p.fetches += r.fetches
		}
	}
	slices.Sort(p.lat)
	return p
}

// rates returns the median, least and greatest rate of runs.
func rates(runs []tripleRun) (med, lo, hi float64) {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = r.rate()
	}
	return median(xs), slices.Min(xs), slices.Max(xs)
}

// dur formats a latency for the tables.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
}

func (r *dnsReport) markdown() string {
	var b strings.Builder
	b.WriteString("### Machine\n\n")
	for _, l := range r.machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "\nLab: %d mail domains as names in one signed zone (%s) and %d mail domains as zones of their own under test., started in %v. ",
		r.names, dnsBulkZone, r.zones, r.labTime.Round(time.Second))
	fmt.Fprintf(&b, "A triple is one delivery's lookups in order: MX, then A and AAAA of the MX host (in parallel), then its TLSA record: %d questions. ", dnsQuestionsPerTriple)
	fmt.Fprintf(&b, "%d round(s), the order of the sides alternating; latencies pool the rounds, rates are the median (least–greatest) of the rounds; warm runs last %v each.\n", r.set.rounds, r.set.warm)
	b.WriteString(`
Sides: *Unbound* is mxward's client in mode trust-ad, without its own cache, asking the lab's validating Unbound (num-threads 1) and believing its AD bit. *mxward validate* is the client with the in-process Validator, asking an Unbound that only iterates (module-config "iterator", num-threads 1, a cache of its own) with DO and CD.

What is cold and what is warm:

- *cold: new names*: mail domains never asked before, each a name in one signed zone: neither resolver has any of their records; the keys of the root, test. and the zone are cached on both sides (Unbound's key cache, mxward's Validator).
- *cold: new zone*: mail domains never asked before, each a zone of its own: both sides fetch and check the zone's DS (from test.) and DNSKEY; the root's and test.'s keys are cached.
- *fresh Validator*: as *new zone*, with a new Validator and client for every triple, so mxward also fetches and checks the root's and test.'s keys (the iterating Unbound has those records cached, not the zone's).
- *warm: cache hit*: the same 200 mail domains over and over: the Unbound side gets each answer from Unbound's cache (a loopback round trip per question); mxward gets it from its client cache, in process.
- *warm: client cache off*: mxward asks the iterating Unbound (a cache hit there) and verifies every reply's signatures again, with the zone keys from the Validator's cache: the cost of validation per reply.

CPU per triple: *this process* is the benchmark process (the DNS client on both sides, and the Validator on mxward's), from getrusage; *resolver* is the Unbound asked and *NSD* the authority, from the scheduler's run time (/proc/PID/task/TID/schedstat). *Validator's queries* are the DS and DNSKEY questions mxward's Validator sent besides the four of the triple. *Other processes* is the CPU the rest of the machine used during the runs (from /proc/stat, in 10 ms ticks), in cores: the noise on a shared machine.
`)

	for _, w := range dnsWorkers {
		fmt.Fprintf(&b, "\n### %d concurrent lookup%s\n\n", w, map[bool]string{true: "s", false: ""}[w > 1])
		b.WriteString("| Scenario | Side | Triples | p50 | p90 | p99 | max | Triples/s | CPU per triple: this process | resolver | NSD | total | Validator's queries per triple | Other processes, cores |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, k := range r.order {
			if k.workers != w {
				continue
			}
			runs := r.rows[k]
			p := pooled(runs)
			med, lo, hi := rates(runs)
			self, res, nsd := p.cpuPerTriple()
			fetches := "–"
			if p.fetches >= 0 {
				fetches = fmt.Sprintf("%.2f", float64(p.fetches)/float64(max(p.triples, 1)))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %.0f (%.0f–%.0f) | %s | %s | %s | %s | %s | %.2f |\n",
				k.scenario, k.side, p.triples, dur(pct(p.lat, 50)), dur(pct(p.lat, 90)), dur(pct(p.lat, 99)), dur(pct(p.lat, 100)),
				med, lo, hi, dur(self), dur(res), dur(nsd), dur(self+res+nsd), fetches, p.other.Seconds()/max(p.elapsed.Seconds(), 1e-9))
		}
	}

	b.WriteString("\n### mxward against the goals\n\n")
	b.WriteString("| Comparison | Lookups | mxward p50 ÷ Unbound p50 | mxward p90 ÷ Unbound p90 | Unbound triples/s ÷ mxward triples/s | Goal |\n")
	b.WriteString("|---|--:|--:|--:|--:|---|\n")
	cmp := func(what, goal string, mx, ub dnsRowKey) {
		m, u := r.rows[mx], r.rows[ub]
		if len(m) == 0 || len(u) == 0 {
			return
		}
		pm, pu := pooled(m), pooled(u)
		rm, _, _ := rates(m)
		ru, _, _ := rates(u)
		ratio := func(a, b time.Duration) string {
			if b <= 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f×", float64(a)/float64(b))
		}
		rr := "–"
		if rm > 0 {
			rr = fmt.Sprintf("%.2f×", ru/rm)
		}
		fmt.Fprintf(&b, "| %s | %d at a time | **%s** | %s | %s | %s |\n", what, mx.workers,
			ratio(pct(pm.lat, 50), pct(pu.lat, 50)), ratio(pct(pm.lat, 90), pct(pu.lat, 90)), rr, goal)
	}
	for _, w := range dnsWorkers {
		cmp("cold, new names", "≤ 1.5×", dnsRowKey{scenColdNames, sideMxward, w}, dnsRowKey{scenColdNames, sideUnbound, w})
		cmp("cold, new zone", "≤ 1.5×", dnsRowKey{scenColdZone, sideMxward, w}, dnsRowKey{scenColdZone, sideUnbound, w})
		cmp("cold, new zone, fresh Validator", "(none)", dnsRowKey{scenFresh, sideMxward, w}, dnsRowKey{scenColdZone, sideUnbound, w})
		cmp("warm: mxward cache hit vs Unbound cache hit", "≤ 2×", dnsRowKey{scenWarm, sideMxward, w}, dnsRowKey{scenWarm, sideUnbound, w})
		cmp("warm: mxward re-validating vs Unbound cache hit", "(none)", dnsRowKey{scenNoCache, sideMxward, w}, dnsRowKey{scenWarm, sideUnbound, w})
	}
	return b.String()
}

func TestParseSchedstat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"207940966 133479 6\n", 207940966, true},
		{"0 0 1", 0, true},
		{"9223372036854775807 1 1\n", 1<<63 - 1, true},
		{"", 0, false},
		{"1 2\n", 0, false},
		{"1 2 3 4\n", 0, false},
		{"-5 2 3\n", 0, false},
		{"x 2 3\n", 0, false},
		{"9223372036854775808 1 1\n", 0, false},
	} {
		got, err := parseSchedstat([]byte(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSchedstat(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func FuzzParseSchedstat(f *testing.F) {
	for _, s := range []string{"207940966 133479 6\n", "0 0 1", "", "1 2", "-1 0 0", "１ 2 3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseSchedstat(b)
		if err == nil && d < 0 {
			t.Errorf("parseSchedstat(%q) = %v, a negative time", b, d)
		}
		if err != nil && d != 0 {
			t.Errorf("parseSchedstat(%q) = %v with error %v", b, d, err)
		}
	})
}

// TestDNSBenchTree checks the lab tree the benchmark builds without starting it:
// every mail domain has its MX, addresses and TLSA record where dnsTriple looks.
func TestDNSBenchTree(t *testing.T) {
	tree := dnsBenchTree(3, 2)
	if len(tree) != 5 {
		t.Fatalf("%d zones, want root, TLD, bulk zone and 2 mail zones", len(tree))
	}
	byName := map[string]dnslab.Zone{}
	for _, z := range tree {
		byName[z.Name] = z
	}
	bulk := strings.Join(byName[dnsBulkZone].Records, "\n")
	for _, want := range []string{"d0002 MX 10 mx.d0002", "mx.d0002 A 192.0.2.25", "mx.d0002 AAAA 2001:db8::25", "_25._tcp.mx.d0002 TLSA 3 1 1 "} {
		if !strings.Contains(bulk, want) {
			t.Errorf("bulk zone lacks %q", want)
		}
	}
	if z, ok := byName[dnsZoneName(1)]; !ok || len(z.Records) != 4 || z.Unsigned {
		t.Errorf("zone %s = %+v, want a signed zone with 4 records", dnsZoneName(1), z)
	}
	if got := dnsNameDomain(7); got != "d0007.bulk.test." {
		t.Errorf("dnsNameDomain(7) = %q", got)
	}
}
