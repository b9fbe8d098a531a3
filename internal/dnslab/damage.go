package dnslab

import (
	"encoding/base64"
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// damage applies the post-signing parts of b to the signed records of zone origin
// and returns the records to serve. Window damage (ExpiredSigs, FutureSigs) is done
// by signing, and WrongDS in the parent; the rest happens here, on the signer's
// output, so that everything else in the zone stays exactly as the signer made it.
func damage(origin string, rrs []mdns.RR, b Break) ([]mdns.RR, error) {
	out := rrs
	if b.StripDNSKEY {
		out = filter(out, func(rr mdns.RR) bool {
			return !(mdns.CanonicalName(rr.Header().Name) == origin && coveredType(rr) == mdns.TypeDNSKEY)
		})
	}
	if b.DropSig != "" {
		owner, t, err := parseRRsetSpec(b.DropSig)
		if err != nil {
			return nil, fmt.Errorf("drop signature: %w", err)
		}
		n := len(out)
		out = filter(out, func(rr mdns.RR) bool { return !isSigOver(rr, owner, t) })
		if len(out) == n {
			return nil, fmt.Errorf("drop signature: zone %s has no RRSIG over %s", origin, b.DropSig)
		}
	}
	if b.CorruptSig != "" {
		owner, t, err := parseRRsetSpec(b.CorruptSig)
		if err != nil {
			return nil, fmt.Errorf("corrupt signature: %w", err)
		}
		found := false
		for i, rr := range out {
			if !isSigOver(rr, owner, t) {
				continue
			}
			bad, err := corrupt(rr.(*mdns.RRSIG))
			if err != nil {
				return nil, fmt.Errorf("corrupt signature over %s: %w", b.CorruptSig, err)
			}
			if !found {
				out = append([]mdns.RR(nil), out...) // leave the caller's slice alone
			}
			out[i] = bad
			found = true
		}
		if !found {
			return nil, fmt.Errorf("corrupt signature: zone %s has no RRSIG over %s", origin, b.CorruptSig)
		}
	}
	if len(b.AddUnsigned) > 0 {
		added, err := parseRecords(origin, b.AddUnsigned)
		if err != nil {
			return nil, fmt.Errorf("add unsigned records: %w", err)
		}
		out = append(append([]mdns.RR(nil), out...), added...)
	}
	return out, nil
}

// filter returns the records keep accepts, in a new slice.
func filter(rrs []mdns.RR, keep func(mdns.RR) bool) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		if keep(rr) {
			out = append(out, rr)
		}
	}
	return out
}

// coveredType returns the type an RR stands for in an RRset: its own type, or for an
// RRSIG the type it covers.
func coveredType(rr mdns.RR) uint16 {
	if sig, ok := rr.(*mdns.RRSIG); ok {
		return sig.TypeCovered
	}
	return rr.Header().Rrtype
}

// isSigOver reports whether rr is an RRSIG over the RRset owner/t.
func isSigOver(rr mdns.RR, owner string, t uint16) bool {
	sig, ok := rr.(*mdns.RRSIG)
	return ok && sig.TypeCovered == t && mdns.CanonicalName(sig.Hdr.Name) == owner
}

// corrupt returns a copy of sig whose signature has one bit flipped in its middle
// byte. Everything a validator checks before the cryptography (key tag, algorithm,
// signer name, labels, window) stays intact, so the failure is the signature
// verification of RFC 4035 §5.3.3 and nothing earlier.
func corrupt(sig *mdns.RRSIG) (*mdns.RRSIG, error) {
	raw, err := decodeSig(sig.Signature)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("signature is empty")
	}
	raw[len(raw)/2] ^= 0x01
	bad := mdns.Copy(sig).(*mdns.RRSIG)
	bad.Signature = base64.StdEncoding.EncodeToString(raw)
	return bad, nil
}

// decodeSig decodes an RRSIG's signature field as presented (RFC 4034 §3.2).
func decodeSig(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("decode signature: %w", err)
	}
	return raw, nil
}
