package dnslab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func mustRR(t testing.TB, s string) mdns.RR {
	t.Helper()
	rr, err := mdns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return rr
}

func query(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	return m
}

func TestSpliceDenial(t *testing.T) {
	nsec := mustRR(t, "ns.z.test. 300 IN NSEC www.z.test. A RRSIG NSEC")
	nsecSig := mustRR(t, "ns.z.test. 300 IN RRSIG NSEC 13 3 300 20300101000000 20200101000000 1 z.test. AAAA")
	soa := mustRR(t, "z.test. 300 IN SOA ns.z.test. h.z.test. 1 3600 600 86400 300")
	var asked []string
	upstream := func(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
		asked = append(asked, q.Question[0].Name)
		r := new(mdns.Msg)
		r.SetReply(q)
		switch q.Question[0].Name {
		case "nx.z.test.":
			r.Rcode = mdns.RcodeNameError
			r.Ns = []mdns.RR{soa, nsec, nsecSig}
		case "www.z.test.": // exists: a positive reply is no decoy
			r.Answer = []mdns.RR{mustRR(t, "www.z.test. 300 IN A 192.0.2.1")}
		default:
			return nil, errors.New("unreachable")
		}
		return r, nil
	}
	positive := func(q *mdns.Msg) *mdns.Msg {
		r := new(mdns.Msg)
		r.SetReply(q)
		r.Answer = []mdns.RR{mustRR(t, "_25._tcp.mx.z.test. 300 IN TLSA 3 1 1 "+tlsaDigest)}
		r.SetEdns0(1232, true)
		r.Extra = append(r.Extra, mustRR(t, "ns.z.test. 300 IN A 127.0.0.1"))
		return r
	}
	ctx := context.Background()

	rw := SpliceDenial("_25._tcp.MX.z.test", mdns.TypeTLSA, "nx.z.test.", mdns.TypeA)
	req := query("_25._tcp.mx.z.test.", mdns.TypeTLSA)
	resp := positive(req)
	rw(ctx, req, resp, upstream)
	if resp.Rcode != mdns.RcodeNameError || len(resp.Answer) != 0 || len(resp.Ns) != 3 {
		t.Errorf("forged reply: %v", resp)
	}
	if resp.Question[0].Name != "_25._tcp.mx.z.test." {
		t.Errorf("question changed to %v", resp.Question[0])
	}
	if resp.IsEdns0() == nil || len(resp.Extra) != 1 {
		t.Errorf("additional section: want only the OPT record, got %v", resp.Extra)
	}

	// Another question passes untouched, without asking upstream.
	asked = nil
	req = query("mx.z.test.", mdns.TypeTLSA)
	resp = positive(req)
	rw(ctx, req, resp, upstream)
	if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 || len(asked) != 0 {
		t.Errorf("unrelated question rewritten: %v (asked %v)", resp, asked)
	}

	// A decoy that is not negative, or fails, leaves the reply alone.
	for _, decoy := range []string{"www.z.test.", "broken.z.test."} {
		rw := SpliceDenial("_25._tcp.mx.z.test.", mdns.TypeTLSA, decoy, mdns.TypeA)
		req := query("_25._tcp.mx.z.test.", mdns.TypeTLSA)
		resp := positive(req)
		rw(ctx, req, resp, upstream)
		if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("decoy %s: reply changed: %v", decoy, resp)
		}
	}
}

func TestDropWildcardProof(t *testing.T) {
	wildAnswer := func() *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion("host.wild.z.test.", mdns.TypeTXT)
		m.Answer = []mdns.RR{
			mustRR(t, `host.wild.z.test. 300 IN TXT "wildcard"`),
			// Labels 3: synthesised from *.wild.z.test. (RFC 4035 §5.3.2).
			mustRR(t, "host.wild.z.test. 300 IN RRSIG TXT 13 3 300 20300101000000 20200101000000 1 z.test. AAAA"),
		}
		m.Ns = []mdns.RR{
			mustRR(t, "z.test. 300 IN NS ns.z.test."),
			mustRR(t, "*.wild.z.test. 300 IN NSEC www.z.test. TXT RRSIG NSEC"),
			mustRR(t, "*.wild.z.test. 300 IN RRSIG NSEC 13 4 300 20300101000000 20200101000000 1 z.test. AAAA"),
			mustRR(t, "a.z.test. 300 IN NSEC3 1 0 0 - 0000000000000000000000000000000 A"),
		}
		return m
	}
	rw := DropWildcardProof()
	m := wildAnswer()
	rw(context.Background(), m, m, nil)
	if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != mdns.TypeNS || len(m.Answer) != 2 {
		t.Errorf("after the rewrite: answer %v, authority %v; want the answer and only the NS", m.Answer, m.Ns)
	}

	// A direct answer, and an answer at the wildcard owner itself, keep their
	// authority sections.
	for _, sig := range []string{
		"host.wild.z.test. 300 IN RRSIG TXT 13 4 300 20300101000000 20200101000000 1 z.test. AAAA",
		"*.wild.z.test. 300 IN RRSIG TXT 13 3 300 20300101000000 20200101000000 1 z.test. AAAA",
	} {
		m := wildAnswer()
		m.Answer[1] = mustRR(t, sig)
		rw(context.Background(), m, m, nil)
		if len(m.Ns) != 4 {
			t.Errorf("not a wildcard expansion (%s), but the proof was removed", sig)
		}
	}
}

// fakeNSD serves one canned reply for every question, over UDP and TCP on
// loopback, and counts the questions per transport.
type fakeNSD struct {
	addr    string
	queries chan string
}

func startFakeNSD(t *testing.T, answer func(req *mdns.Msg) *mdns.Msg) *fakeNSD {
	t.Helper()
	pc, l, err := listenBoth()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNSD{addr: l.Addr().String(), queries: make(chan string, 100)}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		network := "udp"
		if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
			network = "tcp"
		}
		f.queries <- network
		resp := answer(req)
		if network == "udp" {
			resp.Truncate(int(req.IsEdns0().UDPSize()))
		}
		_ = w.WriteMsg(resp)
	})
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return f
}

func TestProxy(t *testing.T) {
	// Forty TXT records make a reply larger than 1232 octets.
	big := func(req *mdns.Msg) *mdns.Msg {
		r := new(mdns.Msg)
		r.SetReply(req)
		r.Authoritative = true
		for i := range 40 {
			r.Answer = append(r.Answer, mustRR(t, fmt.Sprintf(`big.z.test. 300 IN TXT "%040d"`, i)))
		}
		r.SetEdns0(1232, true)
		return r
	}
	nsd := startFakeNSD(t, big)
	rewrites := make(chan string, 10)
	p, err := startProxy("z.test.", nsd.addr, func(ctx context.Context, req, resp *mdns.Msg, up Upstream) {
		rewrites <- req.Question[0].Name
		resp.Answer = resp.Answer[:1]
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Over UDP NSD truncates; the proxy passes that on without a rewrite.
	c := &mdns.Client{Net: "udp", Timeout: 5 * time.Second}
	q := query("big.z.test.", mdns.TypeTXT)
	q.Id = 4242
	resp, _, err := c.ExchangeContext(ctx, q, p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated || resp.Id != 4242 {
		t.Errorf("UDP reply: truncated %v, id %d; want truncated, id 4242", resp.Truncated, resp.Id)
	}
	if got := <-nsd.queries; got != "udp" {
		t.Errorf("proxy asked NSD over %s, want udp", got)
	}
	select {
	case name := <-rewrites:
		t.Errorf("truncated reply for %s was rewritten", name)
	default:
	}
	// Over TCP the whole reply arrives and is rewritten.
	c.Net = "tcp"
	resp, _, err = c.ExchangeContext(ctx, q, p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("TCP reply: truncated %v, %d answers; want whole and rewritten to 1", resp.Truncated, len(resp.Answer))
	}
	if got := <-nsd.queries; got != "tcp" {
		t.Errorf("proxy asked NSD over %s, want tcp", got)
	}
	if name := <-rewrites; name != "big.z.test." {
		t.Errorf("rewrite saw %s", name)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	pc, l, err := listenBoth()
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	pc.Close()
	l.Close()
	p, err := startProxy("z.test.", dead, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	c := &mdns.Client{Net: "tcp", Timeout: 10 * time.Second}
	resp, _, err := c.Exchange(query("www.z.test.", mdns.TypeA), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL when NSD is unreachable", mdns.RcodeToString[resp.Rcode])
	}
}
