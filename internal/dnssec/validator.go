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

// exhausted reports whether any of the call's budgets is spent.
func (c *call) exhausted() bool {
	return c.verifyLeft <= 0 || c.hashBudget <= 0 || c.fetches >= maxFetches
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
	if vd.status != dns.Bogus {
		// A cached verdict must not outlive the signatures it rests on (RFC 4035
		// §5.3.3); a bogus one is not cached at all.
		out.Expires = vd.expires
	}
	return out
}

// validate returns the status of each link and the verdict on the reply: that of its
// final RRset or denial, bounded also by the signatures of the links before it.
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
			return links, boundedBy(c.positive(ctx, set, auth), linkVerdicts)
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
			return links, boundedBy(weakest(linkVerdicts), linkVerdicts)
		}
		seen[target] = true
		cur = target
	}

	// No records of the type at cur: a denial, unless the reply simply stops at a CNAME
	// without an SOA, in which case the client asks for the target separately and
	// that reply is judged on its own (internal/dns step.complete).
	if len(links) > 0 && resp.Rcode == mdns.RcodeSuccess && len(auth.ofType(mdns.TypeSOA)) == 0 {
		return links, boundedBy(weakest(linkVerdicts), linkVerdicts)
	}
	// The rcode speaks of the last name of the chain (RFC 6604 §3): NXDOMAIN after a
	// CNAME denies its target, not the question's name.
	return links, boundedBy(c.negative(ctx, cur, q.Qtype, resp.Rcode == mdns.RcodeNameError, auth), linkVerdicts)
}

// boundedBy returns v bounded also by the signatures of the links before it: a cached
// reply carries their statuses too.
func boundedBy(v verdict, links []verdict) verdict {
	for _, l := range links {
		v = v.until(l.expires)
	}
	return v
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
// signature of its own; it is as good as the DNAME it follows from (RFC 6672 §5.3.1),
// provided its target is exactly the one the DNAME gives.
func (c *call) link(ctx context.Context, cn *rrset, ans, auth *section) verdict {
	target, ok := cnameTarget(cn)
	switch {
	case !ok:
		return bogus(edeDNSSECBogus, "malformed CNAME at %s", cn.name)
	case len(cn.rrs) != 1:
		// An alias has one target (RFC 2181 §10.1); the client would follow the first.
		return bogus(edeDNSSECBogus, "%d CNAME records at %s", len(cn.rrs), cn.name)
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
			if synthesise(cn.name, d.name, canonical(dn.Target)) == target {
				return c.positive(ctx, d, auth)
			}
		}
	}
	return c.positive(ctx, cn, auth)
}

// synthesise returns the target of the CNAME a DNAME at owner with target dnameTarget
// gives name, which lies below owner: the labels of name below owner moved under the
// target (RFC 6672 §2.2).
func synthesise(name, owner, dnameTarget string) string {
	prefix := name[:len(name)-len(owner)] // ends with the dot before owner
	if dnameTarget == "." {
		return prefix
	}
	return prefix + dnameTarget
}

// holder returns the name whose zone holds the records of name and type t: name
// itself, or its parent for DS, which lives on the parent's side of a zone cut (RFC
// 4035 §5.2).
func holder(name string, t uint16) string {
	if t == mdns.TypeDS && name != "." {
		return parent(name)
	}
	return name
}

// governingAnchor returns the trust anchor that governs the records of name and type
// t: the closest one above the name whose zone holds them.
func (c *call) governingAnchor(name string, t uint16) *anchor {
	return c.v.anchorFor(holder(name, t))
}

// mayHaveSigned reports whether the zone named signer may have signed data of name and
// type t: a zone at or above the name, strictly above it for DS, and no higher than the
// trust anchor a that governs the name. A signer above a would be judged by another
// anchor's chain of trust, or none: an attacker could name it to make data of a
// secure island look insecure, or indeterminate.
func mayHaveSigned(signer, name string, t uint16, a *anchor) bool {
	switch {
	case !isSubdomain(name, signer), !isSubdomain(signer, a.name):
		return false
	case t == mdns.TypeDS && signer == name && signer != ".":
		return false
	}
	return true
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
// signed zone (RFC 4035 §5.3, §4.3). The signer names are the attacker's to choose:
// only zones between the governing trust anchor and the owner are tried, and a
// signature that verifies wins over a signer whose chain is insecure.
func (c *call) positive(ctx context.Context, set *rrset, auth *section) verdict {
	what := set.name + " " + mdns.TypeToString[set.typ]
	a := c.governingAnchor(set.name, set.typ)
	if a == nil {
		return indeterminate("no trust anchor covers %s", set.name)
	}
	// Candidate signers; others cannot have signed the data.
	var signers []string
	seen := make(map[string]bool)
	for _, sig := range set.sigs {
		s := canonical(sig.SignerName)
		if seen[s] || !mayHaveSigned(s, set.name, set.typ, a) {
			continue
		}
		seen[s] = true
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		// Unsigned, as far as anything valid goes: fine only if the chain of trust
		// proves the zone that holds the data unsigned.
		ch := c.chainTo(ctx, holder(set.name, set.typ))
		if ch.v.ok() {
			if len(set.sigs) > 0 {
				return bogus(edeRRSIGsMissing, "no valid signer for %s: signatures name zones that do not contain it", what)
			}
			return bogus(edeRRSIGsMissing, "no signatures for %s in signed zone %s", what, ch.z.name)
		}
		return ch.v
	}
	const maxSigners = 3
	var fail, weak verdict
	for i, s := range signers {
		if i == maxSigners {
			break
		}
		ch := c.chainTo(ctx, s)
		switch {
		case ch.v.status == dns.Insecure || ch.v.status == dns.Indeterminate:
			// The signer's zone, and so the data below it, is not under a secure
			// chain: the signatures prove nothing, but nothing is missing either;
			// unless another signer's signature verifies.
			if weak.status == "" {
				weak = ch.v
			}
			continue
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
		v := chk.v.until(ch.v.expires)
		if int(chk.labels) < ownerLabels(set.name) {
			w := c.wildcardProof(ch.z, set.name, chk.labels, auth)
			if !w.ok() {
				return w.until(v.expires).wrap("wildcard answer %s", what)
			}
			v = v.until(w.expires)
		}
		return v
	}
	if weak.status != "" {
		return weak
	}
	return fail
}

// negative judges a denial: that name does not exist (nx) or has no qtype records.
// The zone is the deepest of those whose signatures the NSEC, NSEC3 and SOA records
// carry, between the governing trust anchor and the name; without any, the denial is
// Insecure only if the chain of trust proves the zone that would hold the records
// unsigned.
func (c *call) negative(ctx context.Context, name string, qtype uint16, nx bool, auth *section) verdict {
	what := name + " " + mdns.TypeToString[qtype]
	a := c.governingAnchor(name, qtype)
	if a == nil {
		return indeterminate("no trust anchor covers %s", name)
	}
	var zoneName string
	for _, s := range auth.signers(mdns.TypeNSEC, mdns.TypeNSEC3, mdns.TypeSOA) {
		if !mayHaveSigned(s, name, qtype, a) {
			continue
		}
		if zoneName == "" || mdns.CountLabel(s) > mdns.CountLabel(zoneName) {
			zoneName = s
		}
	}
	if zoneName == "" {
		ch := c.chainTo(ctx, holder(name, qtype))
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
		return secure().until(ch.v.expires).until(d.sigExpires)
	case denyInsecure:
		return d.v.until(ch.v.expires)
	}
	return d.v.wrap("denial of %s", what)
}
