package dnssec

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
)

// This file builds the chain of trust (RFC 4035 §5): from the closest trust anchor
// down to a name, one label at a time, asking for the DS RRset of each name and, where
// one exists, the DNSKEY RRset of the zone it delegates to. Every step is a node in the
// key cache, so warm lookups cost no queries.

// maxFetches bounds the queries one Validate call may send upstream: a chain from the
// root to a deep name, for each link of a CNAME chain, fits easily.
const maxFetches = 64

// anchor is the trust anchors configured for one zone.
type anchor struct {
	name string
	ds   []*mdns.DS
	keys []*mdns.DNSKEY
}

// chain is what the chain of trust says about a name: Secure with the deepest secure
// zone that contains it, or why not.
type chain struct {
	v verdict
	z *zone
}

// fetch asks the upstream resolver one question for the chain of trust.
func (c *call) fetch(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	if c.fetches >= maxFetches {
		return nil, fmt.Errorf("limit of %d queries per reply reached", maxFetches)
	}
	c.fetches++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := c.ex.Exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	switch {
	case resp == nil:
		return nil, errors.New("no reply")
	case len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, name) ||
		resp.Question[0].Qtype != qtype || resp.Question[0].Qclass != mdns.ClassINET:
		return nil, errors.New("reply does not answer the question")
	case resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError:
		return nil, fmt.Errorf("reply has rcode %s", mdns.RcodeToString[resp.Rcode])
	}
	return resp, nil
}

// fetchFailure turns a failed fetch into a Bogus verdict that says it proves nothing
// about the zone: EDE 23 (Network Error) for timeouts and network errors, EDE 22 (No
// Reachable Authority) for everything else (RFC 8914 §4.24, §4.23).
func fetchFailure(name string, qtype uint16, err error) node {
	code := uint16(edeNoReachableAuthority)
	var te *dns.TemporaryError
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &te) && (te.Reason == "timeout" || te.Reason == "network") {
		code = edeNetworkError
	}
	return node{kind: nodeBogus, transient: true,
		v: bogus(code, "fetching %s %s: %v", name, mdns.TypeToString[qtype], err)}
}

// chainTo returns the status of the chain of trust down to target: the deepest secure
// zone containing it, or why there is none (an insecure delegation on the way, a
// failure, or no trust anchor above it).
func (c *call) chainTo(ctx context.Context, target string) chain {
	if r, ok := c.chains[target]; ok {
		return r
	}
	r := c.walk(ctx, target)
	c.chains[target] = r
	return r
}

func (c *call) walk(ctx context.Context, target string) chain {
	a := c.v.anchorFor(target)
	if a == nil {
		return chain{v: indeterminate("no trust anchor covers %s", target)}
	}
	n := c.node(ctx, nodeKey{name: a.name, anchor: true}, func() node { return c.anchorNode(ctx, a) })
	if n.kind != nodeZone {
		return chain{v: n.v.until(n.sigExpires)}
	}
	z := n.zone
	// The verdict rests on every step of the walk: the keys of each zone and each
	// proof that a name on the way is no zone cut (or an insecure one).
	exp := n.sigExpires
	for i := mdns.CountLabel(a.name) + 1; i <= mdns.CountLabel(target); i++ {
		name := ancestor(target, i)
		above := z
		n := c.node(ctx, nodeKey{name: name}, func() node { return c.delegation(ctx, above, name) })
		exp = soonest(exp, n.sigExpires)
		switch n.kind {
		case nodeZone:
			z = n.zone
		case nodeNotCut:
		case nodeNXDomain:
			// Nothing exists below name, so no zone cut either: target is in z.
			return chain{v: secure().until(exp), z: z}
		default:
			return chain{v: n.v.until(exp)}
		}
	}
	return chain{v: secure().until(exp), z: z}
}

// anchorFor returns the closest trust anchor at or above name, or nil.
func (v *Validator) anchorFor(name string) *anchor {
	var best *anchor
	for _, a := range v.anchors {
		if isSubdomain(name, a.name) && (best == nil || mdns.CountLabel(a.name) > mdns.CountLabel(best.name)) {
			best = a
		}
	}
	return best
}

// farFuture stands for "no limit" where a lifetime is capped by a minimum.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *call) anchorNode(ctx context.Context, a *anchor) node {
	n := c.zoneKeys(ctx, a.name, keyBasis{ds: a.ds, anchorKeys: a.keys, anchor: true, notAfter: farFuture})
	if n.kind != nodeZone && n.v.reason != "" {
		n.v = n.v.wrap("trust anchor %s", a.name)
	}
	return n
}

// delegation finds out what lies at name, one label below the part of the tree already
// known to belong to the secure zone z, by asking for its DS RRset, which the upstream
// answers from z's side of any zone cut (RFC 4035 §3.1.4.1).
func (c *call) delegation(ctx context.Context, z *zone, name string) node {
	n := c.delegationNode(ctx, z, name)
	if n.expires.IsZero() || n.expires.After(z.expires) {
		n.expires = z.expires
	}
	n.sigExpires = soonest(n.sigExpires, z.sigExpires)
	return n
}

func (c *call) delegationNode(ctx context.Context, z *zone, name string) node {
	resp, err := c.fetch(ctx, name, mdns.TypeDS)
	if err != nil {
		return fetchFailure(name, mdns.TypeDS, err)
	}
	ans := newSection(resp.Answer)
	failed := func(v verdict) node {
		return node{kind: nodeBogus, v: v, expires: c.now.Add(bogusTTL)}
	}
	if set := ans.get(name, mdns.TypeDS); set != nil {
		chk := c.verify(set, z)
		switch {
		case !chk.v.ok():
			return failed(chk.v.wrap("DS of %s", name))
		case int(chk.labels) != ownerLabels(name):
			return failed(bogus(edeDNSSECBogus, "DS of %s is signed as a wildcard expansion", name))
		case resp.Rcode != mdns.RcodeSuccess:
			return failed(bogus(edeDNSSECBogus, "DS of %s comes with rcode NXDOMAIN", name))
		}
		var ds []*mdns.DS
		for _, rr := range set.rrs {
			if d, ok := rr.(*mdns.DS); ok {
				ds = append(ds, d)
			}
		}
		return c.zoneKeys(ctx, name, keyBasis{ds: ds, notAfter: chk.expires, sigNotAfter: soonest(chk.sigExpires, z.sigExpires)})
	}
	if set := ans.get(name, mdns.TypeCNAME); set != nil && resp.Rcode == mdns.RcodeSuccess {
		// An alias is no zone cut (RFC 1034 §3.6.2): name is inside z.
		chk := c.verify(set, z)
		if !chk.v.ok() {
			return failed(chk.v.wrap("CNAME at %s", name))
		}
		sx := chk.sigExpires
		if int(chk.labels) < ownerLabels(name) {
			v := c.wildcardProof(z, name, chk.labels, newSection(resp.Ns))
			if !v.ok() {
				return node{kind: kindOf(v), v: v, expires: c.now.Add(bogusTTL), sigExpires: v.expires}
			}
			sx = soonest(sx, v.expires)
		}
		return node{kind: nodeNotCut, expires: chk.expires, sigExpires: sx}
	}
	for _, set := range ans.ofType(mdns.TypeDNAME) {
		// Nothing below a DNAME exists in its zone (RFC 6672 §2.4), so no zone cut
		// either: the walk ends in z.
		if isProperSubdomain(name, set.name) && isSubdomain(set.name, z.name) {
			chk := c.verify(set, z)
			switch {
			case !chk.v.ok():
				return failed(chk.v.wrap("DNAME at %s", set.name))
			case int(chk.labels) != ownerLabels(set.name):
				// A DNAME synthesised from a wildcard redirects only the name it
				// was synthesised for (RFC 6672 §3.2, RFC 4592 §4.4): it says nothing
				// about the names below it.
				return failed(bogus(edeDNSSECBogus, "DNAME at %s is signed as a wildcard expansion", set.name))
			}
			return node{kind: nodeNXDomain, expires: chk.expires, sigExpires: chk.sigExpires}
		}
	}
	d := c.deny(z, name, mdns.TypeDS, resp.Rcode == mdns.RcodeNameError, newSection(resp.Ns))
	switch d.kind {
	case denyNXDomain:
		return node{kind: nodeNXDomain, expires: d.expires, sigExpires: d.sigExpires}
	case denyNoData:
		if d.delegation {
			// RFC 4035 §5.2: a proven absence of DS at a delegation makes the child,
			// and everything below it, insecure.
			return node{kind: nodeInsecure, v: insecure(0, "insecure delegation at %s: no DS records", name),
				expires: d.expires, sigExpires: d.sigExpires}
		}
		return node{kind: nodeNotCut, expires: d.expires, sigExpires: d.sigExpires}
	case denyInsecure:
		return node{kind: nodeInsecure, v: d.v.wrap("no DS at %s", name), expires: d.expires, sigExpires: d.sigExpires}
	}
	return failed(d.v.wrap("no DS at %s", name))
}

// kindOf maps a non-Secure verdict to the node that records it.
func kindOf(v verdict) nodeKind {
	if v.status == dns.Insecure {
		return nodeInsecure
	}
	return nodeBogus
}

// usableDS picks the DS records that can authenticate a DNSKEY: supported key
// algorithm, digest SHA-256 or SHA-384, or SHA-1 when the RRset offers no stronger
// digest (RFC 4509 §3). If none is left, the zone is treated as unsigned (RFC 4035
// §5.2, RFC 6840 §5.2) and the verdict says why.
func usableDS(ds []*mdns.DS, name string) ([]*mdns.DS, verdict) {
	var algOK []*mdns.DS
	strong := false
	for _, d := range ds {
		if !supportedAlgorithm(d.Algorithm) {
			continue
		}
		algOK = append(algOK, d)
		if d.DigestType == mdns.SHA256 || d.DigestType == mdns.SHA384 {
			strong = true
		}
	}
	if len(algOK) == 0 {
		return nil, insecure(edeUnsupportedDNSKEYAlg, "DS records of %s use only unsupported algorithms", name)
	}
	var use []*mdns.DS
	for _, d := range algOK {
		switch d.DigestType {
		case mdns.SHA256, mdns.SHA384:
			use = append(use, d)
		case mdns.SHA1:
			if !strong {
				use = append(use, d)
			}
		}
	}
	if len(use) == 0 {
		return nil, insecure(edeUnsupportedDSDigest, "DS records of %s use only unsupported digest types", name)
	}
	return use, verdict{}
}

// matchDS returns the keys that one of the DS records is the digest of (RFC 4034
// §5.1.4). Each key's digest is computed once per digest type, whatever the number of
// DS records that claim its algorithm and key tag.
func matchDS(keys []*mdns.DNSKEY, use []*mdns.DS) []*mdns.DNSKEY {
	var out []*mdns.DNSKEY
	for _, k := range keys {
		if !usableKey(k) {
			continue
		}
		tag := k.KeyTag()
		var digests map[uint8]string
		for _, d := range use {
			if d.Algorithm != k.Algorithm || d.KeyTag != tag {
				continue
			}
			digest, ok := digests[d.DigestType]
			if !ok {
				if computed := k.ToDS(d.DigestType); computed != nil {
					digest = computed.Digest
				}
				if digests == nil {
					digests = make(map[uint8]string, 2)
				}
				digests[d.DigestType] = digest
			}
			if digest != "" && strings.EqualFold(digest, d.Digest) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// keyBasis is what a zone's DNSKEY RRset is checked against: DS records (from the
// parent, or configured) and configured DNSKEY trust anchors.
type keyBasis struct {
	ds         []*mdns.DS
	anchorKeys []*mdns.DNSKEY
	// anchor marks a configured trust anchor, to which the revocation of RFC 5011
	// applies.
	anchor bool
	// notAfter caps the lifetime of the result by that of the DS RRset; sigNotAfter
	// is the earliest expiration of the signatures that authenticate the DS RRset.
	notAfter, sigNotAfter time.Time
}

// zoneKeys fetches the DNSKEY RRset of name and validates it: it must be signed by a
// key that one of the trusted DS records (or trusted DNSKEY anchors) vouches for
// (RFC 4035 §5.2).
func (c *call) zoneKeys(ctx context.Context, name string, b keyBasis) node {
	use, why := usableDS(b.ds, name)
	var trusted []*mdns.DNSKEY
	unusableAnchor := false
	for _, k := range b.anchorKeys {
		switch {
		case usableKey(k):
			trusted = append(trusted, k)
		case supportedAlgorithm(k.Algorithm):
			unusableAnchor = true // revoked, or no zone key
		}
	}
	failed := func(v verdict) node {
		return node{kind: nodeBogus, v: v, expires: c.now.Add(bogusTTL)}
	}
	if len(use) == 0 && len(trusted) == 0 {
		switch {
		case unusableAnchor:
			// A key the validator could check but must not use (RFC 5011 §2.1,
			// RFC 4034 §2.1.1) is no reason to call the zone unsigned: only
			// algorithms it cannot check are (RFC 4035 §5.2).
			return failed(bogus(edeDNSKEYMissing, "the trust anchor keys of %s are revoked or not zone keys", name))
		case len(b.anchorKeys) > 0:
			why = insecure(edeUnsupportedDNSKEYAlg, "keys of %s use only unsupported algorithms", name)
		}
		return node{kind: nodeInsecure, v: why, expires: b.notAfter, sigExpires: b.sigNotAfter}
	}
	resp, err := c.fetch(ctx, name, mdns.TypeDNSKEY)
	if err != nil {
		return fetchFailure(name, mdns.TypeDNSKEY, err)
	}
	set := newSection(resp.Answer).get(name, mdns.TypeDNSKEY)
	if set == nil || resp.Rcode != mdns.RcodeSuccess {
		if a := c.v.anchorFor(name); a != nil && a.name == name {
			// Every resolver has the trust anchor's keys; not getting them means the
			// resolver drops DNSSEC records, and the operator should hear so.
			return failed(bogus(edeDNSKEYMissing, "no DNSKEY records for %s, the trust anchor's zone: the resolver does not pass DNSSEC records through", name))
		}
		return failed(bogus(edeDNSKEYMissing, "no DNSKEY records for %s, whose parent publishes DS records", name))
	}
	var keys []*mdns.DNSKEY
	for _, rr := range set.rrs {
		if k, ok := rr.(*mdns.DNSKEY); ok {
			keys = append(keys, k)
		}
	}
	trusted = append(trusted, matchDS(keys, use)...)
	if b.anchor {
		n := len(trusted)
		if trusted = unrevoked(trusted, keys); len(trusted) == 0 && n > 0 {
			return failed(bogus(edeDNSKEYMissing, "the trust anchor keys of %s are published revoked", name))
		}
	}
	if len(trusted) == 0 {
		return failed(bogus(edeDNSKEYMissing, "no DNSKEY of %s matches its DS records", name))
	}
	chk := c.verify(set, newZone(name, trusted, farFuture, time.Time{}))
	switch {
	case !chk.v.ok():
		return failed(chk.v.wrap("DNSKEY of %s", name))
	case int(chk.labels) != ownerLabels(name):
		return failed(bogus(edeDNSSECBogus, "DNSKEY of %s is signed as a wildcard expansion", name))
	}
	z := newZone(name, keys, earliest(chk.expires, b.notAfter), soonest(chk.sigExpires, b.sigNotAfter))
	return node{kind: nodeZone, zone: z, expires: z.expires, sigExpires: z.sigExpires}
}

// unrevoked returns the trust anchor keys whose revoked form (the same key with the
// REVOKE flag) the zone does not publish: once a validator sees that, it must not use
// the key as a trust anchor any more (RFC 5011 §2.1), whatever signatures it still
// makes. The revocation is believed without its self-signature: a forged one can only
// make the zone fail, which an attacker able to forge it could do anyway.
func unrevoked(trusted, published []*mdns.DNSKEY) []*mdns.DNSKEY {
	var out []*mdns.DNSKEY
	for _, k := range trusted {
		revoked := false
		for _, p := range published {
			if p.Flags&mdns.REVOKE != 0 && p.Algorithm == k.Algorithm && p.Protocol == k.Protocol && sameKey(p.PublicKey, k.PublicKey) {
				revoked = true
				break
			}
		}
		if !revoked {
			out = append(out, k)
		}
	}
	return out
}

// sameKey compares two base64 public keys by their octets.
func sameKey(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := base64.StdEncoding.DecodeString(a)
	y, err2 := base64.StdEncoding.DecodeString(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
