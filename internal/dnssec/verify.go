package dnssec

import (
	"time"

	mdns "github.com/miekg/dns"
)

// Bounds on the signature checks of one RRset. A zone may publish keys whose tags
// collide, and a reply may carry many signatures; trying every key with every signature
// is what KeyTrap (CVE-2023-50387) exploits, so both are capped.
const (
	// maxKeysPerTag is how many keys sharing an algorithm and key tag are tried for one
	// signature. Honest tag collisions are rare (RFC 4034 Appendix B); a handful covers them.
	maxKeysPerTag = 4
	// maxFailuresPerRRset is how many cryptographic failures one RRset may cost before
	// it is declared bogus.
	maxFailuresPerRRset = 4
)

// supportedAlgorithm reports whether mxward verifies signatures of alg: RSA/SHA-256,
// RSA/SHA-512, ECDSA P-256 and P-384, and Ed25519 (RFC 8624 §3.1). The SHA-1 based RSA
// algorithms (5, 7), which current crypto policies refuse, and Ed448 (16) are not
// implemented; a zone signed only with them is treated as unsigned, as RFC 4035 §5.2
// prescribes for unknown algorithms.
func supportedAlgorithm(alg uint8) bool {
	switch alg {
	case mdns.RSASHA256, mdns.RSASHA512, mdns.ECDSAP256SHA256, mdns.ECDSAP384SHA384, mdns.ED25519:
		return true
	}
	return false
}

// usableKey reports whether k may verify signatures: a zone key (RFC 4034 §2.1.1) of
// protocol 3 (§2.1.2), not revoked (RFC 5011 §3), of a supported algorithm.
func usableKey(k *mdns.DNSKEY) bool {
	return k.Flags&mdns.ZONE != 0 && k.Flags&mdns.REVOKE == 0 && k.Protocol == 3 && supportedAlgorithm(k.Algorithm)
}

type tagKey struct {
	alg uint8
	tag uint16
}

// zone is a zone whose DNSKEY RRset has been validated: the keys that may sign its data.
type zone struct {
	name    string // canonical apex name
	keys    []*mdns.DNSKEY
	byTag   map[tagKey][]*mdns.DNSKEY
	expires time.Time // when the keys must be fetched again: TTLs and signatures
	// sigExpires is the earliest expiration of the signatures that authenticate the
	// keys, from the trust anchor down: DS and DNSKEY RRSIGs, and the proofs that no
	// zone cut lies between the zones. Zero for keys that are anchors themselves.
	sigExpires time.Time
}

func newZone(name string, keys []*mdns.DNSKEY, expires, sigExpires time.Time) *zone {
	z := &zone{name: name, byTag: make(map[tagKey][]*mdns.DNSKEY), expires: expires, sigExpires: sigExpires}
	for _, k := range keys {
		if k.Hdr.Name != name {
			// mdns.RRSIG.Verify compares the key's owner with the signer name as
			// strings: give it the canonical spelling that the signer is checked in.
			kc := *k
			kc.Hdr.Name = name
			k = &kc
		}
		if usableKey(k) {
			z.keys = append(z.keys, k)
			t := tagKey{alg: k.Algorithm, tag: k.KeyTag()}
			z.byTag[t] = append(z.byTag[t], k)
		}
	}
	return z
}

// validity says where now lies relative to a signature's validity window.
type validity int

const (
	valid validity = iota
	notYetValid
	expired
)

// serialLess compares 32-bit timestamps in RFC 1982 serial number arithmetic, as RFC
// 4034 §3.1.5 requires for RRSIG inception and expiration.
func serialLess(a, b uint32) bool { return a != b && b-a < 1<<31 }

// sigValidity places now in the signature's validity window (RFC 4035 §5.3.1). The
// miekg/dns Verify method does not look at the window at all.
func sigValidity(sig *mdns.RRSIG, now time.Time) validity {
	t := uint32(now.Unix())
	switch {
	case serialLess(t, sig.Inception):
		return notYetValid
	case serialLess(sig.Expiration, t), serialLess(sig.Expiration, sig.Inception):
		return expired
	}
	return valid
}

// sigExpires returns the time at which a valid signature expires.
func sigExpires(sig *mdns.RRSIG, now time.Time) time.Time {
	left := sig.Expiration - uint32(now.Unix())
	return now.Add(time.Duration(left) * time.Second)
}

// checked is the outcome of verifying one RRset.
type checked struct {
	v       verdict
	labels  uint8     // the Labels field of the signature that verified
	expires time.Time // when the RRset stops being valid: its TTL, capped (RFC 4035 §5.3.3)
	// sigExpires is the expiration of the signature that verified.
	sigExpires time.Time
}

// verify checks set against the keys of zone z. It succeeds on the first signature that
// passes every check of RFC 4035 §5.3.1 and verifies cryptographically (RFC 6840 §5.11:
// one valid signature is enough). The checks mdns.RRSIG.Verify leaves out or does
// loosely are done here: the signer must be exactly z, the owner at or below it, the
// Labels field no more than the owner's labels, and now inside the validity window.
func (c *call) verify(set *rrset, z *zone) checked {
	what := set.name + " " + mdns.TypeToString[set.typ]
	if len(set.sigs) == 0 {
		return checked{v: bogus(edeRRSIGsMissing, "no signatures for %s", what)}
	}
	if !isSubdomain(set.name, z.name) {
		return checked{v: bogus(edeDNSSECBogus, "%s is not in zone %s", what, z.name)}
	}
	rrs := sameOwner(set.rrs, set.name)
	var (
		bySigner, wrongLabels, unsupported, noKey, early, late, cryptoFail int
		failures                                                           int
	)
	for _, sig := range set.sigs {
		if sig.TypeCovered != set.typ || sig.Hdr.Class != mdns.ClassINET || canonical(sig.SignerName) != z.name {
			continue
		}
		bySigner++
		if int(sig.Labels) > ownerLabels(set.name) {
			wrongLabels++
			continue
		}
		if !supportedAlgorithm(sig.Algorithm) {
			unsupported++
			continue
		}
		switch sigValidity(sig, c.now) {
		case notYetValid:
			early++
			continue
		case expired:
			late++
			continue
		}
		keys := z.byTag[tagKey{alg: sig.Algorithm, tag: sig.KeyTag}]
		if len(keys) == 0 {
			noKey++
			continue
		}
		if len(keys) > maxKeysPerTag {
			keys = keys[:maxKeysPerTag]
		}
		for _, k := range keys {
			if failures >= maxFailuresPerRRset {
				return checked{v: bogus(edeDNSSECBogus, "%s: gave up after %d signatures failed to verify", what, failures)}
			}
			if !c.spendVerification() {
				return checked{v: bogus(edeDNSSECBogus, "%s: limit of %d signature verifications per reply reached", what, c.v.maxValidations)}
			}
			if err := canonicalSig(sig, set.name, z.name).Verify(k, rrs); err != nil {
				failures++
				cryptoFail++
				continue
			}
			ttl := min(minTTL(set.rrs), sig.OrigTtl)
			sx := sigExpires(sig, c.now)
			exp := earliest(c.now.Add(time.Duration(ttl)*time.Second), sx)
			return checked{v: secure().until(sx), labels: sig.Labels, expires: exp, sigExpires: sx}
		}
	}
	switch {
	case bySigner == 0:
		return checked{v: bogus(edeRRSIGsMissing, "no signatures by %s for %s", z.name, what)}
	case cryptoFail > 0:
		return checked{v: bogus(edeDNSSECBogus, "signature of %s does not verify", what)}
	case late > 0:
		return checked{v: bogus(edeSignatureExpired, "signature of %s expired", what)}
	case early > 0:
		return checked{v: bogus(edeSignatureNotYetValid, "signature of %s not yet valid", what)}
	case noKey > 0:
		return checked{v: bogus(edeDNSSECBogus, "no key of %s matches the signature of %s", z.name, what)}
	case wrongLabels > 0:
		return checked{v: bogus(edeDNSSECBogus, "signature of %s claims more labels than its owner has", what)}
	default:
		return checked{v: bogus(edeDNSSECBogus, "signature of %s uses an unsupported algorithm", what)}
	}
}

// sameOwner returns rrs with one spelling of the owner name, the canonical one: mdns
// compares owners byte for byte (IsRRset) or ignoring case only (RRSIG.Verify), while
// an upstream may vary their case (RFC 4343) and a name may be written with escapes.
func sameOwner(rrs []mdns.RR, owner string) []mdns.RR {
	for _, rr := range rrs {
		if rr.Header().Name != owner {
			out := make([]mdns.RR, len(rrs))
			for i, rr := range rrs {
				out[i] = mdns.Copy(rr)
				out[i].Header().Name = owner
			}
			return out
		}
	}
	return rrs
}

// canonicalSig returns sig with owner and signer as its owner and signer names,
// copying it only if needed: both are compared as strings by mdns.RRSIG.Verify, while
// the names only have to be equal canonically. The signed data holds the signer name
// in canonical form anyway (RFC 4034 §3.1.8.1, §6.2).
func canonicalSig(sig *mdns.RRSIG, owner, signer string) *mdns.RRSIG {
	if sig.Hdr.Name == owner && sig.SignerName == signer {
		return sig
	}
	s := *sig
	s.Hdr.Name, s.SignerName = owner, signer
	return &s
}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
