package dane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"mxward/internal/dns"
)

// fakeResolver answers TLSA queries from a table and records the names asked for.
type fakeResolver struct {
	mu      sync.Mutex
	tlsa    map[string]tlsaAnswer
	queries []string
}

type tlsaAnswer struct {
	res dns.TLSAResult
	err error
}

func (f *fakeResolver) LookupTLSA(_ context.Context, name string) (dns.TLSAResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, name)
	a, ok := f.tlsa[name]
	if !ok {
		// Unlisted names do not exist, securely.
		return dns.TLSAResult{Answer: dns.Answer{Name: name, Canonical: name, Status: dns.Secure, ChainStatus: dns.Secure}},
			&dns.NXDomainError{Name: name, Type: "TLSA"}
	}
	return a.res, a.err
}

func (f *fakeResolver) LookupMX(context.Context, string) (dns.MXResult, error) {
	return dns.MXResult{}, errors.New("fake resolver: MX not expected")
}

func (f *fakeResolver) LookupIP(context.Context, string) (dns.IPResult, error) {
	return dns.IPResult{}, errors.New("fake resolver: A/AAAA not expected")
}

func (f *fakeResolver) LookupTXT(context.Context, string) (dns.TXTResult, error) {
	return dns.TXTResult{}, errors.New("fake resolver: TXT not expected")
}

// rrset is a TLSA answer for name with the given status and records.
func rrset(name string, st dns.Status, recs ...dns.TLSA) tlsaAnswer {
	return tlsaAnswer{res: dns.TLSAResult{
		Answer:  dns.Answer{Name: name, Canonical: name, Status: st, ChainStatus: dns.Secure},
		Records: recs,
	}}
}

// viaCNAME is a TLSA answer for name reached through a CNAME to target.
func viaCNAME(name, target string, linkSt, st dns.Status, recs ...dns.TLSA) tlsaAnswer {
	a := rrset(name, st, recs...)
	a.res.Canonical = target
	a.res.Chain = []dns.Alias{{Name: name, Target: target, Status: linkSt}}
	a.res.ChainStatus = linkSt
	return a
}

func failure(name, reason string) tlsaAnswer {
	return tlsaAnswer{err: &dns.TemporaryError{Name: name, Type: "TLSA", Reason: reason}}
}

func nxdomain(name string, st dns.Status) tlsaAnswer {
	a := rrset(name, st)
	a.err = &dns.NXDomainError{Name: name, Type: "TLSA"}
	return a
}

func TestLookupHost(t *testing.T) {
	p := testPKI()
	good := rec(3, 1, 1, p.self.cert)
	pkix := rec(1, 1, 1, p.self.cert)
	const (
		mx    = "mx.example.test"
		final = "final.example.net"
		qmx   = "_25._tcp.mx.example.test"
		qfin  = "_25._tcp.final.example.net"
	)
	plain := ipResult(mx, dns.Secure)
	chained := ipResult(mx, dns.Secure, dns.Alias{Name: mx, Target: final, Status: dns.Secure})
	sec, insec := dns.Secure, dns.Insecure

	tests := []struct {
		name    string
		addr    dns.IPResult
		port    int
		answers map[string]tlsaAnswer
		want    Outcome
		base    string
		queries []string
		reason  string
	}{
		{name: "DANE-13/secure-usable", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, sec, good)},
			want: Authenticate, base: mx, queries: []string{qmx}, reason: "DANE-13"},
		{name: "DANE-18/secure-all-unusable", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, sec, pkix)},
			want: EncryptOnly, base: mx, queries: []string{qmx}, reason: "DANE-18"},
		{name: "DANE-13/insecure-RRset", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, insec, good)},
			want: NotApplicable, queries: []string{qmx}, reason: "insecure TLSA RRset"},
		{name: "DANE-13/secure-NODATA", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, sec)},
			want: NotApplicable, queries: []string{qmx}, reason: "secure NODATA"},
		{name: "DANE-13/insecure-NODATA", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, insec)},
			want: NotApplicable, queries: []string{qmx}, reason: "insecure NODATA"},
		{name: "DANE-13/secure-NXDOMAIN", addr: plain, answers: map[string]tlsaAnswer{qmx: nxdomain(qmx, sec)},
			want: NotApplicable, queries: []string{qmx}, reason: "secure NXDOMAIN"},
		{name: "DANE-13/insecure-NXDOMAIN", addr: plain, answers: map[string]tlsaAnswer{qmx: nxdomain(qmx, insec)},
			want: NotApplicable, queries: []string{qmx}, reason: "insecure NXDOMAIN"},
		{name: "DANE-04/bogus", addr: plain, answers: map[string]tlsaAnswer{qmx: failure(qmx, "bogus")},
			want: Unreachable, queries: []string{qmx}, reason: "DANE-04"},
		{name: "DANE-04/servfail", addr: plain, answers: map[string]tlsaAnswer{qmx: failure(qmx, "servfail")},
			want: Unreachable, queries: []string{qmx}},
		{name: "DANE-04/timeout", addr: plain, answers: map[string]tlsaAnswer{qmx: failure(qmx, "timeout")},
			want: Unreachable, queries: []string{qmx}},
		{name: "DANE-04/malformed", addr: plain, answers: map[string]tlsaAnswer{qmx: failure(qmx, "malformed")},
			want: Unreachable, queries: []string{qmx}},
		{name: "DANE-04/permanent-error-is-not-absence", addr: plain,
			answers: map[string]tlsaAnswer{qmx: {err: fmt.Errorf("lookup: %w", dns.ErrInvalidName)}},
			want:    Unreachable, queries: []string{qmx}},
		{name: "DANE-02/indeterminate-answer", addr: plain, answers: map[string]tlsaAnswer{qmx: rrset(qmx, dns.Indeterminate, good)},
			want: Unreachable, queries: []string{qmx}, reason: "DANE-02"},
		{name: "DANE-12/port-in-query-name", addr: plain, port: 2525,
			answers: map[string]tlsaAnswer{"_2525._tcp.mx.example.test": rrset("_2525._tcp.mx.example.test", sec, good)},
			want:    Authenticate, base: mx, queries: []string{"_2525._tcp.mx.example.test"}},
		{name: "DANE-12/CNAME-at-TLSA-name-keeps-base", addr: plain,
			answers: map[string]tlsaAnswer{qmx: viaCNAME(qmx, "_25._tcp.shared.example.org", sec, sec, good)},
			want:    Authenticate, base: mx, queries: []string{qmx}, reason: "via CNAME _25._tcp.shared.example.org"},
		{name: "DANE-05/insecure-CNAME-at-TLSA-name", addr: plain,
			answers: map[string]tlsaAnswer{qmx: viaCNAME(qmx, "_25._tcp.shared.example.org", insec, sec, good)},
			want:    NotApplicable, queries: []string{qmx}},

		// DANE-11, DANE-13: the expanded name first, then the original.
		{name: "DANE-13/expanded-name-wins", addr: chained,
			answers: map[string]tlsaAnswer{qfin: rrset(qfin, sec, good), qmx: rrset(qmx, sec, pkix)},
			want:    Authenticate, base: final, queries: []string{qfin}},
		{name: "DANE-13/original-after-expanded-NODATA", addr: chained,
			answers: map[string]tlsaAnswer{qfin: rrset(qfin, sec), qmx: rrset(qmx, sec, good)},
			want:    Authenticate, base: mx, queries: []string{qfin, qmx}},
		{name: "DANE-13/original-after-expanded-insecure", addr: chained,
			answers: map[string]tlsaAnswer{qfin: rrset(qfin, insec, good), qmx: rrset(qmx, sec, pkix)},
			want:    EncryptOnly, base: mx, queries: []string{qfin, qmx}},
		{name: "DANE-13/original-after-expanded-NXDOMAIN", addr: chained,
			answers: map[string]tlsaAnswer{qmx: rrset(qmx, sec, good)},
			want:    Authenticate, base: mx, queries: []string{qfin, qmx}},
		{name: "DANE-04/failure-on-expanded-stops", addr: chained,
			answers: map[string]tlsaAnswer{qfin: failure(qfin, "servfail"), qmx: rrset(qmx, sec, good)},
			want:    Unreachable, queries: []string{qfin}},
		{name: "DANE-04/failure-on-original", addr: chained,
			answers: map[string]tlsaAnswer{qfin: rrset(qfin, sec), qmx: failure(qmx, "timeout")},
			want:    Unreachable, queries: []string{qfin, qmx}},
		{name: "DANE-13/neither-candidate", addr: chained,
			answers: map[string]tlsaAnswer{qfin: rrset(qfin, insec, good), qmx: rrset(qmx, sec)},
			want:    NotApplicable, queries: []string{qfin, qmx}, reason: qfin},

		// DANE-10, DANE-14: no TLSA query at all.
		{name: "DANE-10/insecure-host-no-query", addr: ipResult(mx, insec), answers: map[string]tlsaAnswer{qmx: rrset(qmx, sec, good)},
			want: NotApplicable, reason: "DANE-10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeResolver{tlsa: tt.answers}
			h := LookupHost(context.Background(), r, mx, tt.addr, tt.port, nil)
			if h.Outcome != tt.want {
				t.Fatalf("Outcome = %v (%s), want %v", h.Outcome, h.Reason, tt.want)
			}
			if h.BaseDomain != tt.base {
				t.Errorf("BaseDomain = %q, want %q", h.BaseDomain, tt.base)
			}
			if !slices.Equal(r.queries, tt.queries) {
				t.Errorf("queries = %q, want %q", r.queries, tt.queries)
			}
			if !strings.Contains(h.Reason, tt.reason) || h.Reason == "" {
				t.Errorf("Reason = %q, want it to contain %q", h.Reason, tt.reason)
			}
			switch h.Outcome {
			case Authenticate:
				if len(h.Records) == 0 {
					t.Errorf("Authenticate without usable records")
				}
			case EncryptOnly:
				if len(h.Records) != 0 || len(h.Dropped) == 0 || len(h.RRset) == 0 {
					t.Errorf("EncryptOnly with records %v, dropped %v", h.Records, h.Dropped)
				}
			case Unreachable:
				if h.Err == nil {
					t.Errorf("Unreachable without Err")
				}
			}
			if h.TLSRequired() != (h.Outcome != NotApplicable) {
				t.Errorf("TLSRequired = %v for %v", h.TLSRequired(), h.Outcome)
			}
		})
	}
}

// TestLookupHostDigestPref: the digest preference reaches Usable (DANE-17).
func TestLookupHostDigestPref(t *testing.T) {
	p := testPKI()
	q := "_25._tcp.mx.example.test"
	r := &fakeResolver{tlsa: map[string]tlsaAnswer{q: rrset(q, dns.Secure, rec(3, 1, 1, p.self.cert), rec(3, 1, 2, p.self.cert))}}
	for _, tt := range []struct {
		pref []uint8
		want uint8
	}{{nil, MatchSHA512}, {[]uint8{MatchSHA256}, MatchSHA256}} {
		h := LookupHost(context.Background(), r, "mx.example.test", ipResult("mx.example.test", dns.Secure), 25, tt.pref)
		if len(h.Records) != 1 || h.Records[0].MatchingType != tt.want {
			t.Errorf("pref %v: records %v, want one of matching type %d", tt.pref, formatAll(h.Records), tt.want)
		}
	}
}

// TestLookupHostCancelled: a cancelled lookup is a failure, never absence (DANE-04).
func TestLookupHostCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := LookupHost(ctx, &ctxResolver{}, "mx.example.test", ipResult("mx.example.test", dns.Secure), 25, nil)
	if h.Outcome != Unreachable || !errors.Is(h.Err, context.Canceled) {
		t.Errorf("Outcome = %v, Err = %v; want unreachable, context canceled", h.Outcome, h.Err)
	}
}

type ctxResolver struct{ fakeResolver }

func (*ctxResolver) LookupTLSA(ctx context.Context, name string) (dns.TLSAResult, error) {
	return dns.TLSAResult{}, ctx.Err()
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{NotApplicable: "not-applicable", Authenticate: "authenticate",
		EncryptOnly: "encrypt-only", Unreachable: "unreachable", Outcome(9): "outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(o), got, want)
		}
	}
}
