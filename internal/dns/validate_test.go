package dns

import (
	"context"
	"errors"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns/dnstest"
)

// fakeValidator returns fixed verdicts by question name and records what it saw.
type fakeValidator struct {
	verdicts map[string]Validation // by question name, fully qualified
	seenCD   []bool
	fetched  []string // names fetched through the Exchanger
}

func (f *fakeValidator) Validate(ctx context.Context, ex Exchanger, resp *mdns.Msg) Validation {
	q := resp.Question[0]
	f.seenCD = append(f.seenCD, resp.CheckingDisabled)
	// A validator fetches DS and DNSKEY records through ex; prove the path works.
	if _, err := ex.Exchange(ctx, q.Name, mdns.TypeDS); err == nil {
		f.fetched = append(f.fetched, q.Name)
	}
	if v, ok := f.verdicts[q.Name]; ok {
		return v
	}
	return Validation{Status: Insecure, Reason: "unsigned"}
}

// TestValidatorSeam: with a Validator the client asks with CD, ignores the AD bit, takes
// the Validator's statuses for the final RRset and each CNAME link, and turns Bogus into a
// temporary failure carrying the Extended DNS Errors (DANE-02, DANE-05).
func TestValidatorSeam(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.Add("alias.example.org. 300 IN CNAME signed.example.")
	fv := &fakeValidator{verdicts: map[string]Validation{
		"signed.example.":    {Status: Secure},
		"alias.example.org.": {Status: Secure, Links: map[string]Status{"alias.example.org.": Insecure}},
		"bogus.example.": {Status: Bogus, Reason: "signature expired",
			EDE: []EDE{{Code: mdns.ExtendedErrorCodeSignatureExpired}}},
	}}
	srv.Add("bogus.example. 300 IN MX 10 mx.bogus.example.")
	c := newClient(t, Config{Validator: fv}, srv.Addr)
	ctx := ctxT(t)

	res, err := c.LookupMX(ctx, "signed.example")
	if err != nil || res.Status != Secure {
		t.Fatalf("signed.example: %+v, %v", res, err)
	}
	res, err = c.LookupMX(ctx, "alias.example.org")
	if err != nil || res.Status != Secure || len(res.Chain) != 1 || res.Chain[0].Status != Insecure || res.Overall() != Insecure {
		t.Errorf("alias: %+v, %v", res, err)
	}
	_, err = c.LookupMX(ctx, "bogus.example")
	var te *TemporaryError
	if !errors.As(err, &te) || te.Reason != "bogus" || len(te.EDE) != 1 || te.EDE[0].Code != mdns.ExtendedErrorCodeSignatureExpired {
		t.Errorf("bogus: %v", err)
	}
	for _, q := range srv.Queries() {
		if !q.CD {
			t.Errorf("query %s %s without CD in validate mode", q.Name, mdns.TypeToString[q.Type])
		}
	}
	if len(fv.fetched) == 0 {
		t.Error("the validator could not fetch through the Exchanger")
	}
	// Bogus replies are not cached: the next lookup asks again.
	n := srv.Count("bogus.example.", mdns.TypeMX)
	c.LookupMX(ctx, "bogus.example")
	if srv.Count("bogus.example.", mdns.TypeMX) != n+1 {
		t.Error("a bogus reply was served from the cache")
	}
}

// TestCheckResolvers: the self-test tells a validating resolver from one that is not
// and from one that does not answer (DANE-01).
func TestCheckResolvers(t *testing.T) {
	good := dnstest.NewServer(t)
	good.Add(". 86400 IN SOA a.root-servers.test. nstld.test. 1 1800 900 604800 86400")
	good.Secure(".")
	plain := dnstest.NewServer(t)
	plain.Add(". 86400 IN SOA a.root-servers.test. nstld.test. 1 1800 900 604800 86400")
	c := newClient(t, Config{Timeout: 200e6, Attempts: 1}, good.Addr, plain.Addr, closedAddr(t))
	got := c.CheckResolvers(ctxT(t), ".")
	if len(got) != 3 {
		t.Fatalf("%d checks", len(got))
	}
	if !got[0].OK || !got[0].AD || !got[0].Trusted {
		t.Errorf("validating resolver: %+v", got[0])
	}
	if got[1].OK || got[1].AD || !got[1].Reachable || got[1].Problem == "" {
		t.Errorf("non-validating resolver: %+v", got[1])
	}
	if got[2].OK || got[2].Reachable || got[2].Problem == "" {
		t.Errorf("dead resolver: %+v", got[2])
	}

	// Validate mode: a resolver passing no signatures is unfit whatever the validator says.
	fv := &fakeValidator{verdicts: map[string]Validation{".": {Status: Secure}}}
	cv := newClient(t, Config{Validator: fv}, good.Addr)
	if r := cv.CheckResolvers(ctxT(t), "."); r[0].OK || r[0].Signatures {
		t.Errorf("validate mode without RRSIGs: %+v", r[0])
	}
}

func TestTrustedServers(t *testing.T) {
	c, err := NewClient(Config{Servers: []string{"192.0.2.53", "192.0.2.54:53"}, TrustedServers: []string{"192.0.2.53:53"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.servers[0].trusted || c.servers[1].trusted {
		t.Errorf("trusted: %v %v", c.servers[0].trusted, c.servers[1].trusted)
	}
}

// TestCacheHonoursSignatureExpiry: a validated reply leaves the cache when the
// signatures behind its verdict expire, even if its TTL is longer (RFC 4035 §5.3.3).
func TestCacheHonoursSignatureExpiry(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	clock := newFakeClock()
	fv := &fakeValidator{verdicts: map[string]Validation{
		"signed.example.": {Status: Secure, Expires: clock.Now().Add(30 * time.Second)},
	}}
	c := newClient(t, Config{Validator: fv, Now: clock.Now}, srv.Addr)
	ctx := ctxT(t)
	c.LookupMX(ctx, "signed.example")
	c.LookupMX(ctx, "signed.example")
	if n := srv.Count("signed.example.", mdns.TypeMX); n != 1 {
		t.Fatalf("%d queries before expiry, want 1", n)
	}
	clock.Advance(31 * time.Second)
	c.LookupMX(ctx, "signed.example")
	if n := srv.Count("signed.example.", mdns.TypeMX); n != 2 {
		t.Errorf("%d queries after the signatures expired, want 2", n)
	}
}

// TestFirstLinkStatusTrustAD: in trust-ad mode a chased reply's AD bit covers every
// link, so a secure CNAME into an unsigned zone would look insecure; the client asks
// for the first CNAME alone to learn its own status (DANE-05, DANE-11).
func TestFirstLinkStatusTrustAD(t *testing.T) {
	srv := dnstest.NewServer(t)
	standardZone(srv)
	srv.Add("out.signed.example. 300 IN CNAME host.unsigned.example.",
		"host.unsigned.example. 300 IN A 192.0.2.7")
	c := newClient(t, Config{}, srv.Addr)
	res, err := c.LookupIP(ctxT(t), "out.signed.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chain) != 1 || res.Chain[0].Status != Secure || res.Status != Insecure || res.Overall() != Insecure {
		t.Errorf("chain %+v, status %s", res.Chain, res.Status)
	}
	if srv.Count("out.signed.example.", mdns.TypeCNAME) == 0 {
		t.Errorf("the first link was not asked for on its own")
	}
}

// TestServfailWithDNSSECEDE: a validating resolver's SERVFAIL that carries a DNSSEC
// Extended DNS Error (RFC 8914 §4.7–4.13) is a bogus answer, not an unreachable server.
func TestServfailWithDNSSECEDE(t *testing.T) {
	req := new(mdns.Msg)
	req.SetQuestion("example.test.", mdns.TypeMX)
	for _, tt := range []struct {
		code uint16
		want string
	}{
		{mdns.ExtendedErrorCodeSignatureExpired, "bogus"},
		{mdns.ExtendedErrorCodeDNSKEYMissing, "bogus"},
		{mdns.ExtendedErrorCodeNoReachableAuthority, "servfail"},
	} {
		resp := new(mdns.Msg)
		resp.SetRcode(req, mdns.RcodeServerFailure)
		resp.SetEdns0(1232, true)
		opt := resp.IsEdns0()
		opt.Option = append(opt.Option, &mdns.EDNS0_EDE{InfoCode: tt.code})
		_, err := checkResponse(req, resp, "127.0.0.1:53")
		var te *TemporaryError
		if !errors.As(err, &te) || te.Reason != tt.want || len(te.EDE) != 1 || te.EDE[0].Code != tt.code {
			t.Errorf("EDE %d: %v, want reason %s", tt.code, err, tt.want)
		}
	}
}
