package inject

import (
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"

	"mxward/internal/smtp"
)

// addressParser decodes RFC 2047 display names in any charset without failing: only
// the addresses matter to the envelope, so an unknown charset must not make a header
// unparsable.
var addressParser = mail.AddressParser{
	WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	},
}

// placeholderDomain qualifies bare local parts while they are validated before the real
// domain is known. The .invalid top-level domain (RFC 2606) cannot clash with a real one.
const placeholderDomain = "unqualified.invalid"

var errNoAddress = errors.New("no address")

// parseAddressList parses an RFC 5322 address list, as found in a To: header or a
// sendmail recipient argument, into mailboxes in SMTP form (local parts quoted where
// RFC 5321 requires). Groups contribute their members. Addresses without a domain,
// which sendmail accepts ("root", "Joe <joe>"), are qualified with domain, or returned
// as a bare local part when domain is "".
func parseAddressList(s, domain string) ([]string, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, errors.New("control character in address list")
	}
	list, err := addressParser.ParseList(s)
	if err != nil {
		// net/mail rejects the whole list for one unqualified or odd member; retry one
		// member at a time, qualifying and falling back to the angle-addr alone.
		list = nil
		for _, elem := range splitAddressList(s) {
			a, err := parseMember(elem)
			if err != nil {
				return nil, err
			}
			list = append(list, a)
		}
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		m, err := mailbox(a.Address, domain)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMember parses one member of an address list leniently.
func parseMember(elem string) (*mail.Address, error) {
	if a, err := addressParser.Parse(elem); err == nil {
		return a, nil
	}
	if a, err := addressParser.Parse(qualify(elem)); err == nil {
		return a, nil
	}
	// A display name net/mail cannot read (raw Latin-1, stray specials) does not
	// matter for delivery: take the address between the angle brackets.
	lt := strings.LastIndexByte(elem, '<')
	gt := strings.LastIndexByte(elem, '>')
	if lt >= 0 && gt > lt {
		inner := elem[lt+1 : gt]
		if a, err := addressParser.Parse(qualify(inner)); err == nil {
			return a, nil
		}
	}
	_, err := addressParser.Parse(elem)
	return nil, err
}

// qualify appends the placeholder domain to an address without one.
func qualify(elem string) string {
	if lt := strings.LastIndexByte(elem, '<'); lt >= 0 {
		gt := strings.IndexByte(elem[lt:], '>')
		if gt < 0 || strings.Contains(elem[lt:lt+gt], "@") {
			return elem
		}
		gt += lt
		return elem[:gt] + "@" + placeholderDomain + elem[gt:]
	}
	if strings.Contains(elem, "@") {
		return elem
	}
	return elem + "@" + placeholderDomain
}

// splitAddressList splits an address list at top-level commas and semicolons, dropping
// comments and group names, so its members can be parsed one by one. Quoted strings,
// angle-addrs and domain literals are kept whole.
func splitAddressList(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote bool
		angle bool
		lit   bool
		depth int // comment nesting
	)
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			continue
		case quote:
			cur.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(s) {
					i++
					cur.WriteByte(s[i])
				}
			case '"':
				quote = false
			}
			continue
		case lit:
			cur.WriteByte(c)
			if c == ']' {
				lit = false
			}
			continue
		}
		switch c {
		case '(':
			depth++
			cur.WriteByte(' ')
			continue
		case '"':
			quote = true
		case '[':
			lit = true
		case '<':
			angle = true
		case '>':
			angle = false
		case ',', ';':
			if !angle {
				flush()
				continue
			}
		case ':':
			// A group's display name is a phrase; after an address the colon is
			// garbage that must make the member fail to parse.
			if !angle && !strings.ContainsAny(cur.String(), "@<>") {
				cur.Reset()
				continue
			}
		}
		cur.WriteByte(c)
	}
	flush()
	return out
}

// mailbox converts an address as net/mail returns it (local part unquoted) into SMTP
// form and validates it. An address in the placeholder domain is qualified with domain,
// or returned as its bare local part when domain is "".
func mailbox(addr, domain string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", errNoAddress
	}
	local, dom := addr[:at], addr[at+1:]
	bare := strings.EqualFold(dom, placeholderDomain)
	if bare && domain != "" {
		dom = domain
	}
	if !isDotAtom(local) {
		local = quoteLocal(local)
	}
	m := local + "@" + dom
	if _, err := smtp.ParseAddress(m, true); err != nil {
		return "", err
	}
	if bare && domain == "" {
		return local, nil
	}
	return m, nil
}

// qualifyMailbox completes a bare local part (as ParseArgs leaves them) with domain.
func qualifyMailbox(m, domain string) (string, error) {
	if strings.Contains(m, "@") {
		if _, err := smtp.ParseAddress(m, true); err != nil {
			return "", err
		}
		return m, nil
	}
	m += "@" + domain
	if _, err := smtp.ParseAddress(m, true); err != nil {
		return "", err
	}
	return m, nil
}

// isDotAtom reports whether a local part can go on the wire unquoted (RFC 5321
// Dot-string, with RFC 6531 UTF-8).
func isDotAtom(s string) bool {
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			c := atom[i]
			if c < 0x80 && !isAtext(c) {
				return false
			}
		}
	}
	return true
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func quoteLocal(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// hasNonASCII reports whether s needs SMTPUTF8 on the wire.
func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// phrase renders a display name for a header: as is when it is plain atoms, quoted when
// it holds specials, RFC 2047-encoded when it is not ASCII.
func phrase(name string) string {
	if hasNonASCII(name) {
		return mime.QEncoding.Encode("utf-8", name)
	}
	plain := name != ""
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != ' ' && !isAtext(c) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return quoteLocal(name)
}
