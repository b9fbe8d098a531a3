package mtasts

import (
	"errors"
	"fmt"
	"strings"
)

// Errors from ParseRecord. In each case the domain has no live policy (STS-03); a
// cached policy is still applied (STS-14).
var (
	// ErrNoRecord: no TXT record begins with "v=STSv1".
	ErrNoRecord = errors.New("no MTA-STS TXT record")
	// ErrMultipleRecords: more than one record begins with "v=STSv1" (RFC 8461 §3.1).
	ErrMultipleRecords = errors.New("more than one MTA-STS TXT record")
	// ErrInvalidRecord: the one STSv1 record breaks the syntax of RFC 8461 §3.1.
	ErrInvalidRecord = errors.New("invalid MTA-STS TXT record")
)

// Record is a parsed _mta-sts TXT record (RFC 8461 §3.1).
type Record struct {
	// ID names the current policy; any change means the policy changed (STS-04). It
	// says nothing about order.
	ID string
}

// ParseRecord picks the MTA-STS record out of the TXT records at _mta-sts.<domain>,
// each already joined from its character-strings (STS-02), and parses it.
//
// Records that do not begin with "v=STSv1" followed by ";", whitespace or the end are
// discarded; exactly one must remain (STS-03). Its fields are "name=value" separated by
// ";" with optional whitespace (RFC 8461 §3.1 ABNF); "id" is required, 1 to 32 letters
// or digits, and must appear once. Other fields are extensions and are ignored once
// their syntax has been checked.
func ParseRecord(txts []string) (Record, error) {
	var found []string
	for _, t := range txts {
		rest, ok := strings.CutPrefix(t, "v=STSv1")
		if ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t') {
			found = append(found, rest)
		}
	}
	switch len(found) {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
	default:
		return Record{}, fmt.Errorf("%w: %d records", ErrMultipleRecords, len(found))
	}
	rest := found[0]
	var r Record
	haveID := false
	fields := strings.Split(rest, ";")
	// fields[0] is what lies between "v=STSv1" and the first ";": whitespace only.
	if strings.Trim(fields[0], " \t") != "" || len(fields) < 2 {
		return Record{}, fmt.Errorf("%w: no field after the version", ErrInvalidRecord)
	}
	for i, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-2 {
				break // one trailing ";" is allowed
			}
			return Record{}, fmt.Errorf("%w: empty field", ErrInvalidRecord)
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok || !validRecordFieldName(name) || !validRecordValue(value) {
			return Record{}, fmt.Errorf("%w: malformed field %q", ErrInvalidRecord, f)
		}
		if name != "id" {
			continue // extension field (RFC 8461 §3.1)
		}
		if haveID {
			return Record{}, fmt.Errorf("%w: id given twice", ErrInvalidRecord)
		}
		if !validID(value) {
			return Record{}, fmt.Errorf("%w: id %q is not 1 to 32 letters or digits", ErrInvalidRecord, value)
		}
		haveID = true
		r.ID = value
	}
	if !haveID {
		return Record{}, fmt.Errorf("%w: no id field", ErrInvalidRecord)
	}
	return r, nil
}

// validRecordFieldName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
// (sts-ext-name, RFC 8461 §3.1).
func validRecordFieldName(s string) bool { return validFieldName(s) }

// validRecordValue: 1*(%x21-3A / %x3C / %x3E-7E), visible ASCII without ";" and "="
// (sts-ext-value, RFC 8461 §3.1).
func validRecordValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

// validID: 1*32(ALPHA / DIGIT) (sts-id, RFC 8461 §3.1).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}
