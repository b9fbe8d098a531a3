// Package local delivers mail addressed to mxward's own domains.
//
// It has three parts that the queue runner strings together:
//
//   - Resolver decides whether a domain is ours and turns a recipient into final mailboxes
//     (following aliases, subaddresses and catch-alls) plus remote addresses that have to be
//     relayed. It is pure and cheap, so the SMTP server also calls it at RCPT time to refuse
//     unknown users up front instead of bouncing later.
//   - Maildir writes messages into Maildir folders on the local file system.
//   - LMTP hands messages to a mail store (Dovecot, Cyrus ...) over RFC 2033 LMTP.
//
// Both delivery methods report one Result per target, because a message to several
// mailboxes may well be stored in one and refused by another.
//
// The package does not depend on the spool: bodies are plain readers and addresses plain
// strings, so it can be driven from tests and tools without a queue.
package local

import (
	"fmt"
	"strings"
)

// Status is the fate of one delivery attempt for one target. Its values are the ones the
// spool records in an attempt's history.
type Status string

const (
	Delivered Status = "delivered" // stored; nothing more to do
	Deferred  Status = "deferred"  // failed for now; try again later
	Bounced   Status = "bounced"   // failed for good; tell the sender
)

// Result is the outcome of delivering one message to one target.
type Result struct {
	Rcpt    string // the envelope recipient the target came from, as given in Target.Rcpt
	Mailbox string // the mailbox address delivered to, see Mailbox.Address

	// Code and Enhanced are the reply of the LMTP server, or for other outcomes the reply
	// that best describes them, so that the queue can write DSNs from either. Code is 0 when
	// no reply fits, for instance when a connection broke.
	Code     int
	Enhanced string // RFC 3463 status code such as "5.1.1", "" when unknown
	Text     string // human-readable reply text, without code and enhanced code

	// Temporary is true when trying again later may succeed.
	Temporary bool
	// Err is the local error behind a failure that no server reported, nil otherwise.
	Err error
}

// Status classifies the result. Anything that is not clearly delivered or clearly
// permanent counts as deferred: retrying a message is cheap, losing one is not.
func (r Result) Status() Status {
	switch {
	case r.Err == nil && r.Code >= 200 && r.Code < 300:
		return Delivered
	case r.Temporary:
		return Deferred
	case r.Code >= 500 && r.Code < 600, r.Code == 0 && strings.HasPrefix(r.Enhanced, "5."):
		return Bounced
	default:
		return Deferred
	}
}

// Reply renders the result as a one-line reply such as "550 5.1.1 no such user", the form
// the queue keeps as a recipient's last reply and quotes in DSNs.
func (r Result) Reply() string {
	var b strings.Builder
	if r.Code != 0 {
		fmt.Fprintf(&b, "%d", r.Code)
	}
	for _, s := range []string{r.Enhanced, r.Text} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if r.Err != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(r.Err.Error())
	}
	return b.String()
}

// Envelope is what the delivery methods need to know about a message besides its body.
type Envelope struct {
	From     string // reverse-path without brackets; "" is the null sender
	EightBit bool   // the body is 8BITMIME; BINARYMIME bodies are not supported
	SMTPUTF8 bool   // the message was received with SMTPUTF8
}

// Target is one destination of a delivery: the mailbox, and the envelope recipient that
// led to it, which is what results are reported against. Alias expansion can make several
// targets share one Rcpt.
type Target struct {
	Rcpt    string
	Mailbox Mailbox
}

// Mailbox is a final local mailbox as the Resolver found it.
type Mailbox struct {
	Domain string // normalized domain: ASCII lowercased, no trailing dot
	User   string // normalized local part: lowercased, without detail
	Detail string // subaddress detail the message was addressed with, lowercased; "" if none
	// Separator is the separator that preceded Detail; "" when Detail is "".
	Separator string
}

// Address returns the mailbox address including any detail, such as "alice+lists@example.org".
// It is what Delivered-To shows and what LMTP is given as the recipient, so that the mail
// store can file by detail.
func (m Mailbox) Address() string {
	if m.Detail == "" && m.Separator == "" {
		return m.User + "@" + m.Domain
	}
	return m.User + m.Separator + m.Detail + "@" + m.Domain
}

// Base returns the mailbox address without detail, such as "alice@example.org".
func (m Mailbox) Base() string {
	return m.User + "@" + m.Domain
}
