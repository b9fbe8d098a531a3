package dnssec

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// Config configures a Validator. Every field has a default.
type Config struct {
	// Anchors are the trust anchors: *mdns.DS and *mdns.DNSKEY records, for the root or
	// any other zone. Nil means RootAnchors.
	Anchors []mdns.RR
	// Now is the clock against which signature validity and cache lifetimes are judged.
	// Default time.Now.
	Now func() time.Time
	// MaxValidations bounds the cryptographic signature verifications of one Validate
	// call, the KeyTrap bound (CVE-2023-50387). Default 64.
	MaxValidations int
	// MaxNSEC3Iterations is the NSEC3 iteration count above which denials are treated
	// as Insecure rather than checked (RFC 9276 §3.2). Default 150, as in Unbound 1.17.
	MaxNSEC3Iterations int
	// KeyCacheSize is how many results of the chain of trust (validated DNSKEY sets,
	// proven delegations) are kept. Default 1024; negative disables the cache.
	KeyCacheSize int
}

// Validator judges the DNSSEC status of replies; it implements dns.Validator. It is
// safe for concurrent use.
type Validator struct {
	anchors        []*anchor
	now            func() time.Time
	maxValidations int
	maxIterations  int
	cache          *keyCache

	// verifications counts cryptographic signature verifications, for tests of the
	// KeyTrap bounds and of the cache.
	verifications atomic.Int64
}

var _ dns.Validator = (*Validator)(nil)

// New returns a Validator for c.
func New(c Config) (*Validator, error) {
	v := &Validator{
		now:            c.Now,
		maxValidations: c.MaxValidations,
		maxIterations:  c.MaxNSEC3Iterations,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxValidations <= 0 {
		v.maxValidations = 64
	}
	if v.maxIterations <= 0 {
		v.maxIterations = 150
	}
	size := c.KeyCacheSize
	if size == 0 {
		size = 1024
	}
	v.cache = newKeyCache(size)
	rrs := c.Anchors
	if rrs == nil {
		rrs = RootAnchors()
	}
	anchors, err := groupAnchors(rrs)
	if err != nil {
		return nil, fmt.Errorf("dnssec: trust anchors: %w", err)
	}
	v.anchors = anchors
	return v, nil
}

// groupAnchors sorts trust anchor records by zone.
func groupAnchors(rrs []mdns.RR) ([]*anchor, error) {
	if len(rrs) == 0 {
		return nil, errors.New("none given")
	}
	var out []*anchor
	byName := make(map[string]*anchor)
	for _, rr := range rrs {
		name := canonical(rr.Header().Name)
		a := byName[name]
		if a == nil {
			a = &anchor{name: name}
			byName[name] = a
			out = append(out, a)
		}
		switch r := rr.(type) {
		case *mdns.DS:
			a.ds = append(a.ds, r)
		case *mdns.DNSKEY:
			a.keys = append(a.keys, r)
		default:
			return nil, fmt.Errorf("%s: type %s is not DS or DNSKEY", name, mdns.TypeToString[rr.Header().Rrtype])
		}
	}
	return out, nil
}

// call is the state of one Validate call: its clock reading and its budgets.
type call struct {
	v          *Validator
	ex         dns.Exchanger
	now        time.Time
	verifyLeft int
	hashBudget int
	fetches    int
	hashes     map[hashKey]string
	chains     map[string]chain
}

// spendVerification takes one signature verification from the budget.
func (c *call) spendVerification() bool {
	if c.verifyLeft <= 0 {
		return false
	}
	c.verifyLeft--
	c.v.verifications.Add(1)
	return true
}

// maxChainLinks bounds the CNAME links of one reply that are validated; the client
// gives up on longer chains anyway.
const maxChainLinks = 16

// Validate judges resp, a reply fetched with DO and CD, asking ex for the DS and DNSKEY
// records the chain of trust needs. The Status is that of the RRset answering the
// question at the end of any CNAME chain, or of the proof that there is none; Links
// holds the status of each CNAME link; a Bogus link makes the whole reply Bogus.
func (v *Validator) Validate(ctx context.Context, ex dns.Exchanger, resp *mdns.Msg) dns.Validation {
	c := &call{
		v:          v,
		ex:         ex,
		now:        v.now(),
		verifyLeft: v.maxValidations,
		hashBudget: maxNSEC3Hashes,
		hashes:     make(map[hashKey]string),
		chains:     make(map[string]chain),
	}
	links, vd := c.validate(ctx, resp)
	out := dns.Validation{Status: vd.status, Links: links, EDE: vd.ede}
	if vd.status != dns.Secure {
		out.Reason = vd.reason
	}
	return out
}

func (c *call) validate(ctx context.Context, resp *mdns.Msg) (map[string]dns.Status, verdict) {
	if resp == nil || len(resp.Question) != 1 {
		return nil, bogus(edeDNSSECBogus, "reply does not have exactly one question")
	}
	q := resp.Question[0]
	qname := canonical(q.Name)
	switch {
	case q.Qclass != mdns.ClassINET:
		return nil, bogus(edeDNSSECBogus, "question class %s cannot be validated", mdns.ClassToString[q.Qclass])
	case q.Qtype == mdns.TypeRRSIG || q.Qtype == mdns.TypeANY || q.Qtype == mdns.TypeOPT ||
		q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR:
		return nil, bogus(edeDNSSECBogus, "question type %s cannot be validated", mdns.TypeToString[q.Qtype])
	case resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError:
		return nil, bogus(edeDNSSECBogus, "reply has rcode %s", mdns.RcodeToString[resp.Rcode])
	}
	ans, auth := newSection(resp.Answer), newSection(resp.Ns)

	// Follow the answer section the way the client does (internal/dns walk): the
	// records of the question's type at the current name, else its CNAME.
	var links map[string]dns.Status
	var linkVerdicts []verdict
	cur := qname
	seen := map[string]bool{cur: true}
	for {
		if set := ans.get(cur, q.Qtype); set != nil {
			if resp.Rcode != mdns.RcodeSuccess {
				return links, bogus(edeDNSSECBogus, "NXDOMAIN reply carries %s %s", cur, mdns.TypeToString[q.Qtype])
			}
			return links, c.positive(ctx, set, auth)
		}
		if q.Qtype == mdns.TypeCNAME {
			break
		}
		cn := ans.get(cur, mdns.TypeCNAME)
		if cn == nil {
			break
		}
		if len(links) >= maxChainLinks {
			return links, bogus(edeDNSSECBogus, "more than %d CNAME links", maxChainLinks)
		}
		lv := c.link(ctx, cn, ans, auth)
		if links == nil {
			links = make(map[string]dns.Status)
		}
		links[cur] = lv.status
		if lv.status == dns.Bogus {
			return links, lv.wrap("CNAME %s", cur)
		}
		linkVerdicts = append(linkVerdicts, lv)
		target, ok := cnameTarget(cn)
		if !ok || seen[target] {
			// A loop; the client reports it. Nothing further to judge.
			return links, weakest(linkVerdicts)
		}
		seen[target] = true
		cur = target
	}

	// No records of the type at cur: a denial, unless the reply simply stops at a CNAME
	// without an SOA, in which case the client asks for the target separately and
	// that reply is judged on its own (internal/dns step.complete).
	if len(links) > 0 && resp.Rcode == mdns.RcodeSuccess && len(auth.ofType(mdns.TypeSOA)) == 0 {
		return links, weakest(linkVerdicts)
	}
	return links, c.negative(ctx, cur, q.Qtype, resp.Rcode == mdns.RcodeNameError, auth)
}

// weakest returns the least trustworthy of the verdicts (Secure for none).
func weakest(vs []verdict) verdict {
	w := secure()
	for _, v := range vs {
		if dns.Weakest(w.status, v.status) != w.status {
			w = v
		}
	}
	return w
}

// link judges one CNAME RRset of the chain. A CNAME synthesised from a DNAME carries no
// signature of its own; it is as good as the DNAME it follows from (RFC 6672 §5.3.1).
func (c *call) link(ctx context.Context, cn *rrset, ans, auth *section) verdict {
	target, ok := cnameTarget(cn)
	if !ok {
		return bogus(edeDNSSECBogus, "malformed CNAME at %s", cn.name)
	}
	if len(cn.sigs) == 0 {
		for _, d := range ans.ofType(mdns.TypeDNAME) {
			if d.name == "." || !isProperSubdomain(cn.name, d.name) {
				continue
			}
			dn, ok := d.rrs[0].(*mdns.DNAME)
			if !ok || len(d.rrs) != 1 {
				continue
			}
			// The owner's labels below the DNAME, moved under its target (RFC 6672 §2.2).
			prefix := cn.name[:len(cn.name)-len(d.name)]
			if prefix+canonical(dn.Target) == target {
				return c.positive(ctx, d, auth)
			}
		}
	}
	if len(cn.rrs) != 1 {
		return bogus(edeDNSSECBogus, "%d CNAME records at %s", len(cn.rrs), cn.name)
	}
	return c.positive(ctx, cn, auth)
}

// cnameTarget returns the target of a CNAME RRset, canonical.
func cnameTarget(set *rrset) (string, bool) {
	c, ok := set.rrs[0].(*mdns.CNAME)
	if !ok {
		return "", false
	}
	return canonical(c.Target), true
}

// positive judges one RRset of the answer section: Secure if a signature by the zone it
// belongs to verifies (with a proof for a wildcard expansion), Insecure if the chain of
// trust proves that zone unsigned, Bogus otherwise, including for unsigned data in a
// signed zone (RFC 4035 §5.3, §4.3).
func (c *call) positive(ctx context.Context, set *rrset, auth *section) verdict {
	what := set.name + " " + mdns.TypeToString[set.typ]
	// Candidate signers: zones at or above the owner, or strictly above it for DS,
	// which the parent signs. Others cannot have signed the data.
	var signers []string
	seen := make(map[string]bool)
	for _, sig := range set.sigs {
		s := canonical(sig.SignerName)
		if seen[s] || !isSubdomain(set.name, s) || set.typ == mdns.TypeDS && s == set.name && s != "." {
			continue
		}
		seen[s] = true
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		// Unsigned, as far as anything valid goes: fine only if the chain of trust
		// proves the owner's zone unsigned.
		ch := c.chainTo(ctx, set.name)
		if ch.v.ok() {
			if len(set.sigs) > 0 {
				return bogus(edeRRSIGsMissing, "no valid signer for %s: signatures name zones that do not contain it", what)
			}
			return bogus(edeRRSIGsMissing, "no signatures for %s in signed zone %s", what, ch.z.name)
		}
		return ch.v
	}
	const maxSigners = 3
	var fail verdict
	for i, s := range signers {
		if i == maxSigners {
			break
		}
		ch := c.chainTo(ctx, s)
		switch {
		case ch.v.status == dns.Insecure || ch.v.status == dns.Indeterminate:
			// The signer's zone, and so the data below it, is not under a secure
			// chain: the signatures prove nothing, but nothing is missing either.
			return ch.v
		case !ch.v.ok():
			if fail.status == "" {
				fail = ch.v
			}
			continue
		case ch.z.name != s:
			if fail.status == "" {
				fail = bogus(edeDNSSECBogus, "%s is signed by %s, which is not a zone apex (the zone is %s)", what, s, ch.z.name)
			}
			continue
		}
		chk := c.verify(set, ch.z)
		if !chk.v.ok() {
			if fail.status == "" {
				fail = chk.v
			}
			continue
		}
		if int(chk.labels) < ownerLabels(set.name) {
			if v := c.wildcardProof(ch.z, set.name, chk.labels, auth); !v.ok() {
				return v.wrap("wildcard answer %s", what)
			}
		}
		return secure()
	}
	return fail
}

// negative judges a denial: that name does not exist (nx) or has no qtype records.
// The zone is the one whose signatures the NSEC, NSEC3 and SOA records carry; without
// any, the denial is Insecure only if the chain of trust proves the name unsigned.
func (c *call) negative(ctx context.Context, name string, qtype uint16, nx bool, auth *section) verdict {
	what := name + " " + mdns.TypeToString[qtype]
	var zoneName string
	for _, s := range auth.signers(mdns.TypeNSEC, mdns.TypeNSEC3, mdns.TypeSOA) {
		if !isSubdomain(name, s) || qtype == mdns.TypeDS && s == name && s != "." {
			continue
		}
		if zoneName == "" || mdns.CountLabel(s) > mdns.CountLabel(zoneName) {
			zoneName = s
		}
	}
	if zoneName == "" {
		ch := c.chainTo(ctx, name)
		if ch.v.ok() {
			return bogus(edeNSECMissing, "unsigned denial of %s in signed zone %s", what, ch.z.name)
		}
		return ch.v
	}
	ch := c.chainTo(ctx, zoneName)
	switch {
	case !ch.v.ok():
		return ch.v
	case ch.z.name != zoneName:
		return bogus(edeDNSSECBogus, "denial of %s is signed by %s, which is not a zone apex (the zone is %s)", what, zoneName, ch.z.name)
	}
	d := c.deny(ch.z, name, qtype, nx, auth)
	switch d.kind {
	case denyNXDomain, denyNoData:
		return secure()
	case denyInsecure:
		return d.v
	}
	return d.v.wrap("denial of %s", what)
}
