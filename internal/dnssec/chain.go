package dnssec

import (
	"context"
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
		return chain{v: n.v}
	}
	z := n.zone
	for i := mdns.CountLabel(a.name) + 1; i <= mdns.CountLabel(target); i++ {
		name := ancestor(target, i)
		above := z
		n := c.node(ctx, nodeKey{name: name}, func() node { return c.delegation(ctx, above, name) })
		switch n.kind {
		case nodeZone:
			z = n.zone
		case nodeNotCut:
		case nodeNXDomain:
			// Nothing exists below name, so no zone cut either: target is in z.
			return chain{v: secure(), z: z}
		default:
			return chain{v: n.v}
		}
	}
	return chain{v: secure(), z: z}
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
	n := c.zoneKeys(ctx, a.name, a.ds, a.keys, farFuture)
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
		return c.zoneKeys(ctx, name, ds, nil, chk.expires)
	}
	if set := ans.get(name, mdns.TypeCNAME); set != nil && resp.Rcode == mdns.RcodeSuccess {
		// An alias is no zone cut (RFC 1034 §3.6.2): name is inside z.
		chk := c.verify(set, z)
		if !chk.v.ok() {
			return failed(chk.v.wrap("CNAME at %s", name))
		}
		if int(chk.labels) < ownerLabels(name) {
			if v := c.wildcardProof(z, name, chk.labels, newSection(resp.Ns)); !v.ok() {
				return node{kind: kindOf(v), v: v, expires: c.now.Add(bogusTTL)}
			}
		}
		return node{kind: nodeNotCut, expires: chk.expires}
	}
	for _, set := range ans.ofType(mdns.TypeDNAME) {
		// Nothing below a DNAME exists in its zone (RFC 6672 §2.4), so no zone cut
		// either: the walk ends in z.
		if isProperSubdomain(name, set.name) && isSubdomain(set.name, z.name) {
			chk := c.verify(set, z)
			if !chk.v.ok() || int(chk.labels) != ownerLabels(set.name) {
				return failed(chk.v.wrap("DNAME at %s", set.name))
			}
			return node{kind: nodeNXDomain, expires: chk.expires}
		}
	}
	d := c.deny(z, name, mdns.TypeDS, resp.Rcode == mdns.RcodeNameError, newSection(resp.Ns))
	switch d.kind {
	case denyNXDomain:
		return node{kind: nodeNXDomain, expires: d.expires}
	case denyNoData:
		if d.delegation {
			// RFC 4035 §5.2: a proven absence of DS at a delegation makes the child,
			// and everything below it, insecure.
			return node{kind: nodeInsecure, v: insecure(0, "insecure delegation at %s: no DS records", name), expires: d.expires}
		}
		return node{kind: nodeNotCut, expires: d.expires}
	case denyInsecure:
		return node{kind: nodeInsecure, v: d.v.wrap("no DS at %s", name), expires: d.expires}
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

// dsMatches reports whether d is the digest of key k at owner name (RFC 4034 §5.1.4).
func dsMatches(d *mdns.DS, k *mdns.DNSKEY, tag uint16) bool {
	if d.Algorithm != k.Algorithm || d.KeyTag != tag {
		return false
	}
	computed := k.ToDS(d.DigestType)
	return computed != nil && strings.EqualFold(computed.Digest, d.Digest)
}

// zoneKeys fetches the DNSKEY RRset of name and validates it: it must be signed by a
// key that one of the trusted DS records (or trusted DNSKEY anchors) vouches for
// (RFC 4035 §5.2). notAfter caps the lifetime of the result by that of the DS RRset.
func (c *call) zoneKeys(ctx context.Context, name string, ds []*mdns.DS, anchorKeys []*mdns.DNSKEY, notAfter time.Time) node {
	use, why := usableDS(ds, name)
	var trusted []*mdns.DNSKEY
	for _, k := range anchorKeys {
		if usableKey(k) {
			trusted = append(trusted, k)
		}
	}
	if len(use) == 0 && len(trusted) == 0 {
		if len(anchorKeys) > 0 {
			why = insecure(edeUnsupportedDNSKEYAlg, "keys of %s use only unsupported algorithms", name)
		}
		return node{kind: nodeInsecure, v: why, expires: notAfter}
	}
	failed := func(v verdict) node {
		return node{kind: nodeBogus, v: v, expires: c.now.Add(bogusTTL)}
	}
	resp, err := c.fetch(ctx, name, mdns.TypeDNSKEY)
	if err != nil {
		return fetchFailure(name, mdns.TypeDNSKEY, err)
	}
	set := newSection(resp.Answer).get(name, mdns.TypeDNSKEY)
	if set == nil || resp.Rcode != mdns.RcodeSuccess {
		return failed(bogus(edeDNSKEYMissing, "no DNSKEY records for %s, whose parent publishes DS records", name))
	}
	var keys []*mdns.DNSKEY
	for _, rr := range set.rrs {
		if k, ok := rr.(*mdns.DNSKEY); ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !usableKey(k) {
			continue
		}
		tag := k.KeyTag()
		for _, d := range use {
			if dsMatches(d, k, tag) {
				trusted = append(trusted, k)
				break
			}
		}
	}
	if len(trusted) == 0 {
		return failed(bogus(edeDNSKEYMissing, "no DNSKEY of %s matches its DS records", name))
	}
	chk := c.verify(set, newZone(name, trusted, farFuture))
	switch {
	case !chk.v.ok():
		return failed(chk.v.wrap("DNSKEY of %s", name))
	case int(chk.labels) != ownerLabels(name):
		return failed(bogus(edeDNSSECBogus, "DNSKEY of %s is signed as a wildcard expansion", name))
	}
	z := newZone(name, keys, earliest(chk.expires, notAfter))
	return node{kind: nodeZone, zone: z, expires: z.expires}
}
