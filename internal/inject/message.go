package inject

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"mxward/internal/smtp"
)

// MaxHeaderBytes bounds the header section ReadMessage holds in memory. The body is
// streamed and has no limit here; the server enforces the message size limit.
const MaxHeaderBytes = 1 << 20

// Envelope is what Send needs besides the message itself.
type Envelope struct {
	Sender     string   // reverse-path in SMTP form; "" is the null sender
	Recipients []string // forward-paths in SMTP form
	Notify     string   // DSN NOTIFY value for every recipient; "" leaves it to the server
	Ret        string   // DSN RET value; "" leaves it to the server
	EnvID      string   // DSN ENVID, sent xtext-encoded
	BodyType   string   // BODY parameter: "", "7BIT" or "8BITMIME"
	SMTPUTF8   bool     // an address is not ASCII, so the transaction needs SMTPUTF8
	Size       int64    // message size in bytes for the SIZE parameter; 0 if unknown
}

// ReadMessage reads a message as sendmail receives it on standard input, writes it to
// w ready for SMTP, and returns the envelope to send it with.
//
// The input is canonicalised: lines may end in LF, CRLF or a lone CR, and every line
// end becomes CRLF; a last line without a line end gets one. A lone CR is taken as a
// line end rather than dropped because that keeps the text of old Mac-style input
// readable, and SMTP forbids a bare CR on the wire either way. Unless opts.IgnoreDots,
// a line holding only "." ends the input; nothing else about dots is changed (SMTP
// dot-stuffing is Send's business).
//
// Only the header section is held in memory, up to MaxHeaderBytes; the body streams
// from r to w. A leading mbox "From " line is dropped. If the input starts with a line
// that is not a header field, the message has no header section and the input is all
// body, as in Postfix.
//
// Bcc: and Resent-Bcc: fields are always removed, continuation lines included, since
// they must not reach the recipients. Missing From:, Date: and Message-ID: fields are
// added at the end of the header section; From: uses the envelope sender (or the
// invoking user when the sender is null) with opts.FullName as display name.
//
// The envelope sender is opts.Sender, or when -f was not given the invoking user at
// opts.Hostname. The recipients are opts.Recipients, plus with opts.ExtractRecipients
// the addresses in the To:, Cc: and Bcc: fields, or in Resent-To:, Resent-Cc: and
// Resent-Bcc: if any of those is present. Duplicates are dropped. BodyType is
// opts.BodyType if set, else 8BITMIME when the message holds any byte above 0x7F;
// SMTPUTF8 is set when an envelope address is not ASCII.
func ReadMessage(r io.Reader, opts Options, w io.Writer) (Envelope, error) {
	host, err := hostname(opts.Hostname)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{
		Notify: opts.Notify,
		Ret:    opts.Ret,
		EnvID:  opts.EnvID,
	}
	var self string // the invoking user, for the sender and From:
	if !opts.SenderSet || opts.Sender == "" {
		if self, err = userMailbox(host); err != nil {
			return Envelope{}, err
		}
	}
	switch {
	case !opts.SenderSet:
		env.Sender = self
	case opts.Sender != "":
		if env.Sender, err = qualifyMailbox(opts.Sender, host); err != nil {
			return Envelope{}, &AddressError{Source: "-f", Value: opts.Sender, Err: err}
		}
	}

	in := bufio.NewReaderSize(&normalizer{r: bufio.NewReaderSize(r, 64<<10), dots: !opts.IgnoreDots, bol: true}, 64<<10)
	hdr, err := readHeader(in)
	if err != nil {
		return Envelope{}, err
	}

	rcpts := newRecipientSet()
	for _, m := range opts.Recipients {
		q, err := qualifyMailbox(m, host)
		if err != nil {
			return Envelope{}, &AddressError{Source: "recipient argument", Value: m, Err: err}
		}
		rcpts.add(q)
	}
	if opts.ExtractRecipients {
		if err := hdr.extractRecipients(host, rcpts); err != nil {
			return Envelope{}, err
		}
	}

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	for _, f := range hdr.fields {
		if !f.is("Bcc") && !f.is("Resent-Bcc") {
			bw.Write(f.raw)
		}
	}
	if !hdr.has("From") {
		from := env.Sender
		if from == "" {
			from = self
		}
		if opts.FullName != "" {
			from = phrase(opts.FullName) + " <" + from + ">"
		}
		fmt.Fprintf(bw, "From: %s\r\n", from)
	}
	if !hdr.has("Date") {
		fmt.Fprintf(bw, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	}
	if !hdr.has("Message-ID") {
		fmt.Fprintf(bw, "Message-ID: <%s@%s>\r\n", rand.Text(), host)
	}
	if hdr.separator {
		bw.WriteString("\r\n")
	}
	bw.Write(hdr.bodyStart)
	if _, err := io.Copy(bw, in); err != nil {
		if cw.err != nil {
			return Envelope{}, &ioError{op: "write message copy", err: cw.err}
		}
		return Envelope{}, &ioError{op: "read message", err: err}
	}
	if err := bw.Flush(); err != nil {
		return Envelope{}, &ioError{op: "write message copy", err: err}
	}

	env.Recipients = rcpts.list
	if len(env.Recipients) == 0 {
		return Envelope{}, ErrNoRecipients
	}
	env.Size = cw.n
	env.BodyType = opts.BodyType
	if env.BodyType == "" && cw.eightBit {
		env.BodyType = "8BITMIME"
	}
	env.SMTPUTF8 = hasNonASCII(env.Sender)
	for _, r := range env.Recipients {
		env.SMTPUTF8 = env.SMTPUTF8 || hasNonASCII(r)
	}
	return env, nil
}

// hostname validates the configured host name, or falls back to the system's.
func hostname(h string) (string, error) {
	if h != "" {
		if err := smtp.CheckDomain(h, true); err != nil {
			return "", &UsageError{Msg: fmt.Sprintf("bad host name %q: %v", h, err)}
		}
		return h, nil
	}
	h, err := os.Hostname()
	if err != nil || smtp.CheckDomain(h, true) != nil {
		return "localhost", nil
	}
	return h, nil
}

// userMailbox is the invoking user's address at host, the default envelope sender.
func userMailbox(host string) (string, error) {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("LOGNAME")
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		// No passwd entry and no login variables, as in some containers.
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	m, err := mailbox(name+"@"+host, host)
	if err != nil {
		return "", &AddressError{Source: "user name", Value: name, Err: err}
	}
	return m, nil
}

// recipientSet collects recipients in order without duplicates. Domains compare
// case-insensitively, local parts exactly (RFC 5321 §2.4).
type recipientSet struct {
	list []string
	seen map[string]bool
}

func newRecipientSet() *recipientSet { return &recipientSet{seen: map[string]bool{}} }

func (s *recipientSet) add(m string) {
	at := strings.LastIndexByte(m, '@')
	key := m[:at+1] + strings.ToLower(m[at+1:])
	if !s.seen[key] {
		s.seen[key] = true
		s.list = append(s.list, m)
	}
}

// A field is one header field with its continuation lines, as read (CRLF endings).
type field struct {
	name string
	raw  []byte
}

func (f field) is(name string) bool { return strings.EqualFold(f.name, name) }

// value is the unfolded field body.
func (f field) value() string {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

// header is the header section of the input.
type header struct {
	fields    []field
	separator bool   // a blank line follows the header section (read or to be inserted)
	bodyStart []byte // input already read that belongs to the body
}

func (h *header) has(name string) bool {
	for _, f := range h.fields {
		if f.is(name) {
			return true
		}
	}
	return false
}

// extractRecipients adds the -t recipients to set.
func (h *header) extractRecipients(host string, set *recipientSet) error {
	names := []string{"To", "Cc", "Bcc"}
	if h.has("Resent-To") || h.has("Resent-Cc") || h.has("Resent-Bcc") {
		names = []string{"Resent-To", "Resent-Cc", "Resent-Bcc"}
	}
	for _, f := range h.fields {
		for _, n := range names {
			if !f.is(n) {
				continue
			}
			v := f.value()
			list, err := parseAddressList(v, host)
			if err != nil {
				return &AddressError{Source: f.name + " header", Value: v, Err: err}
			}
			for _, m := range list {
				set.add(m)
			}
		}
	}
	return nil
}

// readHeader reads the header section from canonical (CRLF) input.
func readHeader(in *bufio.Reader) (*header, error) {
	h := &header{}
	budget := MaxHeaderBytes
	first := true
	for {
		line, err := readLine(in, budget)
		if err != nil && !errors.Is(err, errLineTooLong) {
			if errors.Is(err, io.EOF) {
				// End of input (the normalizer ends every line, so line is empty).
				return h, nil
			}
			return nil, &ioError{op: "read message", err: err}
		}
		long := err != nil
		budget -= len(line)
		if first && !long && bytes.HasPrefix(line, []byte("From ")) {
			first = false
			continue // mbox envelope line
		}
		first = false
		switch {
		case string(line) == "\r\n":
			h.separator = true
			return h, nil
		case line[0] == ' ' || line[0] == '\t':
			if len(h.fields) > 0 {
				if long {
					return nil, ErrHeaderTooLarge
				}
				f := &h.fields[len(h.fields)-1]
				f.raw = append(f.raw, line...)
				continue
			}
		default:
			if name, ok := fieldName(line); ok {
				if long {
					return nil, ErrHeaderTooLarge
				}
				h.fields = append(h.fields, field{name: name, raw: line})
				continue
			}
		}
		// Not a header line: the body starts here, without the blank line.
		h.separator = true
		h.bodyStart = line
		return h, nil
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line with its line end, or errLineTooLong and the first
// limit bytes of a longer one. The returned slice is not reused by in.
func readLine(in *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := in.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return line, errLineTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return line, err
		}
	}
}

// fieldName returns the name of the header field line starts, accepting the obsolete
// white space before the colon (RFC 5322 §4.5).
func fieldName(line []byte) (string, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(name), true
}

// countWriter counts the bytes written through it and notes any above 0x7F.
type countWriter struct {
	w        io.Writer
	n        int64
	eightBit bool
	err      error
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if !c.eightBit {
		for _, b := range p[:n] {
			if b >= 0x80 {
				c.eightBit = true
				break
			}
		}
	}
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// normalizer turns text with LF, CRLF or lone CR line ends into CRLF text that ends
// with a line end, optionally stopping at a line holding only ".".
type normalizer struct {
	r    *bufio.Reader
	dots bool // a line holding only "." ends the input
	bol  bool // at the beginning of a line; true initially
	pend []byte
	err  error // sticky; io.EOF once the input has ended
}

var crlf = []byte("\r\n")

func (n *normalizer) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if len(n.pend) > 0 {
			k := copy(p[i:], n.pend)
			n.pend = n.pend[k:]
			i += k
			continue
		}
		if n.err != nil {
			break
		}
		if !n.bol && n.r.Buffered() > 0 {
			// Fast path: copy the buffered run of ordinary bytes in the middle of a line.
			b, _ := n.r.Peek(n.r.Buffered())
			k := bytes.IndexAny(b, "\r\n")
			if k < 0 {
				k = len(b)
			}
			k = min(k, len(p)-i)
			if k > 0 {
				copy(p[i:], b[:k])
				n.r.Discard(k)
				i += k
				continue
			}
		}
		c, err := n.r.ReadByte()
		if err != nil {
			if !n.bol {
				n.pend, n.bol = crlf, true
			}
			n.err = err
			continue
		}
		switch c {
		case '\r':
			if b, _ := n.r.Peek(1); len(b) == 1 && b[0] == '\n' {
				n.r.Discard(1)
			}
			n.pend, n.bol = crlf, true
		case '\n':
			n.pend, n.bol = crlf, true
		case '.':
			if n.bol && n.dots {
				b, err := n.r.Peek(1)
				if errors.Is(err, io.EOF) || len(b) == 1 && (b[0] == '\r' || b[0] == '\n') {
					n.err = io.EOF
					continue
				}
			}
			fallthrough
		default:
			p[i] = c
			i++
			n.bol = false
		}
	}
	if i == 0 && n.err != nil {
		return 0, n.err
	}
	return i, nil
}

// Submit reads a message from r as ReadMessage does, into a temporary file so that a
// large message is never held in memory and a slow writer on r never holds a server
// session open, then sends it with Send. It returns the server's queue ID; see Send
// for partial delivery.
func Submit(ctx context.Context, socketPath string, r io.Reader, opts Options) (string, error) {
	f, err := os.CreateTemp("", "mxward-sendmail-")
	if err != nil {
		return "", &ioError{op: "create temporary file", err: err}
	}
	// Unlink at once where the system allows it, so nothing is left behind even if
	// the process is killed.
	unlinked := os.Remove(f.Name()) == nil
	defer func() {
		f.Close()
		if !unlinked {
			os.Remove(f.Name())
		}
	}()
	env, err := ReadMessage(r, opts, f)
	if err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", &ioError{op: "rewind temporary file", err: err}
	}
	return Send(ctx, socketPath, env, f)
}
