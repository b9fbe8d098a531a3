package dns_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dnslab"
	"mxward/internal/dnssec"
)

// TestLookupsAgainstUnbound puts the DNSSEC lab's questions to the client as delivery
// uses it, in both modes, and requires Unbound's verdict: in mode "validate" the
// in-process validator over Unbound with CD, in mode "trust-ad" Unbound's own AD bit.
// A bogus answer must come out as a temporary failure, never as records or as a denial
// (DANE-02), and the status of a CNAME chain is that of its weakest link (DANE-05).
func TestLookupsAgainstUnbound(t *testing.T) {
	zones, cases := dnslab.DefaultTree()
	lab := dnslab.Start(t, zones, dnslab.Options{})
	anchors, err := dnssec.ReadAnchors(lab.AnchorFile())
	if err != nil {
		t.Fatal(err)
	}
	v, err := dnssec.New(dnssec.Config{Anchors: anchors})
	if err != nil {
		t.Fatal(err)
	}
	validate, err := dns.NewClient(dns.Config{Servers: []string{lab.Resolver}, Validator: v, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	trustAD, err := dns.NewClient(dns.Config{Servers: []string{lab.Resolver}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	for _, c := range cases {
		var look func(*dns.Client) (dns.Answer, int, error)
		switch c.Type {
		case mdns.TypeMX:
			look = func(cl *dns.Client) (dns.Answer, int, error) {
				r, err := cl.LookupMX(ctx, c.Name)
				return r.Answer, len(r.Records), err
			}
		case mdns.TypeTXT:
			look = func(cl *dns.Client) (dns.Answer, int, error) {
				r, err := cl.LookupTXT(ctx, c.Name)
				return r.Answer, len(r.Records), err
			}
		case mdns.TypeTLSA:
			look = func(cl *dns.Client) (dns.Answer, int, error) {
				r, err := cl.LookupTLSA(ctx, c.Name)
				return r.Answer, len(r.Records), err
			}
		default:
			continue // A and AAAA are asked together by LookupIP; the raw verdicts are TestAgainstUnbound's
		}
		n++
		want, err := lab.Verdict(ctx, c.Name, c.Type)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			mode string
			cl   *dns.Client
		}{{"validate", validate}, {"trust-ad", trustAD}} {
			a, records, err := look(m.cl)
			var got string
			var te *dns.TemporaryError
			switch {
			case errors.As(err, &te):
				// A validating resolver's SERVFAIL is its way of saying bogus.
				got = "bogus(" + te.Reason + ")"
				if te.Reason == "bogus" || te.Reason == "servfail" {
					got = "bogus"
				}
				if records != 0 {
					t.Errorf("%s %s %s: records with a failure", m.mode, c.Name, mdns.TypeToString[c.Type])
				}
			case err == nil || dns.IsNXDomain(err):
				got = string(a.Overall())
			default:
				got = "error: " + err.Error()
			}
			if got != string(want.Status) {
				t.Errorf("%s %s %s: %s; unbound %v [%s]", m.mode, strings.TrimSuffix(c.Name, "."), mdns.TypeToString[c.Type], got, want, c.Note)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d cases of MX, TXT and TLSA", n)
	}
}
