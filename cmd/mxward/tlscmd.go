package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"mxward/internal/dns"
	"mxward/internal/tlscert"
)

const tlsUsage = `usage: mxward tls rollover [--config FILE]

Switches the self-signed server key to the next key that mxward keeps ready, but only
once the next key's "TLSA 3 1 1" record is visible in DNS at _25._tcp.<hostname>, so that
senders using DANE never meet a key they cannot authenticate. "mxward dns-records" prints
the record to publish. Publish it beside the current one, wait longer than the TLSA
record's TTL, then run this. A running server picks the new key up within a minute; remove
the old key's record after its TTL has passed again.

Exit status: 0 when the key was switched, 1 when the next key's record is not yet
published (nothing changed), 75 when DNS could not be asked, 64 for bad usage.
`

func cmdTLS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rollover" {
		fmt.Fprint(stderr, tlsUsage)
		return &exitError{code: 64, err: errors.New("")}
	}
	cfgPath, _, _, err := commandArgs("tls rollover", tlsUsage, args[1:], 0, false, stderr)
	if err != nil {
		return err
	}
	cfg, _, res, err := loadResolver(cfgPath, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	certs, err := tlscert.Load(ctx, tlscert.Options{
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, DataDir: cfg.DataDir, Hostname: cfg.Hostname, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("tls rollover: load the TLS key: %w", err)
	}
	name := "_25._tcp." + strings.TrimSuffix(cfg.Hostname, ".")
	var lookupErr error
	published := func(ctx context.Context) ([]string, error) {
		r, err := res.LookupTLSA(ctx, name)
		if err != nil && !dns.IsNXDomain(err) {
			lookupErr = err
			return nil, err
		}
		if r.Overall() != dns.Secure && len(r.Records) > 0 {
			fmt.Fprintf(stderr, "warning: the TLSA records at %s are %s, not DNSSEC-secure: senders cannot use them for DANE\n", name, r.Overall())
		}
		var out []string
		for _, t := range r.Records {
			if t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 {
				out = append(out, hex.EncodeToString(t.Data))
			}
		}
		return out, nil
	}
	old := certs.TLSA311()
	err = certs.Rollover(ctx, published)
	switch {
	case err == nil:
	case lookupErr != nil:
		return &exitError{code: 75, err: fmt.Errorf("tls rollover: look up %s TLSA: %w", name, lookupErr)}
	case errors.Is(err, tlscert.ErrNextNotPublished):
		return &exitError{code: 1, err: fmt.Errorf("tls rollover: %w", err)}
	default:
		return fmt.Errorf("tls rollover: %w", err)
	}
	fmt.Fprintf(stdout, "switched to the next key: %s IN TLSA 3 1 1 %s\n", name, certs.TLSA311())
	fmt.Fprintf(stdout, "remove %s IN TLSA 3 1 1 %s once its TTL has passed, and publish the new next key:\n", name, old)
	fmt.Fprintf(stdout, "%s IN TLSA 3 1 1 %s\n", name, certs.NextTLSA311())
	return nil
}
