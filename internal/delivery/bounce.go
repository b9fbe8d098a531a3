package delivery

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"mxward/internal/dsn"
	"mxward/internal/spool"
)

// Bouncer queues delivery status notifications (RFC 3464) to the senders of messages that
// failed, are delayed, or were delivered to recipients that asked to be told.
type Bouncer struct {
	Store    spool.Store
	Hostname string
	// IsLocal reports whether an address is delivered locally, so the DSN goes to the
	// right queue.
	IsLocal func(addr string) bool
	// Queued is called after a DSN was queued (to start its delivery at once).
	Queued func(local bool)
	Log    *slog.Logger
	Now    func() time.Time
}

// bounceItem is one recipient to report on.
type bounceItem struct {
	rcpt       spool.Recipient
	reply      string // the reply or error that decided the outcome
	remoteMTA  string
	expired    bool
	when       time.Time
	retryUntil time.Time
}

// Notify queues the DSNs a delivery attempt calls for: one for the failed recipients, one
// "delayed" (once per recipient, marked in outcomes so it is not repeated), one for
// successes that the next hop will not report itself. It must run before the outcomes
// are recorded: recording the last final outcome removes the body a DSN returns.
func (b *Bouncer) Notify(ctx context.Context, m *spool.Message, failed, delayed, succeeded []bounceItem, outcomes []spool.Outcome) {
	env := m.Envelope
	if f := b.wanted(env, failed, dsn.ActionFailed); len(f) > 0 {
		b.queue(ctx, m, f, dsn.ActionFailed)
	}
	if d := b.wanted(env, delayed, dsn.ActionDelayed); len(d) > 0 {
		d = b.notYetWarned(ctx, m.ID, d)
		if len(d) > 0 && b.queue(ctx, m, d, dsn.ActionDelayed) {
			for _, it := range d {
				for i := range outcomes {
					if outcomes[i].Rcpt == it.rcpt.Addr {
						outcomes[i].Fields["delay_dsn"] = "sent"
					}
				}
			}
		}
	}
	action := dsn.ActionRelayed
	if len(succeeded) > 0 && succeeded[0].remoteMTA == "" {
		action = dsn.ActionDelivered
	}
	if s := b.wanted(env, succeeded, action); len(s) > 0 {
		b.queue(ctx, m, s, action)
	}
}

func (b *Bouncer) wanted(env spool.Envelope, items []bounceItem, a dsn.Action) []bounceItem {
	var out []bounceItem
	for _, it := range items {
		if dsn.Wanted(env, it.rcpt, a) {
			out = append(out, it)
		}
	}
	return out
}

// notYetWarned drops recipients that already had a "delayed" DSN, as the attempt history
// records. It is consulted only for messages past the warning age, so rarely.
func (b *Bouncer) notYetWarned(ctx context.Context, id spool.ID, items []bounceItem) []bounceItem {
	m, err := b.Store.Get(ctx, id)
	if err != nil {
		return nil
	}
	warned := map[string]bool{}
	for _, a := range m.Attempts {
		if a.Fields["delay_dsn"] == "sent" {
			warned[a.Rcpt] = true
		}
	}
	var out []bounceItem
	for _, it := range items {
		if !warned[it.rcpt.Addr] {
			out = append(out, it)
		}
	}
	return out
}

// queue writes one DSN into the spool; it reports whether it was queued.
func (b *Bouncer) queue(ctx context.Context, m *spool.Message, items []bounceItem, a dsn.Action) bool {
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	msg := dsn.Message{ReportingMTA: b.Hostname, Original: m.Envelope, QueueID: m.ID, Date: now}
	for _, it := range items {
		st := dsn.RecipientStatus{
			Rcpt: it.rcpt.Addr, ORCPT: it.rcpt.ORCPT, Action: a, LastAttempt: it.when, DiagnosticCode: "",
		}
		code, enh := parseReply(it.reply)
		st.Status = dsn.StatusFromReply(code, enh)
		if it.expired {
			st.Status = "4.4.7" // delivery time expired (RFC 3463)
		}
		if code != 0 {
			st.DiagnosticCode = "smtp; " + it.reply
		} else if it.reply != "" {
			st.DiagnosticCode = "X-mxward; " + it.reply
		}
		if it.remoteMTA != "" {
			st.RemoteMTA = "dns; " + it.remoteMTA
		}
		if a == dsn.ActionDelayed {
			st.WillRetryUntil = it.retryUntil
		}
		msg.Recipients = append(msg.Recipients, st)
	}
	body, err := b.Store.Open(ctx, m.ID)
	if err != nil {
		b.logError("open original for DSN", m.ID, err)
		return false
	}
	defer body.Close()
	w, err := b.Store.Create(ctx)
	if err != nil {
		b.logError("create DSN", m.ID, err)
		return false
	}
	if err := dsn.Write(w, msg, body); err != nil {
		w.Abort()
		b.logError("write DSN", m.ID, err)
		return false
	}
	env := msg.Envelope()
	local := b.IsLocal != nil && b.IsLocal(env.Recipients[0].Addr)
	env.Recipients[0].Local = local
	env.ReceivedAt = now
	env.Listener = "dsn"
	id, err := w.Commit(ctx, env)
	if err != nil {
		b.logError("queue DSN", m.ID, err)
		return false
	}
	if b.Log != nil {
		b.Log.Info("dsn queued", "queue_id", string(id), "original_queue_id", string(m.ID), "action", string(a),
			"to", env.Recipients[0].Addr, "rcpts", len(items))
	}
	if b.Queued != nil {
		b.Queued(local)
	}
	return true
}

func (b *Bouncer) logError(what string, id spool.ID, err error) {
	if b.Log != nil {
		b.Log.Error(what+" failed", "queue_id", string(id), "error", err)
	}
}

// parseReply splits "550 5.1.1 text" into 550 and "5.1.1"; 0 and "" when it is not a reply.
func parseReply(s string) (int, string) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f[0]) != 3 {
		return 0, ""
	}
	code, err := strconv.Atoi(f[0])
	if err != nil || code < 200 || code > 599 {
		return 0, ""
	}
	if len(f) > 1 && isEnhanced(f[1]) {
		return code, f[1]
	}
	return code, ""
}

func isEnhanced(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || (p[0] != "2" && p[0] != "4" && p[0] != "5") {
		return false
	}
	for _, x := range p[1:] {
		if _, err := strconv.Atoi(x); err != nil || len(x) > 3 {
			return false
		}
	}
	return true
}

// BounceMessage gives up on every recipient of a message that is not final yet
// (`mxward queue bounce`): each is recorded as bounced with reply, and the sender gets a
// failure DSN as for any other permanent failure.
func (b *Bouncer) BounceMessage(ctx context.Context, id spool.ID, reply string) (int, error) {
	m, err := b.Store.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	var items []bounceItem
	var outcomes []spool.Outcome
	open := m.Envelope.Recipients[:0:0]
	for _, r := range m.Envelope.Recipients {
		if r.State.Final() {
			continue
		}
		open = append(open, r)
		items = append(items, bounceItem{rcpt: r, reply: reply, when: now})
		outcomes = append(outcomes, spool.Outcome{Attempt: spool.Attempt{Rcpt: r.Addr, Time: now, Result: "bounced",
			Reply: reply, Fields: map[string]string{"reason": "bounced by the operator"}}})
	}
	if len(outcomes) == 0 {
		return 0, nil
	}
	m.Envelope.Recipients = open
	b.Notify(ctx, m, items, nil, nil, outcomes)
	if err := b.Store.Record(ctx, id, outcomes); err != nil {
		return 0, err
	}
	return len(outcomes), nil
}
