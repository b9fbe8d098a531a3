package local

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// DefaultDetailSeparator is the customary subaddress separator ("alice+lists@example.org").
// Config loaders set Config.DetailSeparator to it when the setting is absent.
const DefaultDetailSeparator = "+"

// DefaultMaxAliasDepth bounds alias chains when Config.MaxAliasDepth is 0. Real chains are
// two or three hops; the bound only exists to stop runaway configurations.
const DefaultMaxAliasDepth = 10

// Errors returned, wrapped, by Resolver.Resolve.
var (
	// ErrNotLocal means the address's domain is not one of ours.
	ErrNotLocal = errors.New("local: domain is not local")
	// ErrNoSuchUser means the domain is ours but nothing accepts the address (550 5.1.1).
	ErrNoSuchUser = errors.New("local: no such user")
	// ErrBadAddress means the address is not of the form local@domain.
	ErrBadAddress = errors.New("local: malformed address")
	// ErrAliasLoop means alias expansion came back to an address it was expanding.
	ErrAliasLoop = errors.New("local: alias loop")
	// ErrAliasDepth means alias expansion went deeper than the configured limit.
	ErrAliasDepth = errors.New("local: alias expansion too deep")
)

// Config is the part of mxward's configuration that says which addresses are local.
type Config struct {
	// Domains are the domains delivered locally.
	Domains []string
	// Mailboxes lists, per domain, the local parts that are mailboxes. A domain with an
	// entry here is strict: other addresses in it are unknown unless an alias or the
	// domain's catch-all covers them. A domain without an entry accepts any local part.
	Mailboxes map[string][]string
	// Aliases maps "alias@domain" to its targets. A target is a full address, local or
	// remote, or a bare local part meaning that local part in the alias's own domain. An
	// alias that names itself among its targets also delivers to its own mailbox.
	Aliases map[string][]string
	// CatchAll maps a domain to the address that receives mail for local parts that are
	// neither aliases nor listed mailboxes (in a domain without a mailbox list: for every
	// local part that is not an alias).
	CatchAll map[string]string
	// DetailSeparator holds the characters that start a subaddress detail: with "+",
	// "alice+lists" is delivered to mailbox "alice". Any one of the characters separates,
	// at its first occurrence. "" disables subaddressing.
	DetailSeparator string
	// MaxAliasDepth limits how many aliases may be followed in a chain; 0 means
	// DefaultMaxAliasDepth.
	MaxAliasDepth int
}

// Resolver maps recipient addresses to local mailboxes and remote addresses.
//
// Domains are matched after lowercasing ASCII letters and dropping one trailing dot. Labels
// in other scripts (U-labels) are compared as given, and an A-label ("xn--...") is a
// different domain from its U-label: configure the form the mail arrives with. Local parts
// of local addresses are compared case-insensitively (Unicode lowercasing), which is what
// users expect even though RFC 5321 allows a site to do otherwise; local parts of remote
// addresses are kept as given.
//
// A Resolver is immutable and safe for concurrent use. Resolve does no I/O.
type Resolver struct {
	domains  map[string]*domainConfig
	sep      string
	maxDepth int
}

type domainConfig struct {
	mailboxes map[string]bool // nil when any local part is a mailbox
	aliases   map[string][]address
	catchAll  *address
}

// address is a parsed address. For local domains local is in localKey form; domain is
// always normalized.
type address struct {
	local, domain string
}

func (a address) String() string { return a.local + "@" + a.domain }

// NewResolver checks cfg and builds a Resolver from it. Besides syntax it checks every alias
// and catch-all by expanding it, so that loops, overlong chains and targets that name
// unknown local users are configuration errors rather than bounces.
func NewResolver(cfg Config) (*Resolver, error) {
	r := &Resolver{
		domains:  make(map[string]*domainConfig),
		sep:      cfg.DetailSeparator,
		maxDepth: cfg.MaxAliasDepth,
	}
	if r.maxDepth == 0 {
		r.maxDepth = DefaultMaxAliasDepth
	}
	if r.maxDepth < 0 {
		return nil, fmt.Errorf("local config: negative alias depth %d", cfg.MaxAliasDepth)
	}
	if strings.ContainsAny(r.sep, "@\"\\") || !utf8.ValidString(r.sep) {
		return nil, fmt.Errorf("local config: invalid detail separator %q", r.sep)
	}
	for _, d := range cfg.Domains {
		nd := normDomain(d)
		if err := checkDomain(nd); err != nil {
			return nil, fmt.Errorf("local config: domain %q: %w", d, err)
		}
		if r.domains[nd] == nil {
			r.domains[nd] = &domainConfig{aliases: make(map[string][]address)}
		}
	}
	for d, users := range cfg.Mailboxes {
		dc := r.domains[normDomain(d)]
		if dc == nil {
			return nil, fmt.Errorf("local config: mailboxes for %q, which is not a local domain", d)
		}
		if dc.mailboxes == nil {
			dc.mailboxes = make(map[string]bool, len(users))
		}
		for _, u := range users {
			lu := localKey(u)
			if err := checkLocal(lu); err != nil {
				return nil, fmt.Errorf("local config: mailbox %q in %q: %w", u, d, err)
			}
			dc.mailboxes[lu] = true
		}
	}
	for key, targets := range cfg.Aliases {
		a, err := parseAddress(key)
		if err != nil {
			return nil, fmt.Errorf("local config: alias %q: %w", key, err)
		}
		dc := r.domains[a.domain]
		if dc == nil {
			return nil, fmt.Errorf("local config: alias %q is not in a local domain", key)
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("local config: alias %q has no targets", key)
		}
		a.local = localKey(a.local)
		if err := checkLocal(a.local); err != nil {
			return nil, fmt.Errorf("local config: alias %q: %w", key, err)
		}
		for _, t := range targets {
			ta, err := r.parseTarget(t, a.domain)
			if err != nil {
				return nil, fmt.Errorf("local config: alias %q: target %q: %w", key, t, err)
			}
			dc.aliases[a.local] = append(dc.aliases[a.local], ta)
		}
	}
	for d, t := range cfg.CatchAll {
		nd := normDomain(d)
		dc := r.domains[nd]
		if dc == nil {
			return nil, fmt.Errorf("local config: catch-all for %q, which is not a local domain", d)
		}
		ta, err := r.parseTarget(t, nd)
		if err != nil {
			return nil, fmt.Errorf("local config: catch-all of %q: target %q: %w", d, t, err)
		}
		dc.catchAll = &ta
	}

	// Expand everything once now, so that runtime errors can only concern the recipient
	// itself. Sorted for a deterministic first error.
	for _, d := range sortedKeys(r.domains) {
		dc := r.domains[d]
		for _, l := range sortedKeys(dc.aliases) {
			a := address{l, d}
			if _, err := r.resolve(a); err != nil {
				return nil, fmt.Errorf("local config: alias %s: %w", a, err)
			}
		}
		if dc.catchAll != nil {
			// A local part that cannot be a real one, so that the catch-all is what answers.
			if _, err := r.resolve(address{"\x00catch-all", d}); err != nil {
				return nil, fmt.Errorf("local config: catch-all of %s: %w", d, err)
			}
		}
	}
	return r, nil
}

// IsLocal reports whether domain is one of ours. A trailing dot and ASCII case are ignored.
func (r *Resolver) IsLocal(domain string) bool {
	_, ok := r.domains[normDomain(domain)]
	return ok
}

// Resolution is where a recipient's mail goes.
type Resolution struct {
	Rcpt      string    // the recipient as given to Resolve
	Mailboxes []Mailbox // local mailboxes, one per mailbox, in the order first reached
	Remote    []string  // remote addresses to relay to, without duplicates
}

// Targets returns the local mailboxes as delivery targets for Rcpt.
func (res Resolution) Targets() []Target {
	ts := make([]Target, len(res.Mailboxes))
	for i, m := range res.Mailboxes {
		ts[i] = Target{Rcpt: res.Rcpt, Mailbox: m}
	}
	return ts
}

// Resolve follows aliases, subaddressing and catch-alls from rcpt, an address in a local
// domain, to the mailboxes and remote addresses that receive its mail. Errors wrap
// ErrNotLocal, ErrBadAddress, ErrNoSuchUser, ErrAliasLoop or ErrAliasDepth.
//
// For one address the order of lookup is: an alias for the exact local part; an alias for
// the local part without detail; a listed mailbox; the domain's catch-all; and, in a domain
// without a mailbox list, the mailbox of that name.
func (r *Resolver) Resolve(rcpt string) (Resolution, error) {
	a, err := parseAddress(rcpt)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve %q: %w", rcpt, err)
	}
	if r.domains[a.domain] == nil {
		return Resolution{}, fmt.Errorf("resolve %q: %w", rcpt, ErrNotLocal)
	}
	a.local = localKey(a.local)
	if a.local == "" {
		return Resolution{}, fmt.Errorf("resolve %q: %w", rcpt, ErrBadAddress)
	}
	res, err := r.resolve(a)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve %q: %w", rcpt, err)
	}
	res.Rcpt = rcpt
	return res, nil
}

// expansion is the state of one Resolve call.
type expansion struct {
	res        Resolution
	path       []string        // aliases being expanded, outermost first
	done       map[string]bool // addresses already expanded completely
	mailboxes  map[string]bool // Mailbox.Base of mailboxes in res
	remoteSeen map[string]bool
}

func (r *Resolver) resolve(a address) (Resolution, error) {
	x := &expansion{
		done:       make(map[string]bool),
		mailboxes:  make(map[string]bool),
		remoteSeen: make(map[string]bool),
	}
	if err := r.expand(x, a); err != nil {
		return Resolution{}, err
	}
	return x.res, nil
}

// expand adds what a, a local address with lowercased local part, resolves to.
func (r *Resolver) expand(x *expansion, a address) error {
	key := a.String()
	if i := slices.Index(x.path, key); i >= 0 {
		if i == len(x.path)-1 {
			// "alice: alice, bob": an alias naming itself means its own mailbox.
			return r.direct(x, a)
		}
		return fmt.Errorf("%w: %s", ErrAliasLoop, strings.Join(append(x.path[i:], key), " -> "))
	}
	if x.done[key] {
		return nil
	}
	if len(x.path) > r.maxDepth {
		return fmt.Errorf("%w: %s", ErrAliasDepth, strings.Join(append(x.path, key), " -> "))
	}
	dc := r.domains[a.domain]
	user, sep, detail := r.splitDetail(a.local)

	targets, ok := dc.aliases[a.local]
	if !ok && sep != "" {
		targets, ok = dc.aliases[user]
	}
	switch {
	case ok:
	case dc.mailboxes[user]:
		x.addMailbox(Mailbox{Domain: a.domain, User: user, Separator: sep, Detail: detail})
		x.done[key] = true
		return nil
	case dc.catchAll != nil:
		targets = []address{*dc.catchAll}
	case dc.mailboxes == nil:
		x.addMailbox(Mailbox{Domain: a.domain, User: user, Separator: sep, Detail: detail})
		x.done[key] = true
		return nil
	default:
		return fmt.Errorf("%w: %s", ErrNoSuchUser, key)
	}

	x.path = append(x.path, key)
	for _, t := range targets {
		if r.domains[t.domain] == nil {
			x.addRemote(t)
			continue
		}
		if err := r.expand(x, t); err != nil {
			return err
		}
	}
	x.path = x.path[:len(x.path)-1]
	x.done[key] = true
	return nil
}

// direct resolves a to its own mailbox without consulting aliases or the catch-all.
func (r *Resolver) direct(x *expansion, a address) error {
	dc := r.domains[a.domain]
	user, sep, detail := r.splitDetail(a.local)
	if dc.mailboxes != nil && !dc.mailboxes[user] {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, a)
	}
	x.addMailbox(Mailbox{Domain: a.domain, User: user, Separator: sep, Detail: detail})
	return nil
}

func (x *expansion) addMailbox(m Mailbox) {
	if k := m.Base(); !x.mailboxes[k] {
		x.mailboxes[k] = true
		x.res.Mailboxes = append(x.res.Mailboxes, m)
	}
}

func (x *expansion) addRemote(a address) {
	if k := a.String(); !x.remoteSeen[k] {
		x.remoteSeen[k] = true
		x.res.Remote = append(x.res.Remote, k)
	}
}

// splitDetail splits a local part at the first detail separator. A separator at the very
// start does not count: "+foo" is a user of that name.
func (r *Resolver) splitDetail(local string) (user, sep, detail string) {
	if r.sep == "" {
		return local, "", ""
	}
	i := strings.IndexAny(local, r.sep)
	if i <= 0 {
		return local, "", ""
	}
	_, n := utf8.DecodeRuneInString(local[i:])
	return local[:i], local[i : i+n], local[i+n:]
}

// parseTarget parses an alias or catch-all target; a bare local part is taken to be in
// domain. Local targets get their local part lowercased.
func (r *Resolver) parseTarget(s, domain string) (address, error) {
	if !strings.Contains(s, "@") {
		s = s + "@" + domain
	}
	a, err := parseAddress(s)
	if err != nil {
		return address{}, err
	}
	if r.domains[a.domain] != nil {
		a.local = localKey(a.local)
		if err := checkLocal(a.local); err != nil {
			return address{}, err
		}
	}
	return a, nil
}

// parseAddress splits s at its last "@" and normalizes the domain. The local part is left
// as given, quotes included, which is what a remote address must keep; localKey makes the
// lookup form of a local one. It rejects what cannot be an address: empty parts, control
// characters, invalid UTF-8.
func parseAddress(s string) (address, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return address{}, ErrBadAddress
	}
	a := address{local: s[:i], domain: normDomain(s[i+1:])}
	if hasControl(a.local) || checkDomain(a.domain) != nil {
		return address{}, ErrBadAddress
	}
	return a, nil
}

// localKey is the form in which local parts of local addresses are compared: unquoted and
// lowercased.
func localKey(raw string) string {
	return strings.ToLower(unquoteLocal(raw))
}

// unquoteLocal turns a quoted-string local part ("john doe") into its content.
func unquoteLocal(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	in := s[1 : len(s)-1]
	for i := 0; i < len(in); i++ {
		if in[i] == '\\' && i+1 < len(in) {
			i++
		}
		b.WriteByte(in[i])
	}
	return b.String()
}

// normDomain lowercases ASCII letters and drops one trailing dot. Non-ASCII is left alone:
// U-labels are compared as given.
func normDomain(d string) string {
	d = strings.TrimSuffix(d, ".")
	for i := 0; i < len(d); i++ {
		if c := d[i]; 'A' <= c && c <= 'Z' {
			return strings.Map(asciiLower, d)
		}
	}
	return d
}

func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

// checkDomain rejects domains that are empty or could not be a directory name of their own.
func checkDomain(d string) error {
	switch {
	case d == "":
		return errors.New("empty domain")
	case d[0] == '.' || strings.Contains(d, ".."):
		return errors.New("empty label in domain")
	case strings.ContainsAny(d, "@/\\ \t") || hasControl(d):
		return errors.New("invalid character in domain")
	}
	return nil
}

// checkLocal rejects local parts that are empty or contain control characters.
func checkLocal(l string) error {
	if l == "" {
		return errors.New("empty local part")
	}
	if hasControl(l) {
		return errors.New("control character in local part")
	}
	return nil
}

// hasControl reports whether s has ASCII control characters or is not valid UTF-8.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return !utf8.ValidString(s)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
