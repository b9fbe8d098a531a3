package mtasts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"mxward/internal/atomicfile"
)

// Entry is a cached policy and what is known about keeping it fresh.
type Entry struct {
	Domain string `json:"domain"`
	Policy Policy `json:"policy"`
	// ID is the TXT record id under which Policy was fetched (STS-04).
	ID string `json:"id"`
	// Fetched is the time of the last successful fetch; Expires is Fetched plus
	// max_age (STS-13, RFC 8461 §3.2). Entries past Expires are never applied.
	Fetched time.Time `json:"fetched"`
	Expires time.Time `json:"expires"`
	// LastRefreshAttempt, Failures and LastError describe the refreshes tried since
	// the last success; Failures is reset by a successful fetch.
	LastRefreshAttempt time.Time `json:"last_refresh_attempt,omitzero"`
	Failures           int       `json:"failures,omitempty"`
	LastError          string    `json:"last_error,omitempty"`
}

// Fresh reports whether the entry may still be applied at now (STS-13, STS-14).
func (e Entry) Fresh(now time.Time) bool { return now.Before(e.Expires) }

// Cache keeps one JSON file per policy domain in a directory, so that policies survive
// restarts: forgetting a policy on restart would let an attacker who blocks the TXT
// record or the HTTPS fetch strip it (RFC 8461 §3.3, §10.2).
//
// Files are written to a temporary name, synced and renamed, and the directory is
// synced, so a crash leaves either the old or the new entry. Files are read on every
// access, so that a refresh run by another mxward process (the mta-sts refresh command)
// is seen at once. A file that cannot be read back as an entry is logged and ignored.
type Cache struct {
	dir string
	// Log receives warnings about unreadable entries; nil means slog.Default().
	Log *slog.Logger
	mu  sync.Mutex // serialises writers within this process
}

// entrySuffix names cache files; temporary files start with "." and never match.
const entrySuffix = ".json"

// OpenCache opens (creating it if needed) the cache directory dir.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open MTA-STS cache: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open MTA-STS cache: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open MTA-STS cache: %s is not a directory", dir)
	}
	return &Cache{dir: dir}, nil
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

func (c *Cache) path(domain string) (string, error) {
	d := normalizeDomain(domain)
	if !validHostname(d) {
		return "", fmt.Errorf("invalid domain name %q", domain)
	}
	return filepath.Join(c.dir, d+entrySuffix), nil
}

// Get returns the entry for domain. A missing, unreadable or corrupted file is reported
// as absent; corruption is logged.
func (c *Cache) Get(domain string) (Entry, bool) {
	p, err := c.path(domain)
	if err != nil {
		return Entry{}, false
	}
	return c.load(p)
}

func (c *Cache) load(p string) (Entry, bool) {
	data, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log().Warn("mta-sts cache entry unreadable; ignoring it", "file", p, "err", err)
		}
		return Entry{}, false
	}
	e, err := decodeEntry(data)
	if err != nil {
		c.log().Warn("mta-sts cache entry corrupted; ignoring it", "file", p, "err", err)
		return Entry{}, false
	}
	if want := filepath.Base(p); want != e.Domain+entrySuffix {
		c.log().Warn("mta-sts cache entry names another domain; ignoring it", "file", p, "domain", e.Domain)
		return Entry{}, false
	}
	return e, true
}

// decodeEntry parses a cache file. The policy is re-parsed from its raw text so that
// an edited or damaged file cannot carry a policy that ParsePolicy would refuse.
func decodeEntry(data []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("decode: %w", err)
	}
	if !validHostname(e.Domain) || e.Domain != normalizeDomain(e.Domain) {
		return Entry{}, fmt.Errorf("invalid domain %q", e.Domain)
	}
	p, err := ParsePolicy([]byte(e.Policy.Raw))
	if err != nil {
		return Entry{}, fmt.Errorf("stored policy: %w", err)
	}
	if !validID(e.ID) {
		return Entry{}, fmt.Errorf("invalid id %q", e.ID)
	}
	if want := e.Fetched.Add(p.MaxAge); !e.Expires.Equal(want) {
		return Entry{}, fmt.Errorf("expiry %s does not match fetch time plus max_age (%s)", e.Expires, want)
	}
	e.Policy = *p
	return e, nil
}

// Put stores e, replacing any entry for its domain.
func (c *Cache) Put(e Entry) error {
	e.Domain = normalizeDomain(e.Domain)
	p, err := c.path(e.Domain)
	if err != nil {
		return fmt.Errorf("store MTA-STS policy: %w", err)
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("store MTA-STS policy for %s: %w", e.Domain, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := atomicfile.Write(p, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("store MTA-STS policy for %s: %w", e.Domain, err)
	}
	return nil
}

// Delete removes the entry for domain; a missing entry is not an error.
func (c *Cache) Delete(domain string) error {
	p, err := c.path(domain)
	if err != nil {
		return fmt.Errorf("forget MTA-STS policy: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget MTA-STS policy for %s: %w", domain, err)
	}
	return atomicfile.SyncDir(c.dir)
}

// Entries returns every readable entry, sorted by domain.
func (c *Cache) Entries() ([]Entry, error) {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("list MTA-STS cache: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, entrySuffix) {
			continue
		}
		if e, ok := c.load(filepath.Join(c.dir, name)); ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}
