// Package dnstest runs a DNS server on 127.0.0.1 for tests. It answers from records held
// in memory the way a validating recursive resolver would: it follows CNAMEs through its
// data, sets the AD bit on answers from zones marked secure, and returns NXDOMAIN or
// NODATA with the SOA of the enclosing zone. Faults (SERVFAIL, REFUSED, silence,
// truncation, mismatched replies) can be injected per name and type, so that every
// outcome a resolver can produce is reachable from a test without any real DNS.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
)

// Fault is a misbehaviour injected into the replies to some questions.
type Fault int

const (
	// NoFault answers normally.
	NoFault Fault = iota
	// ServFail answers SERVFAIL, as a validating resolver does for bogus data.
	ServFail
	// Refused answers REFUSED.
	Refused
	// Drop sends no reply at all, so the client times out.
	Drop
	// Truncate sets TC on UDP replies and leaves out the records; TCP answers normally.
	Truncate
	// TruncateNoTCP truncates UDP replies and closes TCP connections without a reply.
	TruncateNoTCP
	// WrongQuestion replies with the right ID but a different question.
	WrongQuestion
	// Referral answers like an authoritative server that does not recurse: no answer,
	// an NS record for the name's parent in the authority section.
	Referral
)

// Query is one question the server received.
type Query struct {
	Name string // as sent, fully qualified
	Type uint16
	Net  string // "udp" or "tcp"
	DO   bool   // the query carried EDNS0 with the DO bit
	CD   bool   // the query had the CD (checking disabled) bit set
	Size uint16 // EDNS0 UDP size advertised; 0 without EDNS0
}

type faultKey struct {
	name  string // fully qualified, lower case; "" matches every name
	qtype uint16 // 0 matches every type
}

// Server is a DNS server on 127.0.0.1, listening on the same port for UDP and TCP.
type Server struct {
	// Addr is "127.0.0.1:port", to put in a client's server list.
	Addr string

	tb       testing.TB
	udp, tcp *mdns.Server

	mu         sync.Mutex
	rrs        map[string][]mdns.RR // owner (fully qualified, lower case) → records
	secure     []string             // zones whose data is answered with AD
	secureName map[string]bool      // names (not their subdomains) answered with AD
	faults     map[faultKey]Fault
	noChase    bool
	queries    []Query
}

// NewServer starts a server with no records; it is shut down when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, rrs: make(map[string][]mdns.RR), faults: make(map[faultKey]Fault)}
	var pc net.PacketConn
	var l net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("dnstest: listen udp: %v", err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i == 20 {
			tb.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
		}
	}
	s.Addr = pc.LocalAddr().String()
	s.udp = &mdns.Server{PacketConn: pc, Handler: s}
	s.tcp = &mdns.Server{Listener: l, Handler: s}
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server. Further queries to its address are refused by the kernel.
func (s *Server) Close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// Add adds records written in zone-file syntax, one per string, with fully qualified
// owner names: "example.com. 300 IN MX 10 mx.example.com.". A record without a TTL gets
// 3600 s. It fails the test on a syntax error.
func (s *Server) Add(records ...string) {
	s.tb.Helper()
	for _, text := range records {
		rr, err := mdns.NewRR(text)
		if err != nil || rr == nil {
			s.tb.Fatalf("dnstest: record %q: %v", text, err)
			return
		}
		owner := strings.ToLower(rr.Header().Name)
		s.mu.Lock()
		s.rrs[owner] = append(s.rrs[owner], rr)
		s.mu.Unlock()
	}
}

// Remove deletes every record owned by name.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rrs, strings.ToLower(mdns.Fqdn(name)))
}

// SecureName marks the data of names alone, not of their subdomains, as validated: a
// signed root whose SOA passes mxward's resolver self-test above unsigned test zones.
func (s *Server) SecureName(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secureName == nil {
		s.secureName = make(map[string]bool)
	}
	for _, n := range names {
		s.secureName[strings.ToLower(mdns.Fqdn(n))] = true
	}
}

// Secure marks zones as signed: replies whose every record (or, for a denial, the name
// asked for) lies at or under one of them carry the AD bit.
func (s *Server) Secure(zones ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range zones {
		s.secure = append(s.secure, strings.ToLower(mdns.Fqdn(z)))
	}
}

// Fail injects f into replies for name and qtype. An empty name matches every name and
// qtype 0 every type; NoFault removes an injected fault.
func (s *Server) Fail(name string, qtype uint16, f Fault) {
	k := faultKey{qtype: qtype}
	if name != "" {
		k.name = strings.ToLower(mdns.Fqdn(name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == NoFault {
		delete(s.faults, k)
		return
	}
	s.faults[k] = f
}

// NoChase makes the server answer a question about an alias with the CNAME record
// alone, without the records of its target, as some resolvers do.
func (s *Server) NoChase(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noChase = on
}

// Queries returns the questions received so far.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Count returns how many questions for name and qtype were received (qtype 0: any).
func (s *Server) Count(name string, qtype uint16) int {
	name = mdns.Fqdn(name)
	n := 0
	for _, q := range s.Queries() {
		if strings.EqualFold(q.Name, name) && (qtype == 0 || q.Type == qtype) {
			n++
		}
	}
	return n
}

// ResetQueries forgets the questions received so far.
func (s *Server) ResetQueries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = nil
}

func (s *Server) fault(name string, qtype uint16) Fault {
	for _, k := range []faultKey{{name, qtype}, {name, 0}, {"", qtype}, {"", 0}} {
		if f, ok := s.faults[k]; ok {
			return f
		}
	}
	return NoFault
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := new(mdns.Msg)
	if len(req.Question) != 1 {
		resp.SetRcode(req, mdns.RcodeFormatError)
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	rec := Query{Name: q.Name, Type: q.Qtype, Net: network, CD: req.CheckingDisabled}
	opt := req.IsEdns0()
	if opt != nil {
		rec.DO, rec.Size = opt.Do(), opt.UDPSize()
	}

	s.mu.Lock()
	s.queries = append(s.queries, rec)
	fault := s.fault(strings.ToLower(q.Name), q.Qtype)
	s.mu.Unlock()

	switch fault {
	case Drop:
		return
	case ServFail:
		resp.SetRcode(req, mdns.RcodeServerFailure)
	case Refused:
		resp.SetRcode(req, mdns.RcodeRefused)
	case Truncate, TruncateNoTCP:
		if network == "tcp" && fault == TruncateNoTCP {
			w.Close()
			return
		}
		if network == "udp" {
			resp.SetReply(req)
			resp.Truncated = true
			break
		}
		s.answer(req, resp)
	case WrongQuestion:
		s.answer(req, resp)
		resp.Question[0].Name = "wrong." + q.Name
	case Referral:
		resp.SetReply(req)
		parent := "."
		if i := strings.IndexByte(q.Name, '.'); i >= 0 && i+1 < len(q.Name) {
			parent = q.Name[i+1:]
		}
		resp.Ns = append(resp.Ns, &mdns.NS{
			Hdr: mdns.RR_Header{Name: parent, Rrtype: mdns.TypeNS, Class: mdns.ClassINET, Ttl: 3600},
			Ns:  "ns." + strings.TrimPrefix(parent, "."),
		})
	default:
		s.answer(req, resp)
	}
	if opt != nil {
		resp.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if network == "udp" {
		size := uint16(mdns.MinMsgSize)
		if opt != nil && opt.UDPSize() > size {
			size = opt.UDPSize()
		}
		resp.Truncate(int(size))
	}
	w.WriteMsg(resp)
}

// answer fills resp from the records, as a recursive resolver would.
func (s *Server) answer(req, resp *mdns.Msg) {
	resp.SetReply(req)
	resp.RecursionAvailable = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	s.mu.Lock()
	defer s.mu.Unlock()
	secure := true
	seen := map[string]bool{name: true}
	for {
		rrs := s.rrs[name]
		var match, cname []mdns.RR
		for _, rr := range rrs {
			switch t := rr.Header().Rrtype; {
			case t == q.Qtype:
				match = append(match, mdns.Copy(rr))
			case t == mdns.TypeCNAME:
				cname = append(cname, mdns.Copy(rr))
			}
		}
		secure = secure && s.isSecure(name)
		if len(match) > 0 {
			resp.Answer = append(resp.Answer, match...)
			break
		}
		if len(cname) > 0 {
			resp.Answer = append(resp.Answer, cname[0])
			target := strings.ToLower(cname[0].(*mdns.CNAME).Target)
			if s.noChase || seen[target] {
				break
			}
			seen[target] = true
			name = target
			continue
		}
		if len(rrs) == 0 && !s.emptyNonTerminal(name) {
			resp.Rcode = mdns.RcodeNameError
		}
		if soa := s.soaFor(name); soa != nil {
			resp.Ns = append(resp.Ns, soa)
		}
		break
	}
	resp.AuthenticatedData = secure
}

func (s *Server) isSecure(name string) bool {
	if s.secureName[strings.ToLower(mdns.Fqdn(name))] {
		return true
	}
	for _, z := range s.secure {
		if mdns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}

// emptyNonTerminal reports whether name owns no records but has descendants that do:
// such a name exists, so questions about it get NODATA, not NXDOMAIN (RFC 8020).
func (s *Server) emptyNonTerminal(name string) bool {
	for owner := range s.rrs {
		if owner != name && mdns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// soaFor returns a copy of the SOA of the closest zone enclosing name, or nil.
func (s *Server) soaFor(name string) mdns.RR {
	for n := name; ; {
		for _, rr := range s.rrs[n] {
			if rr.Header().Rrtype == mdns.TypeSOA {
				return mdns.Copy(rr)
			}
		}
		if n == "." {
			return nil
		}
		i := strings.IndexByte(n, '.')
		n = n[i+1:]
		if n == "" {
			n = "."
		}
	}
}

// String describes the server, for test failure messages.
func (s *Server) String() string { return fmt.Sprintf("dnstest server %s", s.Addr) }
