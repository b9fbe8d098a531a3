package config

import (
	"crypto/tls"
	"encoding"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "100B", want: 100},
		{in: "512KiB", want: 512 << 10},
		{in: "50MiB", want: 50 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "1KB", want: 1000},
		{in: "10MB", want: 10_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "10 mib", want: 10 << 20},
		{in: " 1.5GiB ", want: 3 << 29},
		{in: "50XB", err: `"50XB" is not a size (use e.g. "50MiB")`},
		{in: "", err: `"" is not a size (use e.g. "50MiB")`},
		{in: "MiB", err: `"MiB" is not a size (use e.g. "50MiB")`},
		{in: "-5MiB", err: `"-5MiB" is not a size (use e.g. "50MiB")`},
		{in: "1.2.3KiB", err: `"1.2.3KiB" is not a size (use e.g. "50MiB")`},
		{in: "NaN", err: `"NaN" is not a size (use e.g. "50MiB")`},
		{in: "9000000TiB", err: `"9000000TiB" is too large`},
		{in: "1e30", err: `"1e30" is too large`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0B"}, {1000, "1000B"}, {1024, "1KiB"}, {50 << 20, "50MiB"}, {3 << 29, "1536MiB"}, {2 << 40, "2TiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "12h1d", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "0", want: 0},
		{in: "", err: true},
		{in: "5", err: true},
		{in: "-5m", err: true},
		{in: "+5m", err: true},
		{in: "5 minutes", err: true},
		{in: "d", err: true},
		{in: "1.2.3d", err: true},
		{in: "5w", err: true},
		{in: "200000d", err: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || time.Duration(got) != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "192.0.2.0/24", want: "192.0.2.0/24"},
		{in: "192.0.2.1", want: "192.0.2.1/32"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1/32"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "192.0.2.1/24", err: `"192.0.2.1/24" has host bits set (did you mean "192.0.2.0/24"?)`},
		{in: "::ffff:192.0.2.0/120", err: `"::ffff:192.0.2.0/120" is an IPv4-mapped IPv6 network; write the IPv4 network instead`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0" is not an IP address or network (use e.g. "192.0.2.0/24")`},
		{in: "192.0.2.0/33", err: `"192.0.2.0/33" is not an IP address or network (use e.g. "192.0.2.0/24")`},
		{in: "example.org", err: `"example.org" is not an IP address or network (use e.g. "192.0.2.0/24")`},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParsePrefix(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestPrefixListContains(t *testing.T) {
	l := PrefixList{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.255.1.2", true},
		{"::ffff:127.0.0.1", true}, // IPv4 client on a dual-stack socket
		{"2001:db8::25", true},
		{"128.0.0.1", false},
		{"::1", false},
		{"2001:db9::1", false},
	}
	for _, tt := range tests {
		if got := l.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if (PrefixList{}).Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("empty list contains 127.0.0.1")
	}
}

func TestPasswordHash(t *testing.T) {
	salt := "c29tZXNhbHRzb21lc2FsdA"                     // 16 bytes
	tag := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 bytes
	tests := []struct {
		in     string
		scheme string // "" for an error
	}{
		{bcryptHash, "bcrypt"},
		{"$2b$04$" + strings.Repeat("A", 53), "bcrypt"},
		{"$2y$31$" + strings.Repeat("/", 53), "bcrypt"},
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + tag, "argon2id"},
		{"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + tag, "argon2id"},

		{"", ""},
		{"hunter2", ""},
		{"$2x$12$" + strings.Repeat("A", 53), ""}, // $2x$ marks the buggy crypt_blowfish variant
		{"$2b$03$" + strings.Repeat("A", 53), ""}, // cost below 4
		{"$2b$32$" + strings.Repeat("A", 53), ""}, // cost above 31
		{"$2b$1a$" + strings.Repeat("A", 53), ""}, // cost not a number
		{"$2b$12$" + strings.Repeat("A", 52), ""}, // short
		{"$2b$12$" + strings.Repeat("A", 54), ""}, // long
		{"$2b$12$" + strings.Repeat("+", 53), ""}, // not the bcrypt alphabet
		{"$2b$12x" + strings.Repeat("A", 53), ""}, // separator
		{"$argon2i$v=19$m=65536,t=3,p=4$" + salt + "$" + tag, ""},
		{"$argon2id$v=16$m=65536,t=3,p=4$" + salt + "$" + tag, ""},
		{"$argon2id$m=65536,t=3,p=4$" + salt + "$" + tag, ""},
		{"$argon2id$v=19$t=3,m=65536,p=4$" + salt + "$" + tag, ""},
		{"$argon2id$v=19$m=65536,t=0,p=4$" + salt + "$" + tag, ""},
		{"$argon2id$v=19$m=65536,t=3,p=256$" + salt + "$" + tag, ""},
		{"$argon2id$v=19$m=16,t=3,p=4$" + salt + "$" + tag, ""}, // m < 8p
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "==$" + tag, ""},
		{"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + tag, ""}, // 4-byte salt
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$AAAA", ""},
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt, ""},
	}
	for _, tt := range tests {
		var h PasswordHash
		err := h.UnmarshalText([]byte(tt.in))
		if tt.scheme == "" {
			if err == nil {
				t.Errorf("UnmarshalText(%q) accepted", tt.in)
			} else if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q repeats the value", err)
			}
			continue
		}
		if err != nil || string(h) != tt.in || h.Scheme() != tt.scheme {
			t.Errorf("UnmarshalText(%q) = %q (%s), %v", tt.in, h, h.Scheme(), err)
		}
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		want Endpoint
		err  bool
	}{
		{in: "unix:/run/dovecot/lmtp", want: Endpoint{"unix", "/run/dovecot/lmtp"}},
		{in: "unix:relative.sock", want: Endpoint{"unix", "relative.sock"}},
		{in: "tcp:127.0.0.1:24", want: Endpoint{"tcp", "127.0.0.1:24"}},
		{in: "tcp:[::1]:24", want: Endpoint{"tcp", "[::1]:24"}},
		{in: "tcp:lmtp.internal:24", want: Endpoint{"tcp", "lmtp.internal:24"}},
		{in: "", want: Endpoint{}},
		{in: "unix:", err: true},
		{in: "unix:/" + strings.Repeat("x", 103), err: true},
		{in: "tcp:127.0.0.1", err: true},
		{in: "tcp::24", err: true},
		{in: "tcp:127.0.0.1:0", err: true},
		{in: "udp:127.0.0.1:24", err: true},
		{in: "/run/dovecot/lmtp", err: true},
	}
	for _, tt := range tests {
		var e Endpoint
		err := e.UnmarshalText([]byte(tt.in))
		if tt.err {
			if err == nil {
				t.Errorf("UnmarshalText(%q) = %+v, want an error", tt.in, e)
			}
			continue
		}
		if err != nil || e != tt.want || e.String() != tt.in {
			t.Errorf("UnmarshalText(%q) = %+v (%q), %v", tt.in, e, e.String(), err)
		}
	}
}

// The text forms used in the file survive MarshalText and UnmarshalText, so
// a Config can be written back out.
func TestTextRoundTrip(t *testing.T) {
	type textValue interface {
		encoding.TextMarshaler
		encoding.TextUnmarshaler
	}
	tests := []struct {
		in  string
		new func() textValue
	}{
		{"50MiB", func() textValue { return new(Size) }},
		{"1h30m0s", func() textValue { return new(Duration) }},
		{"1.3", func() textValue { return new(TLSVersion) }},
		{"unix:/run/lmtp", func() textValue { return new(Endpoint) }},
	}
	for _, tt := range tests {
		v := tt.new()
		if err := v.UnmarshalText([]byte(tt.in)); err != nil {
			t.Errorf("UnmarshalText(%q): %v", tt.in, err)
			continue
		}
		out, err := v.MarshalText()
		if err != nil || string(out) != tt.in {
			t.Errorf("MarshalText after UnmarshalText(%q) = %q, %v", tt.in, out, err)
		}
	}
	var v TLSVersion
	if err := v.UnmarshalText([]byte("1.2")); err != nil || v != tls.VersionTLS12 {
		t.Errorf("TLSVersion 1.2 = %v, %v", v, err)
	}
}

func TestCheckHostname(t *testing.T) {
	valid := []string{"localhost", "mx.example.org", "MX-1.Example.ORG", "a.b-c.d", "xn--bcher-kva.example", "1mx.example.org", strings.Repeat("a", 63) + ".example"}
	invalid := []string{"", ".", "mx..example.org", "mx.example.org.", ".mx.example.org", "-mx.example.org", "mx-.example.org",
		"mx_1.example.org", "mx example.org", "müller.example", "192.0.2.1", "::1", "1.2.3", strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefghi.", 26) + "org"}
	for _, h := range valid {
		if err := checkHostname(h); err != nil {
			t.Errorf("checkHostname(%q) = %v", h, err)
		}
	}
	for _, h := range invalid {
		if err := checkHostname(h); err == nil {
			t.Errorf("checkHostname(%q) accepted", h)
		}
	}
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.org", "alice@example.org"},
		{"Alice@Example.ORG", "Alice@example.org"},
		{"first.last+tag@example.org", "first.last+tag@example.org"},
		{"o'brien@example.org", "o'brien@example.org"},
		{"alice", ""},
		{"@example.org", ""},
		{"alice@", ""},
		{".alice@example.org", ""},
		{"alice.@example.org", ""},
		{"al ice@example.org", ""},
		{`"al ice"@example.org`, ""},
		{"alice@[192.0.2.1]", ""},
		{"alice@example_org", ""},
		{strings.Repeat("a", 65) + "@example.org", ""},
	}
	for _, tt := range tests {
		got, err := normalizeAddress(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("normalizeAddress(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
