package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"mxward/internal/dane"
	"mxward/internal/tlspolicy"
)

// Bounds for numeric settings. They exist to catch typos (an extra zero, a
// missing unit) rather than to enforce policy, so they are generous.
const (
	minMessageSize   = 1 << 10 // 1KiB
	maxMessageSize   = 2 << 30 // 2GiB; the spool and SIZE handling use int64, but beyond this something is wrong
	maxRecipients    = 100_000
	minLineLength    = 1000 // RFC 5321 §4.5.3.1.6: text line limit of 1000 octets including CRLF
	maxLineLength    = 1 << 20
	minCommandLength = 512 // RFC 5321 §4.5.3.1.4: command line limit of 512 octets including CRLF
	maxCommandLength = 64 << 10
	maxConnections   = 1_000_000
	maxErrors        = 1000
	maxAuthFailures  = 1_000_000
)

// validate checks what the per-value decoding cannot: required keys, ranges,
// and consistency between keys. It also normalises domains to lower case.
func (d *decoder) validate(c *Config) {
	if err := checkHostname(c.Hostname); err != nil {
		d.errorf("hostname", "%q %v", c.Hostname, err)
	}
	if c.DataDir == "" {
		d.errorf("data_dir", "must not be empty")
	}
	d.validateTLS(&c.TLS)
	d.validateListeners(c.Listeners)
	d.validateLimits(&c.Limits)
	d.intRange("auth.max_failures", c.Auth.MaxFailures, 1, maxAuthFailures)
	d.positive("auth.failure_window", c.Auth.FailureWindow)
	d.validateUsers(c.Users)
	d.validateLocal(&c.Local)
	if len(c.Sendmail.Socket) > maxUnixSocketPath {
		key := "sendmail.socket"
		if _, ok := d.lines[key]; !ok {
			key = "data_dir" // the socket path is derived from it
		}
		d.errorf(key, "sendmail socket path %q is %d bytes; unix socket paths are limited to %d (set sendmail.socket to a shorter path)",
			c.Sendmail.Socket, len(c.Sendmail.Socket), maxUnixSocketPath)
	}
	d.validateAdmin(&c.Admin)
	d.validateDelivery(&c.Delivery)
	d.validateDNS(&c.DNS)
	d.intRange("mta_sts.https_port", c.MTASTS.HTTPSPort, 1, 65535)
}

func (d *decoder) validateDNS(dc *DNS) {
	resolvers := make(map[netip.AddrPort]bool)
	for i, s := range dc.Resolvers {
		ap, err := ParseResolver(s)
		if err != nil {
			d.errorf(indexKey("dns.resolvers", i), "%q: %v", s, err)
			continue
		}
		resolvers[ap] = true
	}
	for i, s := range dc.TrustedResolvers {
		ap, err := ParseResolver(s)
		switch {
		case err != nil:
			d.errorf(indexKey("dns.trusted_resolvers", i), "%q: %v", s, err)
		case !resolvers[ap]:
			d.errorf(indexKey("dns.trusted_resolvers", i), "%q is not one of dns.resolvers", s)
		case dc.Mode != DNSTrustAD:
			d.errorf(indexKey("dns.trusted_resolvers", i), "only used with dns.mode = \"trust-ad\"")
		}
	}
}

// ParseResolver parses a resolver address: "ip:port", "[ipv6]:port" or a bare IP
// address meaning port 53. Names are refused: resolving the resolver would need a
// resolver.
func ParseResolver(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("zoned address not supported")
		}
		return netip.AddrPortFrom(ip, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want an IP address with optional port, e.g. \"127.0.0.1:53\"")
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0")
	}
	return ap, nil
}

func (d *decoder) validateDelivery(dl *Outbound) {
	if _, err := tlspolicy.ParsePolicy(dl.TLSLevel); err != nil || strings.Contains(dl.TLSLevel, " ") {
		d.errorf("delivery.tls_level", "%q is not a security level (none, may, encrypt, dane, dane-only, verify, secure, fingerprint)", dl.TLSLevel)
	}
	d.intRange("delivery.max_connections", dl.MaxConnections, 1, 100_000)
	d.intRange("delivery.max_connections_per_domain", dl.MaxConnectionsPerDomain, 1, 10_000)
	d.intRange("delivery.max_messages_per_connection", dl.MaxMessagesPerConnection, 1, 100_000)
	d.intRange("delivery.address_limit", dl.AddressLimit, 1, 100)
	d.positive("delivery.retry_first", dl.RetryFirst)
	d.positive("delivery.retry_max", dl.RetryMax)
	d.positive("delivery.message_lifetime", dl.MessageLifetime)
	d.positive("delivery.connect_timeout", dl.ConnectTimeout)
	if dl.RetryMax < dl.RetryFirst {
		d.errorf("delivery.retry_max", "must not be shorter than delivery.retry_first")
	}
	switch dl.AddressPreference {
	case "ipv6", "ipv4", "ipv6-only", "ipv4-only":
	default:
		d.errorf("delivery.address_preference", "%q: use ipv6, ipv4, ipv6-only or ipv4-only", dl.AddressPreference)
	}
	if _, err := dane.ParseDigests(dl.DANEDigests); err != nil {
		d.errorf("delivery.dane_digests", "%q: %v", dl.DANEDigests, err)
	}
	if (dl.SmarthostUser == "") != (dl.SmarthostPasswordFile == "") {
		d.errorf("delivery.smarthost_user", "smarthost_user and smarthost_password_file go together")
	}
	if dl.SmarthostUser != "" && dl.Smarthost == "" {
		d.errorf("delivery.smarthost_user", "set without delivery.smarthost")
	}
	if dl.TLSPolicy != nil {
		pol := make(map[string]string, len(dl.TLSPolicy))
		for _, dom := range keysByLine(d, "delivery.tls_policy", dl.TLSPolicy) {
			key := childKey("delivery.tls_policy", dom)
			if err := CheckPolicyDomain(dom); err != nil {
				d.errorf(key, "%v", err)
				continue
			}
			if _, err := tlspolicy.ParsePolicy(dl.TLSPolicy[dom]); err != nil {
				d.errorf(key, "%v", err)
				continue
			}
			pol[strings.ToLower(dom)] = dl.TLSPolicy[dom]
		}
		dl.TLSPolicy = pol
	}
	if dl.Transport != nil {
		tr := make(map[string]string, len(dl.Transport))
		for _, dom := range keysByLine(d, "delivery.transport", dl.Transport) {
			key := childKey("delivery.transport", dom)
			if err := CheckPolicyDomain(dom); err != nil {
				d.errorf(key, "%v", err)
				continue
			}
			if dl.Transport[dom] == "" {
				d.errorf(key, "empty next hop")
				continue
			}
			tr[strings.ToLower(dom)] = dl.Transport[dom]
		}
		dl.Transport = tr
	}
}

// CheckPolicyDomain accepts a domain, or ".domain" meaning its subdomains.
func CheckPolicyDomain(s string) error {
	if err := checkHostname(strings.TrimPrefix(s, ".")); err != nil {
		return fmt.Errorf("%q is not a domain or .domain: %v", s, err)
	}
	return nil
}

func (d *decoder) validateTLS(t *TLS) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		d.errorf("tls.key_file", "must be set when tls.cert_file is set")
	case t.CertFile == "" && t.KeyFile != "":
		d.errorf("tls.cert_file", "must be set when tls.key_file is set")
	}
}

func (d *decoder) validateListeners(ls []Listener) {
	if len(ls) == 0 {
		d.errorf("listener", "at least one listener is required")
		return
	}
	names := make(map[string]int)
	addrs := make(map[string]int)
	for i, l := range ls {
		key := indexKey("listener", i)
		switch prev, dup := names[l.Name]; {
		case l.Name == "":
			d.errorf(childKey(key, "name"), "is required")
		case dup:
			d.errorf(childKey(key, "name"), "%q is already the name of listener[%d] (line %d)", l.Name, prev, d.line(indexKey("listener", prev)))
		default:
			names[l.Name] = i
		}
		if l.Address == "" {
			d.errorf(childKey(key, "address"), "is required (host:port, e.g. \"0.0.0.0:25\")")
		} else if err := checkHostPort(l.Address, true); err != nil {
			d.errorf(childKey(key, "address"), "%q: %v", l.Address, err)
		} else if prev, dup := addrs[l.Address]; dup {
			d.errorf(childKey(key, "address"), "%q is already the address of listener[%d] (line %d)", l.Address, prev, d.line(indexKey("listener", prev)))
		} else if !strings.HasSuffix(l.Address, ":0") {
			addrs[l.Address] = i
		}
		if l.Role == "" {
			d.errorf(childKey(key, "role"), "is required (inbound|submission)")
		}
		if l.Role == RoleSubmission && l.TLS == TLSNone {
			d.errorf(childKey(key, "tls"), "\"none\" is not allowed for a submission listener: AUTH is only offered over TLS, so no client could ever relay")
		}
	}
}

func (d *decoder) validateLimits(l *Limits) {
	if l.MaxMessageSize < minMessageSize || l.MaxMessageSize > maxMessageSize {
		d.errorf("limits.max_message_size", "must be between %v and %v, not %v", Size(minMessageSize), Size(maxMessageSize), l.MaxMessageSize)
	}
	d.intRange("limits.max_recipients", l.MaxRecipients, 1, maxRecipients)
	d.intRange("limits.max_line_length", l.MaxLineLength, minLineLength, maxLineLength)
	d.intRange("limits.max_command_length", l.MaxCommandLength, minCommandLength, maxCommandLength)
	d.intRange("limits.max_connections", l.MaxConnections, 1, maxConnections)
	if l.MaxConnections >= 1 {
		d.intRange("limits.max_connections_per_ip", l.MaxConnectionsPerIP, 1, l.MaxConnections)
	}
	d.positive("limits.command_timeout", l.CommandTimeout)
	d.positive("limits.data_timeout", l.DataTimeout)
	d.intRange("limits.max_errors", l.MaxErrors, 1, maxErrors)
}

func (d *decoder) validateUsers(us []User) {
	names := make(map[string]int)
	for i, u := range us {
		key := indexKey("user", i)
		folded := strings.ToLower(u.Name)
		switch prev, dup := names[folded]; {
		case u.Name == "":
			d.errorf(childKey(key, "name"), "is required")
		case strings.IndexFunc(u.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			d.errorf(childKey(key, "name"), "%q contains white space or control characters", u.Name)
		case dup:
			// Compared case-insensitively: two accounts differing only in
			// case would make the login name ambiguous.
			d.errorf(childKey(key, "name"), "%q is already the name of user[%d] (line %d)", u.Name, prev, d.line(indexKey("user", prev)))
		default:
			names[folded] = i
		}
		if u.PasswordHash == "" {
			d.errorf(childKey(key, "password_hash"), "is required (a bcrypt or argon2id hash)")
		}
	}
}

func (d *decoder) validateLocal(l *Local) {
	local := make(map[string]bool)
	for i, dom := range l.Domains {
		key := indexKey("local.domains", i)
		if err := checkHostname(dom); err != nil {
			d.errorf(key, "%q %v", dom, err)
			continue
		}
		dom = strings.ToLower(dom)
		if local[dom] {
			d.errorf(key, "%q is listed twice", dom)
		}
		local[dom] = true
		l.Domains[i] = dom
	}

	switch l.Delivery {
	case DeliveryLMTP:
		if l.LMTP.IsZero() {
			d.errorf("local.lmtp", "is required when local.delivery = \"lmtp\" (e.g. \"unix:/run/dovecot/lmtp\")")
		}
	case DeliveryMaildir:
		if err := checkMaildir(l.Maildir); err != nil {
			key := "local.maildir"
			if _, ok := d.lines[key]; !ok {
				key = "data_dir" // the default maildir is derived from it
			}
			d.errorf(key, "%q %v", l.Maildir, err)
		}
	}

	// localAddr checks that s is an address in a local domain and returns it
	// with the domain lower-cased.
	localAddr := func(key, s string) (string, bool) {
		a, err := normalizeAddress(s)
		if err != nil {
			d.errorf(key, "%q %v", s, err)
			return "", false
		}
		if _, dom, _ := cutAddress(a); !local[dom] {
			d.errorf(key, "%q is not in a local domain (local.domains)", s)
			return "", false
		}
		return a, true
	}

	for i, m := range l.Mailboxes {
		if a, ok := localAddr(indexKey("local.mailboxes", i), m); ok {
			l.Mailboxes[i] = a
		}
	}

	if l.SubaddressSeparator != "" {
		if len(l.SubaddressSeparator) != 1 || !strings.Contains(atextSpecials, l.SubaddressSeparator) {
			d.errorf("local.subaddress_separator", "%q must be empty or one of the characters %s", l.SubaddressSeparator, atextSpecials)
		}
	}

	if l.Aliases != nil {
		aliases := make(map[string][]string, len(l.Aliases))
		for _, from := range keysByLine(d, "local.aliases", l.Aliases) {
			key := childKey("local.aliases", from)
			a, ok := localAddr(key, from)
			if ok {
				if _, dup := aliases[a]; dup {
					d.errorf(key, "%q is the same address as another alias", from)
				}
			}
			targets := l.Aliases[from]
			if len(targets) == 0 {
				d.errorf(key, "must list at least one address")
			}
			norm := make([]string, len(targets))
			for j, t := range targets {
				n, err := normalizeAddress(t)
				if err != nil {
					d.errorf(indexKey(key, j), "%q %v", t, err)
				}
				norm[j] = n
			}
			aliases[a] = norm
		}
		l.Aliases = aliases
	}

	if l.CatchAll != nil {
		catchAll := make(map[string]string, len(l.CatchAll))
		for _, dom := range keysByLine(d, "local.catch_all", l.CatchAll) {
			key := childKey("local.catch_all", dom)
			folded := strings.ToLower(dom)
			if !local[folded] {
				d.errorf(key, "%q is not a local domain (local.domains)", dom)
			} else if _, dup := catchAll[folded]; dup {
				d.errorf(key, "%q is the same domain as another catch-all", dom)
			}
			t := l.CatchAll[dom]
			n, err := normalizeAddress(t)
			if err != nil {
				d.errorf(key, "%q %v", t, err)
			}
			catchAll[folded] = n
		}
		l.CatchAll = catchAll
	}
}

func (d *decoder) validateAdmin(a *Admin) {
	if a.Address == "" {
		return
	}
	if err := checkHostPort(a.Address, true); err != nil {
		d.errorf("admin.address", "%q: %v", a.Address, err)
		return
	}
	if a.AllowRemote {
		return
	}
	host, _, _ := net.SplitHostPort(a.Address)
	ip, err := netip.ParseAddr(host)
	if host != "localhost" && (err != nil || !ip.Unmap().IsLoopback()) {
		d.errorf("admin.address", "%q is not a loopback address; the admin endpoint has no authentication, so exposing it needs admin.allow_remote = true", a.Address)
	}
}

// keysByLine returns the keys of the table m at key parent in the order they
// are written, so that of two clashing entries the later one is reported.
func keysByLine[V any](d *decoder, parent string, m map[string]V) []string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int {
		return cmp.Compare(d.line(childKey(parent, a)), d.line(childKey(parent, b)))
	})
	return keys
}

func (d *decoder) intRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		d.errorf(key, "must be between %d and %d, not %d", lo, hi, v)
	}
}

func (d *decoder) positive(key string, v Duration) {
	if v <= 0 {
		d.errorf(key, "must be longer than 0s, not %v", time.Duration(v))
	}
}

// atextSpecials are the characters other than letters and digits that RFC
// 5322 allows in an unquoted local part, and so the candidates for a
// subaddress separator.
const atextSpecials = "!#$%&'*+-/=?^_`{|}~"

// checkHostname checks a DNS host name in the preferred name syntax (RFC
// 1123 §2.1): dot-separated labels of letters, digits and hyphens. The error
// reads as a continuation of the quoted name.
func checkHostname(h string) error {
	bad := fmt.Errorf("is not a valid host name (dot-separated labels of letters, digits and hyphens)")
	if h == "" || len(h) > 253 {
		return bad
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fmt.Errorf("is an IP address, not a host name")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad
			}
		}
	}
	// A numeric top-level label would make the name look like an address.
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return bad
	}
	return nil
}

// checkHostPort checks a host:port address. For a listening address the host
// may be empty (all interfaces) and the port 0 (any free port).
func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not a host:port address")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if n == 0 && !listen {
		return fmt.Errorf("port must not be 0")
	}
	switch {
	case host == "":
		if !listen {
			return fmt.Errorf("host is missing")
		}
	case strings.Contains(host, ":"):
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
	default:
		if _, err := netip.ParseAddr(host); err != nil {
			if err := checkHostname(host); err != nil {
				return fmt.Errorf("host %q %v", host, err)
			}
		}
	}
	return nil
}

// checkMaildir checks a maildir path template.
func checkMaildir(p string) error {
	if p == "" {
		return fmt.Errorf("must not be empty")
	}
	hasUser := false
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+1 == len(p) {
			return fmt.Errorf("ends in a lone %% (write %%%% for a literal percent sign)")
		}
		i++
		switch p[i] {
		case 'u':
			hasUser = true
		case 'd', '%':
		default:
			return fmt.Errorf("uses unknown placeholder %%%c (known: %%d domain, %%u local part, %%%% percent sign)", p[i])
		}
	}
	if !hasUser {
		return fmt.Errorf("must contain %%u (the local part), or every user would share one maildir")
	}
	return nil
}

// normalizeAddress checks a plain local@domain address and lower-cases the
// domain. Local parts keep their case: RFC 5321 leaves their interpretation to
// the receiving host. Quoted local parts and address literals are not
// accepted in the configuration.
func normalizeAddress(s string) (string, error) {
	local, dom, ok := cutAddress(s)
	if !ok {
		return "", fmt.Errorf("is not an address (use local@domain)")
	}
	if len(local) > 64 {
		return "", fmt.Errorf("has a local part longer than 64 bytes")
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return "", fmt.Errorf("is not an address (empty or misplaced dot in the local part)")
		}
		for i := 0; i < len(atom); i++ {
			c := atom[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(atextSpecials, c) >= 0) {
				return "", fmt.Errorf("is not an address (character %q is not allowed in the local part)", c)
			}
		}
	}
	if err := checkHostname(dom); err != nil {
		return "", fmt.Errorf("is not an address (domain %v)", err)
	}
	return local + "@" + strings.ToLower(dom), nil
}

// cutAddress splits s at its last '@'.
func cutAddress(s string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", "", false
	}
	return s[:at], s[at+1:], true
}
