package testpeer

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// PostfixOptions says what role a private Postfix instance plays. The zero value is
// an instance that accepts mail from loopback clients and bounces all of it, which
// is only useful together with MainCF.
type PostfixOptions struct {
	// Hostname is myhostname, and the name in the server certificate. It must be
	// fully qualified, as Postfix requires. Default "postfix.test".
	Hostname string

	// RelayHost, e.g. "[127.0.0.1]:2525", is where Postfix relays all mail that
	// is not for one of Domains. Loopback clients (mynetworks 127.0.0.0/8) may
	// relay. It must be a loopback address in brackets, which Postfix uses
	// without any lookup.
	RelayHost string

	// ClientTLS is smtp_tls_security_level for relaying: "none", "may" or
	// "encrypt". Default "may", what a production MTA does. The certificate of
	// the relay host is not verified at any of these levels.
	ClientTLS string

	// Deliver makes the instance a final destination for Domains: mail for any
	// local part of those domains is delivered by virtual(8) into a Maildir, and
	// read back per recipient with WaitMaildir. Only local parts of letters,
	// digits and "._+=-" (not starting with a dot) exist; others are refused
	// with 550 5.1.1.
	Deliver bool
	Domains []string

	// ServerTLS makes smtpd offer STARTTLS with a certificate generated for
	// Hostname; the certificate is available from Cert.
	ServerTLS bool
	// Cert, with ServerTLS, is the certificate (and chain, leaf first) to present
	// instead of a generated self-signed one, e.g. one issued by a CA.
	Cert *Cert

	// MainCF overrides or adds main.cf parameters after the harness has set its
	// own, for example {"smtpd_tls_security_level": "encrypt"}.
	MainCF map[string]string
}

// Client TLS security levels accepted in PostfixOptions.ClientTLS. Levels that
// need trust anchors (verify, secure, dane) can be set through MainCF.
var clientTLSLevels = []string{"none", "may", "encrypt"}

var (
	paramNameRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// domainRE is deliberately narrower than DNS allows: the domain goes into a
	// regular expression and a directory name, so only plain LDH labels.
	domainRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
	hostnameRE = domainRE
	// localPartPattern is the set of local parts a Deliver instance accepts:
	// plain ones, so that a test of an odd address gets a clear refusal rather
	// than a delivery that depends on Postfix's quoting.
	localPartPattern = `[A-Za-z0-9_+=-][A-Za-z0-9._+=-]*`
	localPartRE      = regexp.MustCompile(`^` + localPartPattern + `$`)
)

// instanceLayout is where one instance keeps its files; every path is absolute
// and inside the instance's temporary directory.
type instanceLayout struct {
	dir         string
	configDir   string
	queueDir    string
	dataDir     string
	maildirBase string
	maillog     string
	certFile    string
	keyFile     string
	mailboxMap  string
}

func newLayout(dir string) instanceLayout {
	return instanceLayout{
		dir:         dir,
		configDir:   filepath.Join(dir, "etc"),
		queueDir:    filepath.Join(dir, "spool"),
		dataDir:     filepath.Join(dir, "lib"),
		maildirBase: filepath.Join(dir, "maildir"),
		maillog:     filepath.Join(dir, "maillog"),
		certFile:    filepath.Join(dir, "etc", "cert.pem"),
		keyFile:     filepath.Join(dir, "etc", "key.pem"),
		mailboxMap:  filepath.Join(dir, "etc", "virtual_mailbox.regexp"),
	}
}

// withDefaults validates opts, fills in defaults and folds domains to lower case.
func (opts PostfixOptions) withDefaults() (PostfixOptions, error) {
	if opts.Hostname == "" {
		opts.Hostname = "postfix.test"
	}
	if !hostnameRE.MatchString(opts.Hostname) {
		return opts, fmt.Errorf("hostname %q is not a fully qualified domain name", opts.Hostname)
	}
	if opts.ClientTLS == "" {
		opts.ClientTLS = "may"
	}
	if !slices.Contains(clientTLSLevels, opts.ClientTLS) {
		return opts, fmt.Errorf("client TLS level %q is not one of %v", opts.ClientTLS, clientTLSLevels)
	}
	if opts.RelayHost != "" && !loopbackNextHop(opts.RelayHost) {
		return opts, fmt.Errorf("relay host %q is not a bracketed loopback address like [127.0.0.1]:2525", opts.RelayHost)
	}
	if opts.Deliver && len(opts.Domains) == 0 {
		return opts, fmt.Errorf("deliver mode needs at least one domain")
	}
	if !opts.Deliver && len(opts.Domains) > 0 {
		return opts, fmt.Errorf("domains %v given without deliver mode", opts.Domains)
	}
	domains := make([]string, len(opts.Domains))
	for i, d := range opts.Domains {
		if !domainRE.MatchString(d) {
			return opts, fmt.Errorf("domain %q is not a plain DNS name", d)
		}
		domains[i] = strings.ToLower(d)
	}
	opts.Domains = domains
	for k, v := range opts.MainCF {
		if !paramNameRE.MatchString(k) {
			return opts, fmt.Errorf("main.cf parameter name %q is invalid", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return opts, fmt.Errorf("main.cf parameter %s: value contains a line break", k)
		}
	}
	return opts, nil
}

// loopbackNextHop reports whether nexthop is "[ip]" or "[ip]:port" with a
// loopback ip: the only next hops a test instance may relay to.
func loopbackNextHop(nexthop string) bool {
	rest, ok := strings.CutPrefix(nexthop, "[")
	if !ok {
		return false
	}
	host, port, ok := strings.Cut(rest, "]")
	if !ok {
		return false
	}
	if port != "" {
		digits, ok := strings.CutPrefix(port, ":")
		if n, err := strconv.Atoi(digits); !ok || err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != digits {
			return false
		}
	}
	ip, err := netip.ParseAddr(strings.TrimPrefix(host, "ipv6:"))
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}

// mainCF returns the parameters of an instance's main.cf. opts must have been
// through withDefaults; uid and gid are what virtual(8) delivers as.
func mainCF(opts PostfixOptions, l instanceLayout, uid, gid int) map[string]string {
	p := map[string]string{
		"compatibility_level": "3.6",
		"config_directory":    l.configDir,
		"queue_directory":     l.queueDir,
		"data_directory":      l.dataDir,
		// maillog_file is honoured only under one of these prefixes.
		"maillog_file":          l.maillog,
		"maillog_file_prefixes": l.dir,
		"import_environment":    "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
		"syslog_name":           "postfix",

		"myhostname":      opts.Hostname,
		"myorigin":        "$myhostname",
		"mydestination":   "",
		"inet_interfaces": "127.0.0.1",
		"inet_protocols":  "ipv4",
		"mynetworks":      "127.0.0.0/8",

		// No name lookups anywhere: no reverse lookup of clients, no DNS in the
		// SMTP and LMTP clients, and outbound connections from loopback only.
		"smtpd_peername_lookup":  "no",
		"smtp_dns_support_level": "disabled",
		"smtp_host_lookup":       "native",
		"lmtp_host_lookup":       "native",
		"smtp_bind_address":      "127.0.0.1",

		// Mail goes to the relay host, to the Maildirs, or nowhere: without a
		// relay host the default transport is the error transport, and local(8)
		// is never used, so nothing outside the instance directory is written.
		"relayhost":            opts.RelayHost,
		"local_transport":      "error:5.1.1 local delivery is disabled in this test instance",
		"alias_maps":           "",
		"alias_database":       "",
		"local_recipient_maps": "",
		"biff":                 "no",
		"append_dot_mydomain":  "no",

		"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",

		// Retries come quickly so a test that brings a peer up late does not
		// wait minutes; nothing lingers in the queue long enough to matter.
		"queue_run_delay":         "1s",
		"minimal_backoff_time":    "1s",
		"maximal_backoff_time":    "10s",
		"smtp_connect_timeout":    "5s",
		"smtp_tls_security_level": opts.ClientTLS,
		"smtp_tls_loglevel":       "1",
	}
	if opts.RelayHost == "" {
		p["default_transport"] = "error:5.4.4 this test instance has no relay host"
	}
	if opts.Deliver {
		p["virtual_mailbox_domains"] = strings.Join(opts.Domains, " ")
		p["virtual_mailbox_base"] = l.maildirBase
		p["virtual_mailbox_maps"] = "regexp:" + l.mailboxMap
		p["virtual_uid_maps"] = "static:" + strconv.Itoa(uid)
		p["virtual_gid_maps"] = "static:" + strconv.Itoa(gid)
	}
	if opts.ServerTLS {
		p["smtpd_tls_security_level"] = "may"
		p["smtpd_tls_cert_file"] = l.certFile
		p["smtpd_tls_key_file"] = l.keyFile
		p["smtpd_tls_loglevel"] = "1"
		p["smtpd_tls_received_header"] = "yes"
	}
	for k, v := range opts.MainCF {
		p[k] = v
	}
	return p
}

// renderMainCF writes parameters one per line in name order, so that a diff of two
// instances' files shows only what differs.
func renderMainCF(params map[string]string) []byte {
	var b strings.Builder
	b.WriteString("# Private mxward test instance; written by internal/testpeer.\n")
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fmt.Fprintf(&b, "%s = %s\n", k, params[k])
	}
	return []byte(b.String())
}

// mailboxMap returns the regexp table that accepts every acceptable local part of
// domains and delivers it to one Maildir per domain (the trailing slash makes it a
// Maildir). virtual(8) refuses regexp substitution in virtual_mailbox_maps, since
// it would let an address choose a path, so recipients cannot get a Maildir each;
// the Delivered-To header that virtual(8) prepends tells them apart instead.
// Regexp tables match case-insensitively.
func mailboxMap(domains []string) []byte {
	var b strings.Builder
	for _, d := range domains {
		fmt.Fprintf(&b, "/^%s@%s$/ %s/\n", localPartPattern, regexp.QuoteMeta(d), d)
	}
	return []byte(b.String())
}

// masterCF returns master.cf for an instance whose SMTP server listens on
// 127.0.0.1:port. It is Debian's stock service list with chroot off everywhere
// (the instance has no chroot tree) and without the pipe-based delivery agents,
// which name system users and programs.
func masterCF(port int) []byte {
	var b strings.Builder
	b.WriteString("# Private mxward test instance; written by internal/testpeer.\n")
	fmt.Fprintf(&b, "127.0.0.1:%d inet n - n - - smtpd\n", port)
	b.WriteString(`pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
`)
	return []byte(b.String())
}
