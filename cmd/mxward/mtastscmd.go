package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

const mtastsUsage = `usage: mxward mta-sts show|refresh|forget [--config FILE] [--json] DOMAIN

Shows, refreshes or forgets the cached MTA-STS policy (RFC 8461) of DOMAIN, in the cache
the server uses (mta_sts.cache_dir), so the server sees the change at once.

  show      the cached policy: id, mode, MX patterns, max_age, when it was fetched and
            when it expires, and failed refreshes since the last success
  refresh   look the _mta-sts TXT record up and fetch the policy over HTTPS now, even
            if the cached one is current; then show it
  forget    remove the cached policy; the next delivery looks the domain up afresh

Exit status: 0 on success, 1 when show finds no cached policy, 75 when a refresh failed,
64 for bad usage.
`

// mtastsJSON is the --json output of show and refresh; its field names are stable.
type mtastsJSON struct {
	Domain    string   `json:"domain"`
	ID        string   `json:"id"`
	Mode      string   `json:"mode"`
	MX        []string `json:"mx"`
	MaxAge    int64    `json:"max_age"`
	Fetched   string   `json:"fetched"`
	Expires   string   `json:"expires"`
	Fresh     bool     `json:"fresh"`
	Failures  int      `json:"failures"`
	LastError string   `json:"last_error,omitempty"`
	Policy    string   `json:"policy"`
}

func cmdMTASTS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "refresh" && args[0] != "forget") {
		fmt.Fprint(stderr, mtastsUsage)
		return &exitError{code: 64, err: errors.New("")}
	}
	verb := args[0]
	cfgPath, asJSON, rest, err := commandArgs("mta-sts "+verb, mtastsUsage, args[1:], 1, true, stderr)
	if err != nil {
		return err
	}
	domain := strings.ToLower(strings.TrimSuffix(rest[0], "."))
	cfg, _, res, err := loadResolver(cfgPath, stderr)
	if err != nil {
		return err
	}
	if !cfg.MTASTS.Enabled {
		return &exitError{code: 64, err: errors.New("mta-sts: MTA-STS is disabled (mta_sts.enabled = false)")}
	}
	m, err := newMTASTS(cfg, res, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	switch verb {
	case "forget":
		if err := m.Forget(domain); err != nil {
			return fmt.Errorf("mta-sts forget %s: %w", domain, err)
		}
		fmt.Fprintf(stdout, "forgot the MTA-STS policy of %s\n", domain)
		return nil
	case "refresh":
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := m.Refresh(ctx, domain); err != nil {
			return &exitError{code: 75, err: fmt.Errorf("mta-sts refresh %s: %w", domain, err)}
		}
	}
	e, ok := m.Show(domain)
	if !ok {
		return &exitError{code: 1, err: fmt.Errorf("mta-sts: no cached policy for %s", domain)}
	}
	out := mtastsJSON{Domain: e.Domain, ID: e.ID, Mode: string(e.Policy.Mode), MX: e.Policy.MX,
		MaxAge: int64(e.Policy.MaxAge / time.Second), Fetched: e.Fetched.UTC().Format(time.RFC3339),
		Expires: e.Expires.UTC().Format(time.RFC3339), Fresh: e.Fresh(time.Now()), Failures: e.Failures,
		LastError: e.LastError, Policy: e.Policy.Raw}
	if out.MX == nil {
		out.MX = []string{}
	}
	if asJSON {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "domain:   %s\nid:       %s\nmode:     %s\n", out.Domain, out.ID, out.Mode)
	for _, mx := range out.MX {
		fmt.Fprintf(stdout, "mx:       %s\n", mx)
	}
	fmt.Fprintf(stdout, "max_age:  %d\nfetched:  %s\nexpires:  %s (fresh: %v)\n", out.MaxAge, out.Fetched, out.Expires, out.Fresh)
	if out.Failures > 0 {
		fmt.Fprintf(stdout, "failures: %d (last: %s)\n", out.Failures, out.LastError)
	}
	return nil
}
