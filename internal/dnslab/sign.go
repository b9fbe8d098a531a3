package dnslab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// A window is the validity period written into a zone's RRSIGs (RFC 4034 §3.1.5).
type window struct {
	inception, expiration time.Time
}

// Validity periods relative to Lab.Now. A sound zone's signatures started a day
// before Now, so a replay of recorded answers at Now is well inside the window
// and neither clock skew nor a test running for a while can push it out. Damaged
// windows miss Now by two days on either side, far more than any skew allowance.
const (
	validBefore = 24 * time.Hour
	validAfter  = 30 * 24 * time.Hour
	missBy      = 2 * 24 * time.Hour
)

// signingWindow returns the RRSIG validity period for a zone signed at now with
// damage b.
func signingWindow(now time.Time, b Break) window {
	switch {
	case b.ExpiredSigs:
		return window{now.Add(-validAfter), now.Add(-missBy)}
	case b.FutureSigs:
		return window{now.Add(missBy), now.Add(validAfter)}
	}
	return window{now.Add(-validBefore), now.Add(validAfter)}
}

// sigTime formats t the way both signers take absolute times: YYYYMMDDHHMMSS in UTC.
func sigTime(t time.Time) string { return t.UTC().Format("20060102150405") }

// delegation is what a parent zone publishes for one child.
type delegation struct {
	child string
	ds    []*mdns.DS // empty for an unsigned child or an unsigned parent
}

// zoneText returns the zone file of z before signing: apex records, the test's
// records, the DNSKEYs it will be signed with and its delegations.
func zoneText(z *Zone, ks *keySet, dels []delegation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", z.Name, defaultTTL)
	// RFC 1035 §3.3.13; fixed serial and timers so that every run writes the
	// same SOA and recorded answers can be compared byte for byte.
	fmt.Fprintf(&b, "%s %d IN SOA %s hostmaster.%s 1 3600 600 86400 %d\n",
		z.Name, defaultTTL, nsName(z.Name), strings.TrimPrefix(z.Name, "."), defaultTTL)
	fmt.Fprintf(&b, "%s %d IN NS %s\n", z.Name, defaultTTL, nsName(z.Name))
	// For the root the name server lies under "test.", and this address is glue.
	fmt.Fprintf(&b, "%s %d IN A %s\n", nsName(z.Name), defaultTTL, labAddr)
	if ks != nil {
		for _, k := range ks.signing() {
			key := *k.dnskey
			key.Hdr.Ttl = defaultTTL
			b.WriteString(key.String() + "\n")
		}
	}
	for _, line := range z.Records {
		b.WriteString(line + "\n")
	}
	for _, d := range dels {
		fmt.Fprintf(&b, "%s %d IN NS %s\n", d.child, defaultTTL, nsName(d.child))
		fmt.Fprintf(&b, "%s %d IN A %s\n", nsName(d.child), defaultTTL, labAddr)
		for _, ds := range d.ds {
			b.WriteString(ds.String() + "\n")
		}
	}
	return b.String()
}

// signing returns the keys that sign the zone, key-signing key first.
func (ks *keySet) signing() []zoneKey {
	keys := []zoneKey{ks.ksk}
	if ks.zsk != nil {
		keys = append(keys, *ks.zsk)
	}
	return keys
}

// signZone writes z's zone file into dir, signs it with z's signer and returns the
// signed zone's records.
func signZone(ctx context.Context, z *Zone, dir string, ks *keySet, dels []delegation, now time.Time) ([]mdns.RR, error) {
	src := filepath.Join(dir, fileName(z.Name)+".unsigned")
	out := filepath.Join(dir, fileName(z.Name)+".signed")
	if err := os.WriteFile(src, []byte(zoneText(z, ks, dels)), 0o644); err != nil {
		return nil, fmt.Errorf("write zone %s: %w", z.Name, err)
	}
	w := signingWindow(now, z.Break)
	var prog string
	var args []string
	switch z.Signer {
	case LDNS:
		prog = ldnsSignzone
		if z.Denial != NSEC {
			args = append(args, "-n", "-t", strconv.Itoa(z.Iterations))
			if z.Salt != "" {
				args = append(args, "-s", z.Salt)
			}
			if z.Denial == NSEC3OptOut {
				args = append(args, "-p")
			}
		}
		args = append(args, "-i", sigTime(w.inception), "-e", sigTime(w.expiration), "-o", z.Name, "-f", out, src)
		for _, k := range ks.signing() {
			args = append(args, k.base)
		}
	case BIND:
		prog = bindSignzone
		// Keys are named by path; -K points at the work directory so that no
		// other key is picked up from a key directory.
		args = []string{"-q", "-O", "full", "-o", z.Name, "-f", out,
			"-s", sigTime(w.inception), "-e", sigTime(w.expiration), "-K", dir}
		if z.Break.ExpiredSigs || z.Break.FutureSigs {
			// Post-signing verification judges the window by the clock and
			// rejects a zone whose signatures are not valid now.
			args = append(args, "-P")
		}
		if z.Denial != NSEC {
			salt := z.Salt
			if salt == "" {
				salt = "-"
			}
			args = append(args, "-3", salt, "-H", strconv.Itoa(z.Iterations))
			if z.Denial == NSEC3OptOut {
				args = append(args, "-A")
			}
		}
		if ks.zsk == nil {
			// A CSK: -z lets the key-signing key sign every RRset.
			args = append(args, "-z", src, ks.ksk.base)
		} else {
			args = append(args, "-k", ks.ksk.base, src, ks.zsk.base)
		}
	default:
		return nil, fmt.Errorf("sign zone %s: unknown signer %q", z.Name, z.Signer)
	}
	if _, err := run(ctx, dir, prog, args...); err != nil {
		return nil, fmt.Errorf("sign zone %s: %w", z.Name, err)
	}
	rrs, err := readZoneFile(out, z.Name)
	if err != nil {
		return nil, fmt.Errorf("sign zone %s: %w", z.Name, err)
	}
	return rrs, nil
}

// unsignedZone returns the records of an unsigned zone.
func unsignedZone(z *Zone, dels []delegation) ([]mdns.RR, error) {
	rrs, err := parseZone(zoneText(z, nil, dels), z.Name, "")
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.Name, err)
	}
	return rrs, nil
}

// readZoneFile parses a zone file written by a signer.
func readZoneFile(path, origin string) ([]mdns.RR, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read zone file: %w", err)
	}
	return parseZone(string(data), origin, path)
}

// parseZone parses a zone file's text.
func parseZone(text, origin, file string) ([]mdns.RR, error) {
	zp, err := newZoneParser(text, origin, file)
	if err != nil {
		return nil, fmt.Errorf("parse zone %s: %w", origin, err)
	}
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parse zone %s: %w", origin, err)
	}
	return rrs, nil
}

// writeZone writes rrs as NSD's zone file.
func writeZone(path string, rrs []mdns.RR) error {
	if err := os.WriteFile(path, []byte(formatZone(rrs)), 0o644); err != nil {
		return fmt.Errorf("write zone file: %w", err)
	}
	return nil
}

// formatZone returns rrs as zone-file text, one record a line in the order given.
func formatZone(rrs []mdns.RR) string {
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// newZoneParser returns a parser for zone-file text with the lab's default TTL.
// $INCLUDE is refused, and so is $GENERATE: neither signer writes it, and one
// line of it can expand to 65536 records.
func newZoneParser(text, origin, file string) (*mdns.ZoneParser, error) {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "$GENERATE") {
			return nil, fmt.Errorf("$GENERATE is not supported")
		}
	}
	zp := mdns.NewZoneParser(strings.NewReader(text), origin, file)
	zp.SetDefaultTTL(defaultTTL)
	zp.SetIncludeAllowed(false)
	return zp, nil
}
