package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"mxward/internal/config"
	"mxward/internal/dns"
	"mxward/internal/dnssec"
)

// resolver is the DNS client every command that looks names up shares, built from the
// [dns] table, with what its self-test needs.
type resolver struct {
	*dns.Client
	mode  config.DNSMode
	probe string // a name in a signed zone whose answer must come out secure
}

// newResolver builds the DNS client from the [dns] table: the resolvers from
// dns.resolvers, or the nameserver lines of /etc/resolv.conf, or (as the C library does
// without one) the local host; and in validate mode the in-process validator with the
// trust anchors of dns.trust_anchor_file or the built-in IANA root anchors.
func newResolver(cfg *config.Config, log *slog.Logger) (*resolver, error) {
	servers := cfg.DNS.Resolvers
	if len(servers) == 0 {
		var err error
		if servers, err = dns.ReadResolvConf("/etc/resolv.conf"); err != nil {
			log.Warn("no resolver configured; using 127.0.0.1:53", "error", err)
			servers = []string{"127.0.0.1:53"}
		}
	}
	anchors := dnssec.RootAnchors()
	if cfg.DNS.TrustAnchorFile != "" {
		var err error
		if anchors, err = dnssec.ReadAnchors(cfg.DNS.TrustAnchorFile); err != nil {
			return nil, fmt.Errorf("dns.trust_anchor_file: %w", err)
		}
	}
	dc := dns.Config{Servers: servers, TrustedServers: cfg.DNS.TrustedResolvers}
	if cfg.DNS.Mode == config.DNSValidate {
		v, err := dnssec.New(dnssec.Config{Anchors: anchors})
		if err != nil {
			return nil, fmt.Errorf("dns: in-process validator: %w", err)
		}
		dc.Validator = v
	}
	c, err := dns.NewClient(dc)
	if err != nil {
		return nil, fmt.Errorf("dns.resolvers: %w", err)
	}
	return &resolver{Client: c, mode: cfg.DNS.Mode, probe: anchorZone(anchors)}, nil
}

// loadResolver loads the configuration for a command that looks names up (check, dns
// lookup) and builds its resolver; warnings go to stderr.
//
// Resolvers given replace dns.resolvers (the --resolver option of check).
func loadResolver(cfgPath string, stderr io.Writer, resolvers ...string) (*config.Config, string, *resolver, error) {
	cfg, source, err := loadConfig(cfgPath)
	if err != nil {
		return nil, "", nil, err
	}
	if len(resolvers) > 0 {
		cfg.DNS.Resolvers = resolvers
	}
	res, err := newResolver(cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, "", nil, err
	}
	return cfg, source, res, nil
}

// anchorZone is the zone of the first trust anchor: the root unless a private anchor
// file says otherwise. Its SOA is what the self-test asks for.
func anchorZone(anchors []mdns.RR) string {
	if len(anchors) == 0 {
		return "."
	}
	return anchors[0].Header().Name
}

// resolverWatch runs the resolver self-test at start-up and then periodically, so that
// a resolver that stops validating (or starts stripping signatures) is noticed: it logs
// at error level and sets mxward_dns_resolver_ok to 0 (DANE-01).
type resolverWatch struct {
	res   *resolver
	log   *slog.Logger
	ok    *prometheus.GaugeVec
	every time.Duration
	last  map[string]bool // the previous result per resolver, to log changes only
}

func newResolverWatch(res *resolver, log *slog.Logger, reg prometheus.Registerer) *resolverWatch {
	w := &resolverWatch{res: res, log: log, every: 10 * time.Minute, last: make(map[string]bool),
		ok: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxward_dns_resolver_ok",
			Help: "1 when the resolver passed the DNSSEC self-test for the configured dns.mode (validates, or passes signatures through), 0 when it did not.",
		}, []string{"resolver", "mode"}),
	}
	reg.MustRegister(w.ok)
	return w
}

// check runs the self-test once and reports the results. It is not safe for concurrent
// use; run calls it from one goroutine.
func (w *resolverWatch) check(ctx context.Context) []dns.ResolverCheck {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	checks := w.res.CheckResolvers(ctx, w.res.probe)
	for _, c := range checks {
		v := 0.0
		prev, seen := w.last[c.Server]
		w.last[c.Server] = c.OK
		if c.OK {
			v = 1
			if !seen || !prev {
				w.log.Info("dns resolver self-test passed", "resolver", c.Server, "mode", string(w.res.mode), "probe", w.res.probe)
			}
		} else {
			// Repeated on every check while it lasts: this is the failure that makes DANE
			// silently useless, so it must not scroll away.
			w.log.Error("dns resolver self-test FAILED: DNSSEC status will be wrong and DANE cannot protect mail",
				"resolver", c.Server, "mode", string(w.res.mode), "probe", w.res.probe, "reason", c.Problem)
		}
		w.ok.WithLabelValues(c.Server, string(w.res.mode)).Set(v)
	}
	return checks
}

// run checks now and then every w.every (with jitter) until ctx ends.
func (w *resolverWatch) run(ctx context.Context) {
	w.check(ctx)
	for {
		d := w.every + rand.N(w.every/10)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
			w.check(ctx)
		}
	}
}
