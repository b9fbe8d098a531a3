package dnslab

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// Signer names the program that signs a zone. Both are used so that a validator is
// tested against two independent implementations of RFC 4034/5155 signing, with
// their different choices of record order, TTLs and NSEC3 parameters.
type Signer string

const (
	// LDNS signs with ldns-signzone and makes keys with ldns-keygen (ldnsutils).
	LDNS Signer = "ldns"
	// BIND signs with dnssec-signzone and makes keys with dnssec-keygen (bind9-utils).
	BIND Signer = "bind"
)

// Denial is the kind of authenticated denial of existence a signed zone carries.
type Denial string

const (
	// NSEC chains the zone's names in canonical order (RFC 4034 §4).
	NSEC Denial = "nsec"
	// NSEC3 chains hashed names (RFC 5155), without opt-out.
	NSEC3 Denial = "nsec3"
	// NSEC3OptOut is NSEC3 with the opt-out flag on every NSEC3 record
	// (RFC 5155 §6). The signers differ: dnssec-signzone leaves unsigned
	// delegations out of the chain, ldns-signzone only sets the flag and keeps
	// them in.
	NSEC3OptOut Denial = "nsec3-optout"
)

// Algorithms lists the DNSSEC algorithms a lab zone may use: the ones RFC 8624
// §3.1 says a validator must or should support.
var Algorithms = []uint8{
	mdns.RSASHA256,       // 8
	mdns.RSASHA512,       // 10
	mdns.ECDSAP256SHA256, // 13
	mdns.ECDSAP384SHA384, // 14
	mdns.ED25519,         // 15
}

// Zone describes one zone of the lab tree.
//
// The lab writes the apex itself: a SOA, an NS record naming "ns.<zone>" with its
// address 127.0.0.1, and, when the zone is signed, the DNSKEY RRset. In the parent
// zone it adds the delegation (NS and glue) and, when both parent and child are
// signed, the child's DS record. Records therefore must not hold SOA, NS or apex
// DNSKEY records (they are refused), and should leave the name "ns.<zone>" alone.
type Zone struct {
	// Name is the zone's apex: ".", "test.", "example.test." …
	Name string
	// Records are zone-file lines with the zone as $ORIGIN and a default TTL of
	// 300, for example "mx A 192.0.2.1" or "@ MX 10 mx".
	Records []string
	// Unsigned serves the zone without DNSSEC; the other signing fields must
	// then be zero.
	Unsigned bool
	// Signer is the signing program; default LDNS.
	Signer Signer
	// Algorithm is the DNSSEC algorithm number, one of Algorithms; default 13.
	Algorithm uint8
	// CSK signs the zone with a single combined key (flags 257) instead of a
	// key-signing key and a zone-signing key.
	CSK bool
	// Denial is the denial-of-existence scheme; default NSEC.
	Denial Denial
	// Iterations is the number of extra NSEC3 hash iterations (RFC 5155 §3.1.3).
	// RFC 9276 §3.1 asks for 0; dnssec-signzone refuses more than 150, so higher
	// counts need the LDNS signer.
	Iterations int
	// Salt is the NSEC3 salt in hex, "" for none (RFC 9276 §3.1).
	Salt string
	// Break is deliberate damage done to the zone or to its delegation.
	Break Break
	// Rewrite, when set, puts an in-process proxy between Unbound and NSD for this
	// zone's queries, which lets the reply be forged on the way (see Rewrite).
	Rewrite Rewrite
}

// Break lists deliberate damage applied to a signed zone after signing, or to its
// delegation in the parent. Each field makes validation of some or all answers
// from the zone fail in one specific way.
type Break struct {
	// ExpiredSigs signs the zone with a validity window that ended two days before
	// Lab.Now (RFC 4035 §5.3.1: the current time must not be after expiration).
	ExpiredSigs bool
	// FutureSigs signs the zone with a validity window that starts two days after
	// Lab.Now (RFC 4035 §5.3.1: the current time must not be before inception).
	FutureSigs bool
	// CorruptSig, as "owner TYPE" (for example "www.example.test. A"), flips
	// one bit in the signature of every RRSIG covering that RRset.
	CorruptSig string
	// DropSig, as "owner TYPE", removes the RRSIGs covering that RRset.
	DropSig string
	// WrongDS makes the parent publish the DS of a key that is not in the zone, so
	// that no DNSKEY matches the DS RRset (RFC 4035 §5.2).
	WrongDS bool
	// StripDNSKEY serves the zone without its DNSKEY RRset and the RRSIGs over it.
	StripDNSKEY bool
	// AddUnsigned are zone-file lines (relative to the zone) added after signing:
	// a forged, unsigned answer inside a signed zone.
	AddUnsigned []string
}

// zero reports whether b asks for no damage at all.
func (b Break) zero() bool {
	return !b.ExpiredSigs && !b.FutureSigs && b.CorruptSig == "" && b.DropSig == "" &&
		!b.WrongDS && !b.StripDNSKEY && len(b.AddUnsigned) == 0
}

// labelRE is the shape of a label the lab accepts in a zone name: letters, digits,
// hyphens and underscores. Zone names become file names, so nothing else.
var labelRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$`)

// maxIterationsBIND is the highest NSEC3 iteration count dnssec-signzone (BIND 9.18)
// accepts.
const maxIterationsBIND = 150

// withDefaults checks z and fills in the defaults of a signed zone. The name is
// made fully qualified and lower case.
func (z Zone) withDefaults() (Zone, error) {
	name := strings.ToLower(mdns.Fqdn(z.Name))
	if name != "." {
		for _, l := range mdns.SplitDomainName(name) {
			if !labelRE.MatchString(l) {
				return z, fmt.Errorf("zone %q: label %q is not letters, digits, '-' and '_'", z.Name, l)
			}
		}
	}
	z.Name = name
	for _, line := range z.Records {
		if strings.ContainsAny(line, "\r\n") {
			return z, fmt.Errorf("zone %s: record %q spans lines", name, line)
		}
	}
	rrs, err := parseRecords(name, z.Records)
	if err != nil {
		return z, fmt.Errorf("zone %s: %w", name, err)
	}
	for _, rr := range rrs {
		switch t := rr.Header().Rrtype; {
		case t == mdns.TypeSOA || t == mdns.TypeNS:
			// Delegations come from the zone list only: Unbound would follow
			// an NS record to port 53, where no lab server listens.
			return z, fmt.Errorf("zone %s: record %q: the lab writes SOA and NS records itself", name, rr)
		case t == mdns.TypeDNSKEY && mdns.CanonicalName(rr.Header().Name) == name:
			return z, fmt.Errorf("zone %s: record %q: the lab adds the zone's DNSKEY RRset", name, rr)
		}
	}
	if z.Unsigned {
		if z.Signer != "" || z.Algorithm != 0 || z.CSK || z.Denial != "" || z.Iterations != 0 || z.Salt != "" || !z.Break.zero() {
			return z, fmt.Errorf("zone %s: unsigned, but signing options or damage are set", name)
		}
		return z, nil
	}
	if z.Signer == "" {
		z.Signer = LDNS
	}
	if z.Signer != LDNS && z.Signer != BIND {
		return z, fmt.Errorf("zone %s: signer %q is neither %q nor %q", name, z.Signer, LDNS, BIND)
	}
	if z.Algorithm == 0 {
		z.Algorithm = mdns.ECDSAP256SHA256
	}
	if !slices.Contains(Algorithms, z.Algorithm) {
		return z, fmt.Errorf("zone %s: algorithm %d is not one of %v", name, z.Algorithm, Algorithms)
	}
	if z.Denial == "" {
		z.Denial = NSEC
	}
	switch z.Denial {
	case NSEC:
		if z.Iterations != 0 || z.Salt != "" {
			return z, fmt.Errorf("zone %s: NSEC3 iterations or salt set for an NSEC zone", name)
		}
	case NSEC3, NSEC3OptOut:
		// 2500 is the most RFC 5155 §10.3 allows for any key size.
		if z.Iterations < 0 || z.Iterations > 2500 {
			return z, fmt.Errorf("zone %s: NSEC3 iterations %d out of range", name, z.Iterations)
		}
		if z.Signer == BIND && z.Iterations > maxIterationsBIND {
			return z, fmt.Errorf("zone %s: dnssec-signzone accepts at most %d NSEC3 iterations; use the ldns signer", name, maxIterationsBIND)
		}
		if !saltRE.MatchString(z.Salt) {
			return z, fmt.Errorf("zone %s: NSEC3 salt %q is not up to 255 bytes of hex", name, z.Salt)
		}
		z.Salt = strings.ToLower(z.Salt)
	default:
		return z, fmt.Errorf("zone %s: denial %q is not one of %q, %q, %q", name, z.Denial, NSEC, NSEC3, NSEC3OptOut)
	}
	b := z.Break
	if b.ExpiredSigs && b.FutureSigs {
		return z, fmt.Errorf("zone %s: signatures cannot be both expired and not yet valid", name)
	}
	for _, spec := range []string{b.CorruptSig, b.DropSig} {
		if spec == "" {
			continue
		}
		owner, _, err := parseRRsetSpec(spec)
		if err != nil {
			return z, fmt.Errorf("zone %s: %w", name, err)
		}
		if !mdns.IsSubDomain(name, owner) {
			return z, fmt.Errorf("zone %s: damaged RRset %q is outside the zone", name, spec)
		}
	}
	if b.WrongDS && name == "." {
		return z, fmt.Errorf("zone .: the root has no parent to publish a wrong DS")
	}
	if _, err := parseRecords(name, b.AddUnsigned); err != nil {
		return z, fmt.Errorf("zone %s: added records: %w", name, err)
	}
	return z, nil
}

var saltRE = regexp.MustCompile(`^([0-9a-fA-F]{2}){0,255}$`)

// parseRRsetSpec parses "owner TYPE", the way Break names one RRset, into a fully
// qualified lower-case owner and a type code.
func parseRRsetSpec(spec string) (owner string, rrtype uint16, err error) {
	fields := strings.Fields(spec)
	if len(fields) != 2 {
		return "", 0, fmt.Errorf("RRset %q is not \"owner TYPE\"", spec)
	}
	if strings.Contains(fields[0], `\`) {
		// Escapes would let two spellings name one owner; lab names never need them.
		return "", 0, fmt.Errorf("RRset %q: escaped owner names are not supported", spec)
	}
	owner = strings.ToLower(mdns.Fqdn(fields[0]))
	if _, ok := mdns.IsDomainName(owner); !ok {
		return "", 0, fmt.Errorf("RRset %q: %q is not a domain name", spec, fields[0])
	}
	rrtype, ok := mdns.StringToType[strings.ToUpper(fields[1])]
	if !ok {
		return "", 0, fmt.Errorf("RRset %q: unknown type %q", spec, fields[1])
	}
	return owner, rrtype, nil
}

// parseRecords parses zone-file lines relative to origin, with the lab's default
// TTL, so that a mistake in a test's zone is reported before any tool runs.
func parseRecords(origin string, lines []string) ([]mdns.RR, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	zp, err := newZoneParser(strings.Join(lines, "\n")+"\n", origin, "")
	if err != nil {
		return nil, fmt.Errorf("parse records: %w", err)
	}
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parse records: %w", err)
	}
	return rrs, nil
}

// defaultTTL is the TTL of every record the lab writes, and the SOA minimum.
const defaultTTL = 300

// tree is a validated set of zones, each with its parent.
type tree struct {
	zones  []Zone            // in the caller's order
	parent map[string]string // zone name → closest enclosing lab zone; "" for the root
	byName map[string]*Zone
}

// newTree validates zones and finds each one's parent. The tree must have a signed
// root: the lab's only trust anchor is the root's DS.
func newTree(zones []Zone) (*tree, error) {
	t := &tree{parent: map[string]string{}, byName: map[string]*Zone{}}
	for _, z := range zones {
		z, err := z.withDefaults()
		if err != nil {
			return nil, err
		}
		if _, dup := t.byName[z.Name]; dup {
			return nil, fmt.Errorf("zone %s appears twice", z.Name)
		}
		t.zones = append(t.zones, z)
		t.byName[z.Name] = nil
	}
	for i := range t.zones {
		t.byName[t.zones[i].Name] = &t.zones[i]
	}
	root, ok := t.byName["."]
	if !ok {
		return nil, fmt.Errorf("the lab tree has no root zone \".\"")
	}
	if root.Unsigned {
		return nil, fmt.Errorf("the lab root must be signed: its DS is the trust anchor")
	}
	for _, z := range t.zones {
		if z.Name == "." {
			t.parent[z.Name] = ""
			continue
		}
		labels := mdns.SplitDomainName(z.Name)
		p := "."
		for i := 1; i < len(labels); i++ {
			cand := mdns.Fqdn(strings.Join(labels[i:], "."))
			if _, ok := t.byName[cand]; ok {
				p = cand
				break
			}
		}
		t.parent[z.Name] = p
	}
	return t, nil
}

// children returns the zones whose parent is name, in the caller's order.
func (t *tree) children(name string) []*Zone {
	var cs []*Zone
	for i := range t.zones {
		if t.parent[t.zones[i].Name] == name && t.zones[i].Name != "." {
			cs = append(cs, &t.zones[i])
		}
	}
	return cs
}

// levels groups the zones by depth, deepest first: the order in which they are
// signed, so that a child's DS is known when its parent is signed.
func (t *tree) levels() [][]*Zone {
	depth := func(name string) int {
		d := 0
		for p := t.parent[name]; p != ""; p = t.parent[p] {
			d++
		}
		return d
	}
	var out [][]*Zone
	for i := range t.zones {
		d := depth(t.zones[i].Name)
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], &t.zones[i])
	}
	slices.Reverse(out)
	return out
}

// fileName is the name under which a zone's files are kept: the zone name without
// its final dot, or "root".
func fileName(zone string) string {
	if zone == "." {
		return "root"
	}
	return strings.TrimSuffix(zone, ".")
}

// nsName is the name server host the lab gives a zone.
func nsName(zone string) string {
	if zone == "." {
		return rootNS
	}
	return "ns." + zone
}

// rootNS is the lab root's name server. It lies under .test so that the lab never
// names a host outside the reserved names, and the root zone carries its address
// as glue when "test." is delegated.
const rootNS = "ns.root-servers.test."

// labAddr is the address every lab name server record points to. Unbound never
// uses it (every zone is a stub with an explicit address and port), but a
// delegation needs glue, and loopback keeps any stray use on this machine.
const labAddr = "127.0.0.1"
