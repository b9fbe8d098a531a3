package config

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mxward/internal/dkim"
)

// DKIM is one [[dkim]] entry: a key mail From its domain is signed with when it
// leaves for another domain (docs/dkim.md). Two entries for one domain with different
// selectors both sign, which is how a key is rotated or an Ed25519 key added beside an
// RSA one.
type DKIM struct {
	// Domain is the signing domain (d=). It must be one of local.domains, the host name,
	// or a domain the host name is under: mxward signs only for domains it is configured
	// to be part of, and `mxward dns-records` prints their key records.
	Domain string `toml:"domain"`
	// Selector names the key (s=); its record is <selector>._domainkey.<domain>.
	Selector string `toml:"selector"`
	// KeyFile is a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1 RSA), read when the
	// server starts (LoadDKIMKeys). It must not be readable by other users. A relative
	// path is relative to the working directory of the mxward process.
	KeyFile string `toml:"key_file"`
	// Algorithm is "rsa-sha256" or "ed25519-sha256"; empty means the one the key is
	// for. When given it must match the key, so that a wrong file is caught.
	Algorithm string `toml:"algorithm"`
	// Headers overrides the fields signed when present (dkim.DefaultHeaders); From is
	// always signed.
	Headers []string `toml:"headers"`
	// Expiry, when set, puts an expiry (x=) this long after the signing time in each
	// signature; 0 means none.
	Expiry Duration `toml:"expiry"`

	// Key is the private key read from KeyFile by LoadDKIMKeys; nil before.
	Key crypto.Signer `toml:"-"`
}

// maxDKIMExpiry catches an expiry written in the wrong unit; signatures older than a
// year have no use.
const maxDKIMExpiry = Duration(366 * 24 * time.Hour)

// validateDKIM checks the [[dkim]] entries; LoadDKIMKeys reads their keys. It runs
// after validate, so that local.domains is already lower-cased.
func (d *decoder) validateDKIM(c *Config) {
	own := func(dom string) bool {
		host := strings.ToLower(strings.TrimSuffix(c.Hostname, "."))
		if dom == host || strings.HasSuffix(host, "."+dom) {
			return true
		}
		for _, l := range c.Local.Domains {
			if dom == l {
				return true
			}
		}
		return false
	}
	seen := make(map[string]int)
	for i := range c.DKIM {
		e := &c.DKIM[i]
		key := indexKey("dkim", i)
		e.Domain = strings.ToLower(strings.TrimSuffix(e.Domain, "."))
		switch {
		case e.Domain == "":
			d.errorf(childKey(key, "domain"), "is required")
		case dkim.CheckDomain(e.Domain) != nil:
			d.errorf(childKey(key, "domain"), "%q: %v", e.Domain, dkim.CheckDomain(e.Domain))
		case !own(e.Domain):
			d.errorf(childKey(key, "domain"), "%q is not one of local.domains, the host name %q or a domain above it", e.Domain, c.Hostname)
		}
		e.Selector = strings.ToLower(e.Selector)
		if err := dkim.CheckSelector(e.Selector); err != nil {
			d.errorf(childKey(key, "selector"), "%q: %v", e.Selector, err)
		}
		id := e.Selector + "._domainkey." + e.Domain
		if prev, dup := seen[id]; dup {
			d.errorf(key, "domain %q and selector %q are already those of dkim[%d] (line %d)", e.Domain, e.Selector, prev, d.line(indexKey("dkim", prev)))
		} else {
			seen[id] = i
		}
		for j, h := range e.Headers {
			if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
				d.errorf(indexKey(childKey(key, "headers"), j), "%q is not a header field name", h)
			}
		}
		if e.Expiry < 0 || e.Expiry > maxDKIMExpiry {
			d.errorf(childKey(key, "expiry"), "must be between 0s and 366 days, not %v", time.Duration(e.Expiry))
		}
		if e.Algorithm != "" && e.Algorithm != string(dkim.RSASHA256) && e.Algorithm != string(dkim.Ed25519SHA256) {
			d.errorf(childKey(key, "algorithm"), "%q is not rsa-sha256 or ed25519-sha256", e.Algorithm)
		}
		if e.KeyFile == "" {
			d.errorf(childKey(key, "key_file"), "is required (a PEM private key; `mxward dkim keygen` makes one)")
		}
	}
}

// LoadDKIMKeys reads the key file of every [[dkim]] entry, checks it against the
// entry's algorithm and sets Key and Algorithm. Parse does not read key files, as it
// reads no other file the configuration names; the server calls this when it starts,
// and fails to start if a key is unusable, so that mail is never sent unsigned because
// of a typo in a path.
func LoadDKIMKeys(c *Config) error {
	var errs []error
	for i := range c.DKIM {
		e := &c.DKIM[i]
		k, err := loadDKIMKey(e.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("dkim[%d].key_file: %w", i, err))
			continue
		}
		alg, _ := dkim.KeyAlgorithm(k.Public())
		if e.Algorithm != "" && e.Algorithm != string(alg) {
			errs = append(errs, fmt.Errorf("dkim[%d].algorithm: is %q but %s holds a key for %s", i, e.Algorithm, e.KeyFile, alg))
			continue
		}
		e.Algorithm = string(alg)
		e.Key = k
	}
	return errors.Join(errs...)
}

// loadDKIMKey reads a private key file, refusing one that other users can read: a
// leaked signing key lets anyone send mail that passes DKIM and DMARC as the domain.
func loadDKIMKey(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read DKIM key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read DKIM key: %w", err)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%s is readable by every user (mode %04o); chmod o-r it", path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read DKIM key: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s is larger than 1 MiB; not a key file", path)
	}
	k, err := dkim.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
