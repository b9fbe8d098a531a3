package config

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/dkim"
)

const dkimBase = `hostname = "mx.example.org"
[local]
domains = ["example.org", "Example.NET"]
`

func TestDKIMConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		want string // substring of the error; "" for success
	}{
		{"local domain", `[[dkim]]
domain = "Example.ORG."
selector = "S2026"
key_file = "/etc/mxward/dkim/example.org.pem"
headers = ["From", "Subject", "List-Id"]
expiry = "168h"`, ""},
		{"host name", `[[dkim]]
domain = "mx.example.org"
selector = "a"
key_file = "k"`, ""},
		{"domain above the host name", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k"
algorithm = "ed25519-sha256"`, ""},
		{"two selectors for one domain", `[[dkim]]
domain = "example.org"
selector = "old"
key_file = "k1"
[[dkim]]
domain = "example.org"
selector = "new"
key_file = "k2"`, ""},
		{"foreign domain", `[[dkim]]
domain = "example.com"
selector = "a"
key_file = "k"`, `test.toml:5: dkim[0].domain: "example.com" is not one of local.domains`},
		{"top-level domain", `[[dkim]]
domain = "org"
selector = "a"
key_file = "k"`, "dkim[0].domain"},
		{"missing domain", `[[dkim]]
selector = "a"
key_file = "k"`, "dkim[0].domain: is required"},
		{"bad selector", `[[dkim]]
domain = "example.org"
selector = "a_b"
key_file = "k"`, "dkim[0].selector"},
		{"missing selector", `[[dkim]]
domain = "example.org"
key_file = "k"`, "dkim[0].selector"},
		{"missing key file", `[[dkim]]
domain = "example.org"
selector = "a"`, "dkim[0].key_file: is required"},
		{"duplicate", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k1"
[[dkim]]
domain = "EXAMPLE.org"
selector = "A"
key_file = "k2"`, `test.toml:8: dkim[1]: domain "example.org" and selector "a" are already those of dkim[0] (line 4)`},
		{"bad header name", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k"
headers = ["From", "X Bad"]`, "dkim[0].headers[1]"},
		{"unknown algorithm", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k"
algorithm = "rsa-sha1"`, "dkim[0].algorithm"},
		{"expiry too long", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k"
expiry = "9000h"`, "dkim[0].expiry"},
		{"unknown key", `[[dkim]]
domain = "example.org"
selector = "a"
key_file = "k"
l = 100`, "dkim[0].l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("test.toml", []byte(dkimBase+tc.toml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range c.DKIM {
					if e.Domain != strings.ToLower(e.Domain) || e.Selector != strings.ToLower(e.Selector) || strings.HasSuffix(e.Domain, ".") {
						t.Errorf("not normalised: %+v", e)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c, err := Parse("test.toml", []byte(dkimBase+"[[dkim]]\ndomain = \"example.org\"\nselector = \"a\"\nkey_file = \"k\"\nexpiry = \"168h\"\n"))
	if err != nil || len(c.DKIM) != 1 || time.Duration(c.DKIM[0].Expiry) != 168*time.Hour {
		t.Errorf("parsed %+v, %v", c, err)
	}
}

func writeKey(t *testing.T, dir, name string, alg dkim.Algorithm, mode os.FileMode) string {
	t.Helper()
	k, err := dkim.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := dkim.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pemData, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// LoadDKIMKeys reads each key, infers the algorithm, and refuses a key other users can
// read (a leaked key lets anyone pass DKIM as the domain), a key of the wrong algorithm,
// a missing file and a file that holds no key.
func TestLoadDKIMKeys(t *testing.T) {
	dir := t.TempDir()
	good := writeKey(t, dir, "good.pem", dkim.Ed25519SHA256, 0o640)
	open := writeKey(t, dir, "open.pem", dkim.Ed25519SHA256, 0o644)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		e    DKIM
		want string
	}{
		{"good", DKIM{KeyFile: good}, ""},
		{"good with algorithm", DKIM{KeyFile: good, Algorithm: "ed25519-sha256"}, ""},
		{"world-readable", DKIM{KeyFile: open}, "readable by every user"},
		{"wrong algorithm", DKIM{KeyFile: good, Algorithm: "rsa-sha256"}, "dkim[0].algorithm"},
		{"missing", DKIM{KeyFile: filepath.Join(dir, "none.pem")}, "dkim[0].key_file"},
		{"not a key", DKIM{KeyFile: junk}, "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{DKIM: []DKIM{tc.e}}
			err := LoadDKIMKeys(c)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := c.DKIM[0].Key.(ed25519.PrivateKey); !ok || c.DKIM[0].Algorithm != "ed25519-sha256" {
					t.Errorf("loaded %+v", c.DKIM[0])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if c.DKIM[0].Key != nil {
				t.Error("a refused key was kept")
			}
		})
	}
	// All problems are reported together.
	c := &Config{DKIM: []DKIM{{KeyFile: open}, {KeyFile: junk}}}
	if err := LoadDKIMKeys(c); err == nil || !strings.Contains(err.Error(), "dkim[0]") || !strings.Contains(err.Error(), "dkim[1]") {
		t.Errorf("got %v", err)
	}
}
