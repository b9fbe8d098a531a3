package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dnssec"
)

const testPolicy = "version: STSv1\nmode: enforce\nmx: mx.secure.lab\nmax_age: 86400\n"

// startLab starts the internet the tests share the shape of: a signed and an
// unsigned destination, with receivers of each certificate kind.
func startLab(t *testing.T) *Internet {
	t.Helper()
	secure := Zone{Name: "secure.lab", Signed: true, Records: []string{"www A 127.0.2.1", "_25._tcp.mx TLSA 3 1 1 00"}}
	secure.AddMX("mx", 10, CertCA)
	self := Zone{Name: "self.lab", Signed: true}
	self.AddMX("mx", 10, CertSelfSigned)
	plain := Zone{Name: "plain.lab", Signed: false}
	plain.AddMX("mx", 10, CertNone)
	insecure := Zone{Name: "insecure.lab", Signed: false}
	insecure.AddMX("mx", 10, CertCA)
	dane := Zone{Name: "dane.lab", Signed: true, MX: []MXHost{{Name: "mx", Pref: 10, Cert: CertSelfSigned, TLSA: TLSAMatch}}}
	broken := Zone{Name: "broken.lab", Signed: true, MX: []MXHost{{Name: "mx", Pref: 10, Cert: CertCA, TLSA: TLSAWrong}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := Start(ctx, Options{Zones: []Zone{secure, self, plain, insecure, dane, broken},
		Policies: map[string]string{"secure.lab": testPolicy}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// validating returns a client validating in-process with the lab's anchor, as the
// sender's "validate" mode does.
func validating(t *testing.T, in *Internet) *dns.Client {
	t.Helper()
	v, err := dnssec.New(dnssec.Config{Anchors: in.Anchors()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dns.NewClient(dns.Config{Servers: []string{in.DNSAddr()}, Validator: v, CacheSize: -1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// plainResolver returns a client of the lab's resolver that does not validate.
func plainResolver(t *testing.T, in *Internet) *dns.Client {
	t.Helper()
	c, err := dns.NewClient(dns.Config{Servers: []string{in.PlainDNSAddr()}, CacheSize: -1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trustingAD returns a client that believes the lab resolver's AD bit (DANE-01:
// it is on loopback).
func trustingAD(t *testing.T, in *Internet) *dns.Client {
	t.Helper()
	c, err := dns.NewClient(dns.Config{Servers: []string{in.DNSAddr()}, CacheSize: -1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartClose(t *testing.T) {
	start := time.Now()
	in := startLab(t)
	if in.SMTPPort == 0 || in.HTTPSPort == 0 || in.DNSAddr() == "" {
		t.Fatalf("ports not set: smtp %d https %d dns %q", in.SMTPPort, in.HTTPSPort, in.DNSAddr())
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("Start and Close: %v", d)
	if d > 2*time.Second {
		t.Errorf("Start and Close took %v, want under 2s", d)
	}
}

func TestStartRejects(t *testing.T) {
	for _, z := range []Zone{
		{Name: "example.com"},
		{Name: "lab"},
		{Name: "attacker.lab"},
		{Name: "bad.lab", Records: []string{"@ MX not-a-number"}},
		{Name: "out.lab", Records: []string{"www.other.lab. A 127.0.0.9"}},
	} {
		if in, err := Start(context.Background(), Options{Zones: []Zone{z}}); err == nil {
			in.Close()
			t.Errorf("Start with zone %+v: no error", z)
		}
	}
}

func TestDNSSEC(t *testing.T) {
	in := startLab(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		client   func(*testing.T, *Internet) *dns.Client
		domain   string
		attack   Attack
		want     dns.Status
		wantHost string
		bogus    bool // the lookup fails as bogus (validate) or servfail (trust-ad)
	}{
		{name: "validate signed", client: validating, domain: "secure.lab", want: dns.Secure, wantHost: "mx.secure.lab"},
		{name: "validate unsigned", client: validating, domain: "plain.lab", want: dns.Insecure, wantHost: "mx.plain.lab"},
		{name: "validate forged MX signed", client: validating, domain: "secure.lab", attack: ForgeMX, bogus: true},
		{name: "validate forged MX unsigned", client: validating, domain: "plain.lab", attack: ForgeMX, want: dns.Insecure, wantHost: AttackerHost()},
		{name: "trust-ad signed", client: trustingAD, domain: "secure.lab", want: dns.Secure, wantHost: "mx.secure.lab"},
		{name: "trust-ad unsigned", client: trustingAD, domain: "insecure.lab", want: dns.Insecure, wantHost: "mx.insecure.lab"},
		{name: "trust-ad forged MX signed", client: trustingAD, domain: "secure.lab", attack: ForgeMX, bogus: true},
		{name: "trust-ad forged MX unsigned", client: trustingAD, domain: "plain.lab", attack: ForgeMX, want: dns.Insecure, wantHost: AttackerHost()},
		// A resolver that does not validate passes the forgery on and never says secure.
		{name: "plain resolver signed", client: plainResolver, domain: "secure.lab", want: dns.Insecure, wantHost: "mx.secure.lab"},
		{name: "plain resolver forged MX signed", client: plainResolver, domain: "secure.lab", attack: ForgeMX, want: dns.Insecure, wantHost: AttackerHost()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in.SetAttack(tc.domain, tc.attack)
			defer in.SetAttack(tc.domain, 0)
			res, err := tc.client(t, in).LookupMX(ctx, tc.domain)
			if tc.bogus {
				var te *dns.TemporaryError
				if !errors.As(err, &te) || (te.Reason != "bogus" && te.Reason != "servfail") {
					t.Fatalf("LookupMX = %+v, %v; want a bogus failure", res, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Overall() != tc.want || len(res.Records) != 1 || res.Records[0].Host != tc.wantHost {
				t.Fatalf("LookupMX = %s %+v (%s), want %s %s", res.Overall(), res.Records, res.Reason, tc.want, tc.wantHost)
			}
		})
	}
}

func TestDNSSECOtherTypes(t *testing.T) {
	in := startLab(t)
	ctx := context.Background()
	c := validating(t, in)

	ip, err := c.LookupIP(ctx, "mx.secure.lab")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := in.Addr("mx.secure.lab")
	if ip.Overall() != dns.Secure || len(ip.IPv4) != 1 || ip.IPv4[0] != want.Addr() {
		t.Fatalf("LookupIP = %s %v (%s), want Secure %v", ip.Overall(), ip.Addrs(), ip.Reason, want.Addr())
	}
	if ip, err := c.LookupIP(ctx, "mx.plain.lab"); err != nil || ip.Overall() != dns.Insecure {
		t.Fatalf("LookupIP unsigned = %s, %v; want Insecure", ip.Overall(), err)
	}
	tlsa, err := c.LookupTLSA(ctx, "_25._tcp.mx.secure.lab")
	if err != nil || tlsa.Overall() != dns.Secure || len(tlsa.Records) != 1 {
		t.Fatalf("LookupTLSA = %+v, %v; want one Secure record", tlsa, err)
	}
	// Proven absence: NODATA, an empty non-terminal and NXDOMAIN, each Secure.
	if r, err := c.LookupTLSA(ctx, "_25._tcp.www.secure.lab"); !dns.IsNXDomain(err) {
		t.Errorf("TLSA of a missing name = %+v, %v; want NXDOMAIN", r, err)
	}
	if r, err := c.LookupTXT(ctx, "mx.secure.lab"); err != nil || r.Overall() != dns.Secure || len(r.Records) != 0 {
		t.Errorf("TXT NODATA = %+v, %v; want Secure and empty", r, err)
	}
	if r, err := c.LookupTXT(ctx, "_tcp.mx.secure.lab"); err != nil || r.Overall() != dns.Secure || len(r.Records) != 0 {
		t.Errorf("TXT at an empty non-terminal = %+v, %v; want Secure and empty", r, err)
	}
	if r, err := c.LookupTXT(ctx, "_mta-sts.secure.lab"); err != nil || r.Overall() != dns.Secure || len(r.Records) != 1 {
		t.Errorf("_mta-sts TXT = %+v, %v; want one Secure record", r, err)
	}
	if r, err := c.LookupMX(ctx, "nowhere.lab"); !dns.IsNXDomain(err) {
		t.Errorf("MX of a missing domain = %+v, %v; want NXDOMAIN", r, err)
	}

	// ForgeSigned: the MX host's address points to the attacker, unsigned.
	in.SetAttack("secure.lab", ForgeSigned)
	var te *dns.TemporaryError
	if ip, err := c.LookupIP(ctx, "mx.secure.lab"); !errors.As(err, &te) || te.Reason != "bogus" {
		t.Errorf("forged A of a signed zone = %s %v, %v; want bogus", ip.Overall(), ip.Addrs(), err)
	}
	if ip, err := trustingAD(t, in).LookupIP(ctx, "mx.secure.lab"); !errors.As(err, &te) || te.Reason != "bogus" {
		t.Errorf("forged A of a signed zone through the resolver = %s %v, %v; want a bogus SERVFAIL", ip.Overall(), ip.Addrs(), err)
	}
	in.SetAttack("plain.lab", ForgeSigned)
	att, _ := in.Addr(AttackerHost())
	if ip, err := c.LookupIP(ctx, "mx.plain.lab"); err != nil || len(ip.IPv4) != 1 || ip.IPv4[0] != att.Addr() || ip.Overall() != dns.Insecure {
		t.Errorf("forged A of an unsigned zone = %s %v, %v; want Insecure %v", ip.Overall(), ip.Addrs(), err, att.Addr())
	}
}

// ehlo connects to host's address, reads the greeting and sends EHLO.
func ehlo(t *testing.T, in *Internet, host string) *smtp.Client {
	t.Helper()
	ap, ok := in.Addr(host)
	if !ok {
		t.Fatalf("no address for %s", host)
	}
	conn, err := net.DialTimeout("tcp", ap.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("sender.lab"); err != nil {
		t.Fatal(err)
	}
	return c
}

// send sends one message with body over c.
func send(t *testing.T, c *smtp.Client, body string) {
	t.Helper()
	if err := c.Mail("a@sender.lab"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@dest.lab"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: lab\r\n\r\n"+body+"\r\n.leading dot\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// HideMTASTS denies the _mta-sts record: a forged NXDOMAIN that a resolver without
// DNSSEC believes, and that is bogus for a signed zone.
func TestHideMTASTS(t *testing.T) {
	in := startLab(t)
	ctx := context.Background()
	if _, err := plainResolver(t, in).LookupTXT(ctx, "_mta-sts.secure.lab"); err != nil {
		t.Fatalf("before the attack: %v", err)
	}
	in.SetAttack("secure.lab", HideMTASTS)
	if _, err := plainResolver(t, in).LookupTXT(ctx, "_mta-sts.secure.lab"); !errors.Is(err, dns.ErrNXDomain) {
		t.Errorf("plain resolver: %v, want the forged NXDOMAIN", err)
	}
	var te *dns.TemporaryError
	if _, err := validating(t, in).LookupTXT(ctx, "_mta-sts.secure.lab"); !errors.As(err, &te) || te.Reason != "bogus" {
		t.Errorf("validating client: %v, want bogus", err)
	}
	if _, err := validating(t, in).LookupTXT(ctx, "_mta-sts.dane.lab"); !errors.Is(err, dns.ErrNXDomain) {
		t.Errorf("another domain: %v, want its real NXDOMAIN", err)
	}
}

// TestTLSA checks the DANE records the lab publishes: TLSAMatch is the SHA-256 of the
// key the host shows in STARTTLS, TLSAWrong matches nothing, and both are secure and
// named by the shared SMTP port (RFC 6698 §3).
func TestTLSA(t *testing.T) {
	in := startLab(t)
	for _, tc := range []struct {
		host  string
		match bool
	}{{"mx.dane.lab", true}, {"mx.broken.lab", false}} {
		t.Run(tc.host, func(t *testing.T) {
			name := fmt.Sprintf("_%d._tcp.%s", in.SMTPPort, tc.host)
			res, err := validating(t, in).LookupTLSA(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			if res.Overall() != dns.Secure || len(res.Records) != 1 {
				t.Fatalf("TLSA %s: status %v, %d records", name, res.Overall(), len(res.Records))
			}
			r := res.Records[0]
			if r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 {
				t.Fatalf("TLSA %s: %d %d %d, want 3 1 1", name, r.Usage, r.Selector, r.MatchingType)
			}
			c := ehlo(t, in, tc.host)
			var leaf *x509.Certificate
			if err := c.StartTLS(&tls.Config{ServerName: tc.host, InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error { leaf = cs.PeerCertificates[0]; return nil }}); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
			if got := hex.EncodeToString(sum[:]) == strings.ToLower(hex.EncodeToString(r.Data)); got != tc.match {
				t.Errorf("TLSA matches the host's key: %v, want %v", got, tc.match)
			}
		})
	}
	if res, err := validating(t, in).LookupTLSA(context.Background(), fmt.Sprintf("_%d._tcp.mx.self.lab", in.SMTPPort)); err == nil && len(res.Records) > 0 {
		t.Errorf("TLSA published for a host without TLSA: %+v", res.Records)
	}
}

func TestReceiverCertificates(t *testing.T) {
	in := startLab(t)
	for _, tc := range []struct {
		host     string
		starttls bool
		trusted  bool
	}{
		{"mx.secure.lab", true, true},
		{"mx.insecure.lab", true, true},
		{"mx.self.lab", true, false},
		{"mx.plain.lab", false, false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c := ehlo(t, in, tc.host)
			if ok, _ := c.Extension("STARTTLS"); ok != tc.starttls {
				t.Fatalf("STARTTLS offered = %v, want %v", ok, tc.starttls)
			}
			if ok, _ := c.Extension("PIPELINING"); !ok {
				t.Error("PIPELINING not offered")
			}
			if !tc.starttls {
				return
			}
			var leaf *x509.Certificate
			cfg := &tls.Config{ServerName: tc.host, InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error { leaf = cs.PeerCertificates[0]; return nil }}
			if err := c.StartTLS(cfg); err != nil {
				t.Fatal(err)
			}
			if err := leaf.VerifyHostname(tc.host); err != nil {
				t.Errorf("certificate is not for %s: %v", tc.host, err)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: in.CAPool()})
			if (err == nil) != tc.trusted {
				t.Errorf("verified through the lab CA: err = %v, want trusted %v", err, tc.trusted)
			}
			send(t, c, "over tls")
			got := in.Received(tc.host)
			if len(got) != 1 || !got[0].TLS || got[0].ServerName != tc.host || !strings.Contains(string(got[0].Data), "\r\n.leading dot\r\n") {
				t.Fatalf("received %+v", got)
			}
		})
	}
}

func TestTap(t *testing.T) {
	in := startLab(t)
	const clear, hidden = "MARKER-CLEAR-1", "MARKER-TLS-2"
	in.SetAttack("plain.lab", Passive)
	in.SetAttack("secure.lab", Passive)

	send(t, ehlo(t, in, "mx.plain.lab"), clear)
	c := ehlo(t, in, "mx.secure.lab")
	if err := c.StartTLS(&tls.Config{ServerName: "mx.secure.lab", RootCAs: in.CAPool()}); err != nil {
		t.Fatal(err)
	}
	send(t, c, hidden)

	if !in.Read("plain.lab", clear) {
		t.Errorf("tap did not see %s sent in clear; saw %q", clear, in.Observed("plain.lab"))
	}
	if in.Read("secure.lab", hidden) {
		t.Errorf("tap saw %s sent over TLS", hidden)
	}
	if !in.Read("secure.lab", "STARTTLS") {
		t.Errorf("tap did not see the clear part of the TLS session")
	}
	if got := in.Received("mx.secure.lab"); len(got) != 1 || !strings.Contains(string(got[0].Data), hidden) {
		t.Errorf("receiver got %+v", got)
	}
	// Without Passive, nothing is recorded.
	in.SetAttack("plain.lab", 0)
	before := len(in.Observed("plain.lab"))
	send(t, ehlo(t, in, "mx.plain.lab"), "unwatched")
	if len(in.Observed("plain.lab")) != before {
		t.Error("tap recorded with the attack off")
	}
}

func TestStripSTARTTLS(t *testing.T) {
	in := startLab(t)
	in.SetAttack("secure.lab", StripSTARTTLS)
	c := ehlo(t, in, "mx.secure.lab")
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS still offered through the stripper")
	}
	if ok, _ := c.Extension("PIPELINING"); !ok {
		t.Fatal("stripper damaged the rest of the EHLO reply")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "mx.secure.lab", RootCAs: in.CAPool()}); err == nil {
		t.Fatal("STARTTLS sent anyway succeeded through the stripper")
	}
	c2 := ehlo(t, in, "mx.secure.lab")
	send(t, c2, "STRIPPED-MARKER")
	if !in.Read("secure.lab", "STRIPPED-MARKER") {
		t.Error("stripped session not seen in clear")
	}
	if got := in.Received("mx.secure.lab"); len(got) != 1 || got[0].TLS {
		t.Errorf("receiver got %+v, want one message without TLS", got)
	}
}

func TestForgedMXReachesAttacker(t *testing.T) {
	in := startLab(t)
	ctx := context.Background()
	c := validating(t, in)
	in.SetAttack("insecure.lab", ForgeMX)
	mx, err := c.LookupMX(ctx, "insecure.lab")
	if err != nil || len(mx.Records) != 1 {
		t.Fatalf("LookupMX = %+v, %v", mx, err)
	}
	host := mx.Records[0].Host
	ip, err := c.LookupIP(ctx, host)
	if err != nil || len(ip.IPv4) != 1 {
		t.Fatalf("LookupIP(%s) = %+v, %v", host, ip, err)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IPv4[0].String(), strconv.Itoa(in.SMTPPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := smtp.NewClient(conn, host)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	// The attacker's certificate is valid, for its own name (the MTA-STS and
	// DANE checks, not the CA, are what refuse it).
	if err := sc.StartTLS(&tls.Config{ServerName: host, RootCAs: in.CAPool()}); err != nil {
		t.Fatal(err)
	}
	send(t, sc, "FOR-INSECURE")
	got := in.AttackerReceived()
	if len(got) != 1 || !got[0].TLS || !strings.Contains(string(got[0].Data), "FOR-INSECURE") {
		t.Fatalf("attacker received %+v", got)
	}
	if len(in.Received("mx.insecure.lab")) != 0 {
		t.Error("the real receiver got the message too")
	}
}

func TestPolicyHost(t *testing.T) {
	in := startLab(t)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: in.CAPool()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(in.HTTPSPort)))
		},
	}}
	get := func(url string) (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("https://mta-sts.secure.lab/.well-known/mta-sts.txt"); code != 200 || body != testPolicy {
		t.Errorf("policy = %d %q", code, body)
	}
	if code, _ := get("https://mta-sts.secure.lab/other"); code != 404 {
		t.Errorf("other path = %d, want 404", code)
	}
	// A name without a policy has no certificate either.
	if _, err := client.Get("https://mta-sts.plain.lab/.well-known/mta-sts.txt"); err == nil {
		t.Error("a host without a policy passed TLS verification")
	}
}

// TestResolverFlags checks the DO, CD and AD handling of the lab resolver itself.
func TestResolverFlags(t *testing.T) {
	in := startLab(t)
	ask := func(name string, qtype uint16, do, cd bool) *mdns.Msg {
		t.Helper()
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, do)
		m.CheckingDisabled = cd
		r, err := mdns.Exchange(m, in.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	hasSig := func(m *mdns.Msg) bool {
		for _, rr := range append(m.Answer, m.Ns...) {
			if rr.Header().Rrtype == mdns.TypeRRSIG {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name     string
		qname    string
		qtype    uint16
		do, cd   bool
		attack   Attack
		rcode    int
		ad, sigs bool
	}{
		{name: "signed with DO", qname: "secure.lab.", qtype: mdns.TypeMX, do: true, ad: true, sigs: true},
		{name: "signed without DO", qname: "secure.lab.", qtype: mdns.TypeMX},
		{name: "NXDOMAIN with DO", qname: "none.secure.lab.", qtype: mdns.TypeA, do: true, rcode: mdns.RcodeNameError, ad: true, sigs: true},
		{name: "unsigned with DO", qname: "plain.lab.", qtype: mdns.TypeMX, do: true},
		{name: "insecure delegation proof", qname: "plain.lab.", qtype: mdns.TypeDS, do: true, ad: true, sigs: true},
		{name: "forged signed", qname: "secure.lab.", qtype: mdns.TypeMX, do: true, attack: ForgeMX, rcode: mdns.RcodeServerFailure},
		{name: "forged signed with CD", qname: "secure.lab.", qtype: mdns.TypeMX, do: true, cd: true, attack: ForgeMX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in.SetAttack("secure.lab", tc.attack)
			defer in.SetAttack("secure.lab", 0)
			r := ask(tc.qname, tc.qtype, tc.do, tc.cd)
			if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad || hasSig(r) != tc.sigs {
				t.Fatalf("rcode %s AD %v signatures %v, want %s %v %v\n%v", mdns.RcodeToString[r.Rcode], r.AuthenticatedData, hasSig(r),
					mdns.RcodeToString[tc.rcode], tc.ad, tc.sigs, r)
			}
		})
	}
}

// TestCloseCutsOpenSessions checks that Close does not wait for a client that keeps
// its connection open.
func TestCloseCutsOpenSessions(t *testing.T) {
	in := startLab(t)
	for _, host := range []string{"mx.secure.lab", AttackerHost()} {
		ap, _ := in.Addr(host)
		c, err := net.Dial("tcp", ap.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("%s: greeting: %v", host, err)
		}
	}
	start := time.Now()
	in.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with idle sessions open", d)
	}
}

// WriteAnchors writes what dns.trust_anchor_file reads back as the lab's anchor.
func TestWriteAnchors(t *testing.T) {
	in := startLab(t)
	path := t.TempDir() + "/anchors"
	if err := in.WriteAnchors(path); err != nil {
		t.Fatal(err)
	}
	got, err := dnssec.ReadAnchors(path)
	if err != nil {
		t.Fatal(err)
	}
	want := in.Anchors()
	if len(got) != len(want) || got[0].String() != want[0].String() {
		t.Errorf("read back %v, want %v", got, want)
	}
}
