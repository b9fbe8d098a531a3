package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// dnsHandler answers queries from the tree as a validating recursive resolver would,
// with the attacker's forgeries mixed in.
type dnsHandler struct {
	tree     map[string]*zone
	attacks  *attacks
	mxOf     map[string][]string // domain → its MX hosts, for ForgeSigned
	attacker netip.Addr
	// plain makes the handler a resolver that does not validate: forgeries pass and AD
	// is never set.
	plain bool
}

// dnsServer is a handler served over UDP and TCP on one loopback port.
type dnsServer struct {
	addr     string
	udp, tcp *mdns.Server
}

// startDNS serves h on a free port of 127.0.0.1, over UDP and TCP, and returns once
// both servers run.
func startDNS(h mdns.Handler) (*dnsServer, error) {
	// The UDP port picked may be taken for TCP by another process: try a few.
	var pc net.PacketConn
	var tl net.Listener
	var err error
	for i := 0; ; i++ {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("lab: listen for DNS: %w", err)
		}
		if tl, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if i == 20 {
			return nil, fmt.Errorf("lab: listen for DNS over TCP: %w", err)
		}
	}
	// Wait until both servers run: Shutdown on a server not yet started fails and
	// would leave it serving after close.
	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	s := &dnsServer{addr: pc.LocalAddr().String(),
		udp: &mdns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(udpUp) }},
		tcp: &mdns.Server{Listener: tl, Handler: h, NotifyStartedFunc: func() { close(tcpUp) }}}
	errc := make(chan error, 2)
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	for _, up := range []chan struct{}{udpUp, tcpUp} {
		select {
		case <-up:
		case err := <-errc:
			// Whichever runs is stopped by its listener closing.
			pc.Close()
			tl.Close()
			return nil, fmt.Errorf("lab: start DNS: %w", err)
		}
	}
	return s, nil
}

// close stops both servers; a nil server is already closed.
func (s *dnsServer) close() {
	if s == nil {
		return
	}
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// ServeDNS implements mdns.Handler.
func (h *dnsHandler) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	if len(r.Question) != 1 || r.Opcode != mdns.OpcodeQuery {
		m := new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	_ = w.WriteMsg(h.reply(r, w.RemoteAddr().Network() == "tcp"))
}

// reply builds the response to r.
func (h *dnsHandler) reply(r *mdns.Msg, tcp bool) *mdns.Msg {
	q := r.Question[0]
	name := strings.ToLower(mdns.Fqdn(q.Name))
	opt := r.IsEdns0()
	do := opt != nil && opt.Do()

	res, forged := h.forge(name, q.Qtype)
	if !forged {
		res = resolve(h.tree, name, q.Qtype)
	}
	m := res.msg
	m.Id, m.RecursionDesired, m.CheckingDisabled = r.Id, r.RecursionDesired, r.CheckingDisabled
	m.Question = r.Question
	if forged && res.secure && !r.CheckingDisabled && !h.plain {
		// A validating resolver given unsigned data for a signed zone refuses it
		// (RFC 4035 §5.5) and says why (RFC 8914 §4.11, RRSIGs Missing). With CD
		// the client validates itself and gets the data as it came (RFC 4035 §3.2.2).
		m = new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeServerFailure)
		m.RecursionAvailable = true
		if opt != nil {
			m.SetEdns0(1232, do)
			m.IsEdns0().Option = append(m.IsEdns0().Option,
				&mdns.EDNS0_EDE{InfoCode: mdns.ExtendedErrorCodeRRSIGsMissing, ExtraText: "signatures missing"})
		}
		return m
	}
	if !do {
		// Without DO, DNSSEC records are left out unless asked for (RFC 4035 §3.2.1).
		strip := func(rrs []mdns.RR) []mdns.RR {
			var out []mdns.RR
			for _, rr := range rrs {
				t := rr.Header().Rrtype
				if (t == mdns.TypeRRSIG || t == mdns.TypeNSEC) && t != q.Qtype {
					continue
				}
				out = append(out, rr)
			}
			return out
		}
		m.Answer, m.Ns = strip(m.Answer), strip(m.Ns)
	}
	// AD only on data that validates, and only to a client that showed it
	// understands DNSSEC (RFC 6840 §5.7, §5.8).
	m.AuthenticatedData = do && res.secure && !forged && m.Rcode != mdns.RcodeRefused && !h.plain
	size := mdns.MinMsgSize
	if opt != nil {
		m.SetEdns0(1232, do)
		size = max(int(opt.UDPSize()), mdns.MinMsgSize)
	}
	if tcp {
		size = mdns.MaxMsgSize
	}
	m.Truncate(size)
	return m
}

// forge returns the attacker's answer to name and qtype, if an attack applies.
// res.secure tells whether the real data is secure, so that the forgery is bogus.
func (h *dnsHandler) forge(name string, qtype uint16) (result, bool) {
	switch qtype {
	case mdns.TypeMX:
		if h.attacks.get(name)&ForgeMX == 0 {
			return result{}, false
		}
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		m.Response, m.RecursionAvailable = true, true
		m.Answer = []mdns.RR{&mdns.MX{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeMX, Class: mdns.ClassINET, Ttl: 300},
			Preference: 10, Mx: attackerHost}}
		return result{msg: m, secure: zoneFor(h.tree, name, qtype).secure()}, true
	case mdns.TypeTXT:
		domain, ok := strings.CutPrefix(name, "_mta-sts.")
		if !ok || h.attacks.get(domain)&HideMTASTS == 0 {
			return result{}, false
		}
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		m.Response, m.RecursionAvailable = true, true
		m.Rcode = mdns.RcodeNameError
		return result{msg: m, secure: zoneFor(h.tree, name, qtype).secure()}, true
	case mdns.TypeA:
		for domain, hosts := range h.mxOf {
			if h.attacks.get(domain)&ForgeSigned == 0 {
				continue
			}
			for _, host := range hosts {
				if host != name {
					continue
				}
				m := new(mdns.Msg)
				m.SetQuestion(name, qtype)
				m.Response, m.RecursionAvailable = true, true
				m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300},
					A: h.attacker.AsSlice()}}
				return result{msg: m, secure: zoneFor(h.tree, name, qtype).secure()}, true
			}
		}
	}
	return result{}, false
}
