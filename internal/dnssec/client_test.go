package dnssec

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// treeServer serves a signed tree on 127.0.0.1 over UDP and TCP, as a recursive
// resolver that passes DNSSEC records through would.
type treeServer struct {
	addr   string
	tree   *testTree
	mutate func(q question, m *mdns.Msg)

	mu      sync.Mutex
	queries []servedQuery
}

type servedQuery struct {
	question
	cd, do bool
}

func serveTree(t *testing.T, tree *testTree) *treeServer {
	t.Helper()
	s := &treeServer{tree: tree}
	var pc net.PacketConn
	var l net.Listener
	for i := 0; ; i++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if i == 20 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: s}, {Listener: l, Handler: s}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return s
}

func (s *treeServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		resp := new(mdns.Msg)
		resp.SetRcode(req, mdns.RcodeFormatError)
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	sq := servedQuery{question: question{name: canonical(q.Name), qtype: q.Qtype}, cd: req.CheckingDisabled}
	size := 512
	if opt := req.IsEdns0(); opt != nil {
		sq.do = opt.Do()
		size = max(size, int(opt.UDPSize()))
	}
	s.mu.Lock()
	s.queries = append(s.queries, sq)
	mutate := s.mutate
	s.mu.Unlock()

	resp := s.tree.answer(q.Name, q.Qtype)
	if mutate != nil {
		mutate(sq.question, resp)
	}
	resp.Id, resp.RecursionDesired, resp.CheckingDisabled = req.Id, req.RecursionDesired, req.CheckingDisabled
	resp.Question = req.Question
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && resp.Len() > size {
		resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
		resp.Truncated = true
		resp.SetEdns0(1232, true)
	}
	w.WriteMsg(resp)
}

// setMutate installs a hook that changes replies.
func (s *treeServer) setMutate(f func(q question, m *mdns.Msg)) {
	s.mu.Lock()
	s.mutate = f
	s.mu.Unlock()
}

func (s *treeServer) count(qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queries {
		if q.qtype == qtype {
			n++
		}
	}
	return n
}

// TestClientEndToEnd runs the DNS client with the validator against the tree served on
// loopback: every status reaches the lookup results.
func TestClientEndToEnd(t *testing.T) {
	specs := plus(defaultSpecs(),
		zoneSpec{name: "rsa.test.", alg: mdns.RSASHA256, records: []string{"@ MX 10 mx.rsa.test.", "mx A 192.0.2.40",
			"_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		zoneSpec{name: "broken.test.", records: []string{"@ MX 10 mx.broken.test."}},
	)
	tree := newTree(t, specs)
	srv := serveTree(t, tree)
	srv.setMutate(func(q question, m *mdns.Msg) {
		if q.name == "broken.test." && q.qtype == mdns.TypeDNSKEY {
			m.Answer = nil // stripped DNSKEY: bogus
		}
	})
	clock := &testClock{t: testNow}
	v, err := New(Config{Anchors: tree.rootAnchor(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dns.NewClient(dns.Config{Servers: []string{srv.addr}, Validator: v, Now: clock.Now, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	mx, err := c.LookupMX(ctx, "example.test")
	if err != nil || mx.Status != dns.Secure || len(mx.Records) != 1 || mx.Records[0].Host != "mx.example.test" {
		t.Fatalf("MX example.test: %+v, %v", mx, err)
	}
	tlsa, err := c.LookupTLSA(ctx, "_25._tcp.mx.example.test")
	if err != nil || tlsa.Overall() != dns.Secure || len(tlsa.Records) != 1 {
		t.Fatalf("TLSA: %+v, %v", tlsa, err)
	}
	// A zone signed with RSA keys.
	tlsa, err = c.LookupTLSA(ctx, "_25._tcp.mx.rsa.test")
	if err != nil || tlsa.Overall() != dns.Secure || len(tlsa.Records) != 1 {
		t.Fatalf("TLSA in rsa.test: %+v, %v", tlsa, err)
	}
	ip, err := c.LookupIP(ctx, "alias2.example.test")
	if err != nil || ip.Overall() != dns.Secure || len(ip.IPv4) != 1 || len(ip.Chain) != 2 || ip.ChainStatus != dns.Secure {
		t.Fatalf("IP alias2: %+v, %v", ip, err)
	}
	ip, err = c.LookupIP(ctx, "out.example.test")
	if err != nil || ip.Status != dns.Insecure || ip.ChainStatus != dns.Secure || ip.Overall() != dns.Insecure {
		t.Fatalf("IP out.example.test: %+v, %v", ip, err)
	}
	mx, err = c.LookupMX(ctx, "unsigned.example.test")
	if err != nil || mx.Status != dns.Insecure || mx.Reason == "" {
		t.Fatalf("MX unsigned.example.test: %+v, %v", mx, err)
	}
	mx, err = c.LookupMX(ctx, "nx.example.test")
	if !dns.IsNXDomain(err) || mx.Status != dns.Secure {
		t.Fatalf("MX nx.example.test: %+v, %v", mx, err)
	}
	tlsa, err = c.LookupTLSA(ctx, "_25._tcp.mx.insecure.test")
	if !dns.IsNXDomain(err) || tlsa.Status != dns.Insecure {
		t.Fatalf("TLSA in insecure.test: %+v, %v", tlsa, err)
	}
	_, err = c.LookupMX(ctx, "broken.test")
	var te *dns.TemporaryError
	if !errors.As(err, &te) || te.Reason != "bogus" || !hasEDE(te.EDE, edeDNSKEYMissing) {
		t.Fatalf("MX broken.test: %v, want a bogus temporary error with EDE 9", err)
	}

	// Every query carried DO and CD (RFC 4035 §3.2.2, §4.6).
	srv.mu.Lock()
	for _, q := range srv.queries {
		if !q.cd || !q.do {
			t.Errorf("query %s %s: CD %v, DO %v", q.name, mdns.TypeToString[q.qtype], q.cd, q.do)
		}
	}
	srv.mu.Unlock()

	// Warm: new lookups in known zones cost no DS or DNSKEY query.
	ds, dnskey := srv.count(mdns.TypeDS), srv.count(mdns.TypeDNSKEY)
	if _, err := c.LookupIP(ctx, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupTXT(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	if srv.count(mdns.TypeDS) != ds || srv.count(mdns.TypeDNSKEY) != dnskey {
		t.Errorf("warm lookups fetched %d DS and %d DNSKEY", srv.count(mdns.TypeDS)-ds, srv.count(mdns.TypeDNSKEY)-dnskey)
	}
}
