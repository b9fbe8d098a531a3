package config

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count. In the configuration file it is either a TOML integer
// (bytes) or a string with a unit: "512KiB", "50MiB", "1GB". Binary units
// (KiB, MiB, GiB, TiB) are powers of 1024, decimal units (KB, MB, GB, TB) powers
// of 1000, so that "50MB" means what a disk vendor means and "50MiB" what a
// programmer means. Units are matched case-insensitively.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so that "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseSize parses the string form of a Size. A string of digits alone is a
// number of bytes.
func ParseSize(s string) (Size, error) {
	bad := fmt.Errorf("%q is not a size (use e.g. \"50MiB\")", s)
	t := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, bad
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return Size(n * mult), nil
	}
	// Fractions such as "1.5GiB" are allowed; the result is rounded down to
	// whole bytes.
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, bad
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(v), nil
}

// String formats s with the largest binary unit that represents it exactly,
// so that String and ParseSize round-trip.
func (s Size) String() string {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// fromTOML accepts a TOML integer as bytes, or a string for ParseSize.
func (s *Size) fromTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("%d is negative", v)
		}
		*s = Size(v)
		return nil
	case string:
		return s.UnmarshalText([]byte(v))
	}
	return fmt.Errorf("must be an integer (bytes) or a string such as \"50MiB\", not %s", tomlTypeName(v))
}

// Duration is a time.Duration written as a string: anything time.ParseDuration
// accepts ("90s", "5m", "1h30m") plus "d" for 24-hour days ("7d", "1d12h").
// A sign is not accepted: every duration in the configuration is a positive
// span of time.
type Duration time.Duration

// ParseDuration parses the string form of a Duration.
func ParseDuration(s string) (Duration, error) {
	bad := fmt.Errorf("%q is not a duration (use e.g. \"90s\", \"5m\", \"1h30m\" or \"7d\")", s)
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, bad
	}
	// Pull out the "<number>d" components and hand the rest to
	// time.ParseDuration.
	var (
		days float64
		rest strings.Builder
	)
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9')) {
			j++
		}
		k := j
		for k < len(s) && s[k] != '.' && (s[k] < '0' || s[k] > '9') {
			k++
		}
		if j == i {
			return 0, bad
		}
		if s[j:k] == "d" {
			f, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return 0, bad
			}
			days += f
		} else {
			rest.WriteString(s[i:k])
		}
		i = k
	}
	var d time.Duration
	if rest.Len() > 0 {
		var err error
		if d, err = time.ParseDuration(rest.String()); err != nil {
			return 0, bad
		}
	}
	daysDur := days * float64(24*time.Hour)
	if daysDur >= float64(math.MaxInt64-d) {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return Duration(d + time.Duration(daysDur)), nil
}

// String returns the time.Duration form, e.g. "5m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// PrefixList is a set of networks, used for relay.trusted_networks. Each entry
// in the file is a CIDR prefix ("192.0.2.0/24") or a bare address, which means
// the single host (/32 or /128).
type PrefixList []netip.Prefix

// Contains reports whether addr is inside any of the prefixes. An
// IPv4-mapped IPv6 address (::ffff:192.0.2.1), which is what a dual-stack
// listener reports for IPv4 clients, is matched as the IPv4 address.
func (l PrefixList) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParsePrefix parses one PrefixList entry. A prefix with host bits set
// ("10.1.2.3/8") is rejected rather than silently masked, because it usually
// means the operator had a different network in mind.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network (use e.g. \"192.0.2.0/24\")", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network (use e.g. \"192.0.2.0/24\")", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network; write the IPv4 network instead", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %q?)", s, m.String())
	}
	return p, nil
}

// Role says what a listener is for.
type Role string

const (
	// RoleInbound accepts mail for the local domains from anyone, and relays
	// only for clients in relay.trusted_networks.
	RoleInbound Role = "inbound"
	// RoleSubmission is for the operator's own users (RFC 6409): relaying
	// requires AUTH, and AUTH is offered only over TLS.
	RoleSubmission Role = "submission"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	switch v := Role(b); v {
	case RoleInbound, RoleSubmission:
		*r = v
		return nil
	}
	return fmt.Errorf("%q is not a listener role (inbound|submission)", b)
}

// TLSMode says how a listener uses TLS.
type TLSMode string

const (
	TLSStartTLS TLSMode = "starttls" // plain text until the client sends STARTTLS
	TLSImplicit TLSMode = "implicit" // TLS from the first byte (RFC 8314, port 465)
	TLSNone     TLSMode = "none"     // no TLS at all
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *TLSMode) UnmarshalText(b []byte) error {
	switch v := TLSMode(b); v {
	case TLSStartTLS, TLSImplicit, TLSNone:
		*m = v
		return nil
	}
	return fmt.Errorf("%q is not a TLS mode (starttls|implicit|none)", b)
}

// Delivery says where mail for local domains goes.
type Delivery string

const (
	DeliveryMaildir Delivery = "maildir" // written to a Maildir by mxward itself
	DeliveryLMTP    Delivery = "lmtp"    // handed to an LMTP server such as Dovecot
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Delivery) UnmarshalText(b []byte) error {
	switch v := Delivery(b); v {
	case DeliveryMaildir, DeliveryLMTP:
		*d = v
		return nil
	}
	return fmt.Errorf("%q is not a delivery method (maildir|lmtp)", b)
}

// LogFormat selects the log/slog handler.
type LogFormat string

const (
	LogText LogFormat = "text" // slog.TextHandler
	LogJSON LogFormat = "json" // slog.JSONHandler
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch v := LogFormat(b); v {
	case LogText, LogJSON:
		*f = v
		return nil
	}
	return fmt.Errorf("%q is not a log format (text|json)", b)
}

// TLSVersion is a TLS protocol version as used in tls.Config.MinVersion,
// written "1.2" or "1.3" in the file. Older versions are not offered: RFC 8996
// deprecates them.
type TLSVersion uint16

// String returns "1.2" or "1.3".
func (v TLSVersion) String() string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// MarshalText implements encoding.TextMarshaler.
func (v TLSVersion) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *TLSVersion) UnmarshalText(b []byte) error {
	switch string(b) {
	case "1.2":
		*v = tls.VersionTLS12
		return nil
	case "1.3":
		*v = tls.VersionTLS13
		return nil
	}
	return fmt.Errorf("%q is not a supported TLS version (1.2|1.3)", b)
}

// Endpoint is a stream socket to dial: "unix:/run/dovecot/lmtp" or
// "tcp:127.0.0.1:24". Network and Address are ready for net.Dial.
type Endpoint struct {
	Network string // "unix" or "tcp"; empty when not configured
	Address string
}

// IsZero reports whether no endpoint is configured.
func (e Endpoint) IsZero() bool { return e.Network == "" }

// String returns the configuration form, "network:address".
func (e Endpoint) String() string {
	if e.IsZero() {
		return ""
	}
	return e.Network + ":" + e.Address
}

// MarshalText implements encoding.TextMarshaler.
func (e Endpoint) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. The empty string clears
// the endpoint.
func (e *Endpoint) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "" {
		*e = Endpoint{}
		return nil
	}
	bad := fmt.Errorf("%q is not an endpoint (use \"unix:/path/to/socket\" or \"tcp:host:port\")", s)
	network, addr, ok := strings.Cut(s, ":")
	if !ok || addr == "" {
		return bad
	}
	switch network {
	case "unix":
		if strings.ContainsRune(addr, 0) {
			return bad
		}
		if len(addr) > maxUnixSocketPath {
			return fmt.Errorf("%q: unix socket paths are limited to %d bytes", s, maxUnixSocketPath)
		}
	case "tcp":
		if err := checkHostPort(addr, false); err != nil {
			return fmt.Errorf("%q: %v", s, err)
		}
	default:
		return bad
	}
	*e = Endpoint{Network: network, Address: addr}
	return nil
}

// maxUnixSocketPath is the longest path every supported platform can bind:
// sockaddr_un.sun_path is 108 bytes on Linux and 104 on the BSDs and macOS,
// including the terminating NUL.
const maxUnixSocketPath = 103

// PasswordHash is a password hash in modular crypt format: bcrypt
// ("$2a$", "$2b$" or "$2y$") or argon2id ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
// The format is checked when the configuration is loaded so that a plaintext
// password pasted into the file is refused instead of silently never matching.
type PasswordHash string

// Scheme returns "bcrypt" or "argon2id".
func (h PasswordHash) Scheme() string {
	if strings.HasPrefix(string(h), "$argon2id$") {
		return "argon2id"
	}
	return "bcrypt"
}

// UnmarshalText implements encoding.TextUnmarshaler. Error messages never
// repeat the value: it may be a password.
func (h *PasswordHash) UnmarshalText(b []byte) error {
	s := string(b)
	var err error
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		err = checkBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		err = checkArgon2id(s)
	default:
		err = fmt.Errorf("is not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash; plaintext passwords are not accepted")
	}
	if err != nil {
		return err
	}
	*h = PasswordHash(s)
	return nil
}

// checkBcrypt checks "$2b$" cost(2 digits) "$" salt(22) hash(31), the 60-byte
// form every bcrypt implementation produces.
func checkBcrypt(s string) error {
	if len(s) != 60 || s[6] != '$' {
		return fmt.Errorf("is not a valid bcrypt hash (expected 60 characters: $2b$CC$ followed by 53 characters)")
	}
	cost, err := strconv.Atoi(s[4:6])
	if err != nil || cost < 4 || cost > 31 {
		return fmt.Errorf("is not a valid bcrypt hash (cost must be 04 to 31)")
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return fmt.Errorf("is not a valid bcrypt hash (invalid character at position %d)", i+1)
		}
	}
	return nil
}

// checkArgon2id checks the PHC string format of RFC 9106 / the reference
// implementation: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<tag>
// with unpadded standard base64 salt (at least 8 bytes, the RFC 9106 minimum)
// and tag (at least 16 bytes).
func checkArgon2id(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("is not a valid argon2id hash (%s)", why)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("expected $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if f[2] != "v=19" {
		return bad("version must be v=19")
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return bad("parameters must be m=...,t=...,p=...")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != name || err != nil || n == 0 {
			return bad("parameters must be m=...,t=...,p=... with positive integers")
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return bad("p must be at most 255")
	}
	if vals[0] < 8*vals[2] {
		return bad("m must be at least 8*p")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(f[4])
	if err != nil || len(salt) < 8 {
		return bad("salt must be unpadded base64 of at least 8 bytes")
	}
	tag, err := base64.RawStdEncoding.Strict().DecodeString(f[5])
	if err != nil || len(tag) < 16 {
		return bad("hash must be unpadded base64 of at least 16 bytes")
	}
	return nil
}

// DNSMode says where the DNSSEC status of answers comes from.
type DNSMode string

const (
	DNSValidate DNSMode = "validate" // in-process validation from the trust anchor
	DNSTrustAD  DNSMode = "trust-ad" // the AD bit of a trusted validating resolver
)

func (m *DNSMode) UnmarshalText(b []byte) error {
	switch v := DNSMode(b); v {
	case DNSValidate, DNSTrustAD:
		*m = v
		return nil
	}
	return fmt.Errorf("%q: use \"validate\" or \"trust-ad\"", b)
}
