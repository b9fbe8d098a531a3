package dnssec

import (
	"time"

	mdns "github.com/miekg/dns"
)

// This file proves denials of existence from the authority section of a reply: that a
// name does not exist (NXDOMAIN), that it has no records of a type (NODATA), and that a
// wildcard answer was not synthesised for a name that exists. NSEC proofs follow RFC
// 4035 §5.4 and RFC 6840 §4; NSEC3 proofs, in nsec3.go, RFC 5155 §8.

// denialKind is what a denial proof established.
type denialKind uint8

const (
	denyFailed   denialKind = iota // nothing: the reply is bogus
	denyNXDomain                   // the name does not exist
	denyNoData                     // the name exists without the type
	denyInsecure                   // no proof either way, legitimately: opt-out, NSEC3 iterations
)

type denial struct {
	kind denialKind
	// delegation is set for a NODATA proof at a delegation point (NS without SOA in
	// the bitmap): for a DS question, an insecure delegation.
	delegation bool
	v          verdict   // why, for denyFailed and denyInsecure
	expires    time.Time // when the records of the proof expire
	sigExpires time.Time // when the first of the signatures the proof used expires
}

// prover checks denial records of one zone, verifying each RRset only when a proof
// needs it, and at most once.
type prover struct {
	c       *call
	z       *zone
	auth    *section
	checked map[setKey]checked
	// failure is the first failed verification of a record the proof needed: it is a
	// better reason than "no proof" (an expired NSEC signature is EDE 7, not 12).
	failure    *verdict
	expires    time.Time
	sigExpires time.Time

	nsecs  []nsecRecord
	nsec3s []nsec3Record
	params *nsec3Record // the NSEC3 parameters in use: those of the first usable record
}

func (c *call) newProver(z *zone, auth *section) *prover {
	p := &prover{c: c, z: z, auth: auth, checked: make(map[setKey]checked), expires: farFuture}
	for _, set := range auth.ofType(mdns.TypeNSEC) {
		if !isSubdomain(set.name, z.name) {
			continue
		}
		if r, ok := set.rrs[0].(*mdns.NSEC); ok && isSubdomain(canonical(r.NextDomain), z.name) {
			p.nsecs = append(p.nsecs, nsecRecord{owner: set.name, next: canonical(r.NextDomain), types: r.TypeBitMap, set: set})
		}
	}
	p.collectNSEC3()
	return p
}

// check verifies one RRset of the proof with the zone's keys. Records of a denial are
// never wildcard expansions, so the signature must cover the owner name as it is.
func (p *prover) check(set *rrset) bool {
	k := setKey{name: set.name, typ: set.typ}
	chk, ok := p.checked[k]
	if !ok {
		chk = p.c.verify(set, p.z)
		if chk.v.ok() && int(chk.labels) != ownerLabels(set.name) {
			chk.v = bogus(edeDNSSECBogus, "%s %s is signed as a wildcard expansion", set.name, mdns.TypeToString[set.typ])
		}
		p.checked[k] = chk
	}
	if !chk.v.ok() {
		if p.failure == nil {
			v := chk.v
			p.failure = &v
		}
		return false
	}
	p.expires = earliest(p.expires, chk.expires)
	p.sigExpires = soonest(p.sigExpires, chk.sigExpires)
	return true
}

// fail returns a failed denial, preferring the reason of a record that did not verify.
func (p *prover) fail(code uint16, format string, args ...any) denial {
	if p.failure != nil {
		return denial{kind: denyFailed, v: *p.failure}
	}
	return denial{kind: denyFailed, v: bogus(code, format, args...)}
}

func (p *prover) result(kind denialKind, delegation bool) denial {
	return denial{kind: kind, delegation: delegation, expires: p.expires, sigExpires: p.sigExpires}
}

// insecure returns a denial that proves nothing either way, legitimately (opt-out, too
// many NSEC3 iterations), resting on the records the prover checked.
func (p *prover) insecure(v verdict) denial {
	return denial{kind: denyInsecure, v: v.until(p.sigExpires), expires: p.expires, sigExpires: p.sigExpires}
}

// deny proves that name has no records of qtype (nx false: NODATA) or does not exist at
// all (nx true: NXDOMAIN), in zone z, from the authority section auth.
func (c *call) deny(z *zone, name string, qtype uint16, nx bool, auth *section) denial {
	p := c.newProver(z, auth)
	// The SOA sets how long the denial is cached (RFC 2308 §5); when present it must be
	// the zone's own, and genuine.
	for _, set := range auth.ofType(mdns.TypeSOA) {
		if set.name != z.name {
			return p.fail(edeDNSSECBogus, "SOA of %s in a denial from zone %s", set.name, z.name)
		}
		if !p.check(set) {
			return p.fail(edeDNSSECBogus, "SOA of %s does not verify", z.name)
		}
	}
	switch {
	case len(p.nsecs) > 0:
		if nx {
			return p.nsecNXDomain(name)
		}
		return p.nsecNoData(name, qtype)
	case len(p.nsec3s) > 0:
		if nx {
			return p.nsec3NXDomain(name)
		}
		return p.nsec3NoData(name, qtype)
	}
	return p.fail(edeNSECMissing, "no NSEC or NSEC3 records of %s prove that %s %s does not exist",
		z.name, name, mdns.TypeToString[qtype])
}

// nsecRecord is one NSEC record of the authority section, owned by a name in the zone.
type nsecRecord struct {
	owner, next string
	types       []uint16
	set         *rrset
}

// delegationOrDNAME reports whether the record stands at a point below which the zone
// holds no data: a delegation (NS without SOA) or a DNAME. Such a record proves nothing
// about names below its owner (RFC 6840 §4.1, RFC 6672 §5.3.2).
func delegationOrDNAME(types []uint16) bool {
	return hasType(types, mdns.TypeNS) && !hasType(types, mdns.TypeSOA) || hasType(types, mdns.TypeDNAME)
}

// nsecMatching returns the verified NSEC owned by name, or nil.
func (p *prover) nsecMatching(name string) *nsecRecord {
	for i := range p.nsecs {
		r := &p.nsecs[i]
		if r.owner == name && p.check(r.set) {
			return r
		}
	}
	return nil
}

// nsecCovering returns a verified NSEC that proves name does not exist, or nil.
func (p *prover) nsecCovering(name string) *nsecRecord {
	if !isSubdomain(name, p.z.name) {
		return nil
	}
	for i := range p.nsecs {
		r := &p.nsecs[i]
		if !nsecCovers(r.owner, r.next, name) {
			continue
		}
		if isProperSubdomain(name, r.owner) && delegationOrDNAME(r.types) {
			continue
		}
		if p.check(r.set) {
			return r
		}
	}
	return nil
}

// nsecEncloser returns the closest encloser of a name that r covers: the longest
// ancestor of name that the NSEC chain shows to exist, which is the longer of the
// names it shares with r's owner and with r's next name (RFC 4035 §5.4).
func (p *prover) nsecEncloser(name string, r *nsecRecord) string {
	n := max(commonLabels(name, r.owner), commonLabels(name, r.next), mdns.CountLabel(p.z.name))
	return ancestor(name, n)
}

// nsecNoData proves that name exists without records of qtype (RFC 4035 §5.4): an NSEC
// at name without the type; an NSEC covering name whose next name lies below it (name is
// an empty non-terminal); or the wildcard that would match name, without the type.
func (p *prover) nsecNoData(name string, qtype uint16) denial {
	what := name + " " + mdns.TypeToString[qtype]
	if r := p.nsecMatching(name); r != nil {
		return p.bitmapNoData(name, qtype, r.types, "NSEC")
	}
	if r := p.nsecCovering(name); r != nil {
		ce := p.nsecEncloser(name, r)
		if ce == name {
			return p.result(denyNoData, false) // an empty non-terminal
		}
		if w := p.nsecMatching(wildcardAt(ce)); w != nil {
			// Wildcard NODATA (RFC 4035 §3.1.3.4).
			if d := p.bitmapNoData(wildcardAt(ce), qtype, w.types, "NSEC"); d.kind != denyNoData || d.delegation {
				return p.fail(edeDNSSECBogus, "wildcard NSEC does not deny %s", what)
			}
			return p.result(denyNoData, false)
		}
		return p.fail(edeNSECMissing, "no NSEC proves that no wildcard answers %s", what)
	}
	return p.fail(edeNSECMissing, "no NSEC proves that %s does not exist", what)
}

// bitmapNoData checks the type bitmap of the NSEC or NSEC3 record that matches name for
// a NODATA answer to qtype.
func (p *prover) bitmapNoData(name string, qtype uint16, types []uint16, kind string) denial {
	what := name + " " + mdns.TypeToString[qtype]
	switch {
	case hasType(types, qtype):
		return p.fail(edeDNSSECBogus, "%s for %s lists type %s", kind, name, mdns.TypeToString[qtype])
	case qtype != mdns.TypeCNAME && hasType(types, mdns.TypeCNAME):
		return p.fail(edeDNSSECBogus, "%s for %s lists a CNAME, which the reply does not follow", kind, name)
	}
	deleg := hasType(types, mdns.TypeNS) && !hasType(types, mdns.TypeSOA)
	if deleg && qtype != mdns.TypeDS {
		// The parent's record at a zone cut speaks only for the DS RRset; the child is
		// authoritative for every other type (RFC 4035 §5.4, RFC 6840 §4.1).
		return p.fail(edeDNSSECBogus, "%s from the parent side of the delegation at %s cannot deny %s", kind, name, what)
	}
	if qtype == mdns.TypeDS && hasType(types, mdns.TypeSOA) && name != "." {
		// A child apex record cannot deny the DS RRset, which lives in the parent.
		return p.fail(edeDNSSECBogus, "%s from the apex of %s cannot deny its DS records", kind, name)
	}
	return p.result(denyNoData, deleg)
}

// nsecNXDomain proves that name does not exist (RFC 4035 §5.4): an NSEC covers it, and
// an NSEC covers the wildcard at its closest encloser, which therefore does not exist
// either.
func (p *prover) nsecNXDomain(name string) denial {
	r := p.nsecCovering(name)
	if r == nil {
		return p.fail(edeNSECMissing, "no NSEC proves that %s does not exist", name)
	}
	ce := p.nsecEncloser(name, r)
	if ce == name {
		return p.fail(edeDNSSECBogus, "NSEC shows %s exists (an empty non-terminal), yet the reply says NXDOMAIN", name)
	}
	wild := wildcardAt(ce)
	if p.nsecMatching(wild) != nil {
		return p.fail(edeDNSSECBogus, "wildcard %s exists, yet the reply says %s does not", wild, name)
	}
	if p.nsecCovering(wild) == nil {
		return p.fail(edeNSECMissing, "no NSEC proves that wildcard %s does not exist", wild)
	}
	return p.result(denyNXDomain, false)
}

// wildcardProof checks that an answer at owner whose signature has Labels labels,
// fewer than the owner has, was rightly synthesised from the wildcard "*.<ce>": the
// next closer name (ce with one more label of owner) must not exist (RFC 4035 §5.3.4,
// RFC 5155 §8.8). Without that proof a wildcard answer could hide real data.
func (c *call) wildcardProof(z *zone, owner string, labels uint8, auth *section) verdict {
	ce := ancestor(owner, int(labels))
	if !isSubdomain(ce, z.name) {
		return bogus(edeDNSSECBogus, "wildcard answer for %s expands from outside zone %s", owner, z.name)
	}
	p := c.newProver(z, auth)
	if len(p.nsecs) > 0 {
		if r := p.nsecCovering(owner); r != nil && p.nsecEncloser(owner, r) == ce {
			return secure().until(p.sigExpires)
		}
		return p.fail(edeNSECMissing, "no NSEC proves that %s does not exist, as its wildcard answer needs", owner).v
	}
	if len(p.nsec3s) > 0 {
		return p.nsec3Wildcard(owner, ce)
	}
	return bogus(edeNSECMissing, "wildcard answer for %s comes without NSEC or NSEC3 proof", owner)
}
