package policylist

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// LocalVersion is the Version of a list read from the operator's own file.
const LocalVersion = "mxward"

// localDoc is the operator's own list, a TOML file:
//
//	author  = "postmaster@example.org"   # optional, for the log
//	expires = 2027-06-01T00:00:00Z       # optional; without it the list never expires
//
//	[domains."example.com"]
//	mode    = "enforce"                  # or "testing"
//	mxs     = ["mx1.example.com", ".mail.example.net"]
//	min-tls = "secure"                   # optional: encrypt, verify or secure (default)
//	min-tls-version = "1.2"              # optional: "1.2" (default) or "1.3"
type localDoc struct {
	Author  string                 `toml:"author"`
	Expires *time.Time             `toml:"expires"`
	Domains map[string]localDomain `toml:"domains"`
}

type localDomain struct {
	Mode          string   `toml:"mode"`
	MXs           []string `toml:"mxs"`
	MinTLS        string   `toml:"min-tls"`
	MinTLSVersion string   `toml:"min-tls-version"`
}

// ParseLocal reads the operator's own list, a TOML file of per-domain entries (see the
// example in the documentation of localDoc, and testdata/local.toml). The same matching
// rules apply as for the EFF list. Unknown keys are refused, so that a misspelt key
// does not silently weaken an entry.
func ParseLocal(r io.Reader) (*List, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxListSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading local policy list: %w", err)
	}
	if len(raw) > MaxListSize {
		return nil, fmt.Errorf("reading local policy list: larger than %d bytes", MaxListSize)
	}
	l, err := parseLocal(string(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing local policy list: %w", err)
	}
	l.raw = raw // installed as written, comments and all
	return l, nil
}

func parseLocal(src string) (*List, error) {
	var doc localDoc
	md, err := toml.Decode(src, &doc)
	if err != nil {
		return nil, err
	}
	if u := md.Undecoded(); len(u) > 0 {
		keys := make([]string, len(u))
		for i, k := range u {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	l := &List{Version: LocalVersion, Author: doc.Author, entries: make(map[string]Entry, len(doc.Domains))}
	if doc.Expires != nil {
		l.Expires = doc.Expires.UTC()
		if l.Expires.IsZero() {
			return nil, errors.New("expires: zero time")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Domains)) {
		ld := doc.Domains[name]
		d, err := parseDomain(name)
		if err != nil {
			return nil, fmt.Errorf("domains: %w", err)
		}
		if _, dup := l.entries[d]; dup {
			return nil, fmt.Errorf("domains: %q is listed twice", d)
		}
		e := Entry{Domain: d, MinTLS: LevelSecure, MinVersion: defaultMinVersion}
		if e.Mode, err = parseMode(ld.Mode); err != nil {
			return nil, fmt.Errorf("domains.%q: %w", name, err)
		}
		if e.MXs, err = parseMXs(ld.MXs); err != nil {
			return nil, fmt.Errorf("domains.%q: %w", name, err)
		}
		switch ld.MinTLS {
		case "":
		case LevelEncrypt, LevelVerify, LevelSecure:
			e.MinTLS = ld.MinTLS
		default:
			return nil, fmt.Errorf("domains.%q: min-tls %q: want %s, %s or %s", name, ld.MinTLS, LevelEncrypt, LevelVerify, LevelSecure)
		}
		switch ld.MinTLSVersion {
		case "", "1.2":
		case "1.3":
			e.MinVersion = tls.VersionTLS13
		default:
			return nil, fmt.Errorf("domains.%q: min-tls-version %q: want \"1.2\" or \"1.3\"", name, ld.MinTLSVersion)
		}
		l.entries[d] = e
	}
	return l, nil
}
