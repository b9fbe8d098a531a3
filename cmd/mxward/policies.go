package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"mxward/internal/config"
	"mxward/internal/mtasts"
	"mxward/internal/policylist"
)

// newMTASTS builds the MTA-STS manager from the [mta_sts] table: policies are fetched
// over HTTPS from mta-sts.<domain>, whose address comes from mxward's own resolver (never
// the C library's, which could apply search domains or reach other servers), and cached
// in mta_sts.cache_dir. It returns nil when MTA-STS is disabled.
func newMTASTS(cfg *config.Config, res *resolver, log *slog.Logger) (*mtasts.Manager, error) {
	if !cfg.MTASTS.Enabled {
		return nil, nil
	}
	cache, err := mtasts.OpenCache(cfg.MTASTS.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("mta_sts.cache_dir: %w", err)
	}
	cache.Log = log
	port := strconv.Itoa(cfg.MTASTS.HTTPSPort)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := res.LookupIP(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve policy host %s: %w", host, err)
		}
		var d net.Dialer
		var last error = fmt.Errorf("policy host %s has no address", host)
		for _, ip := range ips.Addrs() {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			last = err
		}
		return nil, last
	}
	return &mtasts.Manager{
		Resolver: res,
		Fetcher:  &mtasts.HTTPFetcher{DialContext: dial},
		Cache:    cache,
		Log:      log,
	}, nil
}

// refreshMTASTS refreshes cached policies before they expire (RFC 8461 §10.2), every
// few minutes with jitter, until ctx ends.
func refreshMTASTS(ctx context.Context, m *mtasts.Manager) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5*time.Minute + rand.N(time.Minute)):
			m.RefreshDue(ctx)
		}
	}
}

// installPolicyList installs policy_list.file into policy_list.dir, refusing a list
// older than the one installed (LIST-04), and returns the list in force: the installed
// one, which after a refused install is the previous list. With no file configured it
// returns nil.
func installPolicyList(cfg *config.Config, now time.Time, log *slog.Logger) (*policylist.List, error) {
	if cfg.List.File == "" {
		return nil, nil
	}
	l, err := policylist.Load(cfg.List.File)
	if err != nil {
		return nil, fmt.Errorf("policy_list.file: %w", err)
	}
	if err := policylist.Install(cfg.List.Dir, l, now); err != nil {
		if !errors.Is(err, policylist.ErrRollback) && !errors.Is(err, policylist.ErrExpired) {
			return nil, fmt.Errorf("install policy list: %w", err)
		}
		log.Error("policy list not installed; keeping the installed one", "file", cfg.List.File, "error", err)
	}
	installed, err := policylist.LoadInstalled(cfg.List.Dir)
	if err != nil {
		return nil, fmt.Errorf("load installed policy list: %w", err)
	}
	if err := installed.Check(now); err != nil {
		log.Error("the installed policy list has expired and no longer applies", "dir", cfg.List.Dir, "error", err)
	}
	return installed, nil
}
