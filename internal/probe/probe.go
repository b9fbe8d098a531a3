// Package probe answers "what would a delivery from this host to DOMAIN get, and why":
// it gathers the MX route, the DANE, MTA-STS, static-list and pin state, optionally connects
// to each MX host, and judges the result per threat (see Judge).
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"mxward/internal/dane"
	"mxward/internal/dns"
	"mxward/internal/mtasts"
	"mxward/internal/pin"
	"mxward/internal/policylist"
	"mxward/internal/route"
	"mxward/internal/smtpclient"
	"mxward/internal/tlspolicy"
)

// Options are Check's inputs; every source of I/O is injected.
type Options struct {
	Domain   string
	Resolver dns.Resolver // required: the validating resolver delivery uses (DANE-01)
	// MTASTS looks up the domain's MTA-STS policy (mtasts.Manager.Lookup); nil: off.
	MTASTS func(ctx context.Context, domain string) (mtasts.Result, error)
	// STSCache returns the cached policy entry (mtasts.Manager.Show); nil: no cache.
	STSCache func(domain string) (mtasts.Entry, bool)
	// List is the static policy list in force; nil: none.
	List *policylist.List
	// Pins looks the domain up in the TLS pin store (pin.Store.Lookup); nil: pinning
	// is off.
	Pins func(domain string, now time.Time) (pin.Entry, bool, error)
	// Default and Table are the operator's TLS level and per-domain policies.
	Default tlspolicy.Level
	Table   tlspolicy.Table
	// Roots verifies Web PKI chains; nil: the system pool.
	Roots *x509.CertPool
	// Connect probes each MX host with STARTTLS on Port (0: 25).
	Connect bool
	Port    int
	// Dial opens the TCP connection of a probe; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hostname is the EHLO name of the probe.
	Hostname string
	// Timeout bounds each probe connection (0: 10 s).
	Timeout time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Report is the result of Check; its JSON form is documented in docs/check.md.
type Report struct {
	Domain     string    `json:"domain"`
	Time       time.Time `json:"time"`
	RouteError string    `json:"route_error,omitempty"`
	MXStatus   string    `json:"mx_status"`
	ImplicitMX bool      `json:"implicit_mx"`
	Hosts      []Host    `json:"hosts"`
	Skipped    []Skip    `json:"skipped,omitempty"`
	MTASTS     STS       `json:"mta_sts"`
	List       *ListUse  `json:"policy_list"`
	Pinning    Pinning   `json:"pinning"`
	TLSRPT     TXT       `json:"tls_rpt"`
	Verdict
}

// Skip is an MX host left out of the route.
type Skip struct {
	Host   string `json:"host"`
	Pref   uint16 `json:"pref"`
	Reason string `json:"reason"`
}

// Host is what Check found for one MX host.
type Host struct {
	Name       string   `json:"name"`
	Pref       uint16   `json:"pref"`
	Addrs      []string `json:"addresses"`
	AddrStatus string   `json:"address_status"`
	TLSA       TLSA     `json:"tlsa"`
	// Decision is what delivery's TLS policy (tlspolicy.Decide) requires of the host.
	Decision Decision `json:"decision"`
	Probe    *Probe   `json:"probe,omitempty"`
}

// TLSA is the DANE state of a host (RFC 7672 §2.2).
type TLSA struct {
	Outcome    string    `json:"outcome"`
	BaseDomain string    `json:"base_domain,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Records    []TLSARec `json:"records,omitempty"`
}

// TLSARec is one published TLSA record and whether it is usable.
type TLSARec struct {
	Record string `json:"record"`
	Usable bool   `json:"usable"`
	Why    string `json:"why,omitempty"`
}

// Decision is the tlspolicy decision for a host.
type Decision struct {
	Level  string `json:"level"`
	Source string `json:"source"`
	Reason string `json:"reason"`
	Defer  string `json:"defer,omitempty"`
}

// Probe is what a STARTTLS connection to the host's first address showed.
type Probe struct {
	Addr  string `json:"address"`
	Error string `json:"error,omitempty"`
	// Reached is set when the server greeted: a probe that could not connect (port 25
	// is often blocked from clients and clouds) says nothing about the server.
	Reached    bool     `json:"reached"`
	STARTTLS   bool     `json:"starttls"`
	TLSVersion string   `json:"tls_version,omitempty"`
	Chain      []string `json:"chain,omitempty"` // subjects, leaf first
	DANE       string   `json:"dane"`            // "match: …", "no match: …" or "not applicable"
	DANEMatch  bool     `json:"dane_match"`
	WebPKI     string   `json:"webpki"` // "ok" or why not
	WebPKIOK   bool     `json:"webpki_ok"`
}

// STS is the domain's MTA-STS state.
type STS struct {
	Enabled bool     `json:"enabled"`
	Mode    string   `json:"mode,omitempty"`
	ID      string   `json:"id,omitempty"`
	Source  string   `json:"source,omitempty"`
	MX      []string `json:"mx,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Temporary is set when the policy could not be determined (RFC 8461 §5.1): it
	// must not be read as "no policy".
	Temporary  bool          `json:"temporary,omitempty"`
	FetchError string        `json:"fetch_error,omitempty"`
	Cache      *mtasts.Entry `json:"cache,omitempty"`
}

// ListUse is the static list's entry for the domain.
type ListUse struct {
	Mode   string   `json:"mode"`
	MX     []string `json:"mx"`
	MinTLS string   `json:"min_tls"`
}

// Pinning is the domain's TLS pin state (internal/pin).
type Pinning struct {
	// Enabled is set when pinning is on in the configuration ([pinning] enabled).
	Enabled bool `json:"enabled"`
	// State is "pinned" (TLS is required until the entry expires), "observed" (TLS
	// deliveries seen, not yet enough to pin) or "none" (no entry, an expired one, or
	// pinning off).
	State string `json:"state"`
	// Entry is the stored entry, expired ones included; omitted when there is none.
	Entry *pin.Entry `json:"entry,omitempty"`
	// Error is why the store could not be read; delivery then applies no pin.
	Error string `json:"error,omitempty"`
}

// TXT is a TXT record set shown raw.
type TXT struct {
	Name    string   `json:"name"`
	Records []string `json:"records,omitempty"`
	Status  string   `json:"status,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Check gathers the facts for o.Domain and judges them.
func Check(ctx context.Context, o Options) Report {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	port := o.Port
	if port == 0 {
		port = dane.DefaultPort
	}
	rep := Report{Domain: o.Domain, Time: now(), Pinning: Pinning{State: string(pin.StateNone)}}
	var f Facts
	var pins func() (pin.Entry, bool, error)
	if o.Pins != nil {
		rep.Pinning.Enabled = true
		e, live, err := o.Pins(o.Domain, now())
		switch {
		case err != nil:
			rep.Pinning.Error = err.Error()
		case e.Domain != "":
			rep.Pinning.Entry = &e
			if st := e.State(now()); st != pin.StateExpired {
				rep.Pinning.State = string(st)
			}
		}
		pins = func() (pin.Entry, bool, error) { return e, live, err }
	}

	var sts *mtasts.Result
	if o.MTASTS != nil {
		rep.MTASTS.Enabled = true
		r, err := o.MTASTS(ctx, o.Domain)
		sts = &r
		if err != nil {
			rep.MTASTS.Error = err.Error()
		}
		rep.MTASTS.Reason, rep.MTASTS.ID, rep.MTASTS.Source = r.Reason, r.ID, r.Source
		rep.MTASTS.Temporary = r.Temporary
		if r.FetchError != nil {
			rep.MTASTS.FetchError = r.FetchError.Error()
		}
		if r.Policy != nil {
			rep.MTASTS.Mode, rep.MTASTS.MX = string(r.Policy.Mode), r.Policy.MX
			f.STSEnforce = r.Policy.Mode == mtasts.ModeEnforce
		}
		if o.STSCache != nil {
			if e, ok := o.STSCache(o.Domain); ok {
				rep.MTASTS.Cache = &e
			}
		}
	}
	var listEntry *policylist.Entry
	if o.List != nil {
		e, ok, err := o.List.Lookup(o.Domain, now())
		if err == nil && ok {
			listEntry = &e
			rep.List = &ListUse{Mode: string(e.Mode), MX: e.MXs, MinTLS: e.MinTLS}
			f.ListEnforce = e.Enforced()
			f.ListVerify = e.MinTLS != policylist.LevelEncrypt
		}
	}
	rep.TLSRPT = lookupTXT(ctx, o.Resolver, "_smtp._tls."+o.Domain)

	rt, err := route.Resolve(ctx, o.Resolver, o.Domain, route.Options{})
	if err != nil {
		rep.RouteError, f.RouteError = err.Error(), err.Error()
		rep.MXStatus = string(dns.Indeterminate)
		rep.Verdict = Judge(f)
		return rep
	}
	rep.MXStatus, rep.ImplicitMX = string(rt.MXStatus), rt.Implicit
	f.MXSecure = rt.MXStatus == dns.Secure
	for _, s := range rt.Skipped {
		rep.Skipped = append(rep.Skipped, Skip{Host: s.Host, Pref: s.Pref, Reason: s.Reason})
	}
	// The hosts are checked at once, a few at a time, so that a domain with several
	// unreachable MX hosts costs one probe timeout rather than one per host.
	rep.Hosts = make([]Host, len(rt.Hosts))
	f.Hosts = make([]HostFacts, len(rt.Hosts))
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for i, rh := range rt.Hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rep.Hosts[i], f.Hosts[i] = checkHost(ctx, o, rt, rh, port, sts, listEntry, pins, now)
		}()
	}
	wg.Wait()
	rep.Verdict = Judge(f)
	return rep
}

const (
	// maxParallelProbes bounds the MX hosts checked at once.
	maxParallelProbes = 8
	// maxProbeAddrs bounds the addresses of one host tried until one answers.
	maxProbeAddrs = 3
)

// checkHost runs the TLSA step, the policy decision and the probe for one MX host.
func checkHost(ctx context.Context, o Options, rt *route.Route, rh route.Host, port int, sts *mtasts.Result, le *policylist.Entry,
	pins func() (pin.Entry, bool, error), now func() time.Time) (Host, HostFacts) {
	h := Host{Name: rh.Name, Pref: rh.Pref, AddrStatus: string(rh.AddrStatus)}
	for _, a := range rh.Addrs {
		h.Addrs = append(h.Addrs, a.String())
	}
	ipr := dns.IPResult{Answer: rh.Address}
	for _, a := range rh.Addrs {
		if a.Is4() {
			ipr.IPv4 = append(ipr.IPv4, a)
		} else {
			ipr.IPv6 = append(ipr.IPv6, a)
		}
	}
	dh := dane.LookupHost(ctx, o.Resolver, rh.Name, ipr, port, nil)
	h.TLSA = TLSA{Outcome: outcomeName(dh.Outcome), BaseDomain: dh.BaseDomain, Reason: dh.Reason}
	for _, r := range dh.Records {
		h.TLSA.Records = append(h.TLSA.Records, TLSARec{Record: dane.FormatFull(r), Usable: true})
	}
	for _, d := range dh.Dropped {
		h.TLSA.Records = append(h.TLSA.Records, TLSARec{Record: dane.FormatFull(d.Record), Why: d.Reason})
	}
	dest := dane.Destination{NextHop: rt.Nexthop, NextHopExpanded: rt.Canonical, MXSecure: rt.MXStatus == dns.Secure,
		ImplicitMX: rt.Implicit, MXHost: rh.Name}
	in := tlspolicy.Input{NextHop: rt.Nexthop, MXHost: rh.Name, Default: o.Default, Table: o.Table, Roots: o.Roots,
		Now: now, DANE: func() dane.Host { return dh }, DANEDest: dest}
	if sts != nil {
		r := *sts
		in.MTASTS = func() (mtasts.Result, error) { return r, nil }
	}
	if le != nil {
		e := *le
		in.List = func() (policylist.Entry, bool, error) { return e, true, nil }
	}
	in.Pin = pins
	d := tlspolicy.Decide(in)
	h.Decision = Decision{Level: string(d.Level), Source: string(d.Source), Reason: d.Reason}
	hf := HostFacts{Name: rh.Name, DANE: h.TLSA.Outcome,
		LocalTLS: d.Source == tlspolicy.SourceLocal && d.RequiresTLS(), Pinned: d.Source == tlspolicy.SourcePin}
	if d.Defer != nil {
		h.Decision.Defer = d.Defer.Error()
		hf.Deferred = d.Defer.Error()
	}
	if o.Connect && len(rh.Addrs) > 0 {
		refIDs := []string{rh.Name}
		if dh.BaseDomain != "" {
			refIDs = dane.ReferenceIDs(dest, dh.BaseDomain)
		}
		// The first address that answers is probed: on a host without IPv6 routes
		// (or IPv4 ones) the first address may be unreachable while the server is fine.
		var p Probe
		for i, a := range rh.Addrs {
			if i == maxProbeAddrs {
				break
			}
			if p = probeHost(ctx, o, a, port, rh.Name, dh, refIDs, now); p.Reached {
				break
			}
		}
		h.Probe = &p
		hf.Probed, hf.ProbeErr, hf.STARTTLS = p.Reached, p.Error, p.STARTTLS
		if !p.Reached {
			hf.Unreached = true
		}
		hf.DANEMatch, hf.WebPKI = p.DANEMatch, p.WebPKIOK
	}
	return h, hf
}

// probeHost connects to one address, asks for STARTTLS and records what the handshake
// showed. Its Verify records the chain and never fails, so the probe sees the
// certificate whatever it is; the DANE and Web PKI checks are made afterwards.
func probeHost(ctx context.Context, o Options, addr netip.Addr, port int, name string, dh dane.Host, refIDs []string, now func() time.Time) Probe {
	p := Probe{Addr: net.JoinHostPort(addr.String(), strconv.Itoa(port)), DANE: "not applicable"}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := o.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", p.Addr)
	if err != nil {
		p.Error = fmt.Sprintf("connect: %v", err)
		return p
	}
	var cs *tls.ConnectionState
	sni := name
	if dh.BaseDomain != "" {
		sni = dh.BaseDomain // DANE-24
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	c, err := smtpclient.NewClient(ctx, conn, smtpclient.Options{Hostname: hostname,
		Timeouts: smtpclient.Timeouts{Connect: timeout, Greeting: timeout, EHLO: timeout, StartTLS: timeout, Quit: timeout},
		Security: smtpclient.Security{Mode: smtpclient.TLSOpportunistic, ServerName: sni,
			Verify: func(s tls.ConnectionState) (string, error) { cs = &s; return "none", nil }}})
	if err != nil {
		conn.Close()
		p.Error = fmt.Sprintf("smtp session: %v", err)
		var se *smtpclient.Error
		// A greeting that never came is no more the server's answer than a refused
		// connection: some networks accept port 25 connections and say nothing.
		p.Reached = !errors.As(err, &se) || (se.Stage != "connect" && se.Stage != "greeting")
		return p
	}
	p.Reached = true
	info := c.TLS()
	_ = c.Quit(ctx)
	c.Close()
	if cs == nil {
		if !info.Offered {
			p.Error = "STARTTLS not offered"
		}
		return p
	}
	p.STARTTLS, p.TLSVersion = true, info.Version
	for _, crt := range cs.PeerCertificates {
		p.Chain = append(p.Chain, crt.Subject.String())
	}
	if dh.Outcome == dane.Authenticate {
		m, err := dane.Check(cs.PeerCertificates, dh.Records, refIDs, now())
		if err != nil {
			p.DANE = "no match: " + err.Error()
		} else {
			p.DANE, p.DANEMatch = "match: "+m.String(), true
		}
	}
	p.WebPKI, p.WebPKIOK = "ok", true
	if err := verifyWebPKI(cs.PeerCertificates, name, o.Roots, now()); err != nil {
		p.WebPKI, p.WebPKIOK = err.Error(), false
	}
	return p
}

// verifyWebPKI verifies chain to roots for the MX host name (RFC 8461 §4.2).
func verifyWebPKI(chain []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("web pki verification for %s: %w", name, err)
	}
	return nil
}

// lookupTXT returns the TXT records at name, raw.
func lookupTXT(ctx context.Context, r dns.Resolver, name string) TXT {
	t := TXT{Name: name}
	res, err := r.LookupTXT(ctx, name)
	if err != nil {
		if errors.Is(err, dns.ErrNXDomain) {
			t.Status = "nxdomain"
			return t
		}
		t.Error = err.Error()
		return t
	}
	t.Status = string(res.Status)
	t.Records = res.Records
	return t
}

// outcomeName is the stable JSON name of a DANE outcome.
func outcomeName(o dane.Outcome) string {
	switch o {
	case dane.Authenticate:
		return "authenticate"
	case dane.EncryptOnly:
		return "encrypt_only"
	case dane.Unreachable:
		return "unreachable"
	}
	return "not_applicable"
}
