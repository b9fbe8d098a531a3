package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mxward/internal/config"
	"mxward/internal/pin"
)

const pinUsage = `usage: mxward pin list [--config FILE] [--json]
       mxward pin show [--config FILE] [--json] DOMAIN
       mxward pin forget [--config FILE] DOMAIN

Shows or removes the TLS pins in pinning.dir, the directory the server uses, so the
server sees a change at once. A pinned domain completed STARTTLS in earlier
deliveries; while its pin lives, delivery there requires TLS and defers (4.7.4)
when STARTTLS is missing. See docs/pinning.md.

  list      every entry: domain, state (pinned, observed or expired), TLS deliveries
            seen, first and last seen, expiry
  show      one domain's entry, with the MX hosts and TLS versions seen
  forget    remove a domain's entry, pinned or not: the next delivery there is
            opportunistic again (and may pin it anew). Use it for a domain that no
            longer offers TLS, after checking that it is not an attack.

Exit status: 0 on success, 1 when show finds no entry, 64 for bad usage.
`

// pinJSON is the --json form of an entry; its field names are stable.
type pinJSON struct {
	Domain      string   `json:"domain"`
	State       string   `json:"state"`
	Count       int      `json:"count"`
	Counted     int      `json:"counted"`
	FirstSeen   string   `json:"first_seen"`
	LastSeen    string   `json:"last_seen"`
	Pinned      string   `json:"pinned,omitempty"`
	Expires     string   `json:"expires"`
	MXHosts     []string `json:"mx_hosts"`
	TLSVersions []string `json:"tls_versions"`
}

// pinListJSON is the --json output of pin list.
type pinListJSON struct {
	Enabled bool      `json:"enabled"`
	Pins    []pinJSON `json:"pins"`
}

func toPinJSON(e pin.Entry, now time.Time) pinJSON {
	j := pinJSON{Domain: e.Domain, State: string(e.State(now)), Count: e.Count, Counted: e.Counted,
		FirstSeen: e.FirstSeen.UTC().Format(time.RFC3339), LastSeen: e.LastSeen.UTC().Format(time.RFC3339),
		Expires: e.Expires.UTC().Format(time.RFC3339), MXHosts: e.MXHosts, TLSVersions: e.TLSVersions}
	if !e.Pinned.IsZero() {
		j.Pinned = e.Pinned.UTC().Format(time.RFC3339)
	}
	if j.MXHosts == nil {
		j.MXHosts = []string{}
	}
	if j.TLSVersions == nil {
		j.TLSVersions = []string{}
	}
	return j
}

// openPins opens the pin store of cfg. With create false a missing directory is not
// created and nil is returned: the CLI, often run as root, must not make a directory
// the server's user then cannot write to.
func openPins(cfg *config.Config, log *slog.Logger, create bool) (*pin.Store, error) {
	if !create {
		if _, err := os.Stat(cfg.Pinning.Dir); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	s, err := pin.Open(cfg.Pinning.Dir, pin.Options{MaxAge: time.Duration(cfg.Pinning.MaxAge),
		MinObservations: cfg.Pinning.MinObservations, MinInterval: time.Duration(cfg.Pinning.MinInterval), Log: log})
	if err != nil {
		return nil, fmt.Errorf("pinning.dir %s: %w", filepath.Clean(cfg.Pinning.Dir), err)
	}
	return s, nil
}

// cmdPin is `mxward pin list|show|forget`.
func cmdPin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show" && args[0] != "forget") {
		fmt.Fprint(stderr, pinUsage)
		return &exitError{code: 64, err: errors.New("")}
	}
	verb := args[0]
	n := 1
	if verb == "list" {
		n = 0
	}
	cfgPath, asJSON, rest, err := commandArgs("pin "+verb, pinUsage, args[1:], n, verb != "forget", stderr)
	if err != nil {
		return err
	}
	cfg, _, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := openPins(cfg, log, false)
	if err != nil {
		return err
	}
	now := time.Now()
	if !cfg.Pinning.Enabled && !asJSON {
		fmt.Fprintln(stderr, "mxward: note: pinning is disabled (pinning.enabled = false); entries enforce nothing")
	}
	switch verb {
	case "list":
		var entries []pin.Entry
		if store != nil {
			if entries, err = store.List(); err != nil {
				return err
			}
		}
		out := pinListJSON{Enabled: cfg.Pinning.Enabled, Pins: []pinJSON{}}
		for _, e := range entries {
			out.Pins = append(out.Pins, toPinJSON(e, now))
		}
		if asJSON {
			return writeJSON(stdout, out)
		}
		if len(out.Pins) == 0 {
			fmt.Fprintln(stdout, "no pins")
			return nil
		}
		fmt.Fprintf(stdout, "%-30s %-8s %6s  %-20s  %-20s  %s\n", "DOMAIN", "STATE", "COUNT", "FIRST SEEN", "LAST SEEN", "EXPIRES")
		for _, p := range out.Pins {
			fmt.Fprintf(stdout, "%-30s %-8s %6d  %-20s  %-20s  %s\n", p.Domain, p.State, p.Count, p.FirstSeen, p.LastSeen, p.Expires)
		}
		return nil
	case "forget":
		domain := strings.ToLower(strings.TrimSuffix(rest[0], "."))
		found := false
		if store != nil {
			if found, err = store.Forget(ctx, domain); err != nil {
				return err
			}
		}
		if !found {
			fmt.Fprintf(stdout, "no pin for %s; nothing to forget\n", domain)
			return nil
		}
		fmt.Fprintf(stdout, "forgot the pin of %s\n", domain)
		return nil
	}
	domain := strings.ToLower(strings.TrimSuffix(rest[0], "."))
	var e pin.Entry
	if store != nil {
		if e, _, err = store.Lookup(domain, now); err != nil {
			return err
		}
	}
	if e.Domain == "" {
		return &exitError{code: 1, err: fmt.Errorf("pin: no entry for %s", domain)}
	}
	j := toPinJSON(e, now)
	if asJSON {
		return writeJSON(stdout, j)
	}
	fmt.Fprintf(stdout, "domain:     %s\nstate:      %s\n", j.Domain, j.State)
	fmt.Fprintf(stdout, "count:      %d TLS deliveries (%d counted towards pinning, min_observations %d)\n", j.Count, j.Counted, cfg.Pinning.MinObservations)
	fmt.Fprintf(stdout, "first seen: %s\nlast seen:  %s\n", j.FirstSeen, j.LastSeen)
	if j.Pinned != "" {
		fmt.Fprintf(stdout, "pinned:     %s\n", j.Pinned)
	}
	fmt.Fprintf(stdout, "expires:    %s\nmx hosts:   %s\ntls:        %s\n", j.Expires, strings.Join(j.MXHosts, " "), strings.Join(j.TLSVersions, " "))
	return nil
}
