package policylist

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLocalFixture(t *testing.T) {
	l, err := Load("testdata/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != LocalVersion || l.Author != "postmaster@relay.example" || !l.Expires.IsZero() {
		t.Errorf("Version %q Author %q Expires %s", l.Version, l.Author, l.Expires)
	}
	// Without expires, the operator's list never expires.
	far := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		domain  string
		mode    Mode
		mxs     []string
		minTLS  string
		version uint16
	}{
		{"partner.example", ModeEnforce, []string{"mx.partner.example", ".in.partner.example"}, LevelSecure, tls.VersionTLS12},
		{"legacy.example", ModeTesting, []string{".legacy.example"}, LevelEncrypt, tls.VersionTLS12},
		{"bank.example", ModeEnforce, []string{"smtp.bank.example"}, LevelSecure, tls.VersionTLS13},
	}
	for _, tt := range tests {
		e, ok, err := l.Lookup(tt.domain, far)
		if err != nil || !ok {
			t.Errorf("Lookup(%q) = %v, %v", tt.domain, ok, err)
			continue
		}
		if e.Domain != tt.domain || e.Mode != tt.mode || !slices.Equal(e.MXs, tt.mxs) || e.MinTLS != tt.minTLS || e.MinVersion != tt.version {
			t.Errorf("Lookup(%q) = %+v", tt.domain, e)
		}
	}
	if _, ok, _ := l.Lookup("sub.partner.example", far); ok {
		t.Error("a subdomain of a listed domain matched (LIST-01)")
	}
}

func TestParseLocalExpires(t *testing.T) {
	l, err := ParseLocal(strings.NewReader(`expires = 2027-06-01T00:00:00Z
[domains."a.example"]
mode = "enforce"
mxs = ["mx.a.example"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Lookup("a.example", time.Date(2027, 5, 31, 0, 0, 0, 0, time.UTC)); !ok || err != nil {
		t.Errorf("before expiry: %v, %v", ok, err)
	}
	if _, ok, err := l.Lookup("a.example", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); ok || !errors.Is(err, ErrExpired) {
		t.Errorf("after expiry: %v, %v", ok, err)
	}
}

func TestParseLocalRefuses(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"syntax", `[domains."a.example"`, "expected"},
		{"unknown top key", "autor = \"x\"\n", "unknown keys: autor"},
		{"unknown domain key", "[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\nmin_tls = \"secure\"\n", "unknown keys"},
		{"no mode", "[domains.\"a.example\"]\nmxs = [\"mx.a.example\"]\n", "mode"},
		{"bad mode", "[domains.\"a.example\"]\nmode = \"on\"\nmxs = [\"mx.a.example\"]\n", `mode "on"`},
		{"no mxs", "[domains.\"a.example\"]\nmode = \"enforce\"\n", "no MX patterns"},
		{"bad min-tls", "[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\nmin-tls = \"may\"\n", `min-tls "may"`},
		{"bad version", "[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\nmin-tls-version = \"1.1\"\n", "min-tls-version"},
		{"suffix domain", "[domains.\".a.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\n", "exactly"},
		{"twice", "[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\n[domains.\"A.example\"]\nmode = \"enforce\"\nmxs = [\"mx.a.example\"]\n", "twice"},
		{"wildcard", "[domains.\"a.example\"]\nmode = \"enforce\"\nmxs = [\"*.a.example\"]\n", "wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLocal(strings.NewReader(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
