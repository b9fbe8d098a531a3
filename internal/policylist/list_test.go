package policylist

import (
	"crypto/tls"
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

// fixtureTime is between the fixture's timestamp and its expires time.
var fixtureTime = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func loadFixture(t *testing.T) *List {
	t.Helper()
	f, err := os.Open("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ParseEFF(f)
	if err != nil {
		t.Fatalf("ParseEFF(testdata/policy.json): %v", err)
	}
	return l
}

// TestMatchesMX covers LIST-01 (full names exact, ".suffix" patterns) and decision 5 /
// LIST-02 (a suffix matches at any depth, never the bare suffix).
func TestMatchesMX(t *testing.T) {
	e := Entry{MXs: []string{"mx1.example.com", ".yahoodns.example", ".mail.example.net"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mx1.example.com", true},
		{"MX1.Example.COM", true},
		{"mx1.example.com.", true},
		{"mx2.example.com", false},
		{"a.mx1.example.com", false}, // a full name does not cover names below it
		{"example.com", false},
		{"mta7.am0.yahoodns.example", true}, // LIST-02: the schema's own example, two labels deep
		{"mta7.yahoodns.example", true},
		{"a.b.c.d.yahoodns.example", true},
		{"yahoodns.example", false}, // the bare suffix is not below itself
		{"xyahoodns.example", false},
		{"yahoodns.example.evil.example", false},
		{"in.mail.example.net", true},
		{"mail.example.net", false},
		{"example.net", false},
		{"", false},
		{".", false},
		{".yahoodns.example", false}, // a host name is not a pattern
		{"a..yahoodns.example", false},
		{"mx .yahoodns.example", false},
	}
	for _, tt := range tests {
		if got := e.MatchesMX(tt.host); got != tt.want {
			t.Errorf("MatchesMX(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestMatchesMXIDN(t *testing.T) {
	e := Entry{MXs: []string{".xn--bcher-kva.example"}}
	if !e.MatchesMX("mx.bücher.example") {
		t.Error("U-label host does not match its A-label pattern")
	}
	if e.MatchesMX("mx.bucher.example") {
		t.Error("ASCII look-alike matches")
	}
}

// TestLookup covers LIST-01 (exact domains, alias resolution) on the fixture.
func TestLookup(t *testing.T) {
	l := loadFixture(t)
	tests := []struct {
		domain string
		ok     bool
		mode   Mode
		mxs    []string
		alias  string
	}{
		{"example.com", true, ModeEnforce, []string{"mx1.example.com", "mx2.example.com"}, ""},
		{"EXAMPLE.com.", true, ModeEnforce, []string{"mx1.example.com", "mx2.example.com"}, ""},
		{"example.net", true, ModeTesting, []string{".mail.example.net"}, ""},
		{"example.org", true, ModeEnforce, []string{".hosted.example.net", ".mailhost.example"}, "hosted-mail"},
		{"mail-user.example", true, ModeEnforce, []string{".hosted.example.net", ".mailhost.example"}, "hosted-mail"},
		{"shop.example", true, ModeEnforce, []string{".mx.bulk.example"}, "bulk-mx"},
		{"bücher.example", true, ModeEnforce, []string{"mx.xn--bcher-kva.example"}, ""},
		{"xn--bcher-kva.example", true, ModeEnforce, []string{"mx.xn--bcher-kva.example"}, ""},
		// LIST-01: domains are exact; a subdomain is not covered.
		{"lists.example.com", false, "", nil, ""},
		{"com", false, "", nil, ""},
		{"hosted-mail", false, "", nil, ""},
		{"", false, "", nil, ""},
		{"bad..name", false, "", nil, ""},
	}
	for _, tt := range tests {
		e, ok, err := l.Lookup(tt.domain, fixtureTime)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.domain, err)
			continue
		}
		if ok != tt.ok {
			t.Errorf("Lookup(%q) found = %v, want %v", tt.domain, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if e.Mode != tt.mode || !slices.Equal(e.MXs, tt.mxs) || e.Alias != tt.alias {
			t.Errorf("Lookup(%q) = mode %s mxs %q alias %q, want %s %q %q", tt.domain, e.Mode, e.MXs, e.Alias, tt.mode, tt.mxs, tt.alias)
		}
		if e.MinTLS != LevelSecure || e.MinVersion != tls.VersionTLS12 {
			t.Errorf("Lookup(%q): MinTLS %q MinVersion %#x, want secure and TLS 1.2 (LIST-03)", tt.domain, e.MinTLS, e.MinVersion)
		}
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	l := loadFixture(t)
	e, _, _ := l.Lookup("example.com", fixtureTime)
	e.MXs[0] = "evil.example"
	e2, _, _ := l.Lookup("example.com", fixtureTime)
	if e2.MXs[0] != "mx1.example.com" {
		t.Fatalf("changing a returned entry changed the list: %q", e2.MXs)
	}
}

// TestExpiry covers LIST-04: from its expires instant on, the list applies to no
// domain and says so with an *ExpiredError.
func TestExpiry(t *testing.T) {
	l := loadFixture(t)
	expires := time.Date(2026, 12, 12, 18, 35, 6, 102519279, time.UTC)
	if !l.Expires.Equal(expires) {
		t.Fatalf("Expires = %s, want %s", l.Expires, expires)
	}
	tests := []struct {
		name    string
		now     time.Time
		expired bool
	}{
		{"before timestamp", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"fresh", fixtureTime, false},
		{"last nanosecond", expires.Add(-time.Nanosecond), false},
		{"at expiry", expires, true},
		{"long after", expires.AddDate(1, 0, 0), true},
		{"other zone", expires.In(time.FixedZone("east", 5*3600)).Add(time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok, err := l.Lookup("example.com", tt.now)
			if !tt.expired {
				if err != nil || !ok {
					t.Fatalf("Lookup = %v, %v, want the entry", ok, err)
				}
				return
			}
			if ok || e.Mode != "" {
				t.Errorf("expired list returned an entry: %+v", e)
			}
			if !errors.Is(err, ErrExpired) {
				t.Fatalf("err = %v, want ErrExpired", err)
			}
			var xe *ExpiredError
			if !errors.As(err, &xe) || !xe.Expires.Equal(expires) || !xe.Now.Equal(tt.now) {
				t.Errorf("err = %#v, want *ExpiredError with Expires %s", err, expires)
			}
			// An unlisted domain gets the error too: the operator is alerted whatever
			// the destination (LIST-04).
			if _, _, err := l.Lookup("unlisted.example", tt.now); !errors.Is(err, ErrExpired) {
				t.Errorf("unlisted domain: err = %v, want ErrExpired", err)
			}
		})
	}
}

func TestNilList(t *testing.T) {
	var l *List
	if _, ok, err := l.Lookup("example.com", fixtureTime); ok || err != nil {
		t.Errorf("nil list Lookup = %v, %v", ok, err)
	}
	if l.Len() != 0 || l.Domains() != nil || l.Check(fixtureTime) != nil {
		t.Error("nil list is not empty")
	}
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		e    Entry
		want string
	}{
		{Entry{MinTLS: LevelSecure, MXs: []string{"mx1.example.com", ".example.net"}}, "secure match=mx1.example.com:.example.net"},
		{Entry{MXs: []string{".example.net"}}, "secure match=.example.net"},
		{Entry{MinTLS: LevelVerify, MXs: []string{"mx.example"}}, "verify match=mx.example"},
		{Entry{MinTLS: LevelEncrypt, MXs: []string{"mx.example"}}, "encrypt"},
	}
	for _, tt := range tests {
		if got := tt.e.Policy(); got != tt.want {
			t.Errorf("Policy() = %q, want %q", got, tt.want)
		}
	}
}

func TestDomains(t *testing.T) {
	l := loadFixture(t)
	want := []string{"example.com", "example.net", "example.org", "mail-user.example", "shop.example", "xn--bcher-kva.example"}
	if got := l.Domains(); !slices.Equal(got, want) || l.Len() != len(want) {
		t.Errorf("Domains() = %q (Len %d), want %q", got, l.Len(), want)
	}
	if l.Author != "Example Mail Security Project https://policy.example" || l.Version != "0.1" {
		t.Errorf("Author %q Version %q", l.Author, l.Version)
	}
}
