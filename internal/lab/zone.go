package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/labca"
)

// A Zone describes one zone of the lab tree.
type Zone struct {
	// Name is the zone's apex, e.g. "secure.lab".
	Name string
	// Signed makes the zone DNSSEC-signed with a DS at its parent. An unsigned zone is
	// an insecure delegation, proven by the parent's NSEC (RFC 4035 §5.2).
	Signed bool
	// Records are zone-file lines; owners are relative to the zone ("@", "mx").
	Records []string
	// MX are the zone's mail exchangers: Start gives each an address, an SMTP
	// receiver, and the MX and A records.
	MX []MXHost
}

// AddMX adds a mail exchanger host (a name relative to the zone, or fully qualified
// with a trailing dot) with preference pref and certificate kind cert, and no TLSA
// record.
func (z *Zone) AddMX(host string, pref uint16, cert CertKind) {
	z.MX = append(z.MX, MXHost{Name: host, Pref: pref, Cert: cert})
}

// MXHost is one mail exchanger of a zone. Its name must lie inside the zone, and
// each name may be given once in the whole lab.
type MXHost struct {
	Name string // relative to the zone, or fully qualified with a trailing dot
	Pref uint16
	Cert CertKind
	// TLSA is the DANE record published for the host at _<SMTPPort>._tcp.<host>.
	TLSA TLSAKind
}

// TLSAKind is the TLSA record published for an MX host.
type TLSAKind int

const (
	// NoTLSA publishes none.
	NoTLSA TLSAKind = iota
	// TLSAMatch publishes "3 1 1" for the host's own key (DANE-EE, RFC 7672 §3.1.1).
	// For a host without STARTTLS it is the digest of a key the host never shows.
	TLSAMatch
	// TLSAWrong publishes "3 1 1" for a key the host does not have: the domain's own
	// broken DANE, which a DANE sender must refuse to deliver through (DANE-20).
	TLSAWrong
)

// tlsaRecord returns the TLSA record data of kind for the host certificate c (nil for
// a host without STARTTLS), or "" for NoTLSA.
func tlsaRecord(kind TLSAKind, c *labca.Cert) (string, error) {
	if kind == NoTLSA {
		return "", nil
	}
	var spki []byte
	if kind == TLSAMatch && c != nil {
		spki = c.TLS.Leaf.RawSubjectPublicKeyInfo
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		if spki, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			return "", fmt.Errorf("encode key: %w", err)
		}
	}
	sum := sha256.Sum256(spki)
	return "3 1 1 " + hex.EncodeToString(sum[:]), nil
}

// signer is a DNSKEY with its private key.
type signer struct {
	rr   *mdns.DNSKEY
	priv crypto.Signer
}

// newSigner generates an ECDSA P-256 key (algorithm 13, RFC 6605) for zone.
func newSigner(zone string, flags uint16) (*signer, error) {
	p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", zone, err)
	}
	pub, err := p.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode key for %s: %w", zone, err)
	}
	k := &mdns.DNSKEY{Hdr: mdns.RR_Header{Name: zone, Rrtype: mdns.TypeDNSKEY, Class: mdns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: mdns.ECDSAP256SHA256,
		PublicKey: base64.StdEncoding.EncodeToString(pub[1:])} // X || Y, RFC 6605 §4
	return &signer{rr: k, priv: p}, nil
}

// zone is a zone of the tree, built and signed.
type zone struct {
	name     string
	signed   bool
	parent   *zone
	ksk, zsk *signer
	data     map[string]map[uint16][]mdns.RR
	sigs     map[string]map[uint16][]mdns.RR
	cuts     map[string]bool
	names    []string // owners, canonical order (RFC 4034 §6.1)
	ents     map[string]bool
	nsec     map[string]*mdns.NSEC
}

func newZone(name string, signed bool) *zone {
	return &zone{name: name, signed: signed,
		data: make(map[string]map[uint16][]mdns.RR), sigs: make(map[string]map[uint16][]mdns.RR),
		cuts: make(map[string]bool), ents: make(map[string]bool)}
}

func (z *zone) addRR(rr mdns.RR) {
	h := rr.Header()
	h.Name = strings.ToLower(mdns.Fqdn(h.Name))
	if h.Ttl == 0 {
		h.Ttl = 3600
	}
	if z.data[h.Name] == nil {
		z.data[h.Name] = make(map[uint16][]mdns.RR)
	}
	for _, old := range z.data[h.Name][h.Rrtype] {
		if mdns.IsDuplicate(old, rr) {
			return
		}
	}
	z.data[h.Name][h.Rrtype] = append(z.data[h.Name][h.Rrtype], rr)
}

// addLine adds a zone-file line whose owner is relative to the zone.
func (z *zone) addLine(s string) error {
	zp := mdns.NewZoneParser(strings.NewReader(s), z.name, "")
	zp.SetDefaultTTL(3600)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil || !ok {
		return fmt.Errorf("record %q in %s: %v", s, z.name, err)
	}
	if !mdns.IsSubDomain(z.name, rr.Header().Name) {
		return fmt.Errorf("record %q is outside zone %s", s, z.name)
	}
	z.addRR(rr)
	return nil
}

// buildTree makes the zones, delegations and DS records, and signs the signed zones
// with signatures valid from an hour before now to a week after. Parents come first.
func buildTree(specs []*zone, now time.Time) (map[string]*zone, error) {
	slices.SortStableFunc(specs, func(a, b *zone) int { return mdns.CountLabel(a.name) - mdns.CountLabel(b.name) })
	tree := make(map[string]*zone)
	for _, z := range specs {
		if tree[z.name] != nil {
			return nil, fmt.Errorf("zone %s given twice", z.name)
		}
		for _, p := range specs {
			if p != z && mdns.IsSubDomain(p.name, z.name) && p.name != z.name &&
				(z.parent == nil || mdns.CountLabel(p.name) > mdns.CountLabel(z.parent.name)) {
				z.parent = p
			}
		}
		if z.name != "." && z.parent == nil {
			return nil, fmt.Errorf("zone %s has no parent in the lab tree", z.name)
		}
		tree[z.name] = z
		apex := strings.TrimPrefix(z.name, ".")
		if err := z.addLine(fmt.Sprintf("@ 3600 IN SOA ns.%s hostmaster.%s 1 7200 3600 1209600 300", apex, apex)); err != nil {
			return nil, err
		}
		if err := z.addLine(fmt.Sprintf("@ 3600 IN NS ns.%s", apex)); err != nil {
			return nil, err
		}
		if z.signed {
			var err error
			if z.ksk, err = newSigner(z.name, mdns.ZONE|mdns.SEP); err != nil {
				return nil, err
			}
			if z.zsk, err = newSigner(z.name, mdns.ZONE); err != nil {
				return nil, err
			}
			z.addRR(z.ksk.rr)
			z.addRR(z.zsk.rr)
		}
	}
	// Delegations: NS at the cut in the parent, and a DS for signed children whose
	// parent is signed (RFC 4035 §2.4).
	for _, z := range specs {
		p := z.parent
		if p == nil {
			continue
		}
		p.addRR(&mdns.NS{Hdr: mdns.RR_Header{Name: z.name, Rrtype: mdns.TypeNS, Class: mdns.ClassINET}, Ns: "ns." + z.name})
		p.cuts[z.name] = true
		if z.signed {
			ds := z.ksk.rr.ToDS(mdns.SHA256)
			ds.Hdr.Ttl = 3600
			p.addRR(ds)
		}
	}
	for _, z := range specs {
		if err := z.finish(now); err != nil {
			return nil, err
		}
	}
	return tree, nil
}

// finish orders the names, builds the NSEC chain (RFC 4034 §4) and signs every
// authoritative RRset: not the NS set at a delegation point (RFC 4035 §2.2).
func (z *zone) finish(now time.Time) error {
	for name := range z.data {
		z.names = append(z.names, name)
		for a := parentName(name); a != "" && mdns.IsSubDomain(z.name, a) && a != z.name; a = parentName(a) {
			if z.data[a] == nil {
				z.ents[a] = true
			}
		}
	}
	sortCanonical(z.names)
	if !z.signed {
		return nil
	}
	z.nsec = make(map[string]*mdns.NSEC)
	for i, name := range z.names {
		types := []uint16{mdns.TypeNSEC, mdns.TypeRRSIG}
		for t := range z.data[name] {
			types = append(types, t)
		}
		slices.Sort(types)
		z.nsec[name] = &mdns.NSEC{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeNSEC, Class: mdns.ClassINET, Ttl: 300},
			NextDomain: z.names[(i+1)%len(z.names)], TypeBitMap: slices.Compact(types)}
	}
	inception, expiration := now.Add(-time.Hour), now.Add(7*24*time.Hour)
	for _, name := range z.names {
		for t, set := range z.data[name] {
			if z.cuts[name] && t == mdns.TypeNS {
				continue
			}
			if err := z.sign(set, inception, expiration); err != nil {
				return err
			}
		}
		if err := z.sign([]mdns.RR{z.nsec[name]}, inception, expiration); err != nil {
			return err
		}
	}
	return nil
}

// sign signs one RRset: DNSKEY with the KSK, the rest with the ZSK.
func (z *zone) sign(set []mdns.RR, inception, expiration time.Time) error {
	k := z.zsk
	h := set[0].Header()
	if h.Rrtype == mdns.TypeDNSKEY {
		k = z.ksk
	}
	sig := &mdns.RRSIG{Hdr: mdns.RR_Header{Ttl: h.Ttl}, Algorithm: k.rr.Algorithm, KeyTag: k.rr.KeyTag(),
		SignerName: z.name, Inception: uint32(inception.Unix()), Expiration: uint32(expiration.Unix())}
	if err := sig.Sign(k.priv, set); err != nil {
		return fmt.Errorf("sign %s %s: %w", h.Name, mdns.TypeToString[h.Rrtype], err)
	}
	if z.sigs[h.Name] == nil {
		z.sigs[h.Name] = make(map[uint16][]mdns.RR)
	}
	z.sigs[h.Name][h.Rrtype] = append(z.sigs[h.Name][h.Rrtype], sig)
	return nil
}

// parentName returns name without its first label, "" for the root.
func parentName(name string) string {
	if name == "." {
		return ""
	}
	i, end := mdns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// canonicalCompare orders names as RFC 4034 §6.1 does: label by label from the
// right, each compared as lower-case octets, a missing label sorting first.
func canonicalCompare(a, b string) int {
	la, lb := mdns.SplitDomainName(strings.ToLower(a)), mdns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 || j >= 0; i, j = i-1, j-1 {
		switch {
		case i < 0:
			return -1
		case j < 0:
			return 1
		}
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return 0
}

func sortCanonical(names []string) {
	sort.Slice(names, func(i, j int) bool { return canonicalCompare(names[i], names[j]) < 0 })
}
