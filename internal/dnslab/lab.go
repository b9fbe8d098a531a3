package dnslab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Lab is a running DNSSEC tree: NSD serving the signed (and deliberately broken)
// zones on loopback, and Unbound validating over them from the lab root's trust
// anchor. Everything lives in Dir and stops when the test ends.
type Lab struct {
	// Dir is the lab's working directory (a t.TempDir()): keys, zone files at
	// every stage, and the configuration and logs of NSD and Unbound.
	Dir string
	// Authority is NSD's address, "127.0.0.1:port". It serves every zone,
	// including those Unbound reaches through a proxy, unaltered.
	Authority string
	// Resolver is Unbound's address, "127.0.0.1:port": validating, recursing
	// over the lab tree only.
	Resolver string
	// PlainResolver, set only with Options.PlainResolver, is the address of a
	// second Unbound that recurses over the same tree without validating, with
	// a cache of its own.
	PlainResolver string
	// Servers maps each zone to the address Unbound asks for it: Authority, or
	// the zone's proxy when it has a Rewrite. An in-process resolver that should
	// see what Unbound sees uses the same addresses.
	Servers map[string]string
	// RootAnchor holds the lab root's DS records as zone-file lines, the content
	// of AnchorFile.
	RootAnchor []string
	// Now is the instant the zones were signed for: every sound signature is
	// valid from a day before it to thirty days after. Replies recorded from the
	// lab validate at Now.
	Now time.Time
	// Zones are the zones as served, with defaults filled in.
	Zones []Zone

	anchorFile string
	unboundLog string
	daemons    []*daemon // NSD, Unbound and the plain Unbound, for Processes and tests of the lab itself
}

// Options adjusts a lab. The zero value is the usual lab.
type Options struct {
	// Now is the instant to sign for; zero means the current time, truncated
	// to the second. Unbound judges signatures by the real clock, so its
	// verdicts match the zones' intent only while Now is within a day of it.
	Now time.Time
	// PlainResolver also starts an Unbound that only iterates (module-config
	// "iterator"), with the same stub zones, no trust anchor and a cache of its
	// own, at Lab.PlainResolver. It is the upstream for measuring an in-process
	// validator fairly: asked with DO and CD it returns the records with their
	// signatures and proofs, and it does no validation work on the side, while
	// names the validating Unbound has resolved are still cold for it.
	PlainResolver bool
}

// startTimeout bounds the wait for NSD or Unbound to answer its first query.
const startTimeout = 15 * time.Second

// startAttempts is how often a daemon is started on a fresh port when the port
// chosen for it was taken in the meantime.
const startAttempts = 3

// Start builds and runs a lab for zones: it generates keys, writes and signs the
// zones bottom-up so that each parent carries its children's DS, applies the
// deliberate damage, and starts NSD, the proxies and Unbound, each waited for
// until it answers. Everything is stopped when the test ends. The test is skipped
// when a program is missing (failed under MXWARD_REQUIRE_INTEROP=1), and fails if
// the lab cannot be built, with the log of the program that refused.
func Start(t testing.TB, zones []Zone, opts Options) *Lab {
	t.Helper()
	requireTools(t, zones)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := start(ctx, t, zones, opts)
	if err != nil {
		t.Fatalf("start DNSSEC lab: %v", err)
	}
	return l
}

func start(ctx context.Context, t testing.TB, zones []Zone, opts Options) (*Lab, error) {
	tr, err := newTree(zones)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	l := &Lab{Dir: t.TempDir(), Now: now.UTC().Truncate(time.Second), Zones: tr.zones, Servers: map[string]string{}}
	for _, d := range []string{"keys", "work", "zones", "nsd", "unbound"} {
		if err := os.MkdirAll(filepath.Join(l.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create lab directory: %w", err)
		}
	}
	rootDS, err := buildZones(ctx, l.Dir, tr, l.Now)
	if err != nil {
		return nil, err
	}
	for _, ds := range rootDS {
		l.RootAnchor = append(l.RootAnchor, ds.String())
	}
	uf := newUnboundFiles(l.Dir)
	l.anchorFile = uf.anchor
	l.unboundLog = uf.log
	if err := os.WriteFile(uf.anchor, []byte(strings.Join(l.RootAnchor, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write trust anchor: %w", err)
	}
	if err := os.WriteFile(uf.hints, []byte(rootHints()), 0o644); err != nil {
		return nil, fmt.Errorf("write root hints: %w", err)
	}

	names := make([]string, len(tr.zones))
	for i, z := range tr.zones {
		names[i] = z.Name
	}
	nsd, port, err := startWithRetry(ctx, "NSD", func(port int) (*daemon, error) {
		conf := filepath.Join(l.Dir, "nsd", "nsd.conf")
		if err := os.WriteFile(conf, []byte(nsdConfig(l.Dir, port, names)), 0o644); err != nil {
			return nil, fmt.Errorf("write nsd.conf: %w", err)
		}
		return startDaemon("NSD", filepath.Join(l.Dir, "nsd"), filepath.Join(l.Dir, "nsd", "nsd.out"), filepath.Join(l.Dir, "nsd", "nsd.log"), nsdPath, "-d", "-c", conf)
	}, func(ctx context.Context, addr string) error { return nsdReady(ctx, addr, names) })
	if err != nil {
		return nil, err
	}
	t.Cleanup(nsd.stop)
	l.daemons = append(l.daemons, nsd)
	l.Authority = fmt.Sprintf("127.0.0.1:%d", port)

	for _, z := range tr.zones {
		l.Servers[z.Name] = l.Authority
		if z.Rewrite == nil {
			continue
		}
		p, err := startProxy(z.Name, l.Authority, z.Rewrite)
		if err != nil {
			return nil, err
		}
		t.Cleanup(p.close)
		l.Servers[z.Name] = p.addr
	}

	unbound, addr, err := startUnbound(ctx, t, "Unbound", uf, func(port int) string { return unboundConfig(uf, port, l.Servers) })
	if err != nil {
		return nil, err
	}
	l.daemons = append(l.daemons, unbound)
	l.Resolver = addr
	if opts.PlainResolver {
		pf := newPlainUnboundFiles(l.Dir)
		if err := os.MkdirAll(pf.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create lab directory: %w", err)
		}
		if err := os.WriteFile(pf.hints, []byte(rootHints()), 0o644); err != nil {
			return nil, fmt.Errorf("write root hints: %w", err)
		}
		plain, addr, err := startUnbound(ctx, t, "Unbound (iterator)", pf, func(port int) string { return plainUnboundConfig(pf, port, l.Servers) })
		if err != nil {
			return nil, err
		}
		l.daemons = append(l.daemons, plain)
		l.PlainResolver = addr
	}
	return l, nil
}

// startUnbound starts an Unbound with the configuration conf makes for a port,
// waits until it answers a question for the root, and stops it when the test
// ends, showing the tail of its log if the test failed. It returns the daemon and
// its address.
func startUnbound(ctx context.Context, t testing.TB, name string, uf unboundFiles, conf func(port int) string) (*daemon, string, error) {
	d, port, err := startWithRetry(ctx, name, func(port int) (*daemon, error) {
		if err := os.WriteFile(uf.conf, []byte(conf(port)), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", uf.conf, err)
		}
		return startDaemon(name, uf.dir, filepath.Join(uf.dir, "unbound.out"), uf.log, unboundPath, "-d", "-c", uf.conf)
	}, func(ctx context.Context, addr string) error {
		_, err := askWithin(ctx, readyTimeout, addr, ".", mdns.TypeSOA, true)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("tail of the lab's %s log:\n%s", name, tail(uf.log, 40))
		}
	})
	return d, fmt.Sprintf("127.0.0.1:%d", port), nil
}

// Process is one of the lab's daemons.
type Process struct {
	// Name is "NSD", "Unbound" or, with Options.PlainResolver, "Unbound (iterator)".
	Name string
	// PID is the id of the process the lab started. NSD's servers are its
	// child processes; Unbound runs in this one process.
	PID int
}

// Processes returns the daemons the lab runs, so that a benchmark can charge each
// its CPU time.
func (l *Lab) Processes() []Process {
	ps := make([]Process, 0, len(l.daemons))
	for _, d := range l.daemons {
		ps = append(ps, Process{Name: d.name, PID: d.cmd.Process.Pid})
	}
	return ps
}

// AnchorFile returns the path of a file holding RootAnchor, one DS record a line:
// the lab's Unbound reads it as trust-anchor-file, and mxward can read it as its
// trust anchor file.
func (l *Lab) AnchorFile() string { return l.anchorFile }

// UnboundLog returns the path of Unbound's log, which at val-log-level 2 names the
// reason for every bogus verdict.
func (l *Lab) UnboundLog() string { return l.unboundLog }

// buildZones makes the keys of every signed zone, then signs the zones level by
// level from the leaves up, and writes each zone as NSD will serve it. It returns
// the root's DS RRset.
func buildZones(ctx context.Context, dir string, tr *tree, now time.Time) ([]*mdns.DS, error) {
	keys := make(map[string]*keySet)
	dsOf := make(map[string][]*mdns.DS) // what the parent of a zone publishes
	var mu sync.Mutex
	var jobs []func(context.Context) error
	for i := range tr.zones {
		z := &tr.zones[i]
		if z.Unsigned {
			continue
		}
		jobs = append(jobs, func(ctx context.Context) error {
			ks, err := makeKeys(ctx, z, filepath.Join(dir, "keys", fileName(z.Name)))
			if err != nil {
				return err
			}
			published := ks.ksk
			if ks.decoy != nil {
				published = *ks.decoy
			}
			ds, err := makeDS(ctx, z.Signer, published)
			if err != nil {
				return err
			}
			mu.Lock()
			keys[z.Name] = &ks
			dsOf[z.Name] = []*mdns.DS{ds}
			mu.Unlock()
			return nil
		})
	}
	if err := parallel(ctx, jobs); err != nil {
		return nil, err
	}
	for _, level := range tr.levels() {
		jobs = jobs[:0]
		for _, z := range level {
			jobs = append(jobs, func(ctx context.Context) error {
				return buildZone(ctx, dir, tr, z, keys[z.Name], dsOf, now)
			})
		}
		if err := parallel(ctx, jobs); err != nil {
			return nil, err
		}
	}
	return dsOf["."], nil
}

// buildZone writes the zone file NSD serves for z: signed with ks (nil for an
// unsigned zone) and damaged as z.Break says, with delegations to its children
// carrying the DS records in dsOf.
func buildZone(ctx context.Context, dir string, tr *tree, z *Zone, ks *keySet, dsOf map[string][]*mdns.DS, now time.Time) error {
	var dels []delegation
	for _, c := range tr.children(z.Name) {
		d := delegation{child: c.Name}
		if !z.Unsigned {
			d.ds = dsOf[c.Name] // nil for an unsigned child
		}
		dels = append(dels, d)
	}
	var rrs []mdns.RR
	var err error
	if z.Unsigned {
		if rrs, err = unsignedZone(z, dels); err != nil {
			return err
		}
	} else {
		work := filepath.Join(dir, "work", fileName(z.Name))
		if err := os.MkdirAll(work, 0o755); err != nil {
			return fmt.Errorf("sign zone %s: %w", z.Name, err)
		}
		if rrs, err = signZone(ctx, z, work, ks, dels, now); err != nil {
			return err
		}
		if rrs, err = damage(z.Name, rrs, z.Break); err != nil {
			return fmt.Errorf("damage zone %s: %w", z.Name, err)
		}
	}
	if err := writeZone(filepath.Join(dir, "zones", fileName(z.Name)+".zone"), rrs); err != nil {
		return fmt.Errorf("zone %s: %w", z.Name, err)
	}
	return nil
}

// parallel runs jobs on as many workers as there are CPUs (at least two: the key
// generators and signers are separate processes) and returns the first error.
func parallel(ctx context.Context, jobs []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			if err := job(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// startWithRetry starts a daemon on a free port and waits until ready says it
// answers. If the daemon dies before that (typically because another process
// took the port in between), it is tried again on a new port.
func startWithRetry(ctx context.Context, name string, launch func(port int) (*daemon, error), ready func(ctx context.Context, addr string) error) (*daemon, int, error) {
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		d, err := launch(port)
		if err != nil {
			return nil, 0, err
		}
		err = waitReady(ctx, d, fmt.Sprintf("127.0.0.1:%d", port), ready)
		if err == nil {
			return d, port, nil
		}
		d.stop()
		lastErr = err
		if !d.exitedEarly {
			break // it ran but never answered: a new port will not help
		}
	}
	return nil, 0, lastErr
}

// waitReady polls ready until it succeeds, the daemon exits or startTimeout passes.
func waitReady(ctx context.Context, d *daemon, addr string, ready func(ctx context.Context, addr string) error) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if d.exited() {
			d.exitedEarly = true
			return fmt.Errorf("%s exited while starting (%v); its log:\n%s", d.name, d.err, d.logTail(30))
		}
		lastErr = ready(ctx, addr)
		if lastErr == nil {
			return nil
		}
		var p permanentError
		if errors.As(lastErr, &p) {
			return fmt.Errorf("%s: %w; its log:\n%s", d.name, p.err, d.logTail(30))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s did not start: %w", d.name, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer on %s within %v (%v); its log:\n%s", d.name, addr, startTimeout, lastErr, d.logTail(30))
}

// readyTimeout bounds one query of a readiness check. The first question to
// Unbound makes it fetch and validate the root's keys, which on a loaded machine
// (the race detector, parallel packages) can take a good part of a second.
const readyTimeout = 3 * time.Second

// askWithin is ask with its own deadline.
func askWithin(ctx context.Context, d time.Duration, server, name string, qtype uint16, rd bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return ask(ctx, server, name, qtype, rd, false)
}

// permanentError is a readiness failure that waiting will not cure.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }

// nsdReady checks that NSD answers authoritatively for every zone: a zone that NSD
// refused to load is reported here, with NSD's log, rather than as a puzzling
// verdict later. NSD reads all its zones before it answers at all, so once it
// answers, a zone it does not serve will stay unserved.
func nsdReady(ctx context.Context, addr string, zones []string) error {
	for _, z := range zones {
		resp, err := askWithin(ctx, readyTimeout, addr, z, mdns.TypeSOA, false)
		if err != nil {
			return err
		}
		if resp.Rcode != mdns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) == 0 {
			return permanentError{fmt.Errorf("zone %s is not served: %s", z, mdns.RcodeToString[resp.Rcode])}
		}
	}
	return nil
}
