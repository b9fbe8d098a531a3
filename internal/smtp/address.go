package smtp

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Address is a parsed mailbox (RFC 5321 §4.1.2 Mailbox).
type Address struct {
	Local  string // local part as written (a quoted local part keeps its quotes)
	Domain string // domain as written; for an address literal, including the brackets
}

// String returns the address in its wire form local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// IsLiteral reports whether the domain is an address literal such as [192.0.2.1].
func (a Address) IsLiteral() bool { return strings.HasPrefix(a.Domain, "[") }

// Limits from RFC 5321 §4.5.3.1.
const (
	maxLocalPart = 64
	maxDomain    = 255
	maxPath      = 256
)

// ParseAddress parses a mailbox. utf8OK allows the RFC 6531 extensions (UTF-8 in the local
// part and in domain labels), which a server permits only when the client gave SMTPUTF8.
func ParseAddress(s string, utf8OK bool) (Address, error) {
	if len(s) > maxPath {
		return Address{}, fmt.Errorf("%w: address longer than %d bytes", ErrSyntax, maxPath)
	}
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%w: address is not valid UTF-8", ErrSyntax)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Address{}, fmt.Errorf("%w: address needs local@domain", ErrSyntax)
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalPart {
		return Address{}, fmt.Errorf("%w: local part longer than %d bytes", ErrSyntax, maxLocalPart)
	}
	if err := checkLocalPart(local, utf8OK); err != nil {
		return Address{}, err
	}
	if strings.HasPrefix(domain, "[") {
		if err := checkAddressLiteral(domain); err != nil {
			return Address{}, err
		}
	} else if err := CheckDomain(domain, utf8OK); err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

func checkLocalPart(l string, utf8OK bool) error {
	if strings.HasPrefix(l, `"`) {
		if len(l) < 2 || !strings.HasSuffix(l, `"`) {
			return fmt.Errorf("%w: bad quoted local part", ErrSyntax)
		}
		inner := l[1 : len(l)-1]
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			switch {
			case c == '\\':
				i++
				if i >= len(inner) || inner[i] < 32 || inner[i] > 126 {
					return fmt.Errorf("%w: bad quoted pair in local part", ErrSyntax)
				}
			case c == '"':
				return fmt.Errorf("%w: unescaped quote in local part", ErrSyntax)
			case c >= 128:
				if !utf8OK {
					return fmt.Errorf("%w: non-ASCII local part without SMTPUTF8", ErrSyntax)
				}
			case c < 32 || c == 127:
				return fmt.Errorf("%w: control character in local part", ErrSyntax)
			}
		}
		return nil
	}
	// Dot-string: atoms separated by single dots.
	for _, atom := range strings.Split(l, ".") {
		if atom == "" {
			return fmt.Errorf("%w: empty atom in local part", ErrSyntax)
		}
		for i := 0; i < len(atom); i++ {
			c := atom[i]
			if c >= 128 {
				if !utf8OK {
					return fmt.Errorf("%w: non-ASCII local part without SMTPUTF8", ErrSyntax)
				}
				continue
			}
			if !isAtext(c) {
				return fmt.Errorf("%w: character %q not allowed in local part", ErrSyntax, c)
			}
		}
	}
	return nil
}

func isAtext(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// CheckDomain validates a domain name as used in SMTP: dot-separated labels of letters,
// digits and hyphens (plus UTF-8 U-labels when utf8OK), no label longer than 63 bytes, no
// leading or trailing hyphen. A single trailing dot is not allowed in SMTP.
func CheckDomain(d string, utf8OK bool) error {
	if d == "" || len(d) > maxDomain {
		return fmt.Errorf("%w: bad domain length", ErrSyntax)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: bad domain label in %q", ErrSyntax, d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: domain label starts or ends with a hyphen", ErrSyntax)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= 128 {
				if !utf8OK {
					return fmt.Errorf("%w: non-ASCII domain without SMTPUTF8", ErrSyntax)
				}
				continue
			}
			if !isAlnum(c) && c != '-' {
				return fmt.Errorf("%w: character %q not allowed in domain", ErrSyntax, c)
			}
		}
	}
	return nil
}

func checkAddressLiteral(d string) error {
	if !strings.HasSuffix(d, "]") {
		return fmt.Errorf("%w: unterminated address literal", ErrSyntax)
	}
	inner := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%w: bad IPv6 address literal", ErrSyntax)
		}
		return nil
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is4() {
		return fmt.Errorf("%w: bad address literal", ErrSyntax)
	}
	return nil
}

// IsASCII reports whether s is all ASCII: an address or domain that is not needs
// SMTPUTF8 (RFC 6531) or, for a domain, its A-label form.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
