package dkim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// tag is one tag=value pair of a tag list, its value stripped of surrounding
// whitespace.
type tag struct {
	name, value string
}

// parseTagList parses the tag=value list of RFC 6376 §3.2, used by both the
// DKIM-Signature field (§3.5) and the key record (§3.6.1):
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//	tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//	tval      =  1*VALCHAR                ; %x21-3A / %x3C-7E
//
// It is strict: a duplicate tag name invalidates the whole list (§3.2), and so does an
// empty tag-spec, a character outside VALCHAR in a value, or a CR or LF that is not
// part of folding white space.
func parseTagList(s string) ([]tag, error) {
	if err := checkFWS(s); err != nil {
		return nil, err
	}
	specs := strings.Split(s, ";")
	if len(specs) > 1 && isFWS(specs[len(specs)-1]) {
		specs = specs[:len(specs)-1] // the optional trailing ";"
	}
	tags := make([]tag, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, spec := range specs {
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("tag %q has no '='", trimFWS(spec))
		}
		name = trimFWS(name)
		if !validTagName(name) {
			return nil, fmt.Errorf("invalid tag name %q", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("tag %q appears twice", name)
		}
		seen[name] = true
		value = trimFWS(value)
		for i := 0; i < len(value); i++ {
			if c := value[i]; !isValChar(c) && !isWSP(c) && c != '\r' && c != '\n' {
				return nil, fmt.Errorf("tag %q: invalid character %q in value", name, c)
			}
		}
		tags = append(tags, tag{name, value})
	}
	return tags, nil
}

// checkFWS reports an error unless every CR in s starts a CRLF followed by white space
// and every LF follows a CR: line breaks may only appear as folding (RFC 5322 §3.2.2).
func checkFWS(s string) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+2 >= len(s) || s[i+1] != '\n' || !isWSP(s[i+2]) {
				return errors.New("line break that is not folding white space")
			}
		case '\n':
			if i == 0 || s[i-1] != '\r' {
				return errors.New("bare LF")
			}
		}
	}
	return nil
}

func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool   { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isWSP(c byte) bool     { return c == ' ' || c == '\t' }
func isValChar(c byte) bool { return 0x21 <= c && c <= 0x3a || 0x3c <= c && c <= 0x7e }

func isFWS(s string) bool { return trimFWS(s) == "" }

func trimFWS(s string) string { return strings.Trim(s, " \t\r\n") }

// removeFWS deletes all white space, for values such as base64 where folding may fall
// anywhere (RFC 6376 §3.5, b= and bh=).
func removeFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// decodeBase64 decodes a base64 tag value with folding white space anywhere in it.
func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.Strict().DecodeString(removeFWS(s))
}
