package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/labca"
)

// attackerHost is the attacker's own mail host, in the unsigned zone attacker.lab.
const attackerHost = "mx.attacker.lab."

// CertKind is the certificate an SMTP receiver presents.
type CertKind int

const (
	// CertCA is a certificate for the host's name issued by the lab CA.
	CertCA CertKind = iota
	// CertSelfSigned is a self-signed certificate for the host's name.
	CertSelfSigned
	// CertNone means no STARTTLS at all.
	CertNone
)

// Options describe the lab internet.
type Options struct {
	// Zones are the destination zones, under lab. The root and lab. are added,
	// signed, and so is the attacker's unsigned zone attacker.lab.
	Zones []Zone
	// Policies are MTA-STS policy texts by domain (RFC 8461 §3.2). Start publishes
	// the _mta-sts TXT record and the mta-sts host address in the domain's zone.
	Policies map[string]string
}

// Internet is a running lab. Its methods are safe for concurrent use.
type Internet struct {
	// SMTPPort is the port every receiver listens on, each at its own address.
	SMTPPort int
	// HTTPSPort is the port of the MTA-STS policy host.
	HTTPSPort int

	dns       *dnsServer // the validating resolver
	plainDNS  *dnsServer // a resolver that does not validate
	anchors   []mdns.RR
	ca        *labca.CA
	attacks   *attacks
	tap       *tap
	addrs     map[string]netip.Addr // host → address
	receivers map[string]*receiver  // host → receiver
	attacker  *receiver
	relays    []*relay
	https     *http.Server
	httpsLn   net.Listener
}

// Start builds and signs the zones and starts the DNS server, receivers, relays and
// policy host. ctx bounds the start only; Close stops everything.
func Start(ctx context.Context, o Options) (*Internet, error) {
	in := &Internet{attacks: new(attacks), tap: new(tap),
		addrs: make(map[string]netip.Addr), receivers: make(map[string]*receiver)}
	ok := false
	defer func() {
		if !ok {
			in.Close()
		}
	}()
	var err error
	if in.ca, err = labca.NewCA("mxward lab CA"); err != nil {
		return nil, fmt.Errorf("lab: create CA: %w", err)
	}

	// Addresses: receivers' relays on 127.0.1.x, the attacker on 127.0.3.1, the
	// policy host and the DNS server on 127.0.0.1.
	zones := []*zone{newZone(".", true), newZone("lab.", true), newZone("attacker.lab.", false)}
	attackerAddr := netip.AddrFrom4([4]byte{127, 0, 3, 1})
	in.addrs[attackerHost] = attackerAddr
	if err := zones[2].addLine("mx A " + attackerAddr.String()); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	policyAddr := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	type mxPlan struct {
		domain, host string
		zone         *zone
		mx           MXHost
	}
	var plans []mxPlan
	mxOf := make(map[string][]string)
	next := 1
	for _, zs := range o.Zones {
		name := fqdn(zs.Name)
		if !mdns.IsSubDomain("lab.", name) || name == "lab." || name == "attacker.lab." {
			return nil, fmt.Errorf("lab: zone %q must be under lab. and not attacker.lab.", zs.Name)
		}
		z := newZone(name, zs.Signed)
		for _, r := range zs.Records {
			if err := z.addLine(r); err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
		}
		for _, mx := range zs.MX {
			host := mx.Name
			if !strings.HasSuffix(host, ".") {
				host += "." + name
			}
			host = fqdn(host)
			if _, dup := in.addrs[host]; dup {
				return nil, fmt.Errorf("lab: MX host %s given twice", host)
			}
			if next > 250 {
				return nil, errors.New("lab: too many MX hosts")
			}
			addr := netip.AddrFrom4([4]byte{127, 0, 1, byte(next)})
			next++
			if err := z.addLine(fmt.Sprintf("@ MX %d %s", mx.Pref, host)); err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			if mdns.IsSubDomain(name, host) {
				if err := z.addLine(fmt.Sprintf("%s A %s", host, addr)); err != nil {
					return nil, fmt.Errorf("lab: %w", err)
				}
			} else {
				return nil, fmt.Errorf("lab: MX host %s is outside zone %s", host, name)
			}
			in.addrs[host] = addr
			plans = append(plans, mxPlan{domain: name, host: host, zone: z, mx: mx})
			mxOf[name] = append(mxOf[name], host)
		}
		if hasPolicy(o.Policies, name) {
			if err := z.addLine(fmt.Sprintf(`_mta-sts TXT "v=STSv1; id=%d"`, time.Now().Unix())); err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			if err := z.addLine("mta-sts A " + policyAddr.String()); err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
		}
		zones = append(zones, z)
	}

	// Receivers behind relays, all relays and the attacker on one port. The port must
	// be known before the zones are signed: TLSA records are named by it (RFC 6698 §3).
	addrs := []netip.Addr{attackerAddr}
	for _, p := range plans {
		addrs = append(addrs, in.addrs[p.host])
	}
	lns, err := listenShared(addrs)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	in.SMTPPort = lns[0].Addr().(*net.TCPAddr).Port
	acert, err := in.ca.Issue([]string{strings.TrimSuffix(attackerHost, ".")}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		closeAll(lns)
		return nil, fmt.Errorf("lab: certificate for the attacker: %w", err)
	}
	in.attacker = &receiver{host: attackerHost, cert: &acert.TLS, ln: lns[0]}
	go in.attacker.serve()
	for i, p := range plans {
		r := &receiver{host: p.host}
		name := strings.TrimSuffix(p.host, ".")
		var c *labca.Cert
		var err error
		switch p.mx.Cert {
		case CertCA:
			c, err = in.ca.Issue([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
		case CertSelfSigned:
			c, err = labca.NewCert(name)
		}
		if err != nil {
			closeAll(lns[i+1:])
			return nil, fmt.Errorf("lab: certificate for %s: %w", name, err)
		}
		if c != nil {
			r.cert = &c.TLS
		}
		if rec, err := tlsaRecord(p.mx.TLSA, c); err != nil {
			closeAll(lns[i+1:])
			return nil, fmt.Errorf("lab: TLSA record for %s: %w", name, err)
		} else if rec != "" {
			if err := p.zone.addLine(fmt.Sprintf("_%d._tcp.%s TLSA %s", in.SMTPPort, p.host, rec)); err != nil {
				closeAll(lns[i+1:])
				return nil, fmt.Errorf("lab: %w", err)
			}
		}
		if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			closeAll(lns[i+1:])
			return nil, fmt.Errorf("lab: listen for %s: %w", name, err)
		}
		in.receivers[p.host] = r
		go r.serve()
		rl := &relay{domain: p.domain, backend: r.ln.Addr().String(), ln: lns[i+1], attacks: in.attacks, tap: in.tap}
		in.relays = append(in.relays, rl)
		go rl.serve()
	}

	tree, err := buildTree(zones, time.Now())
	if err != nil {
		return nil, fmt.Errorf("lab: build zones: %w", err)
	}
	in.anchors = []mdns.RR{tree["."].ksk.rr.ToDS(mdns.SHA256)}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The validating resolver, and the plain one of a sender that does not validate.
	h := &dnsHandler{tree: tree, attacks: in.attacks, mxOf: mxOf, attacker: attackerAddr}
	if in.dns, err = startDNS(h); err != nil {
		return nil, err
	}
	plain := *h
	plain.plain = true
	if in.plainDNS, err = startDNS(&plain); err != nil {
		return nil, err
	}

	// The MTA-STS policy host, with one lab-CA certificate for every mta-sts name.
	policies := make(map[string]string)
	var names []string
	for d, p := range o.Policies {
		policies[fqdn(d)] = p
		names = append(names, "mta-sts."+strings.TrimSuffix(fqdn(d), "."))
	}
	if len(names) > 0 {
		c, err := in.ca.Issue(names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("lab: certificate for the policy host: %w", err)
		}
		if in.httpsLn, err = net.Listen("tcp", net.JoinHostPort(policyAddr.String(), "0")); err != nil {
			return nil, fmt.Errorf("lab: listen for HTTPS: %w", err)
		}
		in.HTTPSPort = in.httpsLn.Addr().(*net.TCPAddr).Port
		in.https = &http.Server{Handler: policyHandler{policies: policies}, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:  log.New(io.Discard, "", 0), // failed handshakes are the tests' business
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{c.TLS}}}
		go in.https.ServeTLS(in.httpsLn, "", "")
	}
	ok = true
	return in, nil
}

// listenShared listens on one TCP port at each of addrs, choosing a port free at all
// of them; it tries a few ports before giving up.
func listenShared(addrs []netip.Addr) ([]net.Listener, error) {
	var last error
	for range 10 {
		first, err := net.Listen("tcp", netip.AddrPortFrom(addrs[0], 0).String())
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addrs[0], err)
		}
		port := uint16(first.Addr().(*net.TCPAddr).Port)
		lns := []net.Listener{first}
		for _, a := range addrs[1:] {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(a, port).String())
			if err != nil {
				last = err
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(addrs) {
			return lns, nil
		}
		closeAll(lns)
	}
	return nil, fmt.Errorf("no port free on every receiver address: %w", last)
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// Close stops every server and waits for their connections to end.
func (in *Internet) Close() error {
	in.dns.close()
	in.plainDNS.close()
	if in.https != nil {
		in.https.Close()
	}
	for _, rl := range in.relays {
		rl.close()
	}
	for _, r := range in.receivers {
		r.close()
	}
	if in.attacker != nil {
		in.attacker.close()
	}
	return nil
}

// DNSAddr is the address, "127.0.0.1:port", of the lab's validating resolver: it
// answers as Unbound does, with SERVFAIL for data that fails validation unless the
// query sets CD, and the AD bit on secure data.
func (in *Internet) DNSAddr() string { return in.dns.addr }

// PlainDNSAddr is the address of a resolver that does not validate, as many MTAs
// have: it passes forged data on and never sets AD. A sender using it in trust-ad mode
// sees no DNSSEC at all.
func (in *Internet) PlainDNSAddr() string { return in.plainDNS.addr }

// Anchors returns the trust anchor of the lab root: the DS of its KSK, for
// dnssec.Config.Anchors.
func (in *Internet) Anchors() []mdns.RR {
	out := make([]mdns.RR, len(in.anchors))
	for i, rr := range in.anchors {
		out[i] = mdns.Copy(rr)
	}
	return out
}

// WriteAnchors writes the lab's trust anchor to path as a zone-file line, the form
// dns.trust_anchor_file reads.
func (in *Internet) WriteAnchors(path string) error {
	var b strings.Builder
	for _, rr := range in.anchors {
		b.WriteString(rr.String() + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("lab: write trust anchors: %w", err)
	}
	return nil
}

// CAPool returns a pool trusting the lab CA alone.
func (in *Internet) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(in.ca.Cert)
	return p
}

// CAPEM returns the lab CA certificate in PEM.
func (in *Internet) CAPEM() []byte { return append([]byte(nil), in.ca.CertPEM...) }

// Addr returns the address DNS gives for host, with the SMTP port.
func (in *Internet) Addr(host string) (netip.AddrPort, bool) {
	a, ok := in.addrs[fqdn(host)]
	return netip.AddrPortFrom(a, uint16(in.SMTPPort)), ok
}

// SetAttack switches the attacks on domain to a (0 for none). Connections already
// open keep the switches they started with.
func (in *Internet) SetAttack(domain string, a Attack) { in.attacks.set(domain, a) }

// Observed returns what the tap recorded on the way to domain's MX hosts, both
// directions interleaved.
func (in *Internet) Observed(domain string) []byte { return in.tap.observed(domain) }

// Read reports whether the tap saw marker in clear on the way to domain.
func (in *Internet) Read(domain, marker string) bool {
	return strings.Contains(string(in.Observed(domain)), marker)
}

// Received returns the messages the receiver host accepted.
func (in *Internet) Received(host string) []Message {
	r := in.receivers[fqdn(host)]
	if r == nil {
		return nil
	}
	return r.messages()
}

// AttackerReceived returns the messages the attacker's host accepted.
func (in *Internet) AttackerReceived() []Message { return in.attacker.messages() }

// AttackerHost is the name of the attacker's mail host.
func AttackerHost() string { return strings.TrimSuffix(attackerHost, ".") }

// hasPolicy reports whether policies holds one for domain, however it is written.
func hasPolicy(policies map[string]string, domain string) bool {
	for d := range policies {
		if fqdn(d) == domain {
			return true
		}
	}
	return false
}
