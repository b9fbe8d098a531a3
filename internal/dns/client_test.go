package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns/dnstest"
)

// fakeClock is an injectable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newClient returns a client for the given servers with short timeouts, so that tests
// of silent servers stay fast.
func newClient(t *testing.T, cfg Config, servers ...string) *Client {
	t.Helper()
	cfg.Servers = servers
	if cfg.Timeout == 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 1
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// standardZone fills srv with the names most tests use.
func standardZone(srv *dnstest.Server) {
	srv.Add(
		"example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300",
		"example.com. 300 IN MX 10 MX1.Example.COM.",
		"example.com. 300 IN MX 20 mx2.example.com.",
		"mx1.example.com. 300 IN A 192.0.2.1",
		"mx1.example.com. 300 IN A 192.0.2.2",
		"mx1.example.com. 300 IN AAAA 2001:db8::1",
		"mx2.example.com. 300 IN AAAA 2001:db8::2",
		"v4only.example.com. 300 IN A 192.0.2.4",
		"nodata.example.com. 300 IN A 192.0.2.5",
		"example.com. 300 IN TXT \"v=spf1 \" \"-all\"",
		"_mta-sts.example.com. 300 IN TXT \"v=STSv1; id=20260301;\"",
		"_25._tcp.mx1.example.com. 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		// Aliases: alias → mid → example.com, all in the unsigned zone.
		"alias.example.com. 300 IN CNAME mid.example.com.",
		"mid.example.com. 300 IN CNAME example.com.",
		"loop1.example.com. 300 IN CNAME loop2.example.com.",
		"loop2.example.com. 300 IN CNAME loop1.example.com.",
		"dangling.example.com. 300 IN CNAME gone.example.com.",
		"insecure-link.example.com. 300 IN CNAME signed.example.",
		// A signed zone.
		"signed.example. 3600 IN SOA ns.signed.example. hostmaster.signed.example. 1 7200 900 1209600 600",
		"signed.example. 300 IN MX 0 mx.signed.example.",
		"mx.signed.example. 300 IN A 198.51.100.1",
		"secure-alias.signed.example. 300 IN CNAME signed.example.",
	)
	for i := range 12 {
		srv.Add(fmt.Sprintf("chain%d.example.com. 300 IN CNAME chain%d.example.com.", i, i+1))
	}
	srv.Add("chain12.example.com. 300 IN MX 10 mx1.example.com.")
	srv.Secure("signed.example")
}

func reasonOf(err error) string {
	var te *TemporaryError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

func TestLookupMX(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.Add("servfail.test. MX 10 mx.servfail.test.", "refused.test. MX 10 mx.refused.test.",
		"silent.test. MX 10 mx.silent.test.", "trunc.test. MX 10 mx.trunc.test.",
		"truncfail.test. MX 10 mx.truncfail.test.", "wrongq.test. MX 10 mx.wrongq.test.",
		"referral.test. MX 10 mx.referral.test.")
	srv.Fail("referral.test", mdns.TypeMX, dnstest.Referral)
	srv.Fail("servfail.test", mdns.TypeMX, dnstest.ServFail)
	srv.Fail("refused.test", mdns.TypeMX, dnstest.Refused)
	srv.Fail("silent.test", mdns.TypeMX, dnstest.Drop)
	srv.Fail("trunc.test", mdns.TypeMX, dnstest.Truncate)
	srv.Fail("truncfail.test", mdns.TypeMX, dnstest.TruncateNoTCP)
	srv.Fail("wrongq.test", mdns.TypeMX, dnstest.WrongQuestion)

	tests := []struct {
		name      string
		query     string
		want      []MX
		canonical string
		chain     []string // "name>target"
		status    Status   // of the final RRset
		chainSt   Status
		nx        bool
		reason    string // TemporaryError reason
	}{
		{name: "records normalised", query: "Example.COM.", canonical: "example.com", status: Insecure, chainSt: Secure,
			want: []MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{name: "secure zone sets AD", query: "signed.example", canonical: "signed.example", status: Secure, chainSt: Secure,
			want: []MX{{"mx.signed.example", 0}}},
		{name: "NODATA", query: "nodata.example.com", canonical: "nodata.example.com", status: Insecure, chainSt: Secure},
		{name: "NXDOMAIN (MX-03)", query: "missing.example.com", canonical: "missing.example.com", status: Insecure, chainSt: Secure, nx: true},
		{name: "CNAME chain followed (MX-02)", query: "alias.example.com", canonical: "example.com", status: Insecure, chainSt: Insecure,
			chain: []string{"alias.example.com>mid.example.com", "mid.example.com>example.com"},
			want:  []MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{name: "secure CNAME", query: "secure-alias.signed.example", canonical: "signed.example", status: Secure, chainSt: Secure,
			chain: []string{"secure-alias.signed.example>signed.example"}, want: []MX{{"mx.signed.example", 0}}},
		{name: "CNAME to missing name", query: "dangling.example.com", canonical: "gone.example.com", status: Insecure, chainSt: Insecure,
			chain: []string{"dangling.example.com>gone.example.com"}, nx: true},
		{name: "long chain within limit", query: "chain4.example.com", canonical: "chain12.example.com", status: Insecure, chainSt: Insecure,
			want: []MX{{"mx1.example.com", 10}}},
		{name: "CNAME loop (DANE-02)", query: "loop1.example.com", reason: "cname_loop"},
		{name: "CNAME chain too long", query: "chain0.example.com", reason: "cname_chain"},
		{name: "SERVFAIL (MX-04)", query: "servfail.test", reason: "servfail"},
		{name: "REFUSED", query: "refused.test", reason: "refused"},
		{name: "timeout", query: "silent.test", reason: "timeout"},
		{name: "truncated, TCP succeeds", query: "trunc.test", canonical: "trunc.test", status: Insecure, chainSt: Secure,
			want: []MX{{"mx.trunc.test", 10}}},
		{name: "truncated, TCP fails", query: "truncfail.test", reason: "truncated"},
		{name: "reply to another question", query: "wrongq.test", reason: "mismatch"},
		{name: "referral is not NODATA (MX-05)", query: "referral.test", reason: "referral"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{CacheSize: -1}, srv.Addr)
			res, err := c.LookupMX(ctxT(t), tt.query)
			if tt.reason != "" {
				if !IsTemporary(err) || reasonOf(err) != tt.reason {
					t.Fatalf("err = %v, want temporary %q", err, tt.reason)
				}
				if IsNXDomain(err) {
					t.Fatalf("temporary error %v also matches ErrNXDomain", err)
				}
				return
			}
			if tt.nx {
				var nxe *NXDomainError
				if !IsNXDomain(err) || !errors.As(err, &nxe) || nxe.Name != tt.canonical || IsTemporary(err) {
					t.Fatalf("err = %v, want NXDOMAIN for %s", err, tt.canonical)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Records, tt.want) {
				t.Errorf("records = %v, want %v", res.Records, tt.want)
			}
			if res.Canonical != tt.canonical || res.Status != tt.status || res.ChainStatus != tt.chainSt {
				t.Errorf("canonical, status, chain status = %q, %q, %q; want %q, %q, %q",
					res.Canonical, res.Status, res.ChainStatus, tt.canonical, tt.status, tt.chainSt)
			}
			if tt.chain != nil {
				var got []string
				for _, l := range res.Chain {
					got = append(got, l.Name+">"+l.Target)
				}
				if !slices.Equal(got, tt.chain) {
					t.Errorf("chain = %v, want %v", got, tt.chain)
				}
			}
			if res.Name != Normalize(tt.query) {
				t.Errorf("name = %q, want %q", res.Name, Normalize(tt.query))
			}
		})
	}
}

// TestQueryFormat checks what goes on the wire: a fully qualified name with no search
// suffix (MX-01), EDNS0 with DO and a 1232-byte buffer, and TCP after truncation.
func TestQueryFormat(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.Add("big.example.com. 3600 IN SOA ns.example.com. h.example.com. 1 1 1 1 1")
	for i := range 60 {
		srv.Add(fmt.Sprintf("big.example.com. 300 IN TXT \"record %02d %s\"", i, strings.Repeat("x", 40)))
	}
	c := newClient(t, Config{}, srv.Addr)

	res, err := c.LookupTXT(ctxT(t), "big.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 60 {
		t.Errorf("got %d TXT records, want 60 (reply larger than 1232 bytes must come over TCP)", len(res.Records))
	}
	qs := srv.Queries()
	if len(qs) != 2 || qs[0].Net != "udp" || qs[1].Net != "tcp" {
		t.Fatalf("queries = %+v, want UDP then TCP", qs)
	}
	for _, q := range qs {
		if !q.DO || q.Size != 1232 {
			t.Errorf("query %+v: want DO bit and EDNS0 size 1232", q)
		}
	}
}

// TestNoSearchList: resolv.conf's search domains are never appended (MX-01). A single
// label is looked up as a top-level name, even though the search domain has it.
func TestNoSearchList(t *testing.T) {
	servers, err := ReadResolvConf("testdata/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.53:53", "[::1]:53", "[fe80::1%eth0]:53", "192.0.2.53:53"}
	if !slices.Equal(servers, want) {
		t.Fatalf("servers = %q, want %q", servers, want)
	}

	srv := dnstest.NewServer(t)
	srv.Add("corp.example.net. SOA ns.corp.example.net. h.corp.example.net. 1 1 1 1 60",
		"mail.corp.example.net. MX 10 mx.corp.example.net.")
	c := newClient(t, Config{}, srv.Addr)
	for _, name := range []string{"mail", "mail."} {
		_, err := c.LookupMX(ctxT(t), name)
		if !IsNXDomain(err) {
			t.Errorf("LookupMX(%q) err = %v, want NXDOMAIN", name, err)
		}
	}
	for _, q := range srv.Queries() {
		if q.Name != "mail." {
			t.Errorf("query for %q sent; only \"mail.\" may be", q.Name)
		}
	}
}

func TestInvalidNames(t *testing.T) {
	srv := dnstest.NewServer(t)
	c := newClient(t, Config{}, srv.Addr)
	for _, name := range []string{"", ".", "a..b", "exa mple.com", "ex\\046ample.com", "ünï.example",
		strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefghi.", 26) + "com"} {
		_, err := c.LookupMX(ctxT(t), name)
		if !errors.Is(err, ErrInvalidName) || IsTemporary(err) || IsNXDomain(err) {
			t.Errorf("LookupMX(%q) err = %v, want ErrInvalidName", name, err)
		}
	}
	if n := len(srv.Queries()); n != 0 {
		t.Errorf("%d queries sent for invalid names", n)
	}
}

func TestCacheTTL(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	clock := newFakeClock()
	c := newClient(t, Config{Now: clock.Now}, srv.Addr)
	ctx := ctxT(t)

	lookup := func(name string) {
		t.Helper()
		if _, err := c.LookupMX(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	lookup("example.com")
	lookup("EXAMPLE.com.")
	if n := srv.Count("example.com", mdns.TypeMX); n != 1 {
		t.Fatalf("%d queries after two lookups within TTL, want 1", n)
	}
	clock.Advance(299 * time.Second)
	lookup("example.com")
	if n := srv.Count("example.com", mdns.TypeMX); n != 1 {
		t.Fatalf("%d queries 299 s into a 300 s TTL, want 1", n)
	}
	clock.Advance(time.Second)
	lookup("example.com")
	if n := srv.Count("example.com", mdns.TypeMX); n != 2 {
		t.Fatalf("%d queries once the TTL ran out, want 2", n)
	}

	// The cache cap wins over a long TTL.
	srv.Add("long.example.com. 86400 IN MX 10 mx1.example.com.")
	c2 := newClient(t, Config{Now: clock.Now, MaxTTL: time.Minute}, srv.Addr)
	for range 2 {
		if _, err := c2.LookupMX(ctx, "long.example.com"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(61 * time.Second)
	}
	if n := srv.Count("long.example.com", mdns.TypeMX); n != 2 {
		t.Errorf("%d queries across MaxTTL, want 2", n)
	}
}

// TestCacheChain: each link of a chain is cached under its own question, so a second
// name aliasing into cached data costs one query.
func TestCacheChain(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.NoChase(true)
	c := newClient(t, Config{Now: newFakeClock().Now}, srv.Addr)
	ctx := ctxT(t)
	res, err := c.LookupMX(ctx, "alias.example.com")
	if err != nil || len(res.Records) != 2 || res.Canonical != "example.com" {
		t.Fatalf("alias lookup without chasing = %+v, %v", res, err)
	}
	if n := len(srv.Queries()); n != 3 {
		t.Fatalf("%d queries for a two-link chain asked link by link, want 3", n)
	}
	srv.ResetQueries()
	if _, err := c.LookupMX(ctx, "mid.example.com"); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Queries()); n != 0 {
		t.Errorf("%d queries for names already cached, want 0", n)
	}
}

// TestNegativeCache: NXDOMAIN and NODATA are cached for min(SOA TTL, SOA MINIMUM)
// (RFC 2308 §5), capped; not at all without an SOA; failures never.
func TestNegativeCache(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv) // example.com SOA: TTL 3600, MINIMUM 300
	srv.Add("nosoa.test. A 192.0.2.9", "short.test. 3600 IN SOA ns.short.test. h.short.test. 1 1 1 1 30",
		"flaky.test. MX 10 mx.flaky.test.")
	clock := newFakeClock()
	c := newClient(t, Config{Now: clock.Now, MaxNegativeTTL: 200 * time.Second}, srv.Addr)
	ctx := ctxT(t)

	tests := []struct {
		name    string
		qtype   uint16
		cacheOK time.Duration // still cached after this long
		expired time.Duration // re-asked after this long
	}{
		{"missing.example.com", mdns.TypeMX, 199 * time.Second, 200 * time.Second}, // SOA says 300, cap 200
		{"nodata.example.com", mdns.TypeMX, 199 * time.Second, 200 * time.Second},
		{"missing.short.test", mdns.TypeMX, 29 * time.Second, 30 * time.Second},
		{"short.test", mdns.TypeTXT, 29 * time.Second, 30 * time.Second},
		{"nosoa.test", mdns.TypeMX, 0, 0},
		{"missing.nosoa.test", mdns.TypeMX, 0, 0},
	}
	for _, tt := range tests {
		ask := func() {
			switch tt.qtype {
			case mdns.TypeMX:
				c.LookupMX(ctx, tt.name)
			case mdns.TypeTXT:
				c.LookupTXT(ctx, tt.name)
			}
		}
		start := srv.Count(tt.name, tt.qtype)
		ask()
		if tt.expired == 0 {
			ask()
			if n := srv.Count(tt.name, tt.qtype) - start; n != 2 {
				t.Errorf("%s: %d queries for a denial without SOA, want 2 (not cached)", tt.name, n)
			}
			continue
		}
		clock.Advance(tt.cacheOK)
		ask()
		if n := srv.Count(tt.name, tt.qtype) - start; n != 1 {
			t.Errorf("%s: %d queries after %v, want 1 (cached)", tt.name, n, tt.cacheOK)
		}
		clock.Advance(tt.expired - tt.cacheOK)
		ask()
		if n := srv.Count(tt.name, tt.qtype) - start; n != 2 {
			t.Errorf("%s: %d queries after %v, want 2 (expired)", tt.name, n, tt.expired)
		}
	}

	srv.Fail("flaky.test", 0, dnstest.ServFail)
	for range 2 {
		if _, err := c.LookupMX(ctx, "flaky.test"); reasonOf(err) != "servfail" {
			t.Fatalf("err = %v, want servfail", err)
		}
	}
	srv.Fail("flaky.test", 0, dnstest.NoFault)
	if res, err := c.LookupMX(ctx, "flaky.test"); err != nil || len(res.Records) != 1 {
		t.Errorf("after recovery: %+v, %v; a failure must not be cached", res, err)
	}
}

func TestCacheBounded(t *testing.T) {
	srv := dnstest.NewServer(t)
	for i := range 10 {
		srv.Add(fmt.Sprintf("d%d.test. MX 10 mx.test.", i))
	}
	c := newClient(t, Config{CacheSize: 4, Now: newFakeClock().Now}, srv.Addr)
	for i := range 10 {
		if _, err := c.LookupMX(ctxT(t), fmt.Sprintf("d%d.test", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.cache.len(); n != 4 {
		t.Errorf("cache holds %d entries, want 4", n)
	}
	// The most recent names are still cached; the oldest were evicted.
	srv.ResetQueries()
	c.LookupMX(ctxT(t), "d9.test")
	c.LookupMX(ctxT(t), "d0.test")
	if qs := srv.Queries(); len(qs) != 1 || qs[0].Name != "d0.test." {
		t.Errorf("queries = %+v, want only d0.test.", qs)
	}
}

// closedAddr returns a loopback UDP address nobody listens on: queries to it fail at
// once with "connection refused".
func closedAddr(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestFailover(t *testing.T) {
	good := dnstest.NewServer(t)
	standardZone(good)
	refusing := dnstest.NewServer(t)
	refusing.Fail("", 0, dnstest.Refused)
	silent := dnstest.NewServer(t)
	silent.Fail("", 0, dnstest.Drop)
	failing := dnstest.NewServer(t)
	failing.Fail("", 0, dnstest.ServFail)

	tests := []struct {
		name  string
		first string
	}{
		{"dead first server", closedAddr(t)},
		{"refusing first server", refusing.Addr},
		{"silent first server", silent.Addr},
		{"SERVFAIL from first server", failing.Addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good.ResetQueries()
			c := newClient(t, Config{Timeout: 200 * time.Millisecond, CacheSize: -1}, tt.first, good.Addr)
			res, err := c.LookupMX(ctxT(t), "example.com")
			if err != nil || len(res.Records) != 2 {
				t.Fatalf("LookupMX = %+v, %v", res, err)
			}
			if n := good.Count("example.com", mdns.TypeMX); n != 1 {
				t.Errorf("second server got %d queries, want 1", n)
			}
		})
	}

	t.Run("all servers fail, every attempt", func(t *testing.T) {
		refusing.ResetQueries()
		failing.ResetQueries()
		c := newClient(t, Config{Attempts: 2}, refusing.Addr, failing.Addr)
		_, err := c.LookupMX(ctxT(t), "example.com")
		if reasonOf(err) != "servfail" {
			t.Errorf("err = %v, want the last server's servfail", err)
		}
		if r, f := len(refusing.Queries()), len(failing.Queries()); r != 2 || f != 2 {
			t.Errorf("queries per server = %d, %d; want 2 rounds each", r, f)
		}
	})

	t.Run("context deadline bounds the lookup", func(t *testing.T) {
		c := newClient(t, Config{Timeout: 5 * time.Second, Attempts: 3}, silent.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.LookupMX(ctx, "example.com")
		if reasonOf(err) != "timeout" {
			t.Errorf("err = %v, want timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("lookup took %v with a 150 ms deadline", d)
		}
	})
}

// TestADTrust: the AD bit counts only from loopback servers unless configured (DANE-01).
func TestADTrust(t *testing.T) {
	for _, tt := range []struct {
		server  string
		trustAD bool
		want    bool
	}{
		{"127.0.0.1:53", false, true},
		{"[::1]:5353", false, true},
		{"127.0.0.53", false, true},
		{"192.0.2.53:53", false, false},
		{"192.0.2.53", true, true},
		{"2001:db8::53", false, false},
	} {
		c, err := NewClient(Config{Servers: []string{tt.server}, TrustAD: tt.trustAD})
		if err != nil {
			t.Fatalf("%s: %v", tt.server, err)
		}
		if got := c.servers[0].trusted; got != tt.want {
			t.Errorf("%s (TrustAD %v): trusted = %v, want %v", tt.server, tt.trustAD, got, tt.want)
		}
	}
	for _, bad := range []string{"", "resolver.example:53", "127.0.0.1:0", "127.0.0.1:99999"} {
		if _, err := NewClient(Config{Servers: []string{bad}}); err == nil {
			t.Errorf("NewClient accepted server %q", bad)
		}
	}
	if _, err := NewClient(Config{}); err == nil {
		t.Error("NewClient accepted no servers")
	}

	// An untrusted server's AD bit is ignored: checked through the status path.
	srv := dnstest.NewServer(t)
	standardZone(srv)
	c := newClient(t, Config{}, srv.Addr)
	c.servers[0].trusted = false
	res, err := c.LookupMX(ctxT(t), "signed.example")
	if err != nil || res.Status != Insecure {
		t.Errorf("untrusted AD: status %q, err %v; want insecure", res.Status, err)
	}
}

// TestInsecureLink: an unsigned alias in front of a signed zone makes the whole answer
// insecure (DANE-05), and the link status says where.
func TestInsecureLink(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	c := newClient(t, Config{CacheSize: -1}, srv.Addr)

	// Chased by the server in one reply: AD covers the reply as a whole.
	res, err := c.LookupMX(ctxT(t), "insecure-link.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if res.Overall() != Insecure || len(res.Chain) != 1 || res.Canonical != "signed.example" {
		t.Errorf("chased: %+v", res)
	}

	// Asked link by link: the link is insecure, the target's own RRset secure.
	srv.NoChase(true)
	res, err = c.LookupMX(ctxT(t), "insecure-link.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Secure || res.ChainStatus != Insecure || res.Chain[0].Status != Insecure || res.Overall() != Insecure {
		t.Errorf("link by link: status %q, chain %q, overall %q", res.Status, res.ChainStatus, res.Overall())
	}
}

func TestLookupIP(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.Add("halfbroken.example.com. A 192.0.2.7", "v6broken.example.com. AAAA 2001:db8::7",
		"allbroken.example.com. A 192.0.2.8", "ip-alias.example.com. CNAME mx1.example.com.",
		"mixed.example.com. CNAME mx.signed.example.")
	srv.Fail("halfbroken.example.com", mdns.TypeAAAA, dnstest.ServFail)
	srv.Fail("v6broken.example.com", mdns.TypeA, dnstest.ServFail)
	srv.Fail("allbroken.example.com", 0, dnstest.ServFail)
	srv.Fail("nodata.example.com", mdns.TypeAAAA, dnstest.ServFail)

	a := netip.MustParseAddr
	tests := []struct {
		host      string
		v4, v6    []netip.Addr
		canonical string
		status    Status
		partial   bool
		nx        bool
		reason    string
	}{
		{host: "mx1.example.com", v4: []netip.Addr{a("192.0.2.1"), a("192.0.2.2")}, v6: []netip.Addr{a("2001:db8::1")},
			canonical: "mx1.example.com", status: Insecure},
		{host: "mx2.example.com", v6: []netip.Addr{a("2001:db8::2")}, canonical: "mx2.example.com", status: Insecure},
		{host: "v4only.example.com", v4: []netip.Addr{a("192.0.2.4")}, canonical: "v4only.example.com", status: Insecure},
		{host: "mx.signed.example", v4: []netip.Addr{a("198.51.100.1")}, canonical: "mx.signed.example", status: Secure},
		{host: "ip-alias.example.com", v4: []netip.Addr{a("192.0.2.1"), a("192.0.2.2")}, v6: []netip.Addr{a("2001:db8::1")},
			canonical: "mx1.example.com", status: Insecure},
		{host: "example.com", canonical: "example.com", status: Insecure}, // NODATA for both
		{host: "missing.example.com", canonical: "missing.example.com", nx: true},
		{host: "halfbroken.example.com", v4: []netip.Addr{a("192.0.2.7")}, canonical: "halfbroken.example.com", status: Insecure, partial: true},
		{host: "v6broken.example.com", v6: []netip.Addr{a("2001:db8::7")}, canonical: "v6broken.example.com", status: Insecure, partial: true},
		{host: "allbroken.example.com", reason: "servfail"},
		{host: "nodata.example.com", v4: []netip.Addr{a("192.0.2.5")}, canonical: "nodata.example.com", status: Insecure, partial: true},
	}
	c := newClient(t, Config{CacheSize: -1}, srv.Addr)
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			res, err := c.LookupIP(ctxT(t), tt.host)
			switch {
			case tt.reason != "":
				if reasonOf(err) != tt.reason {
					t.Fatalf("err = %v, want temporary %s", err, tt.reason)
				}
				return
			case tt.nx:
				if !IsNXDomain(err) {
					t.Fatalf("err = %v, want NXDOMAIN", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if !slices.Equal(res.IPv4, tt.v4) || !slices.Equal(res.IPv6, tt.v6) {
				t.Errorf("addresses = %v %v, want %v %v", res.IPv4, res.IPv6, tt.v4, tt.v6)
			}
			if !slices.Equal(res.Addrs(), append(slices.Clone(tt.v4), tt.v6...)) {
				t.Errorf("Addrs() = %v", res.Addrs())
			}
			if res.Canonical != tt.canonical || (!tt.nx && res.Status != tt.status) {
				t.Errorf("canonical %q status %q, want %q %q", res.Canonical, res.Status, tt.canonical, tt.status)
			}
			if (res.Partial != nil) != tt.partial || (tt.partial && !IsTemporary(res.Partial)) {
				t.Errorf("partial = %v, want partial %v", res.Partial, tt.partial)
			}
		})
	}

	// An unsigned alias to a signed host: the chain status carries the weakness.
	res, err := c.LookupIP(ctxT(t), "mixed.example.com")
	if err != nil || res.Overall() != Insecure || len(res.Chain) != 1 {
		t.Errorf("mixed: %+v, %v", res, err)
	}
}

func TestLookupTXTAndTLSA(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	c := newClient(t, Config{}, srv.Addr)

	txt, err := c.LookupTXT(ctxT(t), "example.com")
	if err != nil || !slices.Equal(txt.Records, []string{"v=spf1 -all"}) {
		t.Errorf("TXT = %q, %v; want the strings of one record joined", txt.Records, err)
	}
	txt, err = c.LookupTXT(ctxT(t), "_mta-sts.example.com")
	if err != nil || !slices.Equal(txt.Records, []string{"v=STSv1; id=20260301;"}) {
		t.Errorf("TXT = %q, %v", txt.Records, err)
	}

	tlsa, err := c.LookupTLSA(ctxT(t), "_25._tcp.mx1.example.com")
	if err != nil || len(tlsa.Records) != 1 {
		t.Fatalf("TLSA = %+v, %v", tlsa, err)
	}
	r := tlsa.Records[0]
	if r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || len(r.Data) != 32 || r.Data[0] != 0x01 || r.Data[31] != 0xef {
		t.Errorf("TLSA record = %+v", r)
	}
	tlsa, err = c.LookupTLSA(ctxT(t), "_25._tcp.mx2.example.com")
	if !IsNXDomain(err) || len(tlsa.Records) != 0 {
		t.Errorf("missing TLSA: %+v, %v; want NXDOMAIN", tlsa, err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	clock := newFakeClock()
	c := newClient(t, Config{Now: clock.Now, CacheSize: 8}, srv.Addr)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			names := []string{"example.com", "alias.example.com", "signed.example", "missing.example.com", "mx1.example.com"}
			name := names[i%len(names)]
			if _, err := c.LookupIP(ctxT(t), name); err != nil && !IsNXDomain(err) {
				errs <- err
			}
			if _, err := c.LookupMX(ctxT(t), name); err != nil && !IsNXDomain(err) {
				errs <- err
			}
			clock.Advance(time.Second)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWeakest(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, Secure},
		{[]Status{Secure, Secure}, Secure},
		{[]Status{Secure, Insecure}, Insecure},
		{[]Status{Insecure, Indeterminate, Secure}, Indeterminate},
		{[]Status{Indeterminate, Bogus}, Bogus},
	}
	for _, tt := range tests {
		if got := Weakest(tt.in...); got != tt.want {
			t.Errorf("Weakest(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
