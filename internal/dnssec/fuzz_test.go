package dnssec

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// fuzzSpecs is a small tree signed with Ed25519 only, whose keys and signatures are the
// same on every run, so that fuzz seeds and corpus entries stay valid.
func fuzzSpecs() []zoneSpec {
	return []zoneSpec{
		{name: ".", alg: mdns.ED25519},
		{name: "example.", alg: mdns.ED25519, denial: "nsec3", records: []string{
			"@ MX 10 mx.example.",
			"mx A 192.0.2.25",
			"_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"alias CNAME mx.example.",
			"*.wild A 192.0.2.80",
			"*.wdn DNAME nsec.example.",
		}},
		{name: "nsec.example.", alg: mdns.ED25519, records: []string{"@ MX 10 mx.example.", "*.w TXT \"w\""}},
		{name: "unsigned.example.", unsigned: true, records: []string{"@ MX 10 mx.unsigned.example.", "mx A 192.0.2.9"}},
	}
}

// replay answers the validator's questions from a set of recorded replies.
type replay struct{ msgs []*mdns.Msg }

func (r *replay) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	for _, m := range r.msgs {
		if len(m.Question) == 1 && strings.EqualFold(m.Question[0].Name, name) && m.Question[0].Qtype == qtype {
			return m.Copy(), nil
		}
	}
	return nil, errors.New("no recorded reply")
}

// recorder passes questions on and keeps the replies.
type recorder struct {
	ex   dns.Exchanger
	msgs []*mdns.Msg
}

func (r *recorder) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	m, err := r.ex.Exchange(ctx, name, qtype)
	if err == nil {
		r.msgs = append(r.msgs, m.Copy())
	}
	return m, err
}

// packMsgs concatenates messages, each preceded by its length.
func packMsgs(tb testing.TB, msgs []*mdns.Msg) []byte {
	var out []byte
	for _, m := range msgs {
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

// unpackMsgs reverses packMsgs, skipping what does not unpack.
func unpackMsgs(b []byte) []*mdns.Msg {
	var out []*mdns.Msg
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			n = len(b)
		}
		m := new(mdns.Msg)
		if m.Unpack(b[:n]) == nil {
			out = append(out, m)
		}
		b = b[n:]
	}
	return out
}

func FuzzValidate(f *testing.F) {
	tr := newTree(f, fuzzSpecs())
	anchors := tr.rootAnchor()
	now := func() time.Time { return testNow }
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"example.", mdns.TypeMX}, {"mx.example.", mdns.TypeA}, {"nx.example.", mdns.TypeA},
		{"example.", mdns.TypeA}, {"x.wild.example.", mdns.TypeA}, {"alias.example.", mdns.TypeA},
		{"_25._tcp.mx.example.", mdns.TypeTLSA}, {"_tcp.mx.example.", mdns.TypeTLSA}, {"example.", mdns.TypeDS},
		{"nsec.example.", mdns.TypeMX}, {"nx.nsec.example.", mdns.TypeMX}, {"a.w.nsec.example.", mdns.TypeTXT},
		{"nsec.example.", mdns.TypeA}, {"unsigned.example.", mdns.TypeMX}, {"mx.unsigned.example.", mdns.TypeA},
		{"example.", mdns.TypeDNSKEY},
	} {
		resp := tr.answer(q.name, q.qtype)
		rec := &recorder{ex: newResolver(tr)}
		v, err := New(Config{Anchors: anchors, Now: now})
		if err != nil {
			f.Fatal(err)
		}
		if got := v.Validate(context.Background(), rec, resp); got.Status == dns.Bogus {
			f.Fatalf("seed %s %s is bogus: %s", q.name, mdns.TypeToString[q.qtype], got.Reason)
		}
		fetched := packMsgs(f, rec.msgs)
		// The reply as it came, and two attacks on it: the rcode flipped, and the
		// signatures of the answer stripped.
		flipped, stripped := resp.Copy(), resp.Copy()
		flipped.Rcode ^= mdns.RcodeNameError
		filter(stripped, func(rr mdns.RR) bool { _, sig := rr.(*mdns.RRSIG); return sig })
		for _, m := range []*mdns.Msg{resp, flipped, stripped} {
			b, err := m.Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, fetched)
		}
	}
	hostileSeeds(f, tr)
	f.Fuzz(func(t *testing.T, respWire, fetched []byte) {
		resp := new(mdns.Msg)
		if resp.Unpack(respWire) != nil {
			return
		}
		v, err := New(Config{Anchors: anchors, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := v.Validate(context.Background(), &replay{msgs: unpackMsgs(fetched)}, resp)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("validation took %v", d)
		}
		if got.Status == dns.Secure && (got.Reason != "" || len(got.EDE) > 0) {
			t.Fatalf("secure with reason %q", got.Reason)
		}
		if got.Status == "" {
			t.Fatal("no status")
		}
		switch {
		case got.Status == dns.Secure && !got.Expires.After(testNow):
			t.Fatalf("secure, expiring at %v", got.Expires)
		case got.Status == dns.Bogus && !got.Expires.IsZero():
			t.Fatalf("bogus, expiring at %v", got.Expires)
		}
		if msg := contradicts(tr, resp, got); msg != "" {
			t.Fatalf("secure, but %s\nreply:\n%v", msg, resp)
		}
		if msg := downgraded(resp, got); msg != "" {
			t.Fatalf("%s\nreply:\n%v", msg, resp)
		}
	})
}

// hostileSeeds adds replies built to break the validator, with the replies it fetches
// for them: they run with every go test, and seed the fuzzer with unusual shapes.
func hostileSeeds(f *testing.F, tr *testTree) {
	// A DNAME synthesised from the wildcard *.wdn.example., validly signed, in the
	// reply to a DS query of the chain of trust, below which unsigned data is claimed.
	r := newResolver(tr)
	r.mutate = func(q question, m *mdns.Msg) {
		if q.name == "a.foo.wdn.example." && q.qtype == mdns.TypeDS {
			m.Rcode, m.Ns = mdns.RcodeSuccess, nil
			m.Answer = renamed(tr.zones["example."].set("*.wdn.example.", mdns.TypeDNAME), "foo.wdn.example.")
		}
	}
	resp := new(mdns.Msg)
	resp.SetQuestion("a.foo.wdn.example.", mdns.TypeA)
	resp.Response = true
	resp.Answer = []mdns.RR{mustRR(f, "a.foo.wdn.example. 60 IN A 192.0.2.1")}
	rec := &recorder{ex: r}
	v, err := New(Config{Anchors: tr.rootAnchor(), Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	if got := v.Validate(context.Background(), rec, resp); got.Status != dns.Bogus {
		f.Fatalf("wildcard DNAME seed: %s (%s), want bogus", got.Status, got.Reason)
	}
	b, err := resp.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, packMsgs(f, rec.msgs))
}

// downgraded returns why a verdict is a downgrade in the fuzz tree, or "": nothing but
// the insecure delegation unsigned.example. and what lies below it may be Insecure (the
// tree has no NSEC3 opt-out and no high iteration counts), and, with a root trust
// anchor, nothing may be Indeterminate.
func downgraded(resp *mdns.Msg, got dns.Validation) string {
	if len(resp.Question) != 1 {
		return ""
	}
	under := func(name string) bool { return isSubdomain(canonical(name), "unsigned.example.") }
	for name, st := range got.Links {
		if st == dns.Insecure && !under(name) {
			return "link " + name + " insecure"
		}
		if st == dns.Indeterminate {
			return "link " + name + " indeterminate"
		}
	}
	switch got.Status {
	case dns.Indeterminate:
		return "indeterminate under a root trust anchor: " + got.Reason
	case dns.Insecure:
		// The name the verdict speaks of: the question's, or the end of the chain.
		q := resp.Question[0]
		ans := newSection(resp.Answer)
		cur := canonical(q.Name)
		seen := map[string]bool{cur: true}
		for {
			cn := ans.get(cur, mdns.TypeCNAME)
			if ans.get(cur, q.Qtype) != nil || q.Qtype == mdns.TypeCNAME || cn == nil {
				break
			}
			target, ok := cnameTarget(cn)
			if !ok || seen[target] {
				break
			}
			seen[target] = true
			cur = target
		}
		for name := range seen {
			if under(name) {
				return ""
			}
		}
		return "insecure for " + cur + ", in the signed part of the tree: " + got.Reason
	}
	return ""
}

// contradicts returns what in a reply judged Secure (in its answer or its links) the
// signed tree does not say, or "" if nothing.
func contradicts(tr *testTree, resp *mdns.Msg, got dns.Validation) string {
	if len(resp.Question) != 1 {
		return ""
	}
	q := resp.Question[0]
	switch q.Qtype {
	case mdns.TypeNSEC, mdns.TypeNSEC3, mdns.TypeRRSIG:
		return "" // the tree keeps these apart from its data
	}
	ans := newSection(resp.Answer)
	cur := canonical(q.Name)
	seen := map[string]bool{cur: true}
	for {
		if set := ans.get(cur, q.Qtype); set != nil {
			if got.Status != dns.Secure {
				return ""
			}
			if want, have := truthRecords(tr, cur, q.Qtype), rdataOf(set.rrs); !slices.Equal(want, have) {
				return "the tree has " + strings.Join(want, ", ") + " for " + cur + ", the reply " + strings.Join(have, ", ")
			}
			return ""
		}
		if q.Qtype == mdns.TypeCNAME {
			break
		}
		cn := ans.get(cur, mdns.TypeCNAME)
		if cn == nil {
			break
		}
		target, ok := cnameTarget(cn)
		if got.Links[cur] == dns.Secure {
			if want, have := truthRecords(tr, cur, mdns.TypeCNAME), rdataOf(cn.rrs); !slices.Equal(want, have) {
				return "link " + cur + " is secure, but the tree has " + strings.Join(want, ", ")
			}
		}
		if !ok || seen[target] {
			return ""
		}
		seen[target] = true
		cur = target
	}
	if got.Status != dns.Secure || resp.Rcode == mdns.RcodeSuccess && len(newSection(resp.Ns).ofType(mdns.TypeSOA)) == 0 && len(got.Links) > 0 {
		return ""
	}
	truth := tr.answer(cur, q.Qtype)
	for _, rr := range truth.Answer {
		if canonical(rr.Header().Name) == cur && (rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == mdns.TypeCNAME) {
			return "denial of " + cur + " " + mdns.TypeToString[q.Qtype] + " judged secure, but the tree has " + rr.String()
		}
	}
	if resp.Rcode == mdns.RcodeNameError && truth.Rcode != mdns.RcodeNameError {
		return "NXDOMAIN for " + cur + " judged secure, but the name exists"
	}
	return ""
}

// truthRecords returns the tree's records of name and t, as normalised RDATA.
func truthRecords(tr *testTree, name string, t uint16) []string {
	var rrs []mdns.RR
	for _, rr := range tr.answer(name, t).Answer {
		if canonical(rr.Header().Name) == name && rr.Header().Rrtype == t {
			rrs = append(rrs, rr)
		}
	}
	return rdataOf(rrs)
}

// rdataOf returns the RDATA of the records in a comparable form: lower case, sorted,
// without duplicates.
func rdataOf(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		s := strings.ToLower(strings.TrimPrefix(rr.String(), h.String()))
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
