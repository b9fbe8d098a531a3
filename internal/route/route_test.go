package route

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mxward/internal/dns"
)

// fakeResolver answers from maps. Names it does not know do not exist.
type fakeResolver struct {
	mx    map[string]dns.MXResult
	mxErr map[string]error
	ip    map[string]dns.IPResult
	ipErr map[string]error

	mu    sync.Mutex
	calls []string // "MX name" / "IP name"
}

func newFake() *fakeResolver {
	return &fakeResolver{mx: map[string]dns.MXResult{}, mxErr: map[string]error{},
		ip: map[string]dns.IPResult{}, ipErr: map[string]error{}}
}

func (f *fakeResolver) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeResolver) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, call)
}

func answer(name string, st dns.Status) dns.Answer {
	return dns.Answer{Name: name, Canonical: name, Status: st, ChainStatus: dns.Secure}
}

func (f *fakeResolver) LookupMX(_ context.Context, name string) (dns.MXResult, error) {
	name = dns.Normalize(name)
	f.record("MX " + name)
	if err := f.mxErr[name]; err != nil {
		return dns.MXResult{Answer: answer(name, dns.Insecure)}, err
	}
	if r, ok := f.mx[name]; ok {
		return r, nil
	}
	return dns.MXResult{Answer: answer(name, dns.Insecure)}, &dns.NXDomainError{Name: name, Type: "MX"}
}

func (f *fakeResolver) LookupIP(_ context.Context, host string) (dns.IPResult, error) {
	host = dns.Normalize(host)
	f.record("IP " + host)
	if err := f.ipErr[host]; err != nil {
		return dns.IPResult{Answer: answer(host, dns.Insecure)}, err
	}
	if r, ok := f.ip[host]; ok {
		return r, nil
	}
	return dns.IPResult{Answer: answer(host, dns.Insecure)}, &dns.NXDomainError{Name: host, Type: "A"}
}

func (f *fakeResolver) LookupTXT(context.Context, string) (dns.TXTResult, error) {
	return dns.TXTResult{}, errors.New("not used")
}

func (f *fakeResolver) LookupTLSA(context.Context, string) (dns.TLSAResult, error) {
	return dns.TLSAResult{}, errors.New("not used")
}

// setMX sets name's MX records, written "10 mx.example.com".
func (f *fakeResolver) setMX(name string, st dns.Status, records ...string) {
	r := dns.MXResult{Answer: answer(name, st)}
	for _, rec := range records {
		pref, host, _ := strings.Cut(rec, " ")
		p, _ := strconv.Atoi(pref)
		r.Records = append(r.Records, dns.MX{Host: host, Pref: uint16(p)})
	}
	f.mx[name] = r
}

// setIP sets host's addresses.
func (f *fakeResolver) setIP(host string, st dns.Status, addrs ...string) {
	r := dns.IPResult{Answer: answer(host, st)}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		if ip.Is4() {
			r.IPv4 = append(r.IPv4, ip)
		} else {
			r.IPv6 = append(r.IPv6, ip)
		}
	}
	f.ip[host] = r
}

var (
	errTemp  = &dns.TemporaryError{Name: "x", Type: "MX", Reason: "servfail"}
	errBogus = &dns.TemporaryError{Name: "x", Type: "MX", Reason: "bogus"}
)

// hostsString renders a route's hosts as "name/pref=addr,addr name/pref=addr".
func hostsString(rt *Route) string {
	var parts []string
	for _, h := range rt.Hosts {
		var as []string
		for _, a := range h.Addrs {
			as = append(as, a.String())
		}
		parts = append(parts, fmt.Sprintf("%s/%d=%s", h.Name, h.Pref, strings.Join(as, ",")))
	}
	return strings.Join(parts, " ")
}

// standardFake is a small world: example.com with two MX hosts, and names for every
// rule's corner case.
func standardFake() *fakeResolver {
	f := newFake()
	f.setMX("example.com", dns.Secure, "20 mx2.example.com", "10 mx1.example.com")
	f.setIP("mx1.example.com", dns.Secure, "192.0.2.1", "2001:db8::1")
	f.setIP("mx2.example.com", dns.Insecure, "192.0.2.2")
	f.setIP("example.com", dns.Secure, "192.0.2.99") // MX-06: never used while MX records exist
	return f
}

type want struct {
	hosts    string
	implicit bool
	literal  bool
	override bool
	port     uint16
	mxStatus dns.Status
	// For failures:
	reason    string
	temporary bool
	code      int
	enhanced  string
}

func check(t *testing.T, rt *Route, err error, w want) {
	t.Helper()
	if w.reason != "" {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v (route %+v), want *Error %s", err, rt, w.reason)
		}
		if e.Reason != w.reason || e.Temporary != w.temporary || e.Code != w.code || e.Enhanced != w.enhanced {
			t.Fatalf("error = %s/%v/%d/%s (%v), want %s/%v/%d/%s",
				e.Reason, e.Temporary, e.Code, e.Enhanced, e, w.reason, w.temporary, w.code, w.enhanced)
		}
		if rt != nil {
			t.Fatalf("route %+v returned with an error", rt)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := hostsString(rt); got != w.hosts {
		t.Errorf("hosts = %q\n want %q", got, w.hosts)
	}
	if rt.Implicit != w.implicit || rt.Literal != w.literal || rt.Override != w.override || rt.Port != w.port {
		t.Errorf("implicit, literal, override, port = %v, %v, %v, %d; want %v, %v, %v, %d",
			rt.Implicit, rt.Literal, rt.Override, rt.Port, w.implicit, w.literal, w.override, w.port)
	}
	if w.mxStatus != "" && rt.MXStatus != w.mxStatus {
		t.Errorf("MX status = %q, want %q", rt.MXStatus, w.mxStatus)
	}
	for _, h := range rt.Hosts {
		if h.MXStatus != rt.MXStatus {
			t.Errorf("host %s MX status %q differs from the route's %q", h.Name, h.MXStatus, rt.MXStatus)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		domain string
		opts   Options
		setup  func(f *fakeResolver)
		want   want
		noIP   []string // hosts whose addresses must not have been looked up
	}{
		{
			name: "MX-08 sorted by preference, MX-10 IPv6 first", domain: "example.com",
			want: want{hosts: "mx1.example.com/10=2001:db8::1,192.0.2.1 mx2.example.com/20=192.0.2.2", mxStatus: dns.Secure},
			noIP: []string{"example.com"},
		},
		{
			name: "domain with trailing dot and capitals", domain: "Example.COM.",
			want: want{hosts: "mx1.example.com/10=2001:db8::1,192.0.2.1 mx2.example.com/20=192.0.2.2", mxStatus: dns.Secure},
		},
		{
			name: "MX-10 IPv4 first", domain: "example.com", opts: Options{Family: PreferIPv4},
			want: want{hosts: "mx1.example.com/10=192.0.2.1,2001:db8::1 mx2.example.com/20=192.0.2.2"},
		},
		{
			name: "MX-10 IPv6 only skips an IPv4-only host", domain: "example.com", opts: Options{Family: IPv6Only},
			want: want{hosts: "mx1.example.com/10=2001:db8::1"},
		},
		{
			name: "MX-10 IPv4 only", domain: "example.com", opts: Options{Family: IPv4Only},
			want: want{hosts: "mx1.example.com/10=192.0.2.1 mx2.example.com/20=192.0.2.2"},
		},
		{
			name: "MX-10 IPv6 only, no host has IPv6", domain: "v4.example", opts: Options{Family: IPv6Only},
			setup: func(f *fakeResolver) {
				f.setMX("v4.example", dns.Insecure, "10 mx2.example.com")
			},
			want: want{reason: "no_usable_mx", code: 550, enhanced: "5.4.4"},
		},
		{
			name: "MX-10 address limit counts over all hosts", domain: "many.example",
			setup: func(f *fakeResolver) {
				f.setMX("many.example", dns.Insecure, "10 a.many.example", "20 b.many.example", "30 c.many.example")
				f.setIP("a.many.example", dns.Insecure, "192.0.2.11", "192.0.2.12", "192.0.2.13")
				f.setIP("b.many.example", dns.Insecure, "192.0.2.21", "192.0.2.22", "192.0.2.23")
				f.setIP("c.many.example", dns.Insecure, "192.0.2.31")
			},
			want: want{hosts: "a.many.example/10=192.0.2.11,192.0.2.12,192.0.2.13 b.many.example/20=192.0.2.21,192.0.2.22"},
			noIP: []string{"c.many.example"},
		},
		{
			name: "MX-10 configured limit", domain: "many.example", opts: Options{MaxAddresses: 2},
			setup: func(f *fakeResolver) {
				f.setMX("many.example", dns.Insecure, "10 a.many.example", "20 b.many.example")
				f.setIP("a.many.example", dns.Insecure, "192.0.2.11", "192.0.2.12", "192.0.2.13")
				f.setIP("b.many.example", dns.Insecure, "192.0.2.21")
			},
			want: want{hosts: "a.many.example/10=192.0.2.11,192.0.2.12"},
			noIP: []string{"b.many.example"},
		},
		{
			name: "MX-10 no limit", domain: "many.example", opts: Options{MaxAddresses: -1},
			setup: func(f *fakeResolver) {
				f.setMX("many.example", dns.Insecure, "10 a.many.example", "20 b.many.example")
				f.setIP("a.many.example", dns.Insecure, "192.0.2.11", "192.0.2.12", "192.0.2.13")
				f.setIP("b.many.example", dns.Insecure, "192.0.2.21", "192.0.2.22", "192.0.2.23")
			},
			want: want{hosts: "a.many.example/10=192.0.2.11,192.0.2.12,192.0.2.13 b.many.example/20=192.0.2.21,192.0.2.22,192.0.2.23"},
		},
		{
			name: "addresses shared by two hosts are tried once", domain: "dup.example",
			setup: func(f *fakeResolver) {
				f.setMX("dup.example", dns.Insecure, "10 a.dup.example", "20 b.dup.example", "30 a.dup.example")
				f.setIP("a.dup.example", dns.Insecure, "192.0.2.1")
				f.setIP("b.dup.example", dns.Insecure, "192.0.2.1", "192.0.2.2")
			},
			want: want{hosts: "a.dup.example/10=192.0.2.1 b.dup.example/20=192.0.2.2"},
		},
		{
			name: "MX-02 CNAME at the domain", domain: "alias.example",
			setup: func(f *fakeResolver) {
				r := f.mx["example.com"]
				r.Name = "alias.example"
				r.Chain = []dns.Alias{{Name: "alias.example", Target: "example.com", Status: dns.Insecure}}
				r.ChainStatus = dns.Insecure
				f.mx["alias.example"] = r
			},
			want: want{hosts: "mx1.example.com/10=2001:db8::1,192.0.2.1 mx2.example.com/20=192.0.2.2", mxStatus: dns.Insecure},
		},
		{
			name: "MX-03 NXDOMAIN bounces", domain: "nowhere.example",
			want: want{reason: "nxdomain", code: 550, enhanced: "5.1.2"},
			noIP: []string{"nowhere.example"},
		},
		{
			name: "MX-04 temporary MX failure defers, no A/AAAA fallback", domain: "example.com",
			setup: func(f *fakeResolver) { f.mxErr["example.com"] = errTemp },
			want:  want{reason: "dns_temporary", temporary: true, code: 451, enhanced: "4.4.3"},
			noIP:  []string{"example.com", "mx1.example.com"},
		},
		{
			name: "DANE-03 bogus MX answer defers", domain: "example.com",
			setup: func(f *fakeResolver) { f.mxErr["example.com"] = errBogus },
			want:  want{reason: "dnssec_bogus", temporary: true, code: 451, enhanced: "4.7.5"},
		},
		{
			name: "DANE-03 bogus address of the only MX host defers as bogus", domain: "example.com",
			setup: func(f *fakeResolver) {
				f.setMX("example.com", dns.Secure, "10 mx1.example.com")
				f.ipErr["mx1.example.com"] = errBogus
			},
			want: want{reason: "dnssec_bogus", temporary: true, code: 451, enhanced: "4.7.5"},
		},
		{
			name: "DANE-03 bogus address of one MX host: the other is used", domain: "example.com",
			setup: func(f *fakeResolver) {
				f.setMX("example.com", dns.Secure, "10 mx1.example.com", "20 mx2.example.com")
				f.ipErr["mx1.example.com"] = errBogus
				f.setIP("mx2.example.com", dns.Secure, "192.0.2.2")
			},
			want: want{hosts: "mx2.example.com/20=192.0.2.2", mxStatus: dns.Secure},
		},
		{
			name: "MX-05 implicit MX", domain: "implicit.example",
			setup: func(f *fakeResolver) {
				f.setMX("implicit.example", dns.Secure)
				f.setIP("implicit.example", dns.Secure, "192.0.2.50", "2001:db8::50")
			},
			want: want{hosts: "implicit.example/0=2001:db8::50,192.0.2.50", implicit: true, mxStatus: dns.Secure},
		},
		{
			name: "MX-05 implicit MX without addresses", domain: "implicit.example",
			setup: func(f *fakeResolver) {
				f.setMX("implicit.example", dns.Insecure)
				f.setIP("implicit.example", dns.Insecure)
			},
			want: want{reason: "no_usable_mx", code: 550, enhanced: "5.4.4"},
		},
		{
			name: "MX-05 implicit MX, address lookup fails temporarily", domain: "implicit.example",
			setup: func(f *fakeResolver) {
				f.setMX("implicit.example", dns.Insecure)
				f.ipErr["implicit.example"] = errTemp
			},
			want: want{reason: "no_usable_mx", temporary: true, code: 451, enhanced: "4.4.3"},
		},
		{
			name: "MX-06 every target NXDOMAIN bounces, domain's own A unused", domain: "broken.example",
			setup: func(f *fakeResolver) {
				f.setMX("broken.example", dns.Insecure, "10 gone1.broken.example", "20 gone2.broken.example")
				f.setIP("broken.example", dns.Insecure, "192.0.2.77")
			},
			want: want{reason: "no_usable_mx", code: 550, enhanced: "5.4.4"},
			noIP: []string{"broken.example"},
		},
		{
			name: "MX-06 targets NXDOMAIN or NODATA, one temporary: defer", domain: "broken.example",
			setup: func(f *fakeResolver) {
				f.setMX("broken.example", dns.Insecure, "10 gone1.broken.example", "20 empty.broken.example", "30 flaky.broken.example")
				f.setIP("empty.broken.example", dns.Insecure)
				f.ipErr["flaky.broken.example"] = errTemp
			},
			want: want{reason: "no_usable_mx", temporary: true, code: 451, enhanced: "4.4.3"},
		},
		{
			name: "MX-06 unusable targets skipped, the rest used", domain: "partly.example",
			setup: func(f *fakeResolver) {
				f.setMX("partly.example", dns.Insecure, "10 gone.partly.example", "20 flaky.partly.example", "30 mx1.example.com")
				f.ipErr["flaky.partly.example"] = errTemp
			},
			want: want{hosts: "mx1.example.com/30=2001:db8::1,192.0.2.1"},
		},
		{
			name: "MX-07 IP address as MX target skipped", domain: "iptarget.example",
			setup: func(f *fakeResolver) {
				f.setMX("iptarget.example", dns.Insecure, "10 192.0.2.5", "15 [192.0.2.6]", "20 mx2.example.com")
			},
			want: want{hosts: "mx2.example.com/20=192.0.2.2"},
			noIP: []string{"192.0.2.5", "[192.0.2.6]"},
		},
		{
			name: "MX-07 only IP address targets", domain: "iptarget.example",
			setup: func(f *fakeResolver) { f.setMX("iptarget.example", dns.Insecure, "10 2001:db8::5") },
			want:  want{reason: "no_usable_mx", code: 550, enhanced: "5.4.4"},
		},
		{
			name: "MX-11 we are the backup MX: only better hosts kept", domain: "example.com",
			opts: Options{Self: SelfSet([]string{"MX2.example.com."}, nil)},
			want: want{hosts: "mx1.example.com/10=2001:db8::1,192.0.2.1"},
		},
		{
			name: "MX-11 we are the best MX: mail loop", domain: "example.com",
			opts: Options{Self: SelfSet(nil, []netip.Addr{netip.MustParseAddr("2001:db8::1")})},
			want: want{reason: "mail_loop", code: 550, enhanced: "5.4.6"},
		},
		{
			name: "MX-11 equal preference to ours is discarded, even past the address limit", domain: "equal.example",
			opts: Options{MaxAddresses: 1, Self: SelfSet(nil, []netip.Addr{netip.MustParseAddr("192.0.2.2")})},
			setup: func(f *fakeResolver) {
				f.setMX("equal.example", dns.Insecure, "10 mx1.example.com", "10 mx2.example.com", "20 mx3.example.com")
				f.setIP("mx3.example.com", dns.Insecure, "192.0.2.3")
			},
			want: want{reason: "mail_loop", code: 550, enhanced: "5.4.6"},
			noIP: []string{"mx3.example.com"},
		},
		{
			name: "MX-11 better host failing temporarily: defer, not loop", domain: "example.com",
			opts:  Options{Self: SelfSet([]string{"mx2.example.com"}, nil)},
			setup: func(f *fakeResolver) { f.ipErr["mx1.example.com"] = errTemp },
			want:  want{reason: "no_usable_mx", temporary: true, code: 451, enhanced: "4.4.3"},
		},
		{
			name: "MX-11 recognised by name when our own lookup fails", domain: "example.com",
			opts:  Options{Self: SelfSet([]string{"mx1.example.com"}, nil)},
			setup: func(f *fakeResolver) { f.ipErr["mx1.example.com"] = errTemp },
			want:  want{reason: "mail_loop", code: 550, enhanced: "5.4.6"},
		},
		{
			name: "MX-13 null MX", domain: "null.example",
			setup: func(f *fakeResolver) { f.setMX("null.example", dns.Secure, "0 .") },
			want:  want{reason: "null_mx", code: 556, enhanced: "5.1.10"},
			noIP:  []string{"null.example"},
		},
		{
			name: "decision 14.4 null MX mixed with others: null ignored", domain: "mixed.example",
			setup: func(f *fakeResolver) { f.setMX("mixed.example", dns.Insecure, "0 .", "10 mx2.example.com") },
			want:  want{hosts: "mx2.example.com/10=192.0.2.2"},
		},
		{
			name: "MX-14 IPv4 address literal, no DNS", domain: "[192.0.2.1]",
			want: want{hosts: "192.0.2.1/0=192.0.2.1", literal: true, mxStatus: dns.Insecure},
		},
		{
			name: "MX-14 IPv6 address literal ignores family preference", domain: "[IPv6:2001:DB8::1]", opts: Options{Family: IPv4Only},
			want: want{hosts: "2001:db8::1/0=2001:db8::1", literal: true},
		},
		{
			name: "MX-14 bad literal", domain: "[IPv6:192.0.2.1]",
			want: want{reason: "invalid_literal", code: 553, enhanced: "5.1.3"},
		},
		{
			name: "MX-11 literal of our own address", domain: "[192.0.2.1]",
			opts: Options{Self: SelfSet(nil, []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")})},
			want: want{reason: "mail_loop", code: 550, enhanced: "5.4.6"},
		},
		{
			name: "invalid domain", domain: "exa_mple..com",
			want: want{reason: "invalid_domain", code: 550, enhanced: "5.1.2"},
		},
		{
			name: "UTF-8 domain must arrive as A-labels", domain: "bücher.example",
			want: want{reason: "invalid_domain", code: 550, enhanced: "5.1.2"},
		},
		{
			name: "transport [host]:port: no MX lookup", domain: "example.com",
			opts: Options{Transport: Transports{"example.com": {Host: "relay.example.net", Port: 587, NoMX: true}}.Lookup},
			setup: func(f *fakeResolver) {
				f.setIP("relay.example.net", dns.Insecure, "198.51.100.7")
			},
			want: want{hosts: "relay.example.net/0=198.51.100.7", override: true, port: 587, mxStatus: dns.Secure},
		},
		{
			name: "transport host: MX lookup of the host", domain: "example.com",
			opts: Options{Transport: Transports{"*": {Host: "relay.example.net"}}.Lookup},
			setup: func(f *fakeResolver) {
				f.setMX("relay.example.net", dns.Insecure, "5 mx2.example.com")
			},
			want: want{hosts: "mx2.example.com/5=192.0.2.2", override: true, mxStatus: dns.Insecure},
		},
		{
			name: "transport [address]:port", domain: "sub.example.org",
			opts: Options{Transport: Transports{".example.org": {Addr: netip.MustParseAddr("192.0.2.9"), Port: 2525, NoMX: true}}.Lookup},
			want: want{hosts: "192.0.2.9/0=192.0.2.9", literal: true, override: true, port: 2525},
		},
		{
			name: "transport not matching: normal MX", domain: "example.com",
			opts: Options{Transport: Transports{".example.com": {Host: "relay.example.net"}}.Lookup},
			want: want{hosts: "mx1.example.com/10=2001:db8::1,192.0.2.1 mx2.example.com/20=192.0.2.2"},
		},
		{
			name: "transport to a missing host defers", domain: "example.com",
			opts: Options{Transport: Transports{"example.com": {Host: "typo.example.net"}}.Lookup},
			want: want{reason: "nxdomain", temporary: true, code: 451, enhanced: "4.1.2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := standardFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			opts := tt.opts
			opts.Rand = rand.New(rand.NewPCG(1, 2))
			opts.Logger = slog.New(slog.DiscardHandler)
			rt, err := Resolve(context.Background(), f, tt.domain, opts)
			check(t, rt, err, tt.want)
			for _, h := range tt.noIP {
				if f.called("IP " + h) {
					t.Errorf("addresses of %s were looked up", h)
				}
			}
			if tt.want.literal {
				if len(f.calls) != 0 {
					t.Errorf("DNS used for a literal: %v", f.calls)
				}
			}
		})
	}
}

// TestStatuses: each host carries the MX RRset's status and its own address status,
// CNAME chains included (DANE-06, DANE-09).
func TestStatuses(t *testing.T) {
	f := standardFake()
	r := f.ip["mx2.example.com"]
	r.Chain = []dns.Alias{{Name: "mx2.example.com", Target: "real.example.net", Status: dns.Insecure}}
	r.Canonical, r.ChainStatus, r.Status = "real.example.net", dns.Insecure, dns.Secure
	f.ip["mx2.example.com"] = r
	rt, err := Resolve(context.Background(), f, "example.com", Options{Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	if rt.MXStatus != dns.Secure || rt.Canonical != "example.com" || rt.Nexthop != "example.com" {
		t.Errorf("route = %+v", rt)
	}
	got := map[string]dns.Status{}
	for _, h := range rt.Hosts {
		got[h.Name] = h.AddrStatus
		if h.MXStatus != dns.Secure {
			t.Errorf("%s: MX status %q", h.Name, h.MXStatus)
		}
	}
	if got["mx1.example.com"] != dns.Secure || got["mx2.example.com"] != dns.Insecure {
		t.Errorf("address statuses = %v; want mx1 secure, mx2 insecure (insecure CNAME)", got)
	}
	if h := rt.Hosts[1]; h.Address.Canonical != "real.example.net" || len(h.Address.Chain) != 1 || h.Name != "mx2.example.com" {
		t.Errorf("mx2 keeps its name as written and its chain: %+v", h)
	}
}

// TestRandomEqualPreference: MX-09 randomises among equal preferences only; the
// injected source makes each order reproducible, and both orders occur.
func TestRandomEqualPreference(t *testing.T) {
	f := newFake()
	f.setMX("eq.example", dns.Insecure, "20 c.eq.example", "10 a.eq.example", "10 b.eq.example", "30 d.eq.example")
	for _, h := range []string{"a", "b", "c", "d"} {
		f.setIP(h+".eq.example", dns.Insecure, "192.0.2."+strconv.Itoa(int(h[0])))
	}
	order := func(seed uint64) string {
		rt, err := Resolve(context.Background(), f, "eq.example", Options{Rand: rand.New(rand.NewPCG(seed, 0)), MaxAddresses: -1})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, h := range rt.Hosts {
			names = append(names, h.Name[:1])
		}
		return strings.Join(names, "")
	}
	seen := map[string]bool{}
	for seed := range uint64(40) {
		o := order(seed)
		if o != "abcd" && o != "bacd" {
			t.Fatalf("seed %d: order %q breaks preference order (MX-08)", seed, o)
		}
		if again := order(seed); again != o {
			t.Fatalf("seed %d: %q then %q with the same source", seed, o, again)
		}
		seen[o] = true
	}
	if !seen["abcd"] || !seen["bacd"] {
		t.Errorf("orders seen over 40 seeds: %v; equal preferences never swapped", seen)
	}
}

// TestWarnings: misconfigured domains are named in the log (decision 14.4, MX-07), and
// skipped hosts are reported in the route.
func TestWarnings(t *testing.T) {
	f := standardFake()
	f.setMX("mixed.example", dns.Insecure, "0 .", "10 192.0.2.5", "20 mx2.example.com", "30 gone.mixed.example")
	var buf bytes.Buffer
	rt, err := Resolve(context.Background(), f, "mixed.example",
		Options{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	for _, w := range []string{"null MX mixed with other MX records", "domain=mixed.example",
		"MX record names an IP address", "mx_host=192.0.2.5"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
	var skipped []string
	for _, s := range rt.Skipped {
		skipped = append(skipped, fmt.Sprintf("%s:%s", s.Host, s.Reason))
	}
	if want := []string{"192.0.2.5:ip_literal", "gone.mixed.example:nxdomain"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped = %v, want %v", skipped, want)
	}
}

func TestErrorText(t *testing.T) {
	f := newFake()
	_, err := Resolve(context.Background(), f, "nowhere.example", Options{})
	if err == nil || !strings.Contains(err.Error(), "nowhere.example") || !strings.Contains(err.Error(), "5.1.2") ||
		!strings.Contains(err.Error(), "nxdomain") || !dns.IsNXDomain(err) {
		t.Errorf("err = %v; want the domain, code, reason, and the DNS cause unwrappable", err)
	}
}
