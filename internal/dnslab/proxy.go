package dnslab

import (
	"context"
	"fmt"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// A proxy is the lab's man in the middle: a DNS server on loopback that passes
// Unbound's queries for one zone to NSD and lets a Rewrite forge the reply on its
// way back. It makes the attacks that a correct authoritative server cannot
// produce: denial records that prove the wrong name, wildcard answers stripped of
// their proof. It never contacts anything but the lab's NSD.
type proxy struct {
	zone     string
	upstream string // NSD's address
	rewrite  Rewrite
	addr     string
	udp, tcp *mdns.Server
	ctx      context.Context // cancelled when the proxy closes
	cancel   context.CancelFunc
}

// proxyTimeout bounds one exchange with NSD.
const proxyTimeout = 3 * time.Second

// startProxy starts a proxy for zone on a free loopback port.
func startProxy(zone, upstream string, rw Rewrite) (*proxy, error) {
	pc, l, err := listenBoth()
	if err != nil {
		return nil, fmt.Errorf("start proxy for %s: %w", zone, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{zone: zone, upstream: upstream, rewrite: rw, addr: l.Addr().String(), ctx: ctx, cancel: cancel}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	p.udp = &mdns.Server{PacketConn: pc, Handler: p, NotifyStartedFunc: notify}
	p.tcp = &mdns.Server{Listener: l, Handler: p, NotifyStartedFunc: notify}
	errs := make(chan error, 2)
	for _, srv := range []*mdns.Server{p.udp, p.tcp} {
		go func() { errs <- srv.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-errs:
			p.close()
			return nil, fmt.Errorf("start proxy for %s: %w", zone, err)
		case <-time.After(5 * time.Second):
			p.close()
			return nil, fmt.Errorf("start proxy for %s: server did not start", zone)
		}
	}
	return p, nil
}

// close stops both servers and any exchange in flight.
func (p *proxy) close() {
	p.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.udp.ShutdownContext(ctx)
	_ = p.tcp.ShutdownContext(ctx)
}

// ServeDNS forwards req to NSD over the transport it arrived on, applies the
// rewrite and answers. A reply NSD had to truncate is passed on untouched, so that
// the rewrite always sees whole replies: Unbound asks again over TCP.
func (p *proxy) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	network := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	ctx, cancel := context.WithTimeout(p.ctx, proxyTimeout)
	defer cancel()
	resp, err := p.exchange(ctx, network, req)
	if err != nil {
		fail := new(mdns.Msg)
		fail.SetRcode(req, mdns.RcodeServerFailure)
		_ = w.WriteMsg(fail)
		return
	}
	if !resp.Truncated && p.rewrite != nil && len(req.Question) == 1 {
		p.rewrite(ctx, req, resp, p.ask)
	}
	resp.Id = req.Id
	resp.Compress = true
	if network == "udp" {
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

// exchange sends a copy of q to NSD.
func (p *proxy) exchange(ctx context.Context, network string, q *mdns.Msg) (*mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: proxyTimeout, UDPSize: mdns.MaxMsgSize}
	resp, _, err := c.ExchangeContext(ctx, q.Copy(), p.upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy for %s: ask NSD: %w", p.zone, err)
	}
	return resp, nil
}

// ask is the Upstream given to rewrites: TCP, so that the reply is whole.
func (p *proxy) ask(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
	return p.exchange(ctx, "tcp", q)
}
