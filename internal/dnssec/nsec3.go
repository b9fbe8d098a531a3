package dnssec

import (
	"strings"

	mdns "github.com/miekg/dns"
)

// maxNSEC3Hashes bounds the NSEC3 hash computations of one Validate call
// (CVE-2023-50868): enough for closest encloser proofs of deep names along a chain.
const maxNSEC3Hashes = 256

// nsec3Record is one usable NSEC3 record of the authority section.
type nsec3Record struct {
	hash, next string // owner hash and next hashed owner, upper-case base32hex
	optOut     bool
	types      []uint16
	iterations uint16
	salt       string
	set        *rrset
}

// sha1HashLen is the length of a SHA-1 hash in base32hex.
const sha1HashLen = 32

// validHash reports whether s is an upper-case base32hex SHA-1 hash.
func validHash(s string) bool {
	if len(s) != sha1HashLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('0' <= b && b <= '9' || 'A' <= b && b <= 'V') {
			return false
		}
	}
	return true
}

// collectNSEC3 gathers the NSEC3 records the prover may use: owned by a hash directly
// below the zone apex, with hash algorithm SHA-1 and no flags but opt-out (RFC 5155
// §8.1, §8.2: others are ignored), all with the same parameters (those of the first).
func (p *prover) collectNSEC3() {
	for _, set := range p.auth.ofType(mdns.TypeNSEC3) {
		if set.name == "." || parent(set.name) != p.z.name {
			continue
		}
		r, ok := set.rrs[0].(*mdns.NSEC3)
		if !ok || r.Hash != mdns.SHA1 || r.Flags&^1 != 0 {
			continue
		}
		rec := nsec3Record{
			hash:       strings.ToUpper(strings.SplitN(set.name, ".", 2)[0]),
			next:       strings.ToUpper(r.NextDomain),
			optOut:     r.Flags&1 != 0,
			types:      r.TypeBitMap,
			iterations: r.Iterations,
			salt:       strings.ToUpper(r.Salt),
			set:        set,
		}
		if !validHash(rec.hash) || !validHash(rec.next) {
			continue
		}
		if p.params == nil {
			p.params = &rec
		} else if rec.iterations != p.params.iterations || rec.salt != p.params.salt {
			continue
		}
		p.nsec3s = append(p.nsec3s, rec)
	}
}

type hashKey struct {
	name       string
	iterations uint16
	salt       string
}

// hash returns the NSEC3 hash of name with the prover's parameters, or "" when the
// per-call budget of hash computations is spent or the name cannot be hashed.
func (p *prover) hash(name string) string {
	c := p.c
	k := hashKey{name: name, iterations: p.params.iterations, salt: p.params.salt}
	if h, ok := c.hashes[k]; ok {
		return h
	}
	if c.hashBudget <= 0 {
		return ""
	}
	c.hashBudget--
	h := mdns.HashName(name, mdns.SHA1, k.iterations, k.salt)
	c.hashes[k] = h
	return h
}

// nsec3Matching returns the verified NSEC3 record whose owner hash is name's, or nil.
func (p *prover) nsec3Matching(name string) *nsec3Record {
	h := p.hash(name)
	if h == "" {
		return nil
	}
	for i := range p.nsec3s {
		r := &p.nsec3s[i]
		if r.hash == h && p.check(r.set) {
			return r
		}
	}
	return nil
}

// nsec3Covering returns a verified NSEC3 record whose span strictly contains name's
// hash, or nil.
func (p *prover) nsec3Covering(name string) *nsec3Record {
	h := p.hash(name)
	if h == "" {
		return nil
	}
	for i := range p.nsec3s {
		r := &p.nsec3s[i]
		if nsec3Covers(r.hash, r.next, h) && p.check(r.set) {
			return r
		}
	}
	return nil
}

// tooManyIterations returns an Insecure denial when the zone's NSEC3 iteration count
// exceeds the configured limit: RFC 9276 §3.2 lets a validator treat such proofs as
// insecure instead of paying for the hashes. The claim is believed only from a record
// that verifies, so an attacker cannot forge it to downgrade a zone.
func (p *prover) tooManyIterations() (denial, bool) {
	if int(p.params.iterations) <= p.c.v.maxIterations {
		return denial{}, false
	}
	if !p.check(p.params.set) {
		return p.fail(edeDNSSECBogus, "NSEC3 record of %s does not verify", p.z.name), true
	}
	return p.insecure(insecure(edeUnsupportedNSEC3Iters, "NSEC3 records of %s use %d iterations, more than %d",
		p.z.name, p.params.iterations, p.c.v.maxIterations)), true
}

// enclosure is a closest encloser proof (RFC 5155 §8.3).
type enclosure struct {
	ce         string       // the closest encloser, which exists
	nextCloser string       // one label longer, towards the name; it does not exist
	cover      *nsec3Record // the record covering the next closer name
}

// closestEncloser finds the closest encloser proof for name: the longest ancestor that
// an NSEC3 record matches, with the next closer name covered. It reports exists when a
// record matches name itself. The matching record must not be a delegation or DNAME,
// below which the zone proves nothing (RFC 5155 §8.3).
func (p *prover) closestEncloser(name string) (e enclosure, exists bool, d denial) {
	if !isSubdomain(name, p.z.name) {
		return e, false, p.fail(edeDNSSECBogus, "%s is not in zone %s", name, p.z.name)
	}
	top := mdns.CountLabel(p.z.name)
	for n := mdns.CountLabel(name); n >= top; n-- {
		x := ancestor(name, n)
		m := p.nsec3Matching(x)
		if m == nil {
			if p.c.hashBudget <= 0 {
				return e, false, p.fail(edeDNSSECBogus, "limit of %d NSEC3 hash computations per reply reached", maxNSEC3Hashes)
			}
			continue
		}
		if x == name {
			return e, true, denial{}
		}
		if delegationOrDNAME(m.types) {
			return e, false, p.fail(edeDNSSECBogus, "closest encloser %s of %s is a delegation or DNAME", x, name)
		}
		nc := ancestor(name, n+1)
		cov := p.nsec3Covering(nc)
		if cov == nil {
			return e, false, p.fail(edeNSECMissing, "no NSEC3 covers %s, the next closer name of %s", nc, name)
		}
		return enclosure{ce: x, nextCloser: nc, cover: cov}, false, denial{}
	}
	return e, false, p.fail(edeNSECMissing, "no NSEC3 proves a closest encloser of %s", name)
}

// nsec3NXDomain proves that name does not exist (RFC 5155 §8.4): a closest encloser
// proof and a record covering the wildcard at the closest encloser. When the record
// covering the next closer name has opt-out, an unsigned delegation may hide there, and
// the answer is Insecure (RFC 5155 §6).
func (p *prover) nsec3NXDomain(name string) denial {
	if d, ok := p.tooManyIterations(); ok {
		return d
	}
	e, exists, d := p.closestEncloser(name)
	switch {
	case exists:
		return p.fail(edeDNSSECBogus, "NSEC3 shows %s exists, yet the reply says NXDOMAIN", name)
	case e.cover == nil:
		return d
	}
	wild := wildcardAt(e.ce)
	if p.nsec3Matching(wild) != nil {
		return p.fail(edeDNSSECBogus, "wildcard %s exists, yet the reply says %s does not", wild, name)
	}
	if p.nsec3Covering(wild) == nil {
		return p.fail(edeNSECMissing, "no NSEC3 proves that wildcard %s does not exist", wild)
	}
	if e.cover.optOut {
		return p.optOut(e)
	}
	return p.result(denyNXDomain, false)
}

func (p *prover) optOut(e enclosure) denial {
	return p.insecure(insecure(0, "NSEC3 opt-out span of %s covers %s, which may be an unsigned delegation", p.z.name, e.nextCloser))
}

// nsec3NoData proves that name has no records of qtype (RFC 5155 §8.5–8.7): a record
// matching name without the type; or a closest encloser proof and a matching wildcard
// record without the type; or, with opt-out covering the next closer name, no proof
// either way (RFC 5155 §8.6 for DS, where it is an insecure delegation; for other
// types an empty non-terminal left out of an opt-out chain).
func (p *prover) nsec3NoData(name string, qtype uint16) denial {
	if d, ok := p.tooManyIterations(); ok {
		return d
	}
	if m := p.nsec3Matching(name); m != nil {
		return p.bitmapNoData(name, qtype, m.types, "NSEC3")
	}
	e, exists, d := p.closestEncloser(name)
	switch {
	case exists:
		// The record matching name failed to verify after being found unverified by
		// hash; closestEncloser only finds verified ones, so this cannot happen.
		return p.fail(edeDNSSECBogus, "NSEC3 for %s does not verify", name)
	case e.cover == nil:
		return d
	}
	if w := p.nsec3Matching(wildcardAt(e.ce)); w != nil {
		if d := p.bitmapNoData(wildcardAt(e.ce), qtype, w.types, "NSEC3"); d.kind != denyNoData || d.delegation {
			return p.fail(edeDNSSECBogus, "wildcard NSEC3 does not deny %s %s", name, mdns.TypeToString[qtype])
		}
		return p.result(denyNoData, false)
	}
	if e.cover.optOut {
		return p.optOut(e)
	}
	return p.fail(edeNSECMissing, "no NSEC3 proves that %s %s does not exist", name, mdns.TypeToString[qtype])
}

// nsec3Wildcard checks the proof for a wildcard answer at owner synthesised from
// "*.<ce>": an NSEC3 record covers the next closer name (RFC 5155 §8.8).
func (p *prover) nsec3Wildcard(owner, ce string) verdict {
	if d, ok := p.tooManyIterations(); ok {
		return d.v
	}
	nc := ancestor(owner, mdns.CountLabel(ce)+1)
	if p.nsec3Covering(nc) != nil {
		return secure().until(p.sigExpires)
	}
	return p.fail(edeNSECMissing, "no NSEC3 proves that %s does not exist, as the wildcard answer for %s needs", nc, owner).v
}
