//go:build unix

package dnslab

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestDefaultTreeUnbound starts the standard lab and checks that Unbound's verdict on
// every case is the one the lab was built to produce: this proves the lab builds
// what it claims, before any other validator is compared with it.
func TestDefaultTreeUnbound(t *testing.T) {
	zones, cases := DefaultTree()
	begin := time.Now()
	l := Start(t, zones, Options{})
	t.Logf("lab of %d zones started in %v", len(zones), time.Since(begin).Round(time.Millisecond))
	ctx := context.Background()
	for _, c := range cases {
		t.Run(mdns.TypeToString[c.Type]+" "+c.Name, func(t *testing.T) {
			v, err := l.Verdict(ctx, c.Name, c.Type)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", v)
			if v.Status != c.Want {
				t.Errorf("Unbound says %v, want %s (%s)", v, c.Want, c.Note)
			}
			if c.EDE != 0 && !contains(v.EDE, c.EDE) {
				t.Errorf("Unbound says %v, want EDE %d %s (%s)", v, c.EDE, mdns.ExtendedErrorCodeToString[c.EDE], c.Note)
			}
			if v.Status != Bogus {
				return
			}
			// A bogus verdict must come from validation, not from a server
			// that did not answer: Unbound names a DNSSEC reason, and with
			// checking disabled the same question gets the data.
			if !anyDNSSECFailure(v.EDE) {
				t.Errorf("bogus verdict %v carries no DNSSEC Extended DNS Error", v)
			}
			resp, err := l.Ask(ctx, c.Name, c.Type, true)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Rcode == mdns.RcodeServerFailure {
				t.Errorf("with CD set Unbound still fails: %v", resp)
			}
		})
	}
}

func contains(codes []uint16, c uint16) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

func anyDNSSECFailure(codes []uint16) bool {
	for _, c := range codes {
		if DNSSECFailure(c) {
			return true
		}
	}
	return false
}

// TestLabWiring checks what a differential test relies on besides verdicts: the
// trust anchor is the root's real key, the parent's DS is the child's real key,
// signatures carry exactly the window the lab promises for Options.Now, the
// serial is fixed, and the daemons are gone once the test is over.
func TestLabWiring(t *testing.T) {
	zones := []Zone{
		{Name: ".", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256},
		{Name: "test.", Signer: BIND, Algorithm: mdns.RSASHA256, CSK: true, Denial: NSEC3, Salt: "beef"},
		{Name: "a.test.", Signer: LDNS, Algorithm: mdns.ED25519, Records: []string{"www A 192.0.2.1"}},
	}
	now := time.Now().Add(-3 * time.Hour).Truncate(time.Second).UTC()
	var pids []int
	t.Run("lab", func(t *testing.T) {
		l := Start(t, zones, Options{Now: now.Add(123 * time.Millisecond)})
		for _, d := range l.daemons {
			pids = append(pids, d.cmd.Process.Pid)
		}
		ctx := context.Background()
		if !l.Now.Equal(now) {
			t.Errorf("Now = %v, want %v (Options.Now to the second)", l.Now, now)
		}
		for _, z := range zones {
			if l.Servers[z.Name] != l.Authority {
				t.Errorf("Servers[%s] = %q, want NSD at %s", z.Name, l.Servers[z.Name], l.Authority)
			}
		}

		// The anchor is the DS of the root's key-signing key.
		keys := authKeys(t, l, ".")
		if len(keys) != 2 || len(l.RootAnchor) != 1 {
			t.Fatalf("root has %d keys and %d anchors, want 2 and 1", len(keys), len(l.RootAnchor))
		}
		anchor, err := mdns.NewRR(l.RootAnchor[0])
		if err != nil {
			t.Fatal(err)
		}
		if !matchesSEP(anchor.(*mdns.DS), keys) {
			t.Errorf("root anchor %s matches no SEP key of %v", anchor, keys)
		}
		data, err := os.ReadFile(l.AnchorFile())
		if err != nil || strings.TrimSpace(string(data)) != l.RootAnchor[0] {
			t.Errorf("anchor file = %q, %v; want %q", data, err, l.RootAnchor[0])
		}

		// The parent publishes the DS of the child's key.
		resp, err := ask(ctx, l.Authority, "a.test.", mdns.TypeDS, false, false)
		if err != nil {
			t.Fatal(err)
		}
		var ds *mdns.DS
		for _, rr := range resp.Answer {
			if d, ok := rr.(*mdns.DS); ok {
				ds = d
			}
		}
		if ds == nil || !matchesSEP(ds, authKeys(t, l, "a.test.")) {
			t.Errorf("DS of a.test. at test. = %v, matching no key of a.test.", ds)
		}

		// Fixed serial; signatures valid from Now-24h to Now+30d exactly, from
		// both signers.
		for _, zone := range []string{"test.", "a.test."} {
			resp, err := ask(ctx, l.Authority, zone, mdns.TypeSOA, false, false)
			if err != nil {
				t.Fatal(err)
			}
			var soa *mdns.SOA
			var sig *mdns.RRSIG
			for _, rr := range resp.Answer {
				switch rr := rr.(type) {
				case *mdns.SOA:
					soa = rr
				case *mdns.RRSIG:
					sig = rr
				}
			}
			if soa == nil || sig == nil {
				t.Fatalf("%s SOA: %v", zone, resp)
			}
			if soa.Serial != 1 {
				t.Errorf("%s serial %d, want 1", zone, soa.Serial)
			}
			inc, exp := time.Unix(int64(sig.Inception), 0), time.Unix(int64(sig.Expiration), 0)
			if !inc.Equal(now.Add(-validBefore)) || !exp.Equal(now.Add(validAfter)) {
				t.Errorf("%s RRSIG window %v – %v, want %v – %v", zone, inc.UTC(), exp.UTC(), now.Add(-validBefore), now.Add(validAfter))
			}
		}

		v, err := l.Verdict(ctx, "www.a.test.", mdns.TypeA)
		if err != nil || v.Status != Secure {
			t.Errorf("www.a.test. A: %v, %v; want secure", v, err)
		}
		if _, err := os.Stat(l.UnboundLog()); err != nil {
			t.Errorf("Unbound log: %v", err)
		}
	})
	if len(pids) != 2 {
		t.Fatalf("lab ran %d daemons, want 2", len(pids))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("daemon %d still exists after the test (kill 0: %v)", pid, err)
		}
	}
}

// authKeys asks NSD for zone's DNSKEY RRset.
func authKeys(t *testing.T, l *Lab, zone string) []*mdns.DNSKEY {
	t.Helper()
	resp, err := ask(context.Background(), l.Authority, zone, mdns.TypeDNSKEY, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var keys []*mdns.DNSKEY
	for _, rr := range resp.Answer {
		if k, ok := rr.(*mdns.DNSKEY); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// matchesSEP reports whether ds is the SHA-256 digest of a key with the SEP flag.
func matchesSEP(ds *mdns.DS, keys []*mdns.DNSKEY) bool {
	for _, k := range keys {
		want := k.ToDS(mdns.SHA256)
		if k.Flags&mdns.SEP != 0 && want != nil && strings.EqualFold(want.Digest, ds.Digest) && want.KeyTag == ds.KeyTag {
			return true
		}
	}
	return false
}

// TestPlainResolver checks the lab's iterating Unbound: it hands out records with
// their signatures when asked with DO, never sets the AD bit, passes bogus data on
// as it came where the validating Unbound fails.
func TestPlainResolver(t *testing.T) {
	zones := []Zone{
		{Name: ".", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256},
		{Name: "test.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256, Denial: NSEC3},
		{Name: "a.test.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256, Records: []string{"www A 192.0.2.1"}},
		{Name: "expired.test.", Signer: LDNS, Algorithm: mdns.ECDSAP256SHA256,
			Records: []string{"www A 192.0.2.2"}, Break: Break{ExpiredSigs: true}},
	}
	l := Start(t, zones, Options{PlainResolver: true})
	if l.PlainResolver == "" || l.PlainResolver == l.Resolver {
		t.Fatalf("PlainResolver = %q, Resolver = %q", l.PlainResolver, l.Resolver)
	}
	ctx := context.Background()

	for _, cd := range []bool{false, true} {
		resp, err := ask(ctx, l.PlainResolver, "www.a.test.", mdns.TypeA, true, cd)
		if err != nil {
			t.Fatal(err)
		}
		var a, sig bool
		for _, rr := range resp.Answer {
			switch rr.(type) {
			case *mdns.A:
				a = true
			case *mdns.RRSIG:
				sig = true
			}
		}
		if resp.Rcode != mdns.RcodeSuccess || !a || !sig {
			t.Errorf("plain resolver, CD %v: www.a.test. A = %v; want the A record and its RRSIG", cd, resp)
		}
		if resp.AuthenticatedData {
			t.Errorf("plain resolver, CD %v: AD set on www.a.test. A; it does not validate", cd)
		}
	}

	// Bogus data: the validating resolver fails, the plain one answers.
	v, err := l.Verdict(ctx, "www.expired.test.", mdns.TypeA)
	if err != nil || v.Status != Bogus {
		t.Errorf("validating resolver: www.expired.test. A = %v, %v; want bogus", v, err)
	}
	resp, err := ask(ctx, l.PlainResolver, "www.expired.test.", mdns.TypeA, true, false)
	if err != nil || resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) == 0 {
		t.Errorf("plain resolver: www.expired.test. A = %v, %v; want the expired answer as served", resp, err)
	}

	var names []string
	for _, p := range l.Processes() {
		names = append(names, p.Name)
		if p.PID <= 0 {
			t.Errorf("process %s has pid %d", p.Name, p.PID)
		}
	}
	if got := strings.Join(names, ","); got != "NSD,Unbound,Unbound (iterator)" {
		t.Errorf("Processes() = %s", got)
	}
}
