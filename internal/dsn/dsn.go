// Package dsn builds delivery status notifications (RFC 3464, RFC 6522): the reports
// mxward sends to a message's reverse-path when delivery to a recipient fails, is delayed
// for long, or succeeds and the sender asked to hear about it (RFC 3461 NOTIFY).
//
// The package decides whether a notification is wanted (Wanted) and writes it (Write); it
// neither queues nor sends it. A DSN is itself mail and is queued like any other message,
// with the envelope that Message.Envelope returns: a null reverse-path, so that a DSN
// about a DSN can never be generated (RFC 5321 §4.5.5).
package dsn

import (
	"errors"
	"strings"
	"time"

	"mxward/internal/spool"
)

// Action is the RFC 3464 §2.3.3 action value: what happened to one recipient.
type Action string

const (
	// ActionFailed: the message could not be delivered and no further attempt will be made.
	ActionFailed Action = "failed"
	// ActionDelayed: delivery has not succeeded yet and is still being retried.
	ActionDelayed Action = "delayed"
	// ActionDelivered: the message reached the recipient's mailbox.
	ActionDelivered Action = "delivered"
	// ActionRelayed: the message was passed to a system that sends no further DSNs.
	ActionRelayed Action = "relayed"
	// ActionExpanded: the recipient was an alias or list and the message was forwarded
	// to its members.
	ActionExpanded Action = "expanded"
)

func (a Action) valid() bool {
	switch a {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
		return true
	}
	return false
}

// RecipientStatus is what one DSN reports about one recipient.
type RecipientStatus struct {
	Rcpt           string    // final recipient address (the forward-path mxward delivered to)
	ORCPT          string    // RFC 3461 ORCPT as "addr-type;address", "" if the client gave none
	Action         Action    // what happened
	Status         string    // RFC 3463 status such as "5.1.1"; "" means the action's generic class
	RemoteMTA      string    // "dns; mx.example.com", or a bare host name; "" if none was reached
	DiagnosticCode string    // the remote reply, "smtp; 550 5.1.1 ..." or the bare reply text
	LastAttempt    time.Time // zero if unknown
	WillRetryUntil time.Time // for ActionDelayed: when mxward gives up; zero if unknown
}

// ErrNullSender is returned by Write when the notification would go to the null
// reverse-path. Mail from <> is itself a notification; answering it invites loops.
var ErrNullSender = errors.New("dsn: no notification is sent to the null reverse-path")

// Wanted reports whether the sender of env asked for a DSN with action a about rcpt, by
// RFC 3461 §4.1:
//
//   - never for the null reverse-path (RFC 5321 §6.1: no bounce for a bounce);
//   - NOTIFY=NEVER: none;
//   - NOTIFY absent: failures, and delays too — RFC 3461 leaves delays to the MTA and a
//     sender whose mail sits in a queue for hours is better told;
//   - otherwise only the listed kinds: FAILURE for failed, DELAY for delayed, SUCCESS for
//     delivered, relayed and expanded.
func Wanted(env spool.Envelope, rcpt spool.Recipient, a Action) bool {
	if isNullSender(env.From) || !a.valid() {
		return false
	}
	notify := strings.TrimSpace(rcpt.Notify)
	if notify == "" {
		return a == ActionFailed || a == ActionDelayed
	}
	var success, failure, delay bool
	for kw := range strings.SplitSeq(notify, ",") {
		switch strings.ToUpper(strings.TrimSpace(kw)) {
		case "NEVER":
			return false
		case "SUCCESS":
			success = true
		case "FAILURE":
			failure = true
		case "DELAY":
			delay = true
		}
	}
	switch {
	case a == ActionFailed:
		return failure
	case a == ActionDelayed:
		return delay
	default:
		return success
	}
}

func isNullSender(from string) bool {
	from = strings.TrimSpace(from)
	return from == "" || from == "<>"
}

// Subject returns the Subject of a DSN whose most severe action is a. The wording follows
// long-standing MTA practice, so that people and filters recognise the reports.
func Subject(a Action) string {
	switch a {
	case ActionFailed:
		return "Undelivered Mail Returned to Sender"
	case ActionDelayed:
		return "Delayed Mail (still being retried)"
	case ActionDelivered, ActionRelayed, ActionExpanded:
		return "Successful Mail Delivery Report"
	}
	return "Delivery Status Notification"
}

// StatusFromReply returns the RFC 3463 status for an SMTP reply with basic code code and
// enhanced code enhanced ("" when the server sent none, RFC 2034). A well-formed enhanced
// code is kept, with its class corrected to the basic code's when the two disagree,
// because the basic code is what decided between retrying and giving up. Without one the
// status is the class's generic code: 2.0.0, 4.0.0 or 5.0.0. A code outside 200–599
// yields "".
func StatusFromReply(code int, enhanced string) string {
	var class byte
	switch code / 100 {
	case 2:
		class = '2'
	case 4:
		class = '4'
	case 5:
		class = '5'
	default:
		return ""
	}
	if validStatus(enhanced) {
		return string(class) + enhanced[1:]
	}
	return string(class) + ".0.0"
}

// validStatus reports whether s is an RFC 3463 status-code: class "." subject "." detail,
// class 2, 4 or 5, subject and detail of one to three digits.
func validStatus(s string) bool {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return false
	}
	subject, detail, ok := strings.Cut(s[2:], ".")
	return ok && statusNumber(subject) && statusNumber(detail)
}

func statusNumber(s string) bool {
	if len(s) < 1 || len(s) > 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// status returns rs.Status if it is well-formed, else the generic code for rs.Action's
// class, so that a report always carries a parseable Status field.
func (rs RecipientStatus) status() string {
	if validStatus(rs.Status) {
		return rs.Status
	}
	switch {
	case rs.Action == ActionFailed:
		return "5.0.0"
	case rs.Action == ActionDelayed:
		return "4.0.0"
	default:
		return "2.0.0"
	}
}
