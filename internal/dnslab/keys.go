package dnslab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// A zoneKey is one generated key pair: the path of its files without extension
// (the "K<name>+<alg>+<tag>" base name both tools use) and its public DNSKEY.
type zoneKey struct {
	base   string
	dnskey *mdns.DNSKEY
}

// keySet is what a signed zone is signed with, plus the decoy whose DS a WrongDS
// parent publishes instead of the real one.
type keySet struct {
	ksk   zoneKey // the CSK when the zone has only one key
	zsk   *zoneKey
	decoy *zoneKey
}

// rsaBits is the modulus size of generated RSA keys: the size RFC 8624 §3.1 and
// common practice expect for algorithms 8 and 10.
const rsaBits = 2048

// algorithmName is how both key generators spell the lab's algorithms.
func algorithmName(alg uint8) string {
	switch alg {
	case mdns.RSASHA256:
		return "RSASHA256"
	case mdns.RSASHA512:
		return "RSASHA512"
	case mdns.ECDSAP256SHA256:
		return "ECDSAP256SHA256"
	case mdns.ECDSAP384SHA384:
		return "ECDSAP384SHA384"
	case mdns.ED25519:
		return "ED25519"
	}
	return ""
}

// makeKeys generates the keys of signed zone z under dir with z's signer's own
// key generator, so that key files are in the format that signer expects.
//
// Each key gets a directory of its own: dnssec-keygen -C (BIND 9.18) silently
// overwrites the files of an existing key whose tag the new key happens to share.
// The zone's keys all have different tags, so that a validator never has two
// candidate keys for one signature and every failure happens where it is meant
// to (RFC 4035 §5.3.1 matches RRSIG and DNSKEY by tag; a decoy with the real
// key's tag would fail at the signature instead of at the DS match of §5.2).
func makeKeys(ctx context.Context, z *Zone, dir string) (keySet, error) {
	var ks keySet
	var tags []uint16
	// gen makes one key whose tag none of the zone's other keys has; tags
	// collide once in 65536, so a second try nearly always suffices.
	gen := func(role string, ksk bool) (zoneKey, error) {
		for try := range 3 {
			kdir := filepath.Join(dir, fmt.Sprintf("%s%d", role, try))
			if err := os.MkdirAll(kdir, 0o755); err != nil {
				return zoneKey{}, fmt.Errorf("create key directory for %s: %w", z.Name, err)
			}
			k, err := genKey(ctx, z, kdir, ksk)
			if err != nil {
				return zoneKey{}, err
			}
			if !slices.Contains(tags, k.dnskey.KeyTag()) {
				tags = append(tags, k.dnskey.KeyTag())
				return k, nil
			}
		}
		return zoneKey{}, fmt.Errorf("generate %s key for %s: every key had the tag of another key of the zone", role, z.Name)
	}
	var err error
	if ks.ksk, err = gen("ksk", true); err != nil {
		return ks, err
	}
	if !z.CSK {
		zsk, err := gen("zsk", false)
		if err != nil {
			return ks, err
		}
		ks.zsk = &zsk
	}
	if z.Break.WrongDS {
		decoy, err := gen("decoy", true)
		if err != nil {
			return ks, err
		}
		ks.decoy = &decoy
	}
	return ks, nil
}

// genKey runs ldns-keygen or dnssec-keygen for one key of z and reads back the public
// key it wrote.
func genKey(ctx context.Context, z *Zone, dir string, ksk bool) (zoneKey, error) {
	var args []string
	var prog string
	switch z.Signer {
	case LDNS:
		prog = ldnsKeygen
		args = []string{"-a", algorithmName(z.Algorithm), "-r", "/dev/urandom"}
		if ksk {
			args = append(args, "-k")
		}
	case BIND:
		prog = bindKeygen
		// -C: no timing metadata, so the key is active whatever Lab.Now is.
		args = []string{"-q", "-C", "-K", dir, "-a", algorithmName(z.Algorithm), "-n", "ZONE"}
		if ksk {
			args = append(args, "-f", "KSK")
		}
	}
	if z.Algorithm == mdns.RSASHA256 || z.Algorithm == mdns.RSASHA512 {
		args = append(args, "-b", fmt.Sprint(rsaBits))
	}
	args = append(args, z.Name)
	out, err := run(ctx, dir, prog, args...)
	if err != nil {
		return zoneKey{}, fmt.Errorf("generate key for %s: %w", z.Name, err)
	}
	base := strings.TrimSpace(lastLine(out))
	if !strings.HasPrefix(base, "K") || strings.ContainsAny(base, "/ ") {
		return zoneKey{}, fmt.Errorf("generate key for %s: %s printed %q, not a key name", z.Name, prog, base)
	}
	base = filepath.Join(dir, base)
	key, err := readDNSKEY(base + ".key")
	if err != nil {
		return zoneKey{}, fmt.Errorf("generate key for %s: %w", z.Name, err)
	}
	if key.Algorithm != z.Algorithm || (key.Flags&mdns.SEP != 0) != ksk || !strings.EqualFold(key.Hdr.Name, z.Name) {
		return zoneKey{}, fmt.Errorf("generate key for %s: %s wrote %s", z.Name, prog, key)
	}
	return zoneKey{base: base, dnskey: key}, nil
}

// readDNSKEY reads the one DNSKEY record in a .key file of either tool.
func readDNSKEY(path string) (*mdns.DNSKEY, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	defer f.Close()
	zp := mdns.NewZoneParser(f, ".", path)
	zp.SetIncludeAllowed(false)
	var key *mdns.DNSKEY
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k, isKey := rr.(*mdns.DNSKEY)
		if !isKey || key != nil {
			return nil, fmt.Errorf("read public key %s: expected exactly one DNSKEY record", path)
		}
		key = k
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("read public key %s: %w", path, err)
	}
	if key == nil {
		return nil, fmt.Errorf("read public key %s: no DNSKEY record", path)
	}
	return key, nil
}

// makeDS computes the SHA-256 DS record (RFC 4509) of key with the tool of the signer
// that made it: ldns-key2ds or dnssec-dsfromkey. The result is checked against the
// digest computed here, so a tool that printed something else is caught at once.
func makeDS(ctx context.Context, signer Signer, key zoneKey) (*mdns.DS, error) {
	var out string
	var err error
	switch signer {
	case LDNS:
		out, err = run(ctx, filepath.Dir(key.base), ldnsKey2DS, "-n", "-2", key.base+".key")
	case BIND:
		out, err = run(ctx, filepath.Dir(key.base), bindDSFromKey, "-2", key.base+".key")
	default:
		return nil, fmt.Errorf("make DS: unknown signer %q", signer)
	}
	if err != nil {
		return nil, fmt.Errorf("make DS of %s: %w", filepath.Base(key.base), err)
	}
	rr, err := mdns.NewRR(strings.TrimSpace(out))
	if err != nil {
		return nil, fmt.Errorf("make DS of %s: parse %q: %w", filepath.Base(key.base), out, err)
	}
	ds, ok := rr.(*mdns.DS)
	if !ok {
		return nil, fmt.Errorf("make DS of %s: tool printed %s, not a DS record", filepath.Base(key.base), rr)
	}
	want := key.dnskey.ToDS(mdns.SHA256)
	if want == nil || !strings.EqualFold(ds.Digest, want.Digest) || ds.KeyTag != want.KeyTag || ds.DigestType != mdns.SHA256 {
		return nil, fmt.Errorf("make DS of %s: tool printed %s, expected %s", filepath.Base(key.base), ds, want)
	}
	ds.Hdr.Ttl = defaultTTL
	ds.Hdr.Name = strings.ToLower(ds.Hdr.Name)
	ds.Digest = strings.ToLower(ds.Digest)
	return ds, nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
