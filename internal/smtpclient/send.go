package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"mxward/internal/smtp"
)

// BodyType is the declared content of a message body (RFC 6152, RFC 3030). The values
// are those of the BODY parameter, and the same as the spool's.
type BodyType string

const (
	Body7Bit       BodyType = "7BIT"
	Body8BitMIME   BodyType = "8BITMIME"
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// Envelope is the message-wide part of a transaction.
type Envelope struct {
	// From is the reverse-path without angle brackets; "" is the null reverse-path.
	From string
	// Body is the declared body type; "" means 7BIT. An 8BITMIME body needs a server
	// that offers 8BITMIME and a BINARYMIME body one that offers BINARYMIME and
	// CHUNKING: mxward does not convert bodies, so without them Send fails with a
	// permanent 5.6.3 (conversion required but not supported).
	Body BodyType
	// SMTPUTF8 says the message needs RFC 6531 (UTF-8 in headers). Send also needs it,
	// without being told, when an address of the envelope is not ASCII. If the server
	// does not offer SMTPUTF8, Send fails with a permanent 5.6.7: a downgrade is
	// impossible.
	SMTPUTF8 bool
	// RET ("FULL" or "HDRS") and EnvID (decoded; xtext-encoded on the wire) are the DSN
	// parameters of RFC 3461 §4.3, §4.4. They are sent only to a server that offers DSN.
	RET   string
	EnvID string
	// Size is the message size in octets, sent as SIZE=n (RFC 1870); 0 if unknown. A
	// message larger than the server's advertised limit fails with a permanent 5.3.4
	// before MAIL is sent.
	Size int64
	// RequireTLS sends the REQUIRETLS parameter (RFC 8689). If the session has no TLS, or
	// the server did not offer REQUIRETLS after STARTTLS, Send fails with a permanent
	// 5.7.10 or 5.7.30 (RTLS-04). Whether the session's authentication is good enough
	// for REQUIRETLS (RTLS-02) is the caller's policy.
	RequireTLS bool
}

// Recipient is one forward-path with its DSN parameters.
type Recipient struct {
	Addr string // without angle brackets
	// Notify is the RFC 3461 NOTIFY value: "NEVER" or a comma-separated list of SUCCESS,
	// FAILURE and DELAY; "" sends none.
	Notify string
	// ORCPT is the original recipient, decoded: "addr-type;address", for example
	// "rfc822;bob@example.org". The address part is xtext-encoded on the wire.
	ORCPT string
}

// RcptResult is the outcome of one RCPT command.
type RcptResult struct {
	Addr string
	// Reply is the server's reply to RCPT; Code 0 when there was none that counts (the
	// command was not sent, MAIL had failed, or the connection was lost first).
	Reply smtp.Reply
	// Err is nil if and only if the server accepted the recipient. Otherwise it says why
	// not: the RCPT reply, or the failure that kept the recipient from being answered.
	Err error
}

// Result is the outcome of Send.
type Result struct {
	Rcpts []RcptResult // one for each recipient, in order
	// Data is the reply to the end of the message data (the final dot or the last BDAT
	// chunk); nil if the transaction did not get that far.
	Data *smtp.Reply
	// DSN reports whether the server offered DSN, and so whether NOTIFY, ORCPT, RET and
	// ENVID were passed on. When it is false, the caller owes the sender "relayed"
	// notifications for NOTIFY=SUCCESS recipients (RFC 3461 §6.2.1).
	DSN bool
}

// failUnanswered gives err to every recipient that has neither been accepted nor
// rejected, keeping RcptResult.Err nil only for accepted ones.
func (r *Result) failUnanswered(err error) {
	for i := range r.Rcpts {
		if rr := &r.Rcpts[i]; rr.Err == nil && rr.Reply.Code/100 != 2 {
			rr.Err = err
		}
	}
}

// Sizes of the protocol's batches.
const (
	// pipelineWindow is how many commands are written before their replies are read when
	// the server offers PIPELINING. Bounding it avoids the deadlock of RFC 2920 §3.1,
	// where both sides block writing because neither reads; 100 is the number of
	// recipients RFC 5321 §4.5.3.1.8 makes every server accept.
	pipelineWindow = 100
	// chunkSize is the size of each BDAT chunk but the last (RFC 3030).
	chunkSize = 64 << 10
)

// Send runs one mail transaction. With PIPELINING, MAIL, the RCPTs and DATA are sent in
// one batch (RFC 2920) and the replies matched in order; without it, in lockstep. With
// CHUNKING the message goes in BDAT chunks, otherwise with DATA, dot-stuffed and with
// CRLF line ends.
//
// body is the message as stored: CRLF line ends, not dot-stuffed. Whatever it holds,
// nothing ambiguous reaches the wire: a bare CR or LF is sent as CRLF, a line starting
// with "." is stuffed, and the message always ends with CRLF before the final dot, so
// the next hop cannot be fed a smuggled end of data. If reading body fails, the
// connection is dropped before the end of the data, so that a truncated message is never
// delivered.
//
// A recipient received the message if and only if Send returned a nil error and its
// RcptResult.Err is nil. The error, when there is one, is about the whole transaction: a
// check before MAIL, MAIL, DATA, the end of data or the connection; it is an *Error
// except for invalid arguments. When no recipient is accepted, DATA is not sent and Send
// returns a nil error with every RcptResult.Err set.
//
// After a transaction that failed part-way, Send resets it with RSET, so that a usable
// connection (see Usable) can carry the next message.
func (c *Client) Send(ctx context.Context, env Envelope, rcpts []Recipient, body io.Reader) (res Result, err error) {
	res.Rcpts = make([]RcptResult, len(rcpts))
	for i, r := range rcpts {
		res.Rcpts[i].Addr = r.Addr
	}
	defer func() {
		if err != nil {
			res.failUnanswered(err)
		}
	}()
	if len(rcpts) == 0 || body == nil {
		return res, errors.New("smtpclient: send needs recipients and a body")
	}
	if c.err != nil {
		return res, &Error{Stage: "mail", Err: fmt.Errorf("%w: %w", ErrUnusable, c.err)}
	}
	p, err := c.plan(env, rcpts, &res)
	if err != nil || p.valid == 0 {
		return res, err
	}
	defer c.watch(ctx)(&err)

	// MAIL, RCPT and, when pipelining without CHUNKING, DATA.
	type step struct {
		stage string // "mail", "rcpt" or "data"
		line  string
		rcpt  int
	}
	steps := []step{{stage: "mail", line: p.mail}}
	for i, l := range p.rcpts {
		if l != "" {
			steps = append(steps, step{stage: "rcpt", line: l, rcpt: i})
		}
	}
	pipelined := c.has("PIPELINING")
	if pipelined && !p.chunking {
		steps = append(steps, step{stage: "data", line: "DATA"})
	}
	window := 1
	if pipelined {
		window = pipelineWindow
	}
	var (
		mailErr   error
		accepted  int
		dataReply *smtp.Reply // the reply to a pipelined DATA
	)
	for start := 0; start < len(steps) && mailErr == nil; start += window {
		batch := steps[start:min(start+window, len(steps))]
		c.wto = c.replyTimeout(batch[0].stage)
		for _, s := range batch {
			if err := c.queue(s.line); err != nil {
				return res, &Error{Stage: s.stage, Err: err}
			}
		}
		if err := c.flush(c.replyTimeout(batch[0].stage)); err != nil {
			return res, &Error{Stage: batch[0].stage, Err: err}
		}
		for _, s := range batch {
			r, err := c.readReply(s.stage, c.replyTimeout(s.stage))
			if err != nil {
				return res, err
			}
			ok := r.Code/100 == 2
			switch s.stage {
			case "mail":
				if !ok {
					mailErr = &Error{Stage: "mail", Reply: r}
				}
			case "rcpt":
				rr := &res.Rcpts[s.rcpt]
				switch {
				case mailErr != nil:
					// The reply (typically 503) only echoes the failed MAIL.
					rr.Err = mailErr
				case ok:
					rr.Reply = r
					accepted++
				default:
					rr.Reply = r
					rr.Err = &Error{Stage: "rcpt", Reply: r}
				}
			case "data":
				dataReply = &r
			}
			if r.Code == 421 {
				// The server is closing the connection: every recipient not yet
				// answered is deferred with this reply (RFC 5321 §3.8).
				return res, &Error{Stage: s.stage, Reply: r}
			}
		}
	}
	if mailErr != nil {
		c.endPipelinedData(dataReply)
		return res, mailErr
	}
	if accepted == 0 {
		// Every recipient was refused: no DATA (or, if it went in the pipeline, an empty
		// one), and the transaction is abandoned.
		c.endPipelinedData(dataReply)
		if c.err == nil {
			c.rset()
		}
		return res, nil
	}

	var r *smtp.Reply
	if p.chunking {
		r, err = c.sendBDAT(p, body)
	} else {
		if dataReply == nil {
			if err := c.command(c.to.DataInit, "DATA"); err != nil {
				return res, &Error{Stage: "data", Err: err}
			}
			dr, err := c.readReply("data", c.to.DataInit)
			if err != nil {
				return res, err
			}
			dataReply = &dr
		}
		if dataReply.Code != 354 {
			if c.err == nil {
				c.rset()
			}
			return res, &Error{Stage: "data", Reply: *dataReply}
		}
		r, err = c.sendData(p, body)
	}
	res.Data = r
	if err != nil {
		return res, err
	}
	if r.Code/100 != 2 {
		return res, &Error{Stage: "data", Reply: *r}
	}
	return res, nil
}

// endPipelinedData finishes a pipelined DATA that the server accepted although the
// transaction cannot go on (MAIL or every RCPT failed): RFC 2920 §3.1 has the client
// send an empty message, which the server then rejects.
func (c *Client) endPipelinedData(r *smtp.Reply) {
	if r == nil || r.Code != 354 || c.err != nil {
		return
	}
	if c.command(c.to.DataBlock, ".") == nil {
		c.readReply("data", c.to.DataTerm)
	}
}

func (c *Client) replyTimeout(stage string) time.Duration {
	switch stage {
	case "mail":
		return c.to.Mail
	case "rcpt":
		return c.to.Rcpt
	default:
		return c.to.DataInit
	}
}

// txPlan is a transaction checked and rendered before anything is sent.
type txPlan struct {
	mail       string
	rcpts      []string // RCPT lines; "" for a recipient refused locally
	valid      int      // number of non-empty rcpts
	body       BodyType
	chunking   bool // send with BDAT
	reject8bit bool // the body is declared 7BIT and the server did not offer 8BITMIME
}

// plan checks env and rcpts against the server's extensions and renders the commands.
// Recipients whose address is unusable get a local 5.1.3 in res; a problem of the whole
// message is returned as an error.
func (c *Client) plan(env Envelope, rcpts []Recipient, res *Result) (txPlan, error) {
	p := txPlan{body: env.Body, rcpts: make([]string, len(rcpts))}
	if p.body == "" {
		p.body = Body7Bit
	}
	ret := strings.ToUpper(env.RET)
	if ret != "" && ret != "FULL" && ret != "HDRS" {
		return p, fmt.Errorf("smtpclient: invalid RET %q", env.RET)
	}
	for _, r := range rcpts {
		if r.Notify != "" && !smtp.ValidNotify(strings.ToUpper(r.Notify)) {
			return p, fmt.Errorf("smtpclient: invalid NOTIFY %q for %s", r.Notify, r.Addr)
		}
		if r.ORCPT != "" {
			if typ, addr, ok := strings.Cut(r.ORCPT, ";"); !ok || !isAtom(typ) || addr == "" {
				return p, fmt.Errorf("smtpclient: invalid ORCPT %q for %s", r.ORCPT, r.Addr)
			}
		}
	}
	needUTF8 := env.SMTPUTF8 || !smtp.IsASCII(env.From)
	for _, r := range rcpts {
		needUTF8 = needUTF8 || !smtp.IsASCII(r.Addr)
	}
	local := func(code int, enhanced, text string) *Error {
		return &Error{Stage: "mail", Local: true, Reply: smtp.R(code, enhanced, text)}
	}
	if env.From != "" {
		if _, err := smtp.ParseAddress(env.From, true); err != nil {
			e := local(553, "5.1.7", "invalid sender address "+strconv.Quote(env.From))
			e.Err = err
			return p, e
		}
	}
	if env.RequireTLS {
		switch {
		case c.tls.Level == "none":
			return p, local(550, "5.7.10", "REQUIRETLS message, but the session has no TLS")
		case !c.has("REQUIRETLS"):
			return p, local(550, "5.7.30", "REQUIRETLS message, but the server does not offer REQUIRETLS")
		}
	}
	if needUTF8 && !c.has("SMTPUTF8") {
		return p, local(553, "5.6.7", "message needs SMTPUTF8, which the server does not offer")
	}
	switch p.body {
	case Body7Bit:
		p.reject8bit = !c.has("8BITMIME")
	case Body8BitMIME:
		if !c.has("8BITMIME") {
			return p, local(554, "5.6.3", "8-bit message, but the server does not offer 8BITMIME and conversion is not supported")
		}
	case BodyBinaryMIME:
		if !c.has("BINARYMIME") || !c.has("CHUNKING") {
			return p, local(554, "5.6.3", "binary message, but the server does not offer BINARYMIME and CHUNKING")
		}
	default:
		return p, fmt.Errorf("smtpclient: unknown body type %q", env.Body)
	}
	if limit, ok := c.sizeLimit(); ok && env.Size > limit {
		return p, local(552, "5.3.4", fmt.Sprintf("message size %d exceeds the server's limit of %d", env.Size, limit))
	}
	p.chunking = c.has("CHUNKING")
	dsn := c.has("DSN")
	res.DSN = dsn

	var b strings.Builder
	b.WriteString("MAIL FROM:<" + env.From + ">")
	if c.has("SIZE") && env.Size > 0 {
		fmt.Fprintf(&b, " SIZE=%d", env.Size)
	}
	if p.body != Body7Bit {
		b.WriteString(" BODY=" + string(p.body))
	}
	if needUTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if env.RequireTLS {
		b.WriteString(" REQUIRETLS")
	}
	if dsn && ret != "" {
		b.WriteString(" RET=" + ret)
	}
	if dsn && env.EnvID != "" {
		b.WriteString(" ENVID=" + smtp.EncodeXtext(env.EnvID))
	}
	p.mail = b.String()

	for i, r := range rcpts {
		if _, err := smtp.ParseAddress(r.Addr, true); err != nil {
			res.Rcpts[i].Err = &Error{Stage: "rcpt", Local: true,
				Reply: smtp.R(553, "5.1.3", "invalid recipient address "+strconv.Quote(r.Addr)), Err: err}
			continue
		}
		line := "RCPT TO:<" + r.Addr + ">"
		if dsn && r.Notify != "" {
			line += " NOTIFY=" + strings.ToUpper(r.Notify)
		}
		if dsn && r.ORCPT != "" {
			typ, addr, _ := strings.Cut(r.ORCPT, ";")
			line += " ORCPT=" + typ + ";" + smtp.EncodeXtext(addr)
		}
		p.rcpts[i] = line
		p.valid++
	}
	return p, nil
}

// sizeLimit returns the server's SIZE limit (RFC 1870 §4); ok is false when there is
// none (no SIZE, "SIZE" alone or "SIZE 0").
func (c *Client) sizeLimit() (limit int64, ok bool) {
	v, offered := c.ext["SIZE"]
	if !offered {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// isAtom reports whether s is an RFC 5322 atom of letters, digits and hyphens, as ORCPT
// address types are ("rfc822", "utf-8").
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
