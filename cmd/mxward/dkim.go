package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"mxward/internal/config"
	"mxward/internal/dkim"
	"mxward/internal/spool"
)

// dkimSigner signs outbound mail with the [[dkim]] keys; its keys and trusted networks
// are swapped whole on reload.
type dkimSigner struct {
	log   *slog.Logger
	state atomic.Pointer[signerState]
}

type signerState struct {
	byDomain map[string][]*dkim.Signer
	trusted  config.PrefixList
}

// newSigner loads the [[dkim]] keys and returns the signer of outbound mail, or nil
// when none is configured. A key that cannot be used fails the start, so that mail
// meant to be signed is never sent unsigned.
//
// A message is signed with every key of the domain of its RFC 5322 From address, the
// identity DMARC aligns on, when that domain has keys, and only when mxward is
// entitled to speak for its sender: an authenticated submission, a local injection
// (the sendmail socket, mxward's own DSNs) or a client in relay.trusted_networks. Mail
// that arrived from elsewhere and is forwarded by an alias keeps whatever signatures it
// had: signing it would lend the domain's name to a forged From.
func newSigner(cfg *config.Config, log *slog.Logger) (*dkimSigner, error) {
	if len(cfg.DKIM) == 0 {
		return nil, nil
	}
	s := &dkimSigner{log: log}
	if err := s.reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// reload loads cfg's keys and puts them in force; on error the keys in force stay.
func (s *dkimSigner) reload(cfg *config.Config) error {
	if err := config.LoadDKIMKeys(cfg); err != nil {
		return fmt.Errorf("load DKIM keys: %w", err)
	}
	st := &signerState{byDomain: make(map[string][]*dkim.Signer), trusted: cfg.Relay.TrustedNetworks}
	for _, e := range cfg.DKIM {
		sg := &dkim.Signer{Domain: e.Domain, Selector: e.Selector, Key: e.Key, Headers: headersOrDefault(e.Headers), Expiry: time.Duration(e.Expiry)}
		if err := sg.Check(); err != nil {
			return err
		}
		st.byDomain[e.Domain] = append(st.byDomain[e.Domain], sg)
	}
	s.state.Store(st)
	for _, e := range cfg.DKIM {
		s.log.Info("dkim key loaded", "domain", e.Domain, "selector", e.Selector, "algorithm", e.Algorithm)
	}
	return nil
}

// sign is the delivery.Remote Sign hook.
func (s *dkimSigner) sign(ctx context.Context, env *spool.Envelope, body io.Reader) ([]byte, error) {
	st := s.state.Load()
	if !maySign(env, st.trusted) {
		return nil, nil
	}
	var from string
	h, err := dkim.SignMessage(body, func(d string) []*dkim.Signer {
		from = d
		return st.byDomain[d]
	})
	if errors.Is(err, dkim.ErrMalformed) {
		// The message cannot carry a signature as it is; it goes unsigned, as it would
		// from a server without DKIM.
		s.log.Warn("dkim not signed", "from_domain", from, "sender", env.From, "error", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	return h, nil
}

// maySign reports whether mxward speaks for the sender of the message in env.
func maySign(env *spool.Envelope, trusted config.PrefixList) bool {
	if env.AuthUser != "" || env.ClientIP == "local" {
		return true
	}
	ip, err := netip.ParseAddr(env.ClientIP)
	return err == nil && trusted.Contains(ip)
}

// addDKIMRecords adds the key record of every [[dkim]] key to the dns-records output.
func addDKIMRecords(cfg *config.Config, add func(name, typ, value, why string)) error {
	if err := config.LoadDKIMKeys(cfg); err != nil {
		return fmt.Errorf("dns-records: %w", err)
	}
	for _, e := range cfg.DKIM {
		rec, err := dkim.KeyRecord(e.Key.Public())
		if err != nil {
			return fmt.Errorf("dns-records: %s: %w", e.KeyFile, err)
		}
		add(dkim.KeyName(e.Selector, e.Domain), "TXT", dkim.TXTValue(rec),
			fmt.Sprintf("DKIM public key (%s) for mail From %s signed with selector %s (RFC 6376 §3.6.1)", e.Algorithm, e.Domain, e.Selector))
	}
	return nil
}

// headersOrDefault returns h, or nil (the default list) when h is empty: headers = []
// in the configuration means the defaults, not "From alone".
func headersOrDefault(h []string) []string {
	if len(h) == 0 {
		return nil
	}
	return h
}
