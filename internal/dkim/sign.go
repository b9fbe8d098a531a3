package dkim

import (
	"bufio"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// DefaultHeaders are the fields signed when present: those that carry the message's
// meaning to its reader (RFC 6376 §5.4.1) and the list fields that say where replies
// and unsubscriptions go.
var DefaultHeaders = []string{
	"From", "Reply-To", "Sender", "Subject", "Date", "Message-ID", "To", "Cc",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-Disposition", "Content-ID", "Content-Description",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
}

// DefaultOversign are the fields signed once more than they occur (RFC 6376 §8.15):
// the extra, empty instance in h= makes a verifier fail the signature when anyone adds
// such a field after signing (a second From or Subject that a reader's client might
// show instead of the signed one). They are signed even when absent, for the same
// reason.
var DefaultOversign = []string{
	"From", "Reply-To", "Sender", "Subject", "Date", "Message-ID", "To", "Cc",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// Signer signs with one key for one domain and selector. The zero values of the
// optional fields are the defaults.
type Signer struct {
	Domain   string        // d=, the signing domain
	Selector string        // s=
	Key      crypto.Signer // *rsa.PrivateKey (at least MinRSABits) or ed25519.PrivateKey

	// Headers are the fields signed when present; nil means DefaultHeaders. From is
	// always signed.
	Headers []string
	// Oversign are the fields signed once more than present; nil means
	// DefaultOversign, an empty non-nil slice none. From is always oversigned.
	Oversign []string
	// HeaderCanon and BodyCanon default to Relaxed.
	HeaderCanon, BodyCanon Canonicalization
	// Expiry, when positive, adds x= that much after t= (RFC 6376 §3.5), so that a
	// replayed message stops verifying.
	Expiry time.Duration
	// Now returns the time for t=; nil means time.Now.
	Now func() time.Time
}

// Check reports whether the signer is usable: domain, selector, key and
// canonicalizations.
func (s *Signer) Check() error {
	if err := checkDomain(s.Domain); err != nil {
		return fmt.Errorf("dkim: domain %q: %w", s.Domain, err)
	}
	if err := CheckSelector(s.Selector); err != nil {
		return fmt.Errorf("dkim: selector %q: %w", s.Selector, err)
	}
	if s.Key == nil {
		return errors.New("dkim: signer has no key")
	}
	if _, err := KeyAlgorithm(s.Key.Public()); err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	for _, c := range []Canonicalization{s.HeaderCanon, s.BodyCanon} {
		if c != "" && c != Simple && c != Relaxed {
			return fmt.Errorf("dkim: unknown canonicalization %q", c)
		}
	}
	return nil
}

func (s *Signer) canon() (h, b Canonicalization) {
	h, b = s.HeaderCanon, s.BodyCanon
	if h == "" {
		h = Relaxed
	}
	if b == "" {
		b = Relaxed
	}
	return h, b
}

// Sign reads a message and returns the DKIM-Signature field to put in front of it,
// ending in CRLF.
func (s *Signer) Sign(r io.Reader) ([]byte, error) {
	return SignMessage(r, func(string) []*Signer { return []*Signer{s} })
}

// SignMessage reads a message once and returns the DKIM-Signature fields of the
// signers choose returns for its From domain, to be put in front of the message. The
// domain is that of the single address in the single From field, lower-cased; a
// message without one (no From, several From fields or addresses, an unparsable
// address) is passed as "", since nobody can say which domain it claims to come from.
// Several signers (two selectors during a key rotation, or an Ed25519 and an RSA key,
// as RFC 8463 §5 suggests while Ed25519 support spreads) each add a field. When choose
// returns none, the body is not read and the result is nil.
func SignMessage(r io.Reader, choose func(fromDomain string) []*Signer) ([]byte, error) {
	lr := &lineReader{r: bufio.NewReaderSize(r, 8<<10)}
	fields, err := readHeader(lr)
	if err != nil {
		return nil, fmt.Errorf("dkim: read header: %w", err)
	}
	signers := choose(fromDomain(fields))
	if len(signers) == 0 {
		return nil, nil
	}
	if len(fields) > 0 && len(fields[0].raw) > 0 && isWSP(fields[0].raw[0]) {
		return nil, ErrLeadingWhitespace
	}
	for _, s := range signers {
		if err := s.Check(); err != nil {
			return nil, err
		}
	}
	bh, err := hashBody(lr.r, func(yield func(Canonicalization) bool) {
		for _, s := range signers {
			if _, b := s.canon(); !yield(b) {
				return
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: read body: %w", err)
	}
	var out []byte
	for _, s := range signers {
		_, b := s.canon()
		f, err := s.signHeader(fields, bh[b])
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// hashBody reads the rest of r and returns the SHA-256 body hash for each
// canonicalization canons yields.
func hashBody(r io.Reader, canons func(func(Canonicalization) bool)) (map[Canonicalization][]byte, error) {
	hashes := map[Canonicalization]hash.Hash{}
	var ws []io.Writer
	var cs []*bodyCanon
	for c := range canons {
		if hashes[c] != nil {
			continue
		}
		h := sha256.New()
		hashes[c] = h
		bc := &bodyCanon{w: h, relaxed: c == Relaxed}
		cs = append(cs, bc)
		ws = append(ws, bc)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), r); err != nil {
		return nil, err
	}
	for _, bc := range cs {
		bc.Close()
	}
	out := make(map[Canonicalization][]byte, len(hashes))
	for c, h := range hashes {
		out[c] = h.Sum(nil)
	}
	return out, nil
}

// fromDomain returns the domain of the message's author, or "" when that is not one
// domain.
func fromDomain(fields []field) string {
	var from []field
	for _, f := range fields {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f)
		}
	}
	if len(from) != 1 {
		return ""
	}
	addrs, err := mail.ParseAddressList(string(relaxedValue(nil, from[0].value())))
	if err != nil || len(addrs) != 1 {
		return ""
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addrs[0].Address[at+1:], "."))
}

// headerNames returns h= for fields: each field of Headers as often as it occurs, those
// of Oversign once more, From always, in the order of the Headers list. Names are
// lower-cased (they compare case-insensitively, §3.5) and listed once per instance
// because a verifier picks instances from the bottom up (§5.4.2).
func (s *Signer) headerNames(fields []field) []string {
	count := map[string]int{}
	for _, f := range fields {
		count[strings.ToLower(f.name)]++
	}
	want := s.Headers
	if want == nil {
		want = DefaultHeaders
	}
	over := map[string]bool{"from": true}
	oversign := s.Oversign
	if oversign == nil {
		oversign = DefaultOversign
	}
	for _, h := range oversign {
		over[strings.ToLower(h)] = true
	}
	var names []string
	done := map[string]bool{}
	add := func(h string) {
		h = strings.ToLower(h)
		if done[h] {
			return
		}
		done[h] = true
		n := count[h]
		if over[h] {
			n++
		}
		for range n {
			names = append(names, h)
		}
	}
	add("from")
	for _, h := range want {
		add(h)
	}
	for _, h := range oversign {
		add(h)
	}
	return names
}

// signHeader builds and signs the DKIM-Signature field for fields and body hash bh
// (RFC 6376 §3.7, §5).
func (s *Signer) signHeader(fields []field, bh []byte) ([]byte, error) {
	alg, _ := KeyAlgorithm(s.Key.Public())
	hc, bc := s.canon()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now().Unix()
	names := s.headerNames(fields)

	f := folder{}
	f.b.WriteString("DKIM-Signature:")
	f.col = len("DKIM-Signature:")
	f.word("v=1;")
	f.word("a=" + string(alg) + ";")
	f.word("c=" + string(hc) + "/" + string(bc) + ";")
	f.word("d=" + s.Domain + ";")
	f.word("s=" + s.Selector + ";")
	f.word("t=" + strconv.FormatInt(t, 10) + ";")
	if s.Expiry > 0 {
		f.word("x=" + strconv.FormatInt(t+int64(s.Expiry/time.Second), 10) + ";")
	}
	for i, n := range names {
		switch {
		case i == 0 && i == len(names)-1:
			f.word("h=" + n + ";")
		case i == 0:
			f.word("h=" + n + ":")
		case i == len(names)-1:
			f.glue(n + ";")
		default:
			f.glue(n + ":")
		}
	}
	f.word("bh=" + base64.StdEncoding.EncodeToString(bh) + ";")
	f.word("b=")
	unsigned := f.b.String()

	h := sha256.New()
	var buf []byte
	for _, f := range selectFields(fields, names) {
		buf = canonicalHeader(buf[:0], f, hc)
		h.Write(buf)
	}
	sigField := field{name: "DKIM-Signature", raw: []byte(unsigned)}
	buf = canonicalHeader(buf[:0], sigField, hc)
	if hc == Relaxed {
		buf = buf[:len(buf)-2] // the signature field is hashed without its CRLF (§3.7)
	}
	h.Write(buf)
	digest := h.Sum(nil)

	// RSA signs the hash with PKCS #1 v1.5 (§3.3.1); Ed25519 signs the hash itself as
	// the message, PureEdDSA (RFC 8463 §3), which crypto.Hash(0) selects.
	opts := crypto.Hash(0)
	if alg == RSASHA256 {
		opts = crypto.SHA256
	}
	sig, err := s.Key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("dkim: sign for %s: %w", s.Domain, err)
	}
	f.base64(base64.StdEncoding.EncodeToString(sig))
	f.b.WriteString("\r\n")
	return []byte(f.b.String()), nil
}

// selectFields returns the fields names select, each name taking the last instance not
// yet taken, and nothing for a name with no instance left (RFC 6376 §5.4.2).
func selectFields(fields []field, names []string) []field {
	used := make([]bool, len(fields))
	var out []field
	for _, n := range names {
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && strings.EqualFold(fields[i].name, n) {
				used[i] = true
				out = append(out, fields[i])
				break
			}
		}
	}
	return out
}

// lineLimit is the length lines of the generated field are folded at, the
// recommendation of RFC 5322 §2.1.1.
const lineLimit = 78

// folder writes a header field folded at lineLimit.
type folder struct {
	b   strings.Builder
	col int
}

// word adds w after a space, on a new line if it does not fit.
func (f *folder) word(w string) {
	if f.col+1+len(w) > lineLimit {
		f.b.WriteString("\r\n")
		f.col = 0
	}
	f.b.WriteByte(' ')
	f.b.WriteString(w)
	f.col += 1 + len(w)
}

// glue adds w without a space if it fits, on a new line otherwise (folding white
// space is allowed around the colons of h=, §3.5).
func (f *folder) glue(w string) {
	if f.col+len(w) > lineLimit {
		f.b.WriteString("\r\n ")
		f.col = 1
	}
	f.b.WriteString(w)
	f.col += len(w)
}

// base64 adds v, breaking it wherever a line is full (white space inside base64 values
// is ignored, §3.5).
func (f *folder) base64(v string) {
	for v != "" {
		room := lineLimit - f.col
		if room <= 0 {
			f.b.WriteString("\r\n ")
			f.col = 1
			continue
		}
		n := min(room, len(v))
		f.b.WriteString(v[:n])
		f.col += n
		v = v[n:]
	}
}
