package dnssec

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// rootAnchorText is the DS form of the root zone's key-signing keys, as IANA publishes
// them in https://data.iana.org/root-anchors/root-anchors.xml: KSK-2017 (key tag 20326,
// valid from 2017-02-02) and KSK-2024 (key tag 38696, valid from 2024-07-18), both
// RSA/SHA-256 (algorithm 8) with SHA-256 digests (digest type 2). Both are kept so that
// validation goes on working across the rollover between them without RFC 5011 state.
var rootAnchorText = []string{
	". 172800 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
	". 172800 IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
}

// RootAnchors returns the IANA root trust anchors built into mxward, as DS records.
// Each call returns fresh records.
func RootAnchors() []mdns.RR {
	out := make([]mdns.RR, 0, len(rootAnchorText))
	for _, s := range rootAnchorText {
		rr, err := mdns.NewRR(s)
		if err != nil {
			panic("dnssec: built-in root anchor: " + err.Error())
		}
		out = append(out, rr)
	}
	return out
}

// ReadAnchors reads a trust anchor file (dns.trust_anchor_file) with ParseAnchors.
func ReadAnchors(path string) ([]mdns.RR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading trust anchors: %w", err)
	}
	defer f.Close()
	rrs, err := ParseAnchors(f)
	if err != nil {
		return nil, fmt.Errorf("reading trust anchors from %s: %w", path, err)
	}
	return rrs, nil
}

// maxAnchorLine bounds one line of a trust anchor file; a 4096-bit RSA key in base64
// is under 1 KB.
const maxAnchorLine = 64 << 10

// autotrustState matches the key state Unbound writes after each record of its
// auto-trust-anchor-file (RFC 5011 states: 0 START, 1 ADDPEND, 2 VALID, 3 MISSING,
// 4 REVOKED, 5 REMOVED).
var autotrustState = regexp.MustCompile(`;;state=(\d+)`)

// ParseAnchors reads trust anchors: DS or DNSKEY records in zone-file syntax, one per
// entry (parentheses may continue an entry over several lines), with comments, blank
// lines, $ORIGIN and $TTL. Any other record type, or other directive, is an error that
// names its line. It also reads Unbound's forms: `trust-anchor: "<record>"` lines of
// unbound.conf (and its '#' comment lines), and the auto-trust-anchor-file Unbound maintains, whose DNSKEY records
// count only in the VALID and MISSING states and whose DS records count unless revoked
// or removed. A file without any anchor is an error: validation needs one.
func ParseAnchors(r io.Reader) ([]mdns.RR, error) {
	p := anchorParser{origin: ".", ttl: 3600}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxAnchorLine)
	var entry strings.Builder
	depth, line, start := 0, 0, 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if depth == 0 {
			start = line
			trimmed := strings.TrimSpace(text)
			if strings.HasPrefix(trimmed, "#") {
				continue // an unbound.conf comment
			}
			if rest, ok := cutPrefixFold(trimmed, "trust-anchor:"); ok {
				text = strings.TrimSpace(rest)
				if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
					text = text[1 : len(text)-1]
				}
			}
		}
		entry.WriteString(text)
		entry.WriteByte('\n')
		depth += parenDepth(text)
		if depth < 0 {
			return nil, fmt.Errorf("line %d: unbalanced parenthesis", line)
		}
		if depth > 0 {
			continue
		}
		if err := p.entry(entry.String(), start); err != nil {
			return nil, err
		}
		entry.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if depth > 0 {
		return nil, fmt.Errorf("line %d: parenthesis not closed", start)
	}
	if len(p.rrs) == 0 {
		return nil, errors.New("no DS or DNSKEY records")
	}
	return p.rrs, nil
}

type anchorParser struct {
	origin    string
	ttl       uint32
	lastOwner string
	rrs       []mdns.RR
}

// entry parses one entry: a directive, a record, or nothing (comments, blank lines).
func (p *anchorParser) entry(text string, line int) error {
	body := stripComment(text)
	fields := strings.Fields(body)
	if len(fields) == 0 {
		return nil
	}
	if strings.HasPrefix(fields[0], "$") {
		return p.directive(fields, line)
	}
	if body[0] == ' ' || body[0] == '\t' {
		// A record without an owner takes the previous record's (RFC 1035 §5.1).
		if p.lastOwner == "" {
			return fmt.Errorf("line %d: record without an owner name", line)
		}
		text = p.lastOwner + text
	}
	zp := mdns.NewZoneParser(strings.NewReader(text), p.origin, "")
	zp.SetDefaultTTL(p.ttl)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		var pe *mdns.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("line %d: %v", line, strings.TrimPrefix(pe.Error(), "dns: "))
		}
		return fmt.Errorf("line %d: %w", line, err)
	}
	if !ok || rr == nil {
		return fmt.Errorf("line %d: no record", line)
	}
	if _, more := zp.Next(); more {
		return fmt.Errorf("line %d: more than one record in an entry", line)
	}
	p.lastOwner = rr.Header().Name
	if rr.Header().Class != mdns.ClassINET {
		return fmt.Errorf("line %d: class %s, want IN", line, mdns.ClassToString[rr.Header().Class])
	}
	state := -1
	if m := autotrustState.FindStringSubmatch(text); m != nil {
		state, _ = strconv.Atoi(m[1])
	}
	switch r := rr.(type) {
	case *mdns.DNSKEY:
		if err := checkAnchorKey(r); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if state >= 0 && state != 2 && state != 3 {
			return nil // not (or no longer) a trust point
		}
	case *mdns.DS:
		if err := checkAnchorDS(r); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if state == 4 || state == 5 {
			return nil
		}
	default:
		return fmt.Errorf("line %d: %s record; a trust anchor must be DS or DNSKEY",
			line, mdns.TypeToString[rr.Header().Rrtype])
	}
	p.rrs = append(p.rrs, rr)
	return nil
}

func (p *anchorParser) directive(fields []string, line int) error {
	switch strings.ToUpper(fields[0]) {
	case "$ORIGIN":
		if len(fields) != 2 {
			return fmt.Errorf("line %d: $ORIGIN takes one name", line)
		}
		name := fields[1]
		if !mdns.IsFqdn(name) {
			if p.origin == "." {
				name += "."
			} else {
				name += "." + p.origin
			}
		}
		if _, ok := mdns.IsDomainName(name); !ok {
			return fmt.Errorf("line %d: bad $ORIGIN %q", line, fields[1])
		}
		p.origin = canonical(name)
	case "$TTL":
		if len(fields) != 2 {
			return fmt.Errorf("line %d: $TTL takes one value", line)
		}
		ttl, err := strconv.ParseUint(fields[1], 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: bad $TTL %q", line, fields[1])
		}
		p.ttl = uint32(ttl)
	default:
		return fmt.Errorf("line %d: directive %s is not allowed in a trust anchor file", line, fields[0])
	}
	return nil
}

// digestLen is the length of the digest of each DS digest type mxward knows.
var digestLen = map[uint8]int{mdns.SHA1: 20, mdns.SHA256: 32, mdns.SHA384: 48}

// checkAnchorDS checks that a DS trust anchor is well formed, and writes its digest in
// upper case.
func checkAnchorDS(d *mdns.DS) error {
	b, err := hex.DecodeString(d.Digest)
	if err != nil || len(b) == 0 {
		return fmt.Errorf("DS digest %q is not hexadecimal", d.Digest)
	}
	if n, ok := digestLen[d.DigestType]; ok && len(b) != n {
		return fmt.Errorf("DS digest of type %d has %d octets, want %d", d.DigestType, len(b), n)
	}
	d.Digest = strings.ToUpper(d.Digest)
	return nil
}

// checkAnchorKey checks that a DNSKEY trust anchor can sign a zone (RFC 4034 §2.1.1,
// §2.1.2) and that its key decodes.
func checkAnchorKey(k *mdns.DNSKEY) error {
	if k.Flags&mdns.ZONE == 0 || k.Protocol != 3 {
		return errors.New("DNSKEY is not a zone key (flags without 256, or protocol not 3)")
	}
	if b, err := base64.StdEncoding.DecodeString(k.PublicKey); err != nil || len(b) == 0 {
		return errors.New("DNSKEY public key is not base64")
	}
	return nil
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// stripComment returns text without comments: from a ';' outside quotes to the end of
// each line.
func stripComment(text string) string {
	var b strings.Builder
	quoted, comment := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\n':
			comment = false
		case comment:
			continue
		case c == '\\' && i+1 < len(text) && text[i+1] != '\n':
			b.WriteByte(c)
			i++
			c = text[i]
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			comment = true
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parenDepth returns how much a line changes the parenthesis depth, counting
// parentheses outside quotes and comments.
func parenDepth(line string) int {
	d := 0
	for _, c := range stripComment(line) {
		switch c {
		case '(':
			d++
		case ')':
			d--
		}
	}
	return d
}
