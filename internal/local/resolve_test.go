package local

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// testConfig is a configuration with one strict domain, one open domain, and one with a
// catch-all, exercising every lookup step.
func testConfig() Config {
	return Config{
		Domains: []string{"Example.ORG.", "open.example", "catch.example", "bücher.example"},
		Mailboxes: map[string][]string{
			"example.org":   {"alice", "Bob", "carol", "dave", "copy", "\"john doe\""},
			"catch.example": {"admin", "sales"},
		},
		Aliases: map[string][]string{
			"postmaster@example.org": {"alice"},
			"team@example.org":       {"alice@example.org", "BOB@EXAMPLE.ORG", "ext@remote.example"},
			"all@example.org":        {"team", "carol", "Alice@Example.org", "ext@Remote.Example."},
			"forward@example.org":    {"Someone@Remote.example"},
			"copy@example.org":       {"copy", "archive@remote.example"}, // names itself: own mailbox
			"dave+spam@example.org":  {"carol"},                          // exact match beats detail
			"info@catch.example":     {"sales"},
			"chain-a@open.example":   {"chain-b"},
			"chain-b@open.example":   {"self@open.example", "chain-c"},
			"chain-c@open.example":   {"bob@example.org"},
			"diamond@example.org":    {"left@open.example", "right@open.example"},
			"left@open.example":      {"alice@example.org"},
			"right@open.example":     {"alice@example.org", "dave@example.org"},
		},
		CatchAll:        map[string]string{"catch.example": "admin"},
		DetailSeparator: "+-",
	}
}

func newTestResolver(t *testing.T) *Resolver {
	t.Helper()
	r, err := NewResolver(testConfig())
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

func mailboxes(res Resolution) []string {
	var s []string
	for _, m := range res.Mailboxes {
		s = append(s, m.Address())
	}
	return s
}

func TestResolve(t *testing.T) {
	r := newTestResolver(t)
	tests := []struct {
		rcpt      string
		mailboxes []string
		remote    []string
		err       error
	}{
		// Plain mailboxes, case and trailing dot.
		{rcpt: "alice@example.org", mailboxes: []string{"alice@example.org"}},
		{rcpt: "ALICE@EXAMPLE.ORG.", mailboxes: []string{"alice@example.org"}},
		{rcpt: "bob@example.org", mailboxes: []string{"bob@example.org"}},
		{rcpt: "\"John Doe\"@example.org", mailboxes: []string{"john doe@example.org"}},
		// Subaddressing with either separator; the detail is kept, lowercased.
		{rcpt: "alice+Lists@example.org", mailboxes: []string{"alice+lists@example.org"}},
		{rcpt: "alice-x@example.org", mailboxes: []string{"alice-x@example.org"}},
		{rcpt: "alice+a+b@example.org", mailboxes: []string{"alice+a+b@example.org"}},
		{rcpt: "+alice@example.org", err: ErrNoSuchUser},
		// An exact alias wins over detail splitting; other details still reach the mailbox.
		{rcpt: "dave+spam@example.org", mailboxes: []string{"carol@example.org"}},
		{rcpt: "dave+ham@example.org", mailboxes: []string{"dave+ham@example.org"}},
		// Aliases, recursion, de-duplication, remote targets.
		{rcpt: "postmaster@example.org", mailboxes: []string{"alice@example.org"}},
		{rcpt: "postmaster+x@example.org", mailboxes: []string{"alice@example.org"}},
		{rcpt: "team@example.org", mailboxes: []string{"alice@example.org", "bob@example.org"}, remote: []string{"ext@remote.example"}},
		{rcpt: "all@example.org", mailboxes: []string{"alice@example.org", "bob@example.org", "carol@example.org"}, remote: []string{"ext@remote.example"}},
		{rcpt: "forward@example.org", remote: []string{"Someone@remote.example"}},
		{rcpt: "copy@example.org", mailboxes: []string{"copy@example.org"}, remote: []string{"archive@remote.example"}},
		{rcpt: "diamond@example.org", mailboxes: []string{"alice@example.org", "dave@example.org"}},
		{rcpt: "chain-a@open.example", mailboxes: []string{"self@open.example", "bob@example.org"}},
		// Open domain: anything goes.
		{rcpt: "Anyone+x@Open.Example", mailboxes: []string{"anyone+x@open.example"}},
		// Catch-all only for what is not otherwise known.
		{rcpt: "sales@catch.example", mailboxes: []string{"sales@catch.example"}},
		{rcpt: "info@catch.example", mailboxes: []string{"sales@catch.example"}},
		{rcpt: "nobody@catch.example", mailboxes: []string{"admin@catch.example"}},
		{rcpt: "admin+x@catch.example", mailboxes: []string{"admin+x@catch.example"}},
		// U-labels as given, ASCII lowercased around them.
		{rcpt: "Jörg@BÜCHER.example", err: ErrNotLocal},
		{rcpt: "Jörg@bücher.EXAMPLE", mailboxes: []string{"jörg@bücher.example"}},
		// Failures.
		{rcpt: "mallory@example.org", err: ErrNoSuchUser},
		{rcpt: "alice@elsewhere.example", err: ErrNotLocal},
		{rcpt: "alice@example.org.evil", err: ErrNotLocal},
		{rcpt: "alice", err: ErrBadAddress},
		{rcpt: "@example.org", err: ErrBadAddress},
		{rcpt: "alice@", err: ErrBadAddress},
		{rcpt: "\"\"@example.org", err: ErrBadAddress},
		{rcpt: "al\nice@example.org", err: ErrBadAddress},
		{rcpt: "alice@example..org", err: ErrBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			res, err := r.Resolve(tt.rcpt)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Resolve(%q) error = %v, want %v", tt.rcpt, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.rcpt, err)
			}
			if got := mailboxes(res); !slices.Equal(got, tt.mailboxes) {
				t.Errorf("mailboxes = %q, want %q", got, tt.mailboxes)
			}
			if !slices.Equal(res.Remote, tt.remote) {
				t.Errorf("remote = %q, want %q", res.Remote, tt.remote)
			}
			if res.Rcpt != tt.rcpt {
				t.Errorf("Rcpt = %q, want %q", res.Rcpt, tt.rcpt)
			}
			for i, tg := range res.Targets() {
				if tg.Rcpt != tt.rcpt || tg.Mailbox != res.Mailboxes[i] {
					t.Errorf("Targets()[%d] = %+v", i, tg)
				}
			}
		})
	}
}

func TestResolveMailboxFields(t *testing.T) {
	r := newTestResolver(t)
	res, err := r.Resolve("Alice+Tag@EXAMPLE.org")
	if err != nil {
		t.Fatal(err)
	}
	want := Mailbox{Domain: "example.org", User: "alice", Separator: "+", Detail: "tag"}
	// The detail is lowercased with the rest of the local part.
	if len(res.Mailboxes) != 1 || res.Mailboxes[0] != want {
		t.Fatalf("Mailboxes = %+v, want [%+v]", res.Mailboxes, want)
	}
	if got := res.Mailboxes[0].Base(); got != "alice@example.org" {
		t.Errorf("Base() = %q", got)
	}
}

func TestResolveNoSubaddressing(t *testing.T) {
	cfg := testConfig()
	cfg.DetailSeparator = ""
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("alice+x@example.org"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("alice+x with subaddressing off: err = %v, want ErrNoSuchUser", err)
	}
	res, err := r.Resolve("x+y@open.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := mailboxes(res); !slices.Equal(got, []string{"x+y@open.example"}) {
		t.Errorf("mailboxes = %q", got)
	}
}

func TestIsLocal(t *testing.T) {
	r := newTestResolver(t)
	for d, want := range map[string]bool{
		"example.org":      true,
		"EXAMPLE.org.":     true,
		"bücher.example":   true,
		"BÜCHER.example":   false, // only ASCII is case-folded
		"example.org..":    false,
		"sub.example.org":  false,
		"elsewhere.test":   false,
		"":                 false,
		"xn--bcher-kva.ex": false,
	} {
		if got := r.IsLocal(d); got != want {
			t.Errorf("IsLocal(%q) = %v, want %v", d, got, want)
		}
	}
}

// TestNewResolverRejects checks that configuration mistakes are found when the
// configuration is loaded, not when mail arrives.
func TestNewResolverRejects(t *testing.T) {
	base := func() Config {
		return Config{
			Domains:         []string{"example.org", "open.example"},
			Mailboxes:       map[string][]string{"example.org": {"alice"}},
			DetailSeparator: "+",
		}
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"loop", func(c *Config) {
			c.Aliases = map[string][]string{"a@open.example": {"b"}, "b@open.example": {"c"}, "c@open.example": {"a"}}
		}, "alias loop"},
		{"loop via catch-all", func(c *Config) {
			c.Aliases = map[string][]string{"a@example.org": {"b@example.org"}}
			c.CatchAll = map[string]string{"example.org": "a"}
		}, "alias loop"},
		{"too deep", func(c *Config) {
			c.MaxAliasDepth = 2
			c.Aliases = map[string][]string{"a@open.example": {"b"}, "b@open.example": {"c"}, "c@open.example": {"alice@example.org"}}
		}, "too deep"},
		{"unknown target", func(c *Config) {
			c.Aliases = map[string][]string{"a@example.org": {"nobody"}}
		}, "no such user"},
		{"catch-all to unknown", func(c *Config) { c.CatchAll = map[string]string{"example.org": "nobody"} }, "no such user"},
		{"alias outside local domains", func(c *Config) {
			c.Aliases = map[string][]string{"a@remote.example": {"alice@example.org"}}
		}, "not in a local domain"},
		{"alias without targets", func(c *Config) { c.Aliases = map[string][]string{"a@example.org": {}} }, "no targets"},
		{"bad target", func(c *Config) { c.Aliases = map[string][]string{"a@example.org": {"x@"}} }, "malformed"},
		{"mailboxes of foreign domain", func(c *Config) { c.Mailboxes["remote.example"] = []string{"x"} }, "not a local domain"},
		{"catch-all of foreign domain", func(c *Config) { c.CatchAll = map[string]string{"remote.example": "alice@example.org"} }, "not a local domain"},
		{"empty domain", func(c *Config) { c.Domains = append(c.Domains, ".") }, "empty domain"},
		{"slash in domain", func(c *Config) { c.Domains = append(c.Domains, "a/b") }, "invalid character"},
		{"empty mailbox", func(c *Config) { c.Mailboxes["example.org"] = []string{""} }, "empty local part"},
		{"separator @", func(c *Config) { c.DetailSeparator = "@" }, "separator"},
		{"negative depth", func(c *Config) { c.MaxAliasDepth = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.modify(&cfg)
			_, err := NewResolver(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewResolver error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestResolveDepthLimit checks the boundary: MaxAliasDepth aliases in a chain are fine.
func TestResolveDepthLimit(t *testing.T) {
	cfg := Config{Domains: []string{"d.example"}, MaxAliasDepth: 3, Aliases: map[string][]string{
		"a1@d.example": {"a2"}, "a2@d.example": {"a3"}, "a3@d.example": {"box"},
	}}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve("a1@d.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := mailboxes(res); !slices.Equal(got, []string{"box@d.example"}) {
		t.Errorf("mailboxes = %q", got)
	}
	cfg.Aliases["a0@d.example"] = []string{"a1"}
	if _, err := NewResolver(cfg); !errors.Is(err, ErrAliasDepth) {
		t.Errorf("four aliases with limit 3: err = %v, want ErrAliasDepth", err)
	}
}

// TestResolveWideAliases checks that memoization keeps a config whose expansion tree is
// exponential (every level names the next twice) cheap to resolve.
func TestResolveWideAliases(t *testing.T) {
	cfg := Config{Domains: []string{"d.example"}, Aliases: map[string][]string{}, MaxAliasDepth: 40}
	const levels = 30
	for i := range levels {
		next := "box"
		if i+1 < levels {
			next = "l" + string(rune('a'+i+1))
		}
		cfg.Aliases["l"+string(rune('a'+i))+"@d.example"] = []string{next, next + "@d.example"}
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve("la@d.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := mailboxes(res); !slices.Equal(got, []string{"box@d.example"}) {
		t.Errorf("mailboxes = %q", got)
	}
}

// FuzzResolve checks that no input makes Resolve panic, and that whatever it returns is
// a mailbox in a local domain that Maildir accepts as a path component.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"alice@example.org", "ALICE+x@example.org.", "\"a b\"@example.org", "../x@open.example",
		".hidden@open.example", "a/b@open.example", "team@example.org", "x@", "@", "\"\\\"@open.example", "ä@bücher.example"} {
		f.Add(s)
	}
	r, err := NewResolver(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rcpt string) {
		res, err := r.Resolve(rcpt)
		if err != nil {
			return
		}
		for _, m := range res.Mailboxes {
			if !r.IsLocal(m.Domain) || m.User == "" || m.User != strings.ToLower(m.User) {
				t.Fatalf("Resolve(%q) gave mailbox %+v", rcpt, m)
			}
			if hasControl(m.Address()) {
				t.Fatalf("Resolve(%q) gave control characters in %q", rcpt, m.Address())
			}
		}
	})
}
