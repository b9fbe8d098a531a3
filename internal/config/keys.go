package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The TOML decoder reports where syntax errors are, but not where a key that
// parsed fine was written, so validation errors could not name a line.
// keyLines recovers that: it walks a document that has already been parsed
// successfully and records, for each key, the line it was written on.
//
// Keys are rendered the way error messages show them: dotted, with segments
// that are not bare keys quoted, and array elements (both [[table]] entries
// and inline array items) as an index: listener[1].tls,
// relay.trusted_networks[0], local.aliases."postmaster@example.org".
//
// The line numbers are only used for documents the TOML parser accepted, so
// the scanner does not check syntax. It is nonetheless safe on any input: it
// never reads past the end and always makes progress, so a mistake here costs
// a line number, not a panic or a hang.

// childKey renders key name under parent.
func childKey(parent, name string) string {
	seg := name
	if !isBareKey(name) {
		seg = strconv.Quote(name)
	}
	if parent == "" {
		return seg
	}
	return parent + "." + seg
}

// indexKey renders element i of the array at key.
func indexKey(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}

// parentKey strips the last segment (".name" or "[i]") from a rendered key,
// respecting quoted segments. It returns "" for a top-level key.
func parentKey(key string) string {
	cut := 0
	inQuote := false
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			cut = i
		}
	}
	return key[:cut]
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

type keyScanner struct {
	src  string
	i    int
	line int
	// lines maps a rendered key to the line it first appears on; for an
	// explicit [table] header the header's line wins.
	lines map[string]int
	// arrays counts the elements seen so far of each array of tables.
	arrays map[string]int
	// maxDepth is the deepest nesting seen (key segments plus array and
	// inline table levels) and depthLine where it was first reached.
	maxDepth, depthLine int
}

func (s *keyScanner) nest(depth int) {
	if depth > s.maxDepth {
		s.maxDepth, s.depthLine = depth, s.line
	}
}

// keyLines returns the line of every key in the TOML document src.
func keyLines(src string) map[string]int {
	return scanKeys(src).lines
}

// scanKeys scans src. It is safe on any input, valid TOML or not, which lets
// Parse use it to refuse absurdly deep nesting before handing the document
// to the TOML parser, whose run time grows steeply with nesting depth.
func scanKeys(src string) *keyScanner {
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if strings.HasPrefix(src, bom) {
			src = src[len(bom):]
			break
		}
	}
	s := &keyScanner{src: src, line: 1, lines: make(map[string]int), arrays: make(map[string]int)}
	s.document()
	return s
}

func (s *keyScanner) eof() bool { return s.i >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *keyScanner) hasPrefix(p string) bool { return strings.HasPrefix(s.src[s.i:], p) }

func (s *keyScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

// tooDeep replaces keys longer than maxScannedKey and everything below them.
// No key in the schema comes close to that length; without the cap, deeply
// nested arrays would make the scan quadratic.
const (
	tooDeep       = "\x00"
	maxScannedKey = 1024
)

func (s *keyScanner) child(parent, name string) string {
	if parent == tooDeep || len(parent) > maxScannedKey {
		return tooDeep
	}
	return childKey(parent, name)
}

func (s *keyScanner) index(key string, i int) string {
	if key == tooDeep || len(key) > maxScannedKey {
		return tooDeep
	}
	return indexKey(key, i)
}

// record notes the line of key unless it has one already.
func (s *keyScanner) record(key string) {
	if _, ok := s.lines[key]; !ok && key != tooDeep {
		s.lines[key] = s.line
	}
}

// set notes the line of key, replacing an earlier one.
func (s *keyScanner) set(key string) {
	if key != tooDeep {
		s.lines[key] = s.line
	}
}

// skipSpace skips blanks, and with newlines also line breaks and comments.
func (s *keyScanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t':
			s.i++
		case newlines && (c == '\n' || c == '\r'):
			s.advance()
		case newlines && c == '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *keyScanner) skipComment() {
	for !s.eof() && s.peek() != '\n' {
		s.i++
	}
}

func (s *keyScanner) document() {
	table, depth := "", 0
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			table, depth = s.header()
		} else {
			start := s.i
			s.keyValue(table, depth)
			if s.i == start { // not a key: skip the line rather than loop
				s.skipComment()
			}
		}
	}
}

// header reads a [table] or [[array]] header and returns the key and depth
// of the table that following key/value lines belong to.
func (s *keyScanner) header() (string, int) {
	s.i++ // [
	array := s.peek() == '['
	if array {
		s.i++
	}
	s.skipSpace(false)
	segs := s.keySegments()
	s.nest(len(segs))
	key := ""
	for n, seg := range segs {
		key = s.child(key, seg)
		last := n == len(segs)-1
		if last && array {
			s.record(key)
			s.arrays[key]++
			key = s.index(key, s.arrays[key]-1)
			s.set(key)
			break
		}
		// An earlier [[array]] with this name means the header refers to its
		// latest element.
		if c := s.arrays[key]; c > 0 {
			key = s.index(key, c-1)
		}
		if last {
			s.set(key)
		} else {
			s.record(key)
		}
	}
	for !s.eof() && s.peek() != ']' {
		s.i++
	}
	for !s.eof() && s.peek() == ']' {
		s.i++
	}
	s.skipSpace(false)
	if s.peek() == '#' {
		s.skipComment()
	}
	return key, len(segs)
}

// keyValue reads "key = value" in the table at key table, which is nested
// depth levels deep.
func (s *keyScanner) keyValue(table string, depth int) {
	segs := s.keySegments()
	if len(segs) == 0 {
		return
	}
	depth += len(segs)
	s.nest(depth)
	key := table
	for _, seg := range segs {
		key = s.child(key, seg)
		s.record(key)
	}
	s.skipSpace(false)
	if s.peek() != '=' {
		return
	}
	s.i++
	s.skipSpace(false)
	s.value(key, depth)
}

// keySegments reads a possibly dotted key.
func (s *keyScanner) keySegments() []string {
	var segs []string
	for {
		s.skipSpace(false)
		var seg string
		switch c := s.peek(); {
		case c == '"':
			seg = s.basicString()
		case c == '\'':
			seg = s.literalString()
		case isBareKey(string(c)):
			start := s.i
			for !s.eof() && isBareKey(s.src[s.i:s.i+1]) {
				s.i++
			}
			seg = s.src[start:s.i]
		default:
			return segs
		}
		segs = append(segs, seg)
		s.skipSpace(false)
		if s.peek() != '.' {
			return segs
		}
		s.i++
	}
}

// value skips one value, recording the keys inside arrays and inline tables.
func (s *keyScanner) value(key string, depth int) {
	switch c := s.peek(); {
	case s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case c == '"':
		s.basicString()
	case c == '\'':
		s.literalString()
	case c == '[':
		s.i++
		s.nest(depth + 1)
		for n := 0; ; n++ {
			s.skipSpace(true)
			if s.eof() || s.peek() == ']' {
				break
			}
			elem := s.index(key, n)
			s.record(elem)
			start := s.i
			s.value(elem, depth+1)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.i++
			} else if s.i == start {
				break
			}
		}
		if s.peek() == ']' {
			s.i++
		}
	case c == '{':
		s.i++
		s.nest(depth + 1)
		for {
			s.skipSpace(true) // TOML 1.1 allows newlines in inline tables
			if s.eof() || s.peek() == '}' {
				break
			}
			start := s.i
			s.keyValue(key, depth+1)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.i++
			} else if s.i == start {
				break
			}
		}
		if s.peek() == '}' {
			s.i++
		}
	default:
		// Numbers, booleans, dates. A date may contain a space
		// ("1979-05-27 07:32:00"), so read up to a delimiter.
		for !s.eof() && !strings.ContainsRune(",]}\n\r#", rune(s.peek())) {
			s.i++
		}
	}
}

// basicString reads a single-line "..." string and returns its value.
func (s *keyScanner) basicString() string {
	s.i++ // opening quote
	var b strings.Builder
	for !s.eof() {
		c := s.peek()
		switch c {
		case '"':
			s.i++
			return b.String()
		case '\n':
			return b.String()
		case '\\':
			s.i++
			s.escape(&b)
		default:
			b.WriteByte(c)
			s.i++
		}
	}
	return b.String()
}

// escape decodes the escape sequence after a backslash.
func (s *keyScanner) escape(b *strings.Builder) {
	if s.eof() {
		return
	}
	c := s.peek()
	s.i++
	var digits int
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case '"', '\\':
		b.WriteByte(c)
	case 'x':
		digits = 2
	case 'u':
		digits = 4
	case 'U':
		digits = 8
	}
	if digits == 0 || s.i+digits > len(s.src) {
		return
	}
	n, err := strconv.ParseUint(s.src[s.i:s.i+digits], 16, 32)
	s.i += digits
	// \xHH is a code point (U+0000 to U+00FF), not a raw byte.
	if err == nil && utf8.ValidRune(rune(n)) {
		b.WriteRune(rune(n))
	}
}

// literalString reads a single-line '...' string and returns its value.
func (s *keyScanner) literalString() string {
	s.i++
	start := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.i++
	}
	v := s.src[start:s.i]
	if s.peek() == '\'' {
		s.i++
	}
	return v
}

// multiline skips a multi-line string, basic or literal, whose opening
// delimiter is delim. Up to two extra quote characters may directly precede
// the closing delimiter and belong to the content.
func (s *keyScanner) multiline(delim string, escapes bool) {
	s.i += len(delim)
	for !s.eof() {
		switch {
		case escapes && s.peek() == '\\':
			s.i++
			s.advance()
		case s.hasPrefix(delim):
			s.i += len(delim)
			for n := 0; n < 2 && !s.eof() && s.peek() == delim[0]; n++ {
				s.i++
			}
			return
		default:
			s.advance()
		}
	}
}
