package dnssec

import (
	mdns "github.com/miekg/dns"
)

// setKey names one RRset: canonical owner name and type.
type setKey struct {
	name string
	typ  uint16
}

// rrset is the records of one owner and type in one section of a reply, with the
// RRSIGs that claim to cover them.
type rrset struct {
	name string // canonical owner
	typ  uint16
	rrs  []mdns.RR
	sigs []*mdns.RRSIG
}

// section indexes the records of one section of a reply by owner and type. Only class
// IN counts: nothing else is asked for, and nothing else is trusted. Keys are kept in
// order of first appearance, so that everything built on a section is deterministic.
type section struct {
	sets  map[setKey]*rrset
	order []setKey
}

func newSection(rrs []mdns.RR) *section {
	s := &section{sets: make(map[setKey]*rrset)}
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != mdns.ClassINET {
			continue
		}
		k := setKey{name: canonical(h.Name), typ: h.Rrtype}
		sig, isSig := rr.(*mdns.RRSIG)
		if isSig {
			k.typ = sig.TypeCovered
		}
		set := s.sets[k]
		if set == nil {
			set = &rrset{name: k.name, typ: k.typ}
			s.sets[k] = set
			s.order = append(s.order, k)
		}
		if isSig {
			set.sigs = append(set.sigs, sig)
		} else if h.Rrtype != mdns.TypeRRSIG {
			set.rrs = append(set.rrs, rr)
		}
	}
	return s
}

// get returns the RRset of name and typ, or nil if the section holds no records of it
// (signatures alone do not make an RRset).
func (s *section) get(name string, typ uint16) *rrset {
	set := s.sets[setKey{name: name, typ: typ}]
	if set == nil || len(set.rrs) == 0 {
		return nil
	}
	return set
}

// ofType returns the RRsets of type typ that have records, in order of appearance.
func (s *section) ofType(typ uint16) []*rrset {
	var out []*rrset
	for _, k := range s.order {
		if k.typ == typ && len(s.sets[k].rrs) > 0 {
			out = append(out, s.sets[k])
		}
	}
	return out
}

// signers returns the distinct signer names of the RRSIGs over RRsets of the given
// types, in order of appearance.
func (s *section) signers(types ...uint16) []string {
	var out []string
	seen := make(map[string]bool)
	for _, k := range s.order {
		if !hasType(types, k.typ) {
			continue
		}
		for _, sig := range s.sets[k].sigs {
			n := canonical(sig.SignerName)
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// minTTL returns the smallest TTL of the records.
func minTTL(rrs []mdns.RR) uint32 {
	var ttl uint32
	for i, rr := range rrs {
		if t := rr.Header().Ttl; i == 0 || t < ttl {
			ttl = t
		}
	}
	return ttl
}
