// Package spool owns mxward's durable queue: message bodies on disk and an index of
// envelopes, per-recipient state and delivery attempts.
//
// The contract every implementation keeps (ARCHITECTURE invariant 1): when Commit returns
// without error, the body file and the index row are on stable storage, so a crash at any
// later instant loses nothing that was acknowledged with a 250. A crash before Commit
// returns leaves at most an orphan body file, which Open sweeps away.
package spool

import (
	"context"
	"errors"
	"io"
	"time"
)

// ID names a queued message. It is unique within one spool and safe to use as a file name.
type ID string

// BodyType is the body's declared content (RFC 6152, RFC 3030).
type BodyType string

const (
	Body7Bit       BodyType = "7BIT"
	Body8BitMIME   BodyType = "8BITMIME"
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// Envelope is everything about a message that is not its content.
type Envelope struct {
	From       string // reverse-path without brackets; "" is the null sender
	Recipients []Recipient
	BodyType   BodyType
	SMTPUTF8   bool
	RequireTLS bool   // RFC 8689 REQUIRETLS was given on MAIL
	RET        string // RFC 3461 RET: "", "FULL" or "HDRS"
	EnvID      string // RFC 3461 ENVID, xtext-decoded
	Size       int64  // body size in bytes as stored (set by the spool on Commit)

	ReceivedAt time.Time
	ClientIP   string // remote address, or "local" for injected mail
	Helo       string
	AuthUser   string // authenticated submission user, if any
	Listener   string // name of the listener that accepted the message
}

// Recipient is one forward-path with its RFC 3461 parameters and its queue state.
type Recipient struct {
	Addr   string // forward-path without brackets
	Notify string // RFC 3461 NOTIFY as given: "", "NEVER" or a comma list of SUCCESS,FAILURE,DELAY
	ORCPT  string // RFC 3461 ORCPT as "addr-type;xtext-decoded address", "" if absent
	// Local is true when the recipient's domain is one of ours and it goes to local delivery.
	Local bool

	// Queue state, maintained by the spool; ignored on Commit.
	State       State
	NextAttempt time.Time
	Attempts    int
	LastReply   string
}

// State is a recipient's place in its life cycle.
type State string

const (
	StateQueued    State = "queued"    // waiting for its next attempt
	StateHeld      State = "held"      // held by the operator, not attempted
	StateDelivered State = "delivered" // final: delivered
	StateBounced   State = "bounced"   // final: failed permanently or expired
	StateDeleted   State = "deleted"   // final: removed by the operator
)

// Final reports whether no further attempt will be made for a recipient in this state.
func (s State) Final() bool {
	return s == StateDelivered || s == StateBounced || s == StateDeleted
}

// Attempt is one delivery attempt for one recipient, kept as history.
type Attempt struct {
	Rcpt   string
	Time   time.Time
	Result string            // "delivered", "deferred" or "bounced"
	Reply  string            // remote reply or local error
	Fields map[string]string // further structured fields (mx, ip, tls, policy ...)
}

// Message is a queued message as the index holds it.
type Message struct {
	ID       ID
	Envelope Envelope
	Attempts []Attempt // only filled by Get
}

// Outcome is the result of one attempt, reported back to the spool by a deliverer.
type Outcome struct {
	Attempt
	// NextAttempt is when to try again after a "deferred" result; ignored otherwise.
	NextAttempt time.Time
}

// Filter selects messages for List.
type Filter struct {
	State  State // "" for any non-final state
	Limit  int   // 0 for no limit
	Domain string
}

// Errors with meaning to callers.
var (
	ErrNotFound = errors.New("spool: no such message")
	ErrClosed   = errors.New("spool: closed")
)

// Writer receives one message body. Exactly one of Commit or Abort must be called.
type Writer interface {
	io.Writer
	// Commit makes the message durable with the given envelope and returns its ID.
	// Only after Commit returns nil may the server reply 250.
	Commit(ctx context.Context, env Envelope) (ID, error)
	// Abort discards the partial body.
	Abort() error
}

// Store is the durable queue. Implementations are safe for concurrent use, including by
// several processes (the server and the `mxward queue` CLI) on the same data directory.
type Store interface {
	// Create starts a new message body.
	Create(ctx context.Context) (Writer, error)
	// Open returns the stored body of a message.
	Open(ctx context.Context, id ID) (io.ReadCloser, error)
	// Get returns a message with its recipients' state and its attempt history.
	Get(ctx context.Context, id ID) (*Message, error)
	// List returns messages with at least one recipient matching f, oldest first.
	List(ctx context.Context, f Filter) ([]Message, error)
	// Due returns up to limit messages that have a recipient in StateQueued whose next attempt
	// is at or before now, with only those recipients, oldest first. local selects whether
	// local or remote recipients are wanted.
	Due(ctx context.Context, now time.Time, local bool, limit int) ([]Message, error)
	// Record stores the outcomes of an attempt: history rows, recipient state and next attempt
	// time. A message whose recipients are all final has its body removed.
	Record(ctx context.Context, id ID, outcomes []Outcome) error
	// Hold, Release and Delete act on every non-final recipient of a message.
	Hold(ctx context.Context, id ID) error
	Release(ctx context.Context, id ID) error
	Delete(ctx context.Context, id ID) error
	// Close flushes pending commits and releases resources.
	Close() error
}
