package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

var (
	examplePath   = filepath.Join("..", "..", "docs", "mxward.example.toml")
	referencePath = filepath.Join("..", "..", "docs", "configuration.md")
)

// schemaKeys lists every key a user can write, as dotted names without array
// indexes ("listener.tls"), by walking Config's toml tags: a field added to
// Config without documentation fails the tests below.
func schemaKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := childKey(prefix, name)
			ft := t.Field(i).Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[Endpoint]() {
				ft = ft.Elem() // array of tables
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Endpoint]() {
				walk(key, ft)
				continue
			}
			keys = append(keys, key)
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

func TestExampleParses(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("the example configuration does not load:\n%v", err)
	}
	// The example promises a production setup; check it is one.
	if c.Hostname != "mx.example.org" || c.TLS.CertFile != "/etc/letsencrypt/live/mx.example.org/fullchain.pem" ||
		c.TLS.KeyFile != "/etc/letsencrypt/live/mx.example.org/privkey.pem" || c.TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("hostname/tls = %q %+v", c.Hostname, c.TLS)
	}
	want := []Listener{
		{Name: "inbound", Address: ":25", Role: RoleInbound, TLS: TLSStartTLS},
		{Name: "submission", Address: ":587", Role: RoleSubmission, TLS: TLSStartTLS},
		{Name: "submissions", Address: ":465", Role: RoleSubmission, TLS: TLSImplicit},
	}
	if !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("Listeners = %+v", c.Listeners)
	}
	if c.Local.Delivery != DeliveryMaildir || len(c.Local.Aliases) == 0 || len(c.Local.CatchAll) == 0 {
		t.Errorf("Local = %+v", c.Local)
	}
	if c.Admin.Address != "127.0.0.1:9425" || c.Admin.AllowRemote {
		t.Errorf("Admin = %+v", c.Admin)
	}
}

// The example documents its password hash as that of a throwaway password;
// keep that statement true.
func TestExamplePasswordHash(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`throwaway password\s*(?:#\s*)?"([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("example does not name the throwaway password")
	}
	if len(c.Users) != 1 {
		t.Fatalf("Users = %+v", c.Users)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(c.Users[0].PasswordHash), m[1]); err != nil {
		t.Errorf("hash of user %q does not match the documented password %q: %v", c.Users[0].Name, m[1], err)
	}
}

// Every key of the schema is set in the example, with a comment that gives
// its default (or says it is required).
func TestExampleCoversSchema(t *testing.T) {
	src, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	first := make(map[string]int) // schema key → first line, 1-based
	for key, line := range keyLines(string(src)) {
		k := indexRE.ReplaceAllString(key, "")
		if l, ok := first[k]; !ok || line < l {
			first[k] = line
		}
	}
	for _, key := range schemaKeys() {
		line, ok := first[key]
		if !ok {
			t.Errorf("example does not set %s", key)
			continue
		}
		if c := docComment(lines, line); !strings.Contains(c, "Default:") && !strings.Contains(c, "Required") {
			t.Errorf("%s:%d: %s: comment does not give the default:\n%s", examplePath, line, key, c)
		}
	}
}

// docComment returns the comment documenting the key on line (1-based): the
// comment lines directly above it, those on the line itself, and for a
// [table] header the comment lines directly below it.
func docComment(lines []string, line int) string {
	var b strings.Builder
	for i := line - 2; i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "#"); i-- {
		b.WriteString(lines[i] + "\n")
	}
	if _, c, ok := strings.Cut(lines[line-1], "#"); ok {
		b.WriteString(c + "\n")
	}
	if strings.HasPrefix(strings.TrimSpace(lines[line-1]), "[") {
		for i := line; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "#"); i++ {
			b.WriteString(lines[i] + "\n")
		}
	}
	return b.String()
}

// Every key of the schema has a row in the reference.
func TestReferenceCoversSchema(t *testing.T) {
	src, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range schemaKeys() {
		if !strings.Contains(string(src), "| `"+key+"` |") {
			t.Errorf("%s has no row for %s", referencePath, key)
		}
	}
}
