package config

import (
	"fmt"
	"strings"
	"time"

	"mxward/internal/mtasts"
)

// MTASTSPolicy is the [mta_sts_policy] table: the MTA-STS policy (RFC 8461) mxward
// publishes for its local domains. `mxward dns-records` prints it with the id for the
// _mta-sts TXT record; when Listen is set, mxward also serves it itself at
// https://mta-sts.<domain>/.well-known/mta-sts.txt. Both use the same values, so the
// id in DNS and the text served never disagree.
type MTASTSPolicy struct {
	// Listen is the host:port of the HTTPS listener serving the policy; senders
	// connect to port 443. Empty (the default) means mxward does not serve it.
	Listen string `toml:"listen"`
	// Mode is the policy mode: testing (the default: senders deliver anyway and
	// report failures), enforce, or none (the way out of MTA-STS, RFC 8461 §8.3).
	Mode mtasts.Mode `toml:"mode"`
	// MaxAge is how long senders may cache the policy: whole seconds, at most
	// 31557600 (RFC 8461 §3.2). Default 7 days.
	MaxAge Duration `toml:"max_age"`
	// MX lists the MX host patterns senders may deliver to: host names, or "*."
	// and a domain for exactly one label (RFC 8461 §4.1). Empty means the host
	// name alone (see Config.MTASTSPublication); patterns given are lower-cased by
	// validation.
	MX []string `toml:"mx"`
	// Certificates are the certificates of the policy hosts mta-sts.<domain>,
	// chosen per connection by the name the client asks for (SNI).
	Certificates []PolicyCertificate `toml:"certificate"`
}

// PolicyCertificate is one certificate of the MTA-STS policy listener: PEM files
// holding the chain (leaf first) and its private key. The certificate names one or
// more policy hosts mta-sts.<domain> (or a wildcard covering them); which local
// domains it covers is learned from the certificate itself when it is loaded.
type PolicyCertificate struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// Defaults of [mta_sts_policy]: the values `mxward dns-records` has always printed,
// so that upgrading does not change a published policy id.
const (
	defaultMTASTSPolicyMode   = mtasts.ModeTesting
	defaultMTASTSPolicyMaxAge = Duration(7 * 24 * time.Hour)
)

// validateMTASTSPolicy checks [mta_sts_policy] against the rest of the
// configuration, which has been validated (domains lower-cased) before it:
//
//   - mode is enforce, testing or none;
//   - max_age is whole seconds from 1s to 31557600s (RFC 8461 §3.2 allows 0, but a
//     policy nobody may cache protects nothing);
//   - each mx pattern is one RFC 8461 §4.1 allows (mtasts.CheckPattern), listed once;
//   - in mode enforce, the host name matches a pattern: this host receives the
//     domains' mail (its MX records name it), and an enforcing sender would refuse
//     to deliver to it otherwise;
//   - each certificate has both files, and no pair is listed twice;
//   - listen, when set, is a host:port that no SMTP or admin listener uses, there is
//     at least one certificate and at least one local domain to serve.
//
// Whether the certificates cover mta-sts.<domain> for every local domain is not
// checked here: that needs the files, which may not be readable where the
// configuration is checked. The server checks it when it loads them and logs a
// warning for each domain left uncovered (whose policy must then be served
// elsewhere); it refuses to start when no local domain is covered.
func (d *decoder) validateMTASTSPolicy(c *Config) {
	const table = "mta_sts_policy"
	p := &c.MTASTSPolicy
	switch p.Mode {
	case mtasts.ModeEnforce, mtasts.ModeTesting, mtasts.ModeNone:
	default:
		d.errorf(table+".mode", "%q is not a policy mode (enforce, testing or none)", string(p.Mode))
	}
	switch age := time.Duration(p.MaxAge); {
	case age < time.Second || age > mtasts.MaxMaxAge:
		d.errorf(table+".max_age", "must be between 1s and %v (31557600 seconds, RFC 8461 §3.2), not %v", mtasts.MaxMaxAge, age)
	case age%time.Second != 0:
		d.errorf(table+".max_age", "%v is not a whole number of seconds (the policy carries seconds)", age)
	}

	if len(p.MX) > 0 {
		seen := make(map[string]int, len(p.MX))
		mx := make([]string, 0, len(p.MX))
		for i, pat := range p.MX {
			key := indexKey(table+".mx", i)
			if err := mtasts.CheckPattern(pat); err != nil {
				d.errorf(key, "%v", err)
				continue
			}
			low := strings.ToLower(pat)
			if prev, dup := seen[low]; dup {
				d.errorf(key, "%q is already mx[%d]", pat, prev)
				continue
			}
			seen[low] = i
			mx = append(mx, low)
		}
		p.MX = mx
	}
	if p.Mode == mtasts.ModeEnforce && len(p.MX) > 0 {
		// An empty list is the host name, which matches itself.
		pol := mtasts.Policy{MX: p.MX}
		if !pol.Matches(c.Hostname) {
			d.errorf(table+".mx", "no pattern matches hostname %q: in mode enforce senders would refuse to deliver to this host (add it, or use mode testing)", c.Hostname)
		}
	}

	pairs := make(map[PolicyCertificate]int, len(p.Certificates))
	for i, pc := range p.Certificates {
		key := indexKey(table+".certificate", i)
		switch {
		case pc.CertFile == "":
			d.errorf(childKey(key, "cert_file"), "is required (the PEM certificate chain for mta-sts.<domain>)")
		case pc.KeyFile == "":
			d.errorf(childKey(key, "key_file"), "is required (the PEM private key of cert_file)")
		default:
			if prev, dup := pairs[pc]; dup {
				d.errorf(childKey(key, "cert_file"), "%q is already certificate[%d] (line %d)", pc.CertFile, prev, d.line(indexKey(table+".certificate", prev)))
			}
			pairs[pc] = i
		}
	}

	if p.Listen == "" {
		return
	}
	key := table + ".listen"
	if err := checkHostPort(p.Listen, true); err != nil {
		d.errorf(key, "%q: %v", p.Listen, err)
		return
	}
	if !strings.HasSuffix(p.Listen, ":0") {
		for i, l := range c.Listeners {
			if l.Address == p.Listen {
				d.errorf(key, "%q is already the address of listener[%d] (line %d)", p.Listen, i, d.line(indexKey("listener", i)))
			}
		}
		if c.Admin.Address == p.Listen {
			d.errorf(key, "%q is already admin.address", p.Listen)
		}
	}
	if len(p.Certificates) == 0 {
		d.errorf(key, "set without a certificate: add [[mta_sts_policy.certificate]] with cert_file and key_file for mta-sts.<domain>")
	}
	if len(c.Local.Domains) == 0 {
		d.errorf(key, "set but local.domains is empty: there is no domain whose policy to serve")
	}
}

// MTASTSPublication renders the policy of [mta_sts_policy] and its id. It is the one
// place both `mxward dns-records` and the policy listener take them from, so the id
// published in DNS is always that of the text served (RFC 8461 §3.1). An empty mx list
// means the host name, as in a configuration that was not loaded from a file.
func (c *Config) MTASTSPublication() (*mtasts.Publication, error) {
	p := c.MTASTSPolicy
	mx := p.MX
	if len(mx) == 0 {
		mx = []string{strings.ToLower(strings.TrimSuffix(c.Hostname, "."))}
	}
	pub, err := mtasts.Publish(mtasts.Policy{Mode: p.Mode, MX: mx, MaxAge: time.Duration(p.MaxAge)})
	if err != nil {
		return nil, fmt.Errorf("mta_sts_policy: %w", err)
	}
	return pub, nil
}
