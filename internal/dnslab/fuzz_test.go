package dnslab

import (
	"context"
	"os"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func FuzzParseRRsetSpec(f *testing.F) {
	for _, s := range []string{"www.example.test. A", "WWW.Example.TEST mx", ". DNSKEY", "a TYPE65534", "", "x", "a..b A", "\\000. A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		owner, typ, err := parseRRsetSpec(spec)
		if err != nil {
			return
		}
		if owner != strings.ToLower(owner) || !mdns.IsFqdn(owner) {
			t.Fatalf("owner %q is not lower case and fully qualified", owner)
		}
		// The canonical spelling parses to the same RRset.
		o2, t2, err := parseRRsetSpec(owner + " " + mdns.TypeToString[typ])
		if err != nil || o2 != owner || t2 != typ {
			t.Fatalf("%q → %q %d, which reparses as %q %d, %v", spec, owner, typ, o2, t2, err)
		}
	})
}

func FuzzDamage(f *testing.F) {
	fixture, err := os.ReadFile("testdata/fixture.signed.zone")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(fixture), "www.fixture.test. A", "", false, "")
	f.Add(string(fixture), "", "www.fixture.test. AAAA", true, "evil A 192.0.2.66")
	f.Add(string(fixture), "fixture.test. SOA", "fixture.test. NSEC", false, `www TXT "x"`)
	f.Add("fixture.test. 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 1 fixture.test. AA==\n", "", "fixture.test. A", false, "")
	f.Fuzz(func(t *testing.T, zone, drop, corruptSpec string, strip bool, added string) {
		rrs, err := parseZone(zone, fixtureZone, "")
		if err != nil {
			return
		}
		b := Break{DropSig: drop, CorruptSig: corruptSpec, StripDNSKEY: strip}
		if added != "" {
			b.AddUnsigned = []string{added}
		}
		before := formatZone(rrs)
		out, err := damage(fixtureZone, rrs, b)
		if formatZone(rrs) != before {
			t.Fatal("damage modified its input")
		}
		if err != nil {
			return
		}
		if len(out) > len(rrs)+len(b.AddUnsigned)*100 {
			t.Fatalf("%d records out of %d", len(out), len(rrs))
		}
		for _, rr := range out {
			if b.StripDNSKEY && mdns.CanonicalName(rr.Header().Name) == fixtureZone && coveredType(rr) == mdns.TypeDNSKEY {
				t.Fatalf("DNSKEY left after StripDNSKEY: %s", rr)
			}
		}
	})
}

func FuzzVerdictOf(f *testing.F) {
	for _, rcode := range []int{mdns.RcodeSuccess, mdns.RcodeNameError, mdns.RcodeServerFailure, mdns.RcodeRefused} {
		m := new(mdns.Msg)
		m.SetQuestion("www.example.test.", mdns.TypeA)
		m.Rcode = rcode
		m.AuthenticatedData = rcode == mdns.RcodeSuccess
		m.SetEdns0(1232, true)
		if rcode == mdns.RcodeServerFailure {
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &mdns.EDNS0_EDE{InfoCode: 7, ExtraText: "expired"})
		}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(mdns.Msg)
		if m.Unpack(wire) != nil {
			return
		}
		v, err := verdictOf(m)
		if err != nil {
			return
		}
		switch {
		case v.Status == Bogus && m.Rcode != mdns.RcodeServerFailure,
			v.Status == Secure && !m.AuthenticatedData,
			v.Status == "":
			t.Fatalf("verdict %v for rcode %d, AD %v", v, m.Rcode, m.AuthenticatedData)
		}
		_ = v.String()
	})
}

func FuzzRewrite(f *testing.F) {
	wild := new(mdns.Msg)
	wild.SetQuestion("host.wild.z.test.", mdns.TypeTXT)
	wild.Answer = []mdns.RR{
		mustRR(f, `host.wild.z.test. 300 IN TXT "w"`),
		mustRR(f, "host.wild.z.test. 300 IN RRSIG TXT 13 3 300 20300101000000 20200101000000 1 z.test. AAAA"),
	}
	wild.Ns = []mdns.RR{mustRR(f, "*.wild.z.test. 300 IN NSEC www.z.test. TXT RRSIG NSEC")}
	wire, err := wild.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wire, "host.wild.z.test.")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, wire []byte, name string) {
		resp := new(mdns.Msg)
		if resp.Unpack(wire) != nil || len(resp.Question) != 1 {
			return
		}
		req := resp.Copy()
		answers := len(resp.Answer)
		upstream := func(context.Context, *mdns.Msg) (*mdns.Msg, error) { return resp.Copy(), nil }
		DropWildcardProof()(context.Background(), req, resp, upstream)
		if len(resp.Answer) != answers {
			t.Fatal("DropWildcardProof changed the answer section")
		}
		for _, rr := range resp.Ns {
			if wildcardExpanded(resp) && (coveredType(rr) == mdns.TypeNSEC || coveredType(rr) == mdns.TypeNSEC3) {
				t.Fatalf("proof left in a wildcard answer: %s", rr)
			}
		}
		SpliceDenial(name, req.Question[0].Qtype, "decoy.test.", mdns.TypeA)(context.Background(), req, resp, upstream)
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("rewritten reply does not pack: %v", err)
		}
	})
}
