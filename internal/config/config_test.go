package config

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bcryptHash is a well-formed bcrypt hash for fixtures.
const bcryptHash = "$2a$12$cVBYxWsXhfu9RO/.JZGmRetIal8.8aKSmegEJpervmJVVyVcVEYDm"

// doc strips the leading newline of a raw string literal so that line 1 of
// the fixture is the first line written after the backquote.
func doc(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

func TestDefault(t *testing.T) {
	c := Default()
	if err := checkHostname(c.Hostname); err != nil {
		t.Errorf("Hostname = %q: %v", c.Hostname, err)
	}
	if c.DataDir != "./mxward-data" {
		t.Errorf("DataDir = %q", c.DataDir)
	}
	if c.LogFormat != LogText || c.LogLevel != slog.LevelInfo {
		t.Errorf("log = %q %v", c.LogFormat, c.LogLevel)
	}
	if c.TLS != (TLS{MinVersion: tls.VersionTLS12}) {
		t.Errorf("TLS = %+v", c.TLS)
	}
	wantListeners := []Listener{
		{Name: "inbound", Address: "127.0.0.1:2525", Role: RoleInbound, TLS: TLSStartTLS},
		{Name: "submission", Address: "127.0.0.1:2587", Role: RoleSubmission, TLS: TLSStartTLS},
	}
	if !reflect.DeepEqual(c.Listeners, wantListeners) {
		t.Errorf("Listeners = %+v", c.Listeners)
	}
	wantNets := PrefixList{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(c.Relay.TrustedNetworks, wantNets) {
		t.Errorf("TrustedNetworks = %v", c.Relay.TrustedNetworks)
	}
	wantLimits := Limits{
		MaxMessageSize:      50 << 20,
		MaxRecipients:       100,
		MaxLineLength:       1000,
		MaxCommandLength:    2048,
		MaxConnections:      1000,
		MaxConnectionsPerIP: 20,
		CommandTimeout:      Duration(5 * time.Minute),
		DataTimeout:         Duration(10 * time.Minute),
		MaxErrors:           10,
	}
	if c.Limits != wantLimits {
		t.Errorf("Limits = %+v", c.Limits)
	}
	if c.Auth != (Auth{MaxFailures: 5, FailureWindow: Duration(15 * time.Minute)}) {
		t.Errorf("Auth = %+v", c.Auth)
	}
	if len(c.Users) != 0 || len(c.Local.Domains) != 0 || len(c.Local.Mailboxes) != 0 ||
		len(c.Local.Aliases) != 0 || len(c.Local.CatchAll) != 0 {
		t.Errorf("expected no users, domains, mailboxes, aliases or catch-alls: %+v %+v", c.Users, c.Local)
	}
	if c.Local.Delivery != DeliveryMaildir || c.Local.SubaddressSeparator != "+" || !c.Local.LMTP.IsZero() {
		t.Errorf("Local = %+v", c.Local)
	}
	if want := filepath.Join("mxward-data", "mail", "%d", "%u"); c.Local.Maildir != want {
		t.Errorf("Maildir = %q, want %q", c.Local.Maildir, want)
	}
	if want := filepath.Join("mxward-data", "sendmail.sock"); c.Sendmail.Socket != want {
		t.Errorf("Socket = %q, want %q", c.Sendmail.Socket, want)
	}
	if c.Admin != (Admin{Address: "127.0.0.1:9425"}) {
		t.Errorf("Admin = %+v", c.Admin)
	}
}

// The defaults must pass the same validation as a file.
func TestEmptyFileIsDefault(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "\xef\xbb\xbf\n"} {
		c, err := Parse("empty.toml", []byte(src))
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default() = %+v", src, c, Default())
		}
	}
}

func TestLoad(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "lmtp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.Delivery != DeliveryLMTP || c.Local.LMTP != (Endpoint{Network: "tcp", Address: "127.0.0.1:24"}) {
		t.Errorf("Local = %+v", c.Local)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}

	// Errors name the path as given.
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte("\n[limits]\nmax_recipients = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + ":3: limits.max_recipients: must be between 1 and 100000, not 0"; err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %s", err, want)
	}
}

// A file that sets data_dir moves the derived defaults with it, unless they
// are set explicitly.
func TestDerivedDefaults(t *testing.T) {
	c, err := Parse("t.toml", doc(`
data_dir = "/srv/mx"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.Maildir != "/srv/mx/mail/%d/%u" || c.Sendmail.Socket != "/srv/mx/sendmail.sock" {
		t.Errorf("maildir %q socket %q", c.Local.Maildir, c.Sendmail.Socket)
	}
	c, err = Parse("t.toml", doc(`
data_dir = "/srv/mx"
[local]
maildir = "/home/%u/Maildir"
[sendmail]
socket = "/run/mx.sock"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.Maildir != "/home/%u/Maildir" || c.Sendmail.Socket != "/run/mx.sock" {
		t.Errorf("maildir %q socket %q", c.Local.Maildir, c.Sendmail.Socket)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse("t.toml", doc(`
hostname = "MX.Example.org"
log_level = "DEBUG"
log_format = "json"

[tls]
min_version = "1.3"

[[listener]]
name = "in"
address = "[::1]:0"
role = "inbound"

[[listener]]
name = "tls"
address = "127.0.0.1:0"
role = "submission"
tls = "implicit"

[relay]
trusted_networks = ["192.0.2.1", "2001:db8::/32", "::ffff:198.51.100.7"]

[limits]
max_message_size = 1048576
data_timeout = "1d12h"

[[user]]
name = "bob"
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

[local]
domains = ["Example.ORG"]
mailboxes = ["Bob@EXAMPLE.org"]
subaddress_separator = ""
aliases."Postmaster@Example.org" = ["bob@example.org", "ops@Elsewhere.example"]
catch_all = { "EXAMPLE.org" = "bob@example.org" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "MX.Example.org" {
		t.Errorf("Hostname = %q; it is used as written", c.Hostname)
	}
	if c.LogLevel != slog.LevelDebug || c.LogFormat != LogJSON || c.TLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("log %v %v tls %v", c.LogLevel, c.LogFormat, c.TLS.MinVersion)
	}
	want := []Listener{
		{Name: "in", Address: "[::1]:0", Role: RoleInbound, TLS: TLSStartTLS},
		{Name: "tls", Address: "127.0.0.1:0", Role: RoleSubmission, TLS: TLSImplicit},
	}
	if !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("Listeners = %+v", c.Listeners)
	}
	wantNets := PrefixList{
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.7/32"),
	}
	if !reflect.DeepEqual(c.Relay.TrustedNetworks, wantNets) {
		t.Errorf("TrustedNetworks = %v", c.Relay.TrustedNetworks)
	}
	if c.Limits.MaxMessageSize != 1<<20 || c.Limits.DataTimeout != Duration(36*time.Hour) {
		t.Errorf("Limits = %+v", c.Limits)
	}
	if c.Limits.MaxRecipients != 100 {
		t.Errorf("keys missing from [limits] must keep their defaults: %+v", c.Limits)
	}
	if len(c.Users) != 1 || c.Users[0].PasswordHash.Scheme() != "argon2id" {
		t.Errorf("Users = %+v", c.Users)
	}
	if !reflect.DeepEqual(c.Local.Domains, []string{"example.org"}) ||
		!reflect.DeepEqual(c.Local.Mailboxes, []string{"Bob@example.org"}) ||
		c.Local.SubaddressSeparator != "" {
		t.Errorf("Local = %+v", c.Local)
	}
	wantAliases := map[string][]string{"Postmaster@example.org": {"bob@example.org", "ops@elsewhere.example"}}
	if !reflect.DeepEqual(c.Local.Aliases, wantAliases) {
		t.Errorf("Aliases = %v", c.Local.Aliases)
	}
	if !reflect.DeepEqual(c.Local.CatchAll, map[string]string{"example.org": "bob@example.org"}) {
		t.Errorf("CatchAll = %v", c.Local.CatchAll)
	}
}

// TestErrors checks the exact message, line and key of every error the
// package reports. Fixture line 1 is the line after the opening backquote.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // errors in order
	}{
		// Syntax.
		{"syntax: missing value", `
hostname = "mx.example.org"
data_dir =
`, []string{`t.toml:2: expected value but found '\n' instead`}},
		{"syntax: duplicate key", `
[limits]
max_errors = 3

max_errors = 4
`, []string{`t.toml:4: Key 'limits.max_errors' has already been defined.`}},
		{"syntax: unterminated string", `
[tls]
cert_file = "/etc/x
`, []string{`t.toml:2: strings cannot contain newlines`}},

		{"nesting too deep", `
hostname = "mx.example.org"
x = [[[[[[[[
[[[[[[[[[
]]]]]]]]]]]]]]]]]
`, []string{`t.toml:3: nested more than 16 levels deep (tables, dotted keys, arrays and inline tables together)`}},
		{"deep dotted key", `
[a.b.c.d.e.f.g.h]
i.j.k.l.m.n.o.p.q = 1
`, []string{`t.toml:2: nested more than 16 levels deep (tables, dotted keys, arrays and inline tables together)`}},

		// Unknown keys.
		{"unknown top-level key", `
hostname = "mx.example.org"
hostnme = "mx.example.org"
`, []string{`t.toml:2: hostnme: unknown key (did you mean "hostname"?)`}},
		{"unknown table", `
[limit]
max_errors = 3
`, []string{`t.toml:1: limit: unknown key (did you mean "limits"?)`}},
		{"unknown key in table", `
[limits]
max_errors = 3
max_recipent = 5
`, []string{`t.toml:3: limits.max_recipent: unknown key (did you mean "max_recipients"?)`}},
		{"unknown dotted key", `
limits.max_errors = 3
limits.flux = 5
`, []string{`t.toml:2: limits.flux: unknown key`}},
		{"unknown key in second array table entry", `
[[listener]]
name = "a"
address = "127.0.0.1:25"
role = "inbound"

[[listener]]
name = "b"
adress = "127.0.0.1:26"
role = "inbound"
`, []string{
			`t.toml:8: listener[1].adress: unknown key (did you mean "address"?)`,
		}},
		{"unknown key in user, hyphenated", `
[[user]]
name = "a"
password-hash = "x"
`, []string{`t.toml:3: user[0].password-hash: unknown key (did you mean "password_hash"?)`}},
		{"unknown quoted key", `
[admin]
"allow remote" = true
`, []string{`t.toml:2: admin."allow remote": unknown key (did you mean "allow_remote"?)`}},
		{"unknown subtable of array entry", `
[[listener]]
name = "a"
address = "127.0.0.1:25"
role = "inbound"
[listener.proxy]
enabled = true
`, []string{`t.toml:5: listener[0].proxy: unknown key`}},

		// Types.
		{"string where integer expected", `
[limits]
max_recipients = "100"
`, []string{`t.toml:2: limits.max_recipients: must be an integer, not a string`}},
		{"integer where string expected", `
hostname = 42
`, []string{`t.toml:1: hostname: must be a string, not an integer`}},
		{"table where value expected", `
[hostname]
x = 1
`, []string{`t.toml:1: hostname: must be a string, not a table`}},
		{"value where table expected", `
limits = 5
`, []string{`t.toml:1: limits: must be a table, not an integer`}},
		{"boolean", `
[tls]
session_tickets = "yes"
`, []string{`t.toml:2: tls.session_tickets: must be a boolean (true or false), not a string`}},
		{"array expected", `
[relay]
trusted_networks = "127.0.0.1"
`, []string{`t.toml:2: relay.trusted_networks: must be an array, not a string`}},
		{"listener as a plain table", `
[listener]
name = "x"
`, []string{`t.toml:1: listener: must be an array, not a table`}},

		// Value formats.
		{"bad size", `
[limits]
max_message_size = "50XB"
`, []string{`t.toml:2: limits.max_message_size: "50XB" is not a size (use e.g. "50MiB")`}},
		{"float size", `
[limits]
max_message_size = 1.5
`, []string{`t.toml:2: limits.max_message_size: must be an integer (bytes) or a string such as "50MiB", not a float`}},
		{"negative size", `
[limits]
max_message_size = -1
`, []string{`t.toml:2: limits.max_message_size: -1 is negative`}},
		{"bad duration", `
[limits]
command_timeout = "5 minutes"
`, []string{`t.toml:2: limits.command_timeout: "5 minutes" is not a duration (use e.g. "90s", "5m", "1h30m" or "7d")`}},
		{"duration as integer", `
[auth]
failure_window = 900
`, []string{`t.toml:2: auth.failure_window: must be a string, not an integer`}},
		{"bad network, with index", `
[relay]
trusted_networks = [
  "127.0.0.0/8",
  "10.0.0.300/8",
]
`, []string{`t.toml:4: relay.trusted_networks[1]: "10.0.0.300/8" is not an IP address or network (use e.g. "192.0.2.0/24")`}},
		{"network with host bits", `
[relay]
trusted_networks = ["10.1.2.3/8"]
`, []string{`t.toml:2: relay.trusted_networks[0]: "10.1.2.3/8" has host bits set (did you mean "10.0.0.0/8"?)`}},
		{"log level and format", `
log_format = "xml"
log_level = "verbose"
`, []string{
			`t.toml:1: log_format: "xml" is not a log format (text|json)`,
			`t.toml:2: log_level: "verbose" is not a log level (debug|info|warn|error)`,
		}},
		{"tls min version", `
[tls]
min_version = "1.1"
`, []string{`t.toml:2: tls.min_version: "1.1" is not a supported TLS version (1.2|1.3)`}},
		{"role and tls mode", `
[[listener]]
name = "a"
address = "127.0.0.1:25"
role = "outbound"
tls = "always"
`, []string{
			`t.toml:4: listener[0].role: "outbound" is not a listener role (inbound|submission)`,
			`t.toml:5: listener[0].tls: "always" is not a TLS mode (starttls|implicit|none)`,
		}},
		{"delivery and lmtp endpoint", `
[local]
delivery = "mbox"
lmtp = "http://localhost:24"
`, []string{
			`t.toml:2: local.delivery: "mbox" is not a delivery method (maildir|lmtp)`,
			`t.toml:3: local.lmtp: "http://localhost:24" is not an endpoint (use "unix:/path/to/socket" or "tcp:host:port")`,
		}},
		{"lmtp tcp without port", `
[local]
lmtp = "tcp:127.0.0.1"
`, []string{`t.toml:2: local.lmtp: "tcp:127.0.0.1": not a host:port address`}},
		{"plaintext password", `
[[user]]
name = "alice"
password_hash = "hunter2"
`, []string{`t.toml:3: user[0].password_hash: is not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash; plaintext passwords are not accepted`}},
		{"truncated bcrypt", `
[[user]]
name = "alice"
password_hash = "$2b$12$abc"
`, []string{`t.toml:3: user[0].password_hash: is not a valid bcrypt hash (expected 60 characters: $2b$CC$ followed by 53 characters)`}},
		{"all type errors reported together, by line", `
hostname = 1
[limits]
max_errors = "ten"
[auth]
max_failures = true
`, []string{
			`t.toml:1: hostname: must be a string, not an integer`,
			`t.toml:3: limits.max_errors: must be an integer, not a string`,
			`t.toml:5: auth.max_failures: must be an integer, not a boolean`,
		}},

		// Validation.
		{"hostname syntax", `
hostname = "mx_1.example.org"
`, []string{`t.toml:1: hostname: "mx_1.example.org" is not a valid host name (dot-separated labels of letters, digits and hyphens)`}},
		{"hostname is an IP", `
hostname = "192.0.2.1"
`, []string{`t.toml:1: hostname: "192.0.2.1" is an IP address, not a host name`}},
		{"hostname trailing dot", `
hostname = "mx.example.org."
`, []string{`t.toml:1: hostname: "mx.example.org." is not a valid host name (dot-separated labels of letters, digits and hyphens)`}},
		{"empty data_dir", `
data_dir = ""
`, []string{`t.toml:1: data_dir: must not be empty`}},
		{"cert without key", `
[tls]
cert_file = "/etc/cert.pem"
`, []string{`t.toml:1: tls.key_file: must be set when tls.cert_file is set`}},
		{"key without cert", `
[tls]
key_file = "/etc/key.pem"
`, []string{`t.toml:1: tls.cert_file: must be set when tls.key_file is set`}},
		{"no listeners", `
listener = []
`, []string{`t.toml:1: listener: at least one listener is required`}},
		{"listener missing keys", `
[[listener]]
tls = "none"
`, []string{
			`t.toml:1: listener[0].name: is required`,
			`t.toml:1: listener[0].address: is required (host:port, e.g. "0.0.0.0:25")`,
			`t.toml:1: listener[0].role: is required (inbound|submission)`,
		}},
		{"duplicate listener name and address", `
[[listener]]
name = "mx"
address = "127.0.0.1:25"
role = "inbound"

[[listener]]
name = "mx"
address = "127.0.0.1:25"
role = "inbound"
`, []string{
			`t.toml:7: listener[1].name: "mx" is already the name of listener[0] (line 1)`,
			`t.toml:8: listener[1].address: "127.0.0.1:25" is already the address of listener[0] (line 1)`,
		}},
		{"listener addresses", `
listener = [
  { name = "a", address = "127.0.0.1", role = "inbound" },
  { name = "b", address = "127.0.0.1:smtp", role = "inbound" },
  { name = "c", address = "127.0.0.1:70000", role = "inbound" },
  { name = "d", address = "mx_1:25", role = "inbound" },
]
`, []string{
			`t.toml:2: listener[0].address: "127.0.0.1": not a host:port address`,
			`t.toml:3: listener[1].address: "127.0.0.1:smtp": port "smtp" is not a number from 1 to 65535`,
			`t.toml:4: listener[2].address: "127.0.0.1:70000": port "70000" is not a number from 1 to 65535`,
			`t.toml:5: listener[3].address: "mx_1:25": host "mx_1" is not a valid host name (dot-separated labels of letters, digits and hyphens)`,
		}},
		{"submission without tls", `
[[listener]]
name = "sub"
address = "127.0.0.1:587"
role = "submission"
tls = "none"
`, []string{`t.toml:5: listener[0].tls: "none" is not allowed for a submission listener: AUTH is only offered over TLS, so no client could ever relay`}},
		{"limits out of range", `
[limits]
max_message_size = "3GiB"
max_recipients = 0
max_line_length = 998
max_command_length = 100
max_connections = 10
max_connections_per_ip = 11
command_timeout = "0s"
data_timeout = "0d"
max_errors = 1001
`, []string{
			`t.toml:2: limits.max_message_size: must be between 1KiB and 2GiB, not 3GiB`,
			`t.toml:3: limits.max_recipients: must be between 1 and 100000, not 0`,
			`t.toml:4: limits.max_line_length: must be between 1000 and 1048576, not 998`,
			`t.toml:5: limits.max_command_length: must be between 512 and 65536, not 100`,
			`t.toml:7: limits.max_connections_per_ip: must be between 1 and 10, not 11`,
			`t.toml:8: limits.command_timeout: must be longer than 0s, not 0s`,
			`t.toml:9: limits.data_timeout: must be longer than 0s, not 0s`,
			`t.toml:10: limits.max_errors: must be between 1 and 1000, not 1001`,
		}},
		{"max_connections zero", `
[limits]
max_connections = 0
`, []string{`t.toml:2: limits.max_connections: must be between 1 and 1000000, not 0`}},
		{"auth limits", `
[auth]
max_failures = 0
failure_window = "0m"
`, []string{
			`t.toml:2: auth.max_failures: must be between 1 and 1000000, not 0`,
			`t.toml:3: auth.failure_window: must be longer than 0s, not 0s`,
		}},
		{"users", `
[[user]]
name = "alice@example.org"
password_hash = "` + bcryptHash + `"

[[user]]
name = "Alice@Example.org"
password_hash = "` + bcryptHash + `"

[[user]]
name = "bob smith"

[[user]]
`, []string{
			`t.toml:6: user[1].name: "Alice@Example.org" is already the name of user[0] (line 1)`,
			`t.toml:9: user[2].password_hash: is required (a bcrypt or argon2id hash)`,
			`t.toml:10: user[2].name: "bob smith" contains white space or control characters`,
			`t.toml:12: user[3].name: is required`,
			`t.toml:12: user[3].password_hash: is required (a bcrypt or argon2id hash)`,
		}},
		{"local domains", `
[local]
domains = ["example.org", "Example.org", "-bad-.example"]
`, []string{
			`t.toml:2: local.domains[1]: "example.org" is listed twice`,
			`t.toml:2: local.domains[2]: "-bad-.example" is not a valid host name (dot-separated labels of letters, digits and hyphens)`,
		}},
		{"lmtp required", `
[local]
delivery = "lmtp"
`, []string{`t.toml:1: local.lmtp: is required when local.delivery = "lmtp" (e.g. "unix:/run/dovecot/lmtp")`}},
		{"maildir without user", `
[local]
maildir = "/var/mail/%d"
`, []string{`t.toml:2: local.maildir: "/var/mail/%d" must contain %u (the local part), or every user would share one maildir`}},
		{"maildir placeholder", `
[local]
maildir = "/var/mail/%h/%u"
`, []string{`t.toml:2: local.maildir: "/var/mail/%h/%u" uses unknown placeholder %h (known: %d domain, %u local part, %% percent sign)`}},
		{"maildir lone percent", `
[local]
maildir = "/var/mail/%u%"
`, []string{`t.toml:2: local.maildir: "/var/mail/%u%" ends in a lone % (write %% for a literal percent sign)`}},
		{"mailboxes", `
[local]
domains = ["example.org"]
mailboxes = [
  "alice@example.org",
  "bob@example.com",
  "carol",
  "a..b@example.org",
]
`, []string{
			`t.toml:5: local.mailboxes[1]: "bob@example.com" is not in a local domain (local.domains)`,
			`t.toml:6: local.mailboxes[2]: "carol" is not an address (use local@domain)`,
			`t.toml:7: local.mailboxes[3]: "a..b@example.org" is not an address (empty or misplaced dot in the local part)`,
		}},
		{"subaddress separator", `
[local]
subaddress_separator = "++"
`, []string{"t.toml:2: local.subaddress_separator: \"++\" must be empty or one of the characters !#$%&'*+-/=?^_`{|}~"}},
		{"subaddress separator at sign", `
[local]
subaddress_separator = "@"
`, []string{"t.toml:2: local.subaddress_separator: \"@\" must be empty or one of the characters !#$%&'*+-/=?^_`{|}~"}},
		{"aliases", `
[local]
domains = ["example.org"]

[local.aliases]
"postmaster@example.org" = ["alice@example.org"]
"postmaster@EXAMPLE.org" = ["alice@example.org"]
"abuse@example.com" = ["alice@example.org"]
"empty@example.org" = []
"bad@example.org" = ["alice@example.org", "not an address"]
`, []string{
			`t.toml:6: local.aliases."postmaster@EXAMPLE.org": "postmaster@EXAMPLE.org" is the same address as another alias`,
			`t.toml:7: local.aliases."abuse@example.com": "abuse@example.com" is not in a local domain (local.domains)`,
			`t.toml:8: local.aliases."empty@example.org": must list at least one address`,
			`t.toml:9: local.aliases."bad@example.org"[1]: "not an address" is not an address (use local@domain)`,
		}},
		{"catch-all", `
[local]
domains = ["example.org"]

[local.catch_all]
"example.com" = "alice@example.org"
"example.org" = "alice"
"EXAMPLE.ORG" = "bob@example.org"
`, []string{
			`t.toml:5: local.catch_all."example.com": "example.com" is not a local domain (local.domains)`,
			`t.toml:6: local.catch_all."example.org": "alice" is not an address (use local@domain)`,
			`t.toml:7: local.catch_all."EXAMPLE.ORG": "EXAMPLE.ORG" is the same domain as another catch-all`,
		}},
		{"sendmail socket too long", `
[sendmail]
socket = "/` + strings.Repeat("s", 110) + `"
`, []string{`t.toml:2: sendmail.socket: sendmail socket path "/` + strings.Repeat("s", 110) + `" is 111 bytes; unix socket paths are limited to 103 (set sendmail.socket to a shorter path)`}},
		{"derived sendmail socket too long", `
data_dir = "/` + strings.Repeat("d", 100) + `"
`, []string{`t.toml:1: data_dir: sendmail socket path "/` + strings.Repeat("d", 100) + `/sendmail.sock" is 115 bytes; unix socket paths are limited to 103 (set sendmail.socket to a shorter path)`}},
		{"admin not loopback", `
[admin]
address = "0.0.0.0:9425"
`, []string{`t.toml:2: admin.address: "0.0.0.0:9425" is not a loopback address; the admin endpoint has no authentication, so exposing it needs admin.allow_remote = true`}},
		{"admin all interfaces", `
[admin]
address = ":9425"
`, []string{`t.toml:2: admin.address: ":9425" is not a loopback address; the admin endpoint has no authentication, so exposing it needs admin.allow_remote = true`}},
		{"admin bad address", `
[admin]
address = "localhost"
allow_remote = true
`, []string{`t.toml:2: admin.address: "localhost": not a host:port address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", doc(tt.src))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "t.toml" {
				t.Errorf("errors.As(*Error) = %+v", ce)
			}
		})
	}
}

// Values that are allowed although they look unusual.
func TestAccepted(t *testing.T) {
	tests := []struct{ name, src string }{
		{"admin disabled", "[admin]\naddress = \"\"\n"},
		{"admin localhost", "[admin]\naddress = \"localhost:9425\"\n"},
		{"admin ipv6 loopback", "[admin]\naddress = \"[::1]:9425\"\n"},
		{"admin remote allowed", "[admin]\naddress = \"0.0.0.0:9425\"\nallow_remote = true\n"},
		{"single-label hostname", "hostname = \"localhost\"\n"},
		{"inbound without tls", "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:25\"\nrole = \"inbound\"\ntls = \"none\"\n"},
		{"two listeners on port 0", "listener = [{name = \"a\", address = \"127.0.0.1:0\", role = \"inbound\"}, {name = \"b\", address = \"127.0.0.1:0\", role = \"submission\"}]\n"},
		{"lmtp unix", "[local]\ndelivery = \"lmtp\"\nlmtp = \"unix:/run/dovecot/lmtp\"\n"},
		{"empty trusted networks", "[relay]\ntrusted_networks = []\n"},
		{"maildir with literal percent", "[local]\nmaildir = \"/var/mail/100%%/%u\"\n"},
		{"size with space and lower case", "[limits]\nmax_message_size = \"10 mib\"\n"},
		{"size exactly 2GiB", "[limits]\nmax_message_size = \"2GiB\"\n"},
		{"bcrypt 2y", "[[user]]\nname = \"a\"\npassword_hash = \"$2y$10$" + strings.Repeat("a", 53) + "\"\n"},
		{"crlf line endings", "[limits]\r\nmax_errors = 3\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("t.toml", []byte(tt.src)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.toml", Line: 3, Key: "x.y", Msg: "bad"}, "a.toml:3: x.y: bad"},
		{Error{File: "a.toml", Key: "x.y", Msg: "bad"}, "a.toml: x.y: bad"},
		{Error{File: "a.toml", Line: 3, Msg: "bad"}, "a.toml:3: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}
