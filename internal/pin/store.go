package pin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"mxward/internal/atomicfile"
)

// Defaults of Options, and the bounds the configuration enforces.
const (
	DefaultMaxAge          = 30 * 24 * time.Hour
	DefaultMinObservations = 2
	DefaultMinInterval     = time.Hour
	// MaxMaxAge bounds max_age: a pin that outlives a year of silence from a domain is
	// more likely to defer mail for a domain that changed hands than to stop an attack.
	MaxMaxAge = 366 * 24 * time.Hour
)

// maxRemembered bounds the MX hosts and TLS versions kept per entry (the most recent
// ones), so that a domain rotating host names cannot grow its file without bound.
const maxRemembered = 16

// State is where an entry stands at a given time.
type State string

const (
	// StateObserved: TLS deliveries have been seen, not yet enough of them (or not far
	// enough apart) to pin; the entry enforces nothing.
	StateObserved State = "observed"
	// StatePinned: TLS is required of the destination until Expires.
	StatePinned State = "pinned"
	// StateExpired: MaxAge has passed since the last TLS delivery; the entry enforces
	// nothing, and the next TLS delivery starts a new one.
	StateExpired State = "expired"
	// StateNone: there is no entry (used by reports, never stored).
	StateNone State = "none"
)

// Entry is what the store knows about one next-hop domain.
type Entry struct {
	Domain string `json:"domain"`
	// FirstSeen and LastSeen are the first and the latest TLS delivery of this entry.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Count is the number of TLS deliveries seen since FirstSeen (deliveries counted in
	// memory and not yet written are lost by a restart; see Store.Observe).
	Count int `json:"count"`
	// Counted is the number of them that count towards pinning: each at least
	// MinInterval after the previous counted one (at LastCounted).
	Counted     int       `json:"counted"`
	LastCounted time.Time `json:"last_counted"`
	// Pinned is when Counted reached MinObservations; zero while only observed.
	Pinned time.Time `json:"pinned,omitzero"`
	// Expires is LastSeen plus MaxAge (as configured at LastSeen).
	Expires time.Time `json:"expires"`
	// MXHosts and TLSVersions are the MX hosts delivered to and the TLS versions
	// negotiated, most recent last.
	MXHosts     []string `json:"mx_hosts"`
	TLSVersions []string `json:"tls_versions"`
}

// State returns the entry's state at now.
func (e Entry) State(now time.Time) State {
	switch {
	case !now.Before(e.Expires):
		return StateExpired
	case !e.Pinned.IsZero():
		return StatePinned
	}
	return StateObserved
}

// Live reports whether the entry requires TLS at now: pinned and not expired.
func (e Entry) Live(now time.Time) bool { return e.State(now) == StatePinned }

// Observation is one delivery that completed TLS to a host of the destination.
type Observation struct {
	MXHost     string // the host as the MX record names it
	TLSVersion string // as smtpclient.TLSInfo.Version: "TLSv1.3"
}

// Options configure a Store; zero values take the defaults above.
type Options struct {
	MaxAge          time.Duration
	MinObservations int
	MinInterval     time.Duration
	// Log receives warnings about unreadable entries and the creation of pins; nil
	// means slog.Default().
	Log *slog.Logger
}

// Store is a directory of entries. It is safe for concurrent use, and for use by
// several processes on the same directory.
type Store struct {
	dir  string
	opts Options
	// write serialises this process's updates; the directory's flock serialises
	// processes.
	write sync.Mutex
	// mu guards pending: per domain, the TLS deliveries seen since the entry was last
	// written that changed nothing but its count (see Observe).
	mu      sync.Mutex
	pending map[string]int
}

// coalesce is how long after an entry was written further deliveries that change
// nothing but its count and last-seen time are only counted in memory: a busy
// destination must not cost two fsyncs per message. The count catches up at the next
// write; the expiry lags by this much at most.
const coalesce = time.Minute

// entrySuffix names entry files; temporary files and the lock start with "." and never
// match.
const entrySuffix = ".json"

// Open opens (creating it if needed) the pin directory dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MinObservations <= 0 {
		opts.MinObservations = DefaultMinObservations
	}
	switch {
	case opts.MinInterval < 0:
		return nil, fmt.Errorf("open pin store: negative min_interval %v", opts.MinInterval)
	case opts.MinInterval == 0:
		opts.MinInterval = DefaultMinInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open pin store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open pin store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open pin store: %s is not a directory", dir)
	}
	return &Store{dir: dir, opts: opts, pending: map[string]int{}}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Options returns the options in force, defaults filled in.
func (s *Store) Options() Options { return s.opts }

// Lookup returns the entry for domain, if any, and whether it is a live pin at now. A
// corrupted file is logged and reported as no entry, and so is a name that cannot be
// stored (Observe refuses it); a file that cannot be read is an error.
func (s *Store) Lookup(domain string, now time.Time) (Entry, bool, error) {
	p, err := s.path(domain)
	if err != nil {
		// A name that cannot be stored cannot have been pinned.
		return Entry{}, false, nil
	}
	e, ok, err := s.load(p)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e = s.capExpiry(e)
	return e, e.Live(now), nil
}

// Observe records a delivery that completed TLS to a host of domain at now, creating,
// advancing or refreshing its entry, and returns the entry. The caller must observe only
// deliveries that TLS protected and that the opportunistic decision or the pin itself
// governed: one decided by DANE, MTA-STS or a list is protected already.
//
// Every observation that moves the entry (a new entry, one more delivery counted
// towards pinning, the pin itself, a new MX host or TLS version) is written before
// Observe returns. Within a minute of the last write, a delivery that would change only
// the count and the last-seen time is counted in memory and written with the next
// update, so that a busy destination costs one write a minute rather than two fsyncs a
// message; a restart loses those counts, never a state.
func (s *Store) Observe(ctx context.Context, domain string, o Observation, now time.Time) (Entry, error) {
	p, err := s.path(domain)
	if err != nil {
		return Entry{}, fmt.Errorf("record TLS delivery for pinning: %w", err)
	}
	d := normalizeDomain(domain)
	mx := normalizeDomain(o.MXHost)
	if mx != "" && !validName(mx) {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: invalid MX host %q", d, o.MXHost)
	}
	if !validVersion(o.TLSVersion) {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: invalid TLS version %q", d, o.TLSVersion)
	}
	// Reads need no lock: entries are replaced by rename, never written in place.
	if e, ok, err := s.load(p); err == nil && ok && s.unchanged(s.capExpiry(e), mx, o.TLSVersion, now) {
		s.mu.Lock()
		s.pending[d]++
		e.Count += s.pending[d]
		s.mu.Unlock()
		return e, nil
	}

	s.write.Lock()
	defer s.write.Unlock()
	l, err := lockDir(ctx, s.dir)
	if err != nil {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: %w", d, err)
	}
	defer l.unlock()

	e, ok, err := s.load(p)
	if err != nil {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: %w", d, err)
	}
	s.mu.Lock()
	unwritten := s.pending[d]
	delete(s.pending, d)
	s.mu.Unlock()
	if ok {
		e = s.capExpiry(e)
	}
	switch {
	case !ok || e.State(now) == StateExpired:
		// A new entry; an expired one starts over, so that a domain must prove itself
		// again after a long silence. Deliveries counted in memory for an entry that
		// is gone (expired, or forgotten by the operator meanwhile) are dropped.
		e = Entry{Domain: d, FirstSeen: now, LastCounted: now, Counted: 1, Count: 1, LastSeen: now,
			Expires: now.Add(s.opts.MaxAge)}
	case now.Before(e.LastSeen):
		// The clock stepped back: the delivery is counted, but no time earlier than
		// the stored ones is written, and neither the pin nor its expiry moves.
		e.Count += 1 + unwritten
	default:
		if now.Sub(e.LastCounted) >= s.opts.MinInterval {
			e.Counted++
			e.LastCounted = now
		}
		e.Count += 1 + unwritten
		e.LastSeen = now
		e.Expires = now.Add(s.opts.MaxAge)
	}
	created := false
	if e.Pinned.IsZero() && e.Counted >= s.opts.MinObservations {
		e.Pinned, created = now, true
	}
	if mx != "" {
		e.MXHosts = remember(e.MXHosts, mx)
	}
	e.TLSVersions = remember(e.TLSVersions, o.TLSVersion)

	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: %w", d, err)
	}
	if err := atomicfile.Write(p, append(data, '\n'), 0o600); err != nil {
		return Entry{}, fmt.Errorf("record TLS delivery to %s for pinning: %w", d, err)
	}
	if created {
		s.opts.Log.Info("tls pin created", "domain", d, "count", e.Count, "first_seen", e.FirstSeen,
			"expires", e.Expires, "mx", strings.Join(e.MXHosts, " "))
	}
	return e, nil
}

// unchanged reports whether recording a delivery at now in e would change only its
// count, last-seen time and expiry, and e was written less than coalesce ago: then the
// delivery is counted in memory instead of costing a write. Everything that moves the
// entry towards a pin, or records a new host or TLS version, is written at once.
func (s *Store) unchanged(e Entry, mx, version string, now time.Time) bool {
	switch {
	case e.State(now) == StateExpired, now.Before(e.LastSeen), now.Sub(e.LastSeen) >= coalesce:
		return false
	case now.Sub(e.LastCounted) >= s.opts.MinInterval:
		return false
	case mx != "" && !slices.Contains(e.MXHosts, mx), !slices.Contains(e.TLSVersions, version):
		return false
	}
	return true
}

// Forget removes the entry for domain, pinned or not; a missing entry is not an error.
// It reports whether there was one.
func (s *Store) Forget(ctx context.Context, domain string) (bool, error) {
	p, err := s.path(domain)
	if err != nil {
		return false, fmt.Errorf("forget pin: %w", err)
	}
	s.write.Lock()
	defer s.write.Unlock()
	l, err := lockDir(ctx, s.dir)
	if err != nil {
		return false, fmt.Errorf("forget pin for %s: %w", domain, err)
	}
	defer l.unlock()
	s.mu.Lock()
	delete(s.pending, normalizeDomain(domain))
	s.mu.Unlock()
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("forget pin for %s: %w", domain, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return true, fmt.Errorf("forget pin for %s: %w", domain, err)
	}
	return true, nil
}

// List returns every readable entry, expired ones included, sorted by domain.
func (s *Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, entrySuffix) {
			continue
		}
		e, ok, err := s.load(filepath.Join(s.dir, name))
		if err != nil {
			s.opts.Log.Warn("tls pin entry unreadable; leaving it out", "file", name, "error", err)
			continue
		}
		if ok {
			out = append(out, s.capExpiry(e))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}

// capExpiry applies a max_age lowered since the entry was written: the operator's
// current setting is the longest a pin may last.
func (s *Store) capExpiry(e Entry) Entry {
	if limit := e.LastSeen.Add(s.opts.MaxAge); limit.Before(e.Expires) {
		e.Expires = limit
	}
	return e
}

func (s *Store) path(domain string) (string, error) {
	d := normalizeDomain(domain)
	if !validName(d) {
		return "", fmt.Errorf("invalid domain name %q", domain)
	}
	return filepath.Join(s.dir, d+entrySuffix), nil
}

// load reads one entry file. A missing file is no entry; a corrupted one is logged and
// is no entry either, so that a damaged file never enforces anything. A file that cannot
// be read (permissions, I/O) is an error: the caller decides what that means.
func (s *Store) load(p string) (Entry, bool, error) {
	data, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Entry{}, false, nil
	case err != nil:
		return Entry{}, false, fmt.Errorf("read pin entry: %w", err)
	}
	e, err := DecodeEntry(data)
	if err != nil {
		s.opts.Log.Warn("tls pin entry corrupted; ignoring it", "file", p, "error", err)
		return Entry{}, false, nil
	}
	if filepath.Base(p) != e.Domain+entrySuffix {
		s.opts.Log.Warn("tls pin entry names another domain; ignoring it", "file", p, "domain", e.Domain)
		return Entry{}, false, nil
	}
	return e, true, nil
}

// DecodeEntry parses an entry file and checks that it is one Observe could have
// written: a damaged or hand-edited file must not pin a domain by accident, nor carry
// names that are not host names into logs and reports.
func DecodeEntry(data []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("decode pin entry: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("decode pin entry: data after the entry")
	}
	switch {
	case !validName(e.Domain) || e.Domain != normalizeDomain(e.Domain):
		return Entry{}, fmt.Errorf("invalid domain %q", e.Domain)
	case e.FirstSeen.IsZero() || e.LastSeen.Before(e.FirstSeen):
		return Entry{}, fmt.Errorf("last_seen %s before first_seen %s", e.LastSeen, e.FirstSeen)
	case e.Count < 1 || e.Counted < 1 || e.Counted > e.Count:
		return Entry{}, fmt.Errorf("counts %d/%d out of range", e.Counted, e.Count)
	case e.LastCounted.Before(e.FirstSeen) || e.LastSeen.Before(e.LastCounted):
		return Entry{}, fmt.Errorf("last_counted %s outside first_seen..last_seen", e.LastCounted)
	case !e.Pinned.IsZero() && (e.Pinned.Before(e.FirstSeen) || e.LastSeen.Before(e.Pinned)):
		return Entry{}, fmt.Errorf("pinned %s outside first_seen..last_seen", e.Pinned)
	case !e.LastSeen.Before(e.Expires) || e.Expires.Sub(e.LastSeen) > MaxMaxAge:
		return Entry{}, fmt.Errorf("expires %s not within %v after last_seen %s", e.Expires, MaxMaxAge, e.LastSeen)
	case len(e.MXHosts) > maxRemembered || len(e.TLSVersions) > maxRemembered:
		return Entry{}, errors.New("too many mx_hosts or tls_versions")
	}
	for _, h := range e.MXHosts {
		if !validName(h) || h != normalizeDomain(h) {
			return Entry{}, fmt.Errorf("invalid mx host %q", h)
		}
	}
	for _, v := range e.TLSVersions {
		if !validVersion(v) {
			return Entry{}, fmt.Errorf("invalid tls version %q", v)
		}
	}
	return e, nil
}

// remember appends v to list as its most recent item, once, keeping the newest
// maxRemembered.
func remember(list []string, v string) []string {
	list = slices.DeleteFunc(list, func(x string) bool { return x == v })
	list = append(list, v)
	if n := len(list) - maxRemembered; n > 0 {
		list = list[n:]
	}
	return list
}

func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// validName accepts a lower-case DNS name of letters, digits, '-' and '_' (which some
// MX names carry): nothing that could leave the directory or hide a file.
func validName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z') && !('0' <= c && c <= '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// validVersion accepts the TLS version names smtpclient reports.
func validVersion(v string) bool {
	switch v {
	case "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3":
		return true
	}
	return false
}
