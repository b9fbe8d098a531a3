package policylist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EFFVersion is the only version of the STARTTLS Everywhere format this package reads
// (LIST-01). The drafts before it (LIST-05) used other field names and meanings.
const EFFVersion = "0.1"

// MaxListSize bounds a list document. Published lists were tens of kilobytes; a
// document far beyond that is refused rather than held in memory.
const MaxListSize = 16 << 20

// effDoc is the top level of an EFF list (LIST-01). Unknown top-level fields are
// ignored: the published schema allows none, yet the lists of 2018 carried an empty
// "pinsets" object (LIST-05), and such a leftover must not take a list out of service.
// Fields of a policy are checked strictly, as the schema does, since an unknown one
// might change what the policy demands.
type effDoc struct {
	Timestamp     json.RawMessage `json:"timestamp"`
	Expires       json.RawMessage `json:"expires"`
	Version       *string         `json:"version"`
	Author        string          `json:"author"`
	PolicyAliases rawObject       `json:"policy-aliases"`
	Policies      rawObject       `json:"policies"`
}

// rawObject is a JSON object whose members are kept undecoded. Unlike a plain map it
// notices a name given twice: the published list did repeat a domain with the same
// policy, which is harmless and accepted, but two different policies under one name
// would leave the meaning to whichever parser read the list, so they are refused.
type rawObject map[string]json.RawMessage

func (o *rawObject) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return fmt.Errorf("want an object, not %v", t)
	}
	m := make(rawObject)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if prev, dup := m[name]; dup && !sameJSON(prev, v) {
			return fmt.Errorf("%q is given twice with different values", name)
		}
		m[name] = v
	}
	*o = m
	return nil
}

// sameJSON reports whether two JSON values are equal apart from insignificant space.
func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// effPolicy is a policy written out in the document, with a mode and MX patterns
// (LIST-01); a reference to an alias is read apart, in decodePolicy.
type effPolicy struct {
	Mode string   `json:"mode"`
	MXs  []string `json:"mxs"`
}

// ParseEFF reads a STARTTLS Everywhere list, format version "0.1" (LIST-01): a JSON
// object with timestamp, expires, version, author, policy-aliases and policies. Every
// policy-alias reference is resolved; a policy that names an alias ignores its other
// fields, and a policy without one must have exactly mode and mxs. A list that is
// malformed anywhere is refused as a whole, so that a damaged list never half-applies.
// ParseEFF does not check expiry: Lookup and Install do, against their clock.
func ParseEFF(r io.Reader) (*List, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxListSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy list: %w", err)
	}
	if len(raw) > MaxListSize {
		return nil, fmt.Errorf("reading policy list: larger than %d bytes", MaxListSize)
	}
	l, err := parseEFF(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing policy list: %w", err)
	}
	l.raw = raw
	return l, nil
}

func parseEFF(raw []byte) (*List, error) {
	var doc effDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if doc.Version == nil {
		return nil, errors.New("no version")
	}
	if *doc.Version != EFFVersion {
		return nil, fmt.Errorf("version %q: only %q is understood", *doc.Version, EFFVersion)
	}
	l := &List{Version: EFFVersion, Author: doc.Author}
	var err error
	if l.Timestamp, err = parseTime("timestamp", doc.Timestamp); err != nil {
		return nil, err
	}
	if l.Expires, err = parseTime("expires", doc.Expires); err != nil {
		return nil, err
	}
	if !l.Expires.After(l.Timestamp) {
		return nil, fmt.Errorf("expires %s is not after timestamp %s",
			l.Expires.Format(time.RFC3339), l.Timestamp.Format(time.RFC3339))
	}
	if doc.Policies == nil {
		return nil, errors.New("no policies")
	}

	// Names are taken in sorted order, so that a list with several faults always gets
	// the same error.
	aliases := make(map[string]Entry, len(doc.PolicyAliases))
	for _, name := range slices.Sorted(maps.Keys(doc.PolicyAliases)) {
		e, alias, err := decodePolicy(doc.PolicyAliases[name])
		if err != nil {
			return nil, fmt.Errorf("policy alias %q: %w", name, err)
		}
		if alias != "" {
			return nil, fmt.Errorf("policy alias %q refers to another alias %q", name, alias)
		}
		e.Alias = name
		aliases[name] = e
	}

	l.entries = make(map[string]Entry, len(doc.Policies))
	for _, name := range slices.Sorted(maps.Keys(doc.Policies)) {
		d, err := parseDomain(name)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		if _, dup := l.entries[d]; dup {
			return nil, fmt.Errorf("policies: domain %q is listed twice", d)
		}
		e, alias, err := decodePolicy(doc.Policies[name])
		if err != nil {
			return nil, fmt.Errorf("policy for %q: %w", name, err)
		}
		if alias != "" {
			a, ok := aliases[alias]
			if !ok {
				return nil, fmt.Errorf("policy for %q: unknown policy-alias %q", name, alias)
			}
			e = a
		}
		e.Domain = d
		l.entries[d] = e
	}
	return l, nil
}

// decodePolicy decodes one policy. It returns the alias name if the policy is a
// reference, else the entry. Unknown fields are refused: a field this package does not
// know might change the meaning of the policy (the schema allows no others).
func decodePolicy(raw json.RawMessage) (Entry, string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Entry{}, "", err
	}
	if fields == nil {
		return Entry{}, "", errors.New("policy is null")
	}
	if a, ok := fields["policy-alias"]; ok {
		// An alias reference: the other fields are ignored (LIST-01).
		var name string
		if err := json.Unmarshal(a, &name); err != nil {
			return Entry{}, "", fmt.Errorf("policy-alias: %w", err)
		}
		if name == "" {
			return Entry{}, "", errors.New("empty policy-alias")
		}
		return Entry{}, name, nil
	}
	for k := range fields {
		if k != "mode" && k != "mxs" {
			return Entry{}, "", fmt.Errorf("unknown field %q", k)
		}
	}
	var p effPolicy
	if err := json.Unmarshal(raw, &p); err != nil {
		return Entry{}, "", err
	}
	if _, ok := fields["mode"]; !ok {
		return Entry{}, "", errors.New("no mode")
	}
	mode, err := parseMode(p.Mode)
	if err != nil {
		return Entry{}, "", err
	}
	mxs, err := parseMXs(p.MXs)
	if err != nil {
		return Entry{}, "", err
	}
	return Entry{Mode: mode, MXs: mxs, MinTLS: LevelSecure, MinVersion: defaultMinVersion}, "", nil
}

// parseTime reads timestamp or expires: seconds since the epoch, as a JSON number or a
// string of digits, or an ISO 8601 date or date-time string (LIST-01). A date-time
// without a zone is taken as UTC; a bare date means its midnight UTC.
func parseTime(field string, raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, fmt.Errorf("no %s", field)
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", field, err)
		}
		s = strings.TrimSpace(s)
	} else {
		s = string(raw)
	}
	if t, ok := parseEpoch(s); ok {
		return t, nil
	}
	if raw[0] != '"' {
		return time.Time{}, fmt.Errorf("%s %s: want seconds since the epoch or an ISO 8601 string", field, raw)
	}
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want seconds since the epoch or an ISO 8601 string", field, s)
}

// parseEpoch reads non-negative seconds since the epoch, with an optional fraction.
func parseEpoch(s string) (time.Time, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	// Beyond year 9999 is no real list; refusing it keeps time arithmetic sane.
	if err != nil || f < 0 || f > 253402300799 || math.IsNaN(f) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
