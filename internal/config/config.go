// Package config loads and validates the mxward configuration file.
//
// The file is TOML; docs/mxward.example.toml is an annotated example and
// docs/configuration.md the reference. Every key has a default, so an empty
// file (or no file: see Default) gives a server that listens on loopback
// only. Values are checked when the file is loaded, not when they are first
// used, so that `mxward config check` catches every mistake before a restart,
// and each error names the file, the line and the full key.
//
// The Config returned is ready to use: sizes are byte counts, durations
// convert directly to time.Duration, networks are netip.Prefixes, enumerated
// values are typed constants, domains are lower-cased, and the paths derived
// from data_dir are filled in.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. Field tags give the key names used in
// the file.
type Config struct {
	// Hostname is the name used in the SMTP greeting, EHLO and Received
	// headers.
	Hostname string `toml:"hostname"`
	// DataDir holds the spool, the self-signed certificate and, by default,
	// the maildirs and the sendmail socket. A relative path is relative to
	// the working directory of the mxward process.
	DataDir   string     `toml:"data_dir"`
	LogFormat LogFormat  `toml:"log_format"`
	LogLevel  slog.Level `toml:"log_level"` // one of slog.LevelDebug, LevelInfo, LevelWarn, LevelError

	TLS       TLS        `toml:"tls"`
	Listeners []Listener `toml:"listener"`
	Relay     Relay      `toml:"relay"`
	Limits    Limits     `toml:"limits"`
	Auth      Auth       `toml:"auth"`
	Users     []User     `toml:"user"`
	Local     Local      `toml:"local"`
	Sendmail  Sendmail   `toml:"sendmail"`
	Admin     Admin      `toml:"admin"`
	Delivery  Outbound   `toml:"delivery"`
	DNS       DNS        `toml:"dns"`
	MTASTS    MTASTS     `toml:"mta_sts"`
	List      List       `toml:"policy_list"`

	// MTASTSPolicy is the policy mxward publishes (and may serve) for its own domains.
	MTASTSPolicy MTASTSPolicy `toml:"mta_sts_policy"`

	// DKIM are the keys outbound mail is signed with (docs/dkim.md).
	DKIM []DKIM `toml:"dkim"`

	// Pinning requires TLS of destinations that completed STARTTLS before (docs/pinning.md).
	Pinning Pinning `toml:"pinning"`
}

// MTASTS configures MTA-STS (RFC 8461) for outbound mail.
type MTASTS struct {
	// Enabled looks up and applies the MTA-STS policies of destination domains.
	Enabled bool `toml:"enabled"`
	// HTTPSPort is the port of policy hosts (mta-sts.<domain>); 443 except behind a
	// proxy or in tests.
	HTTPSPort int `toml:"https_port"`
	// CacheDir keeps fetched policies across restarts; derived from data_dir.
	CacheDir string `toml:"cache_dir"`
}

// List configures the static TLS policy list (EFF STARTTLS Everywhere format or
// mxward's own), for first contact with domains known to support TLS.
type List struct {
	// File is the list to install at start-up and on reload; empty means none. A file
	// older than the one installed before is refused (rollback protection).
	File string `toml:"file"`
	// Dir holds the installed list and its timestamp; derived from data_dir.
	Dir string `toml:"dir"`
}

// DNS says how mxward looks names up and how it learns whether an answer is
// DNSSEC-secure, which DANE depends on (RFC 7672 §2.1.1, DANE-01).
type DNS struct {
	// Mode is DNSValidate (validate in-process from the trust anchor, asking the
	// resolvers with DO+CD) or DNSTrustAD (believe the resolvers' AD bit, only
	// from loopback or TrustedResolvers).
	Mode DNSMode `toml:"mode"`
	// Resolvers are the recursive resolvers asked, as "ip:port" or a bare IP
	// address; empty means the nameserver lines of /etc/resolv.conf.
	Resolvers []string `toml:"resolvers"`
	// TrustedResolvers lists resolvers off loopback whose AD bit is believed in
	// trust-ad mode, for a validating resolver reached over a link nobody can
	// tamper with. Each must also appear in Resolvers.
	TrustedResolvers []string `toml:"trusted_resolvers"`
	// TrustAnchorFile holds DS or DNSKEY records in zone-file format; empty means
	// the IANA root trust anchors built into mxward.
	TrustAnchorFile string `toml:"trust_anchor_file"`
}

// TLS is the server certificate and protocol settings shared by all
// listeners.
type TLS struct {
	// CertFile and KeyFile are PEM files (the certificate chain and its
	// private key). Both empty means a self-signed ECDSA certificate kept
	// in DataDir, which is enough for opportunistic STARTTLS between MTAs
	// but not for mail clients.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13.
	MinVersion TLSVersion `toml:"min_version"`
	// SessionTickets enables TLS session resumption tickets. Off by default
	// because ticket keys are not rotated across restarts or shared between
	// instances, so they buy little and weaken forward secrecy.
	SessionTickets bool `toml:"session_tickets"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	Name    string  `toml:"name"`    // unique; used in logs and metrics
	Address string  `toml:"address"` // host:port for net.Listen; port 0 picks a free port
	Role    Role    `toml:"role"`
	TLS     TLSMode `toml:"tls"`
}

func (l *Listener) setDefaults() { l.TLS = TLSStartTLS }

// Relay controls who may send mail to non-local domains without AUTH.
type Relay struct {
	TrustedNetworks PrefixList `toml:"trusted_networks"`
}

// Limits bound what one client can make the server do.
type Limits struct {
	MaxMessageSize Size `toml:"max_message_size"` // advertised in EHLO SIZE
	MaxRecipients  int  `toml:"max_recipients"`   // RCPT commands per transaction
	// MaxLineLength is the longest DATA text line in bytes including CRLF.
	MaxLineLength int `toml:"max_line_length"`
	// MaxCommandLength is the longest command line in bytes including CRLF.
	MaxCommandLength    int      `toml:"max_command_length"`
	MaxConnections      int      `toml:"max_connections"`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"`
	CommandTimeout      Duration `toml:"command_timeout"` // waiting for a command
	DataTimeout         Duration `toml:"data_timeout"`    // waiting for the next chunk of DATA
	// MaxErrors is the number of protocol errors after which the session
	// is closed with 421.
	MaxErrors int `toml:"max_errors"`
}

// Auth throttles password guessing.
type Auth struct {
	// MaxFailures failed AUTH attempts from one client IP within
	// FailureWindow make further attempts from that IP fail until the
	// window has passed.
	MaxFailures   int      `toml:"max_failures"`
	FailureWindow Duration `toml:"failure_window"`
}

// User is an account that may AUTH on submission listeners.
type User struct {
	Name         string       `toml:"name"`
	PasswordHash PasswordHash `toml:"password_hash"`
}

// Local is delivery for the domains this server is the final destination for.
// Domains, and the domain part of every address in Mailboxes, Aliases and
// CatchAll (keys and values), are lower-cased; local parts are kept as
// written, since RFC 5321 leaves their case to the receiving host.
type Local struct {
	Domains  []string `toml:"domains"`
	Delivery Delivery `toml:"delivery"`
	// Maildir is a path template: %d is the domain, %u the local part
	// (without any subaddress), %% a literal percent sign.
	Maildir string   `toml:"maildir"`
	LMTP    Endpoint `toml:"lmtp"`
	// Mailboxes, when not empty, are the only addresses (besides Aliases and
	// CatchAll) that exist; RCPT to any other local address gets 550 5.1.1.
	// When empty every address in a local domain exists.
	Mailboxes []string `toml:"mailboxes"`
	// SubaddressSeparator splits "user+tag" into the mailbox "user" and a
	// tag; empty disables subaddressing.
	SubaddressSeparator string `toml:"subaddress_separator"`
	// Aliases maps a local address to the addresses its mail goes to.
	Aliases map[string][]string `toml:"aliases"`
	// CatchAll maps a local domain to the address that gets mail for
	// otherwise unknown addresses in that domain.
	CatchAll map[string]string `toml:"catch_all"`
}

// Sendmail is the local injection socket used by `mxward sendmail`.
type Sendmail struct {
	Socket string `toml:"socket"`
}

// Admin is the HTTP endpoint for metrics and administration.
type Admin struct {
	Address     string `toml:"address"` // "" disables the endpoint
	AllowRemote bool   `toml:"allow_remote"`
}

// Outbound is the [delivery] table: delivery to other domains' MX hosts: concurrency, retries,
// routing and transport security.
type Outbound struct {
	// TLSLevel is the security level for destinations without a policy of their own
	// (Postfix's smtp_tls_security_level): none, may, encrypt, dane, dane-only, verify,
	// secure or fingerprint.
	TLSLevel string `toml:"tls_level"`
	// MaxConnections bounds outbound sessions in total, MaxConnectionsPerDomain those to
	// one destination domain.
	MaxConnections          int `toml:"max_connections"`
	MaxConnectionsPerDomain int `toml:"max_connections_per_domain"`
	// MaxMessagesPerConnection caps how many messages one session carries before it is
	// closed (connection reuse).
	MaxMessagesPerConnection int `toml:"max_messages_per_connection"`
	// RetryFirst is the wait after the first failed attempt; it doubles up to RetryMax.
	RetryFirst Duration `toml:"retry_first"`
	RetryMax   Duration `toml:"retry_max"`
	// MessageLifetime is how long a message is retried before it bounces.
	MessageLifetime Duration `toml:"message_lifetime"`
	// DelayWarning is the age at which a "delayed" DSN is sent once; 0 disables it.
	DelayWarning Duration `toml:"delay_warning"`
	// AddressPreference orders a host's addresses: ipv6, ipv4, ipv6-only or ipv4-only.
	AddressPreference string `toml:"address_preference"`
	// AddressLimit is the most addresses tried per delivery attempt.
	AddressLimit int `toml:"address_limit"`
	// DANEDigests is the digest preference of DANE's digest agility, strongest first
	// (RFC 7671 §9, DANE-17), as Postfix's tls_dane_digests: "sha512 sha256".
	DANEDigests string `toml:"dane_digests"`
	// ConnectTimeout bounds the TCP connect to one address.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// Smarthost, when set, receives all outbound mail: "[relay.example.net]:587" (no MX
	// lookup) or "relay.example.net" (MX lookup).
	Smarthost string `toml:"smarthost"`
	// SmarthostUser and SmarthostPasswordFile authenticate to the smarthost (AUTH PLAIN,
	// only over TLS). The password is read from a file so that it stays out of the
	// configuration.
	SmarthostUser         string `toml:"smarthost_user"`
	SmarthostPasswordFile string `toml:"smarthost_password_file"`
	// Transport maps a destination domain to a fixed next hop, with the smarthost syntax.
	Transport map[string]string `toml:"transport"`
	// TLSPolicy maps a destination domain (".example.com" for its subdomains) to a
	// security level with attributes: "secure match=.example.com", "fingerprint
	// match=DIGEST", "encrypt", "none".
	TLSPolicy map[string]string `toml:"tls_policy"`
}

// Default returns the configuration used when no file is given: a server on
// loopback ports 2525 (inbound) and 2587 (submission) that relays for
// loopback clients, keeps its data in ./mxward-data and has no local domains.
func Default() *Config {
	c := defaults()
	c.derive()
	return c
}

// defaults returns the defaults without the values derived from data_dir,
// which depend on what the file says.
func defaults() *Config {
	return &Config{
		Hostname:  systemHostname(),
		DataDir:   "./mxward-data",
		LogFormat: LogText,
		LogLevel:  slog.LevelInfo,
		TLS:       TLS{MinVersion: tls.VersionTLS12},
		Listeners: []Listener{
			{Name: "inbound", Address: "127.0.0.1:2525", Role: RoleInbound, TLS: TLSStartTLS},
			{Name: "submission", Address: "127.0.0.1:2587", Role: RoleSubmission, TLS: TLSStartTLS},
		},
		Relay: Relay{TrustedNetworks: PrefixList{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		}},
		Limits: Limits{
			MaxMessageSize:      50 << 20,
			MaxRecipients:       100,
			MaxLineLength:       1000,
			MaxCommandLength:    2048,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 20,
			CommandTimeout:      Duration(5 * time.Minute),
			DataTimeout:         Duration(10 * time.Minute),
			MaxErrors:           10,
		},
		Auth: Auth{
			MaxFailures:   5,
			FailureWindow: Duration(15 * time.Minute),
		},
		Local: Local{
			Delivery:            DeliveryMaildir,
			SubaddressSeparator: "+",
		},
		Admin:  Admin{Address: "127.0.0.1:9425"},
		DNS:    DNS{Mode: DNSValidate},
		MTASTS: MTASTS{Enabled: true, HTTPSPort: 443},
		Delivery: Outbound{
			TLSLevel:                 "dane",
			MaxConnections:           100,
			MaxConnectionsPerDomain:  10,
			MaxMessagesPerConnection: 50,
			RetryFirst:               Duration(5 * time.Minute),
			RetryMax:                 Duration(time.Hour),
			MessageLifetime:          Duration(5 * 24 * time.Hour),
			DelayWarning:             Duration(4 * time.Hour),
			AddressPreference:        "ipv6",
			AddressLimit:             5,
			DANEDigests:              "sha512 sha256",
			ConnectTimeout:           Duration(30 * time.Second),
		},
		MTASTSPolicy: MTASTSPolicy{Mode: defaultMTASTSPolicyMode, MaxAge: defaultMTASTSPolicyMaxAge},
		Pinning: Pinning{MaxAge: defaultPinMaxAge, MinObservations: defaultPinMinObservations,
			MinInterval: defaultPinMinInterval},
	}
}

// derive fills in the defaults computed from other keys.
func (c *Config) derive() {
	if c.Local.Maildir == "" {
		c.Local.Maildir = filepath.Join(c.DataDir, "mail", "%d", "%u")
	}
	if c.Sendmail.Socket == "" {
		c.Sendmail.Socket = filepath.Join(c.DataDir, "sendmail.sock")
	}
	if c.MTASTS.CacheDir == "" {
		c.MTASTS.CacheDir = filepath.Join(c.DataDir, "mta-sts")
	}
	if c.List.Dir == "" {
		c.List.Dir = filepath.Join(c.DataDir, "policy-list")
	}
	if c.Pinning.Dir == "" {
		c.Pinning.Dir = filepath.Join(c.DataDir, "pins")
	}
}

// systemHostname returns os.Hostname if it is usable as an EHLO name, and
// "localhost" otherwise, so that the defaults always validate.
func systemHostname() string {
	h, err := os.Hostname()
	if err != nil || checkHostname(h) != nil {
		return "localhost"
	}
	return h
}

// maxNesting bounds how deeply a file may nest. The schema needs 4 levels
// (local.aliases."a@example.org"[0]); the bound keeps a malformed or
// hostile file from making the TOML parser spin.
const maxNesting = 16

// Load reads and validates the configuration file at path. Keys missing
// from the file keep their defaults (see Default).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration file's contents; name is used in
// error messages. Unknown keys, type errors and malformed values are all
// reported together; the remaining checks (required keys, ranges, consistency
// between keys) run only when there are none, so that one bad value does not
// cause a cascade of follow-on errors.
func Parse(name string, data []byte) (*Config, error) {
	keys := scanKeys(string(data))
	if keys.maxDepth > maxNesting {
		return nil, &Error{File: name, Line: keys.depthLine,
			Msg: fmt.Sprintf("nested more than %d levels deep (tables, dotted keys, arrays and inline tables together)", maxNesting)}
	}
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Msg: pe.Message}
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	d := &decoder{file: name, lines: keys.lines}
	c := defaults()
	d.decode("", tree, reflect.ValueOf(c).Elem())
	if len(d.errs) == 0 {
		c.derive()
		d.validate(c)
		d.validateMTASTSPolicy(c)
		d.validateDKIM(c)
		d.validatePinning(c)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}
