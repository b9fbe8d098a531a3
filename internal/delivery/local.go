package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mxward/internal/local"
	"mxward/internal/spool"
)

// LocalTransport delivers one message to local mailboxes: local.Maildir or local.LMTP.
type LocalTransport interface {
	Deliver(ctx context.Context, env local.Envelope, body io.Reader, targets []local.Target) []local.Result
}

// MaildirTransport adapts local.Maildir, which reads the body once per mailbox, to
// LocalTransport. The spool's bodies are files, so they can be read at any offset.
type MaildirTransport struct{ *local.Maildir }

// Deliver implements LocalTransport.
func (m MaildirTransport) Deliver(ctx context.Context, env local.Envelope, body io.Reader, targets []local.Target) []local.Result {
	ra, ok := body.(io.ReaderAt)
	if !ok {
		res := make([]local.Result, len(targets))
		for i, t := range targets {
			res[i] = local.Result{Rcpt: t.Rcpt, Mailbox: t.Mailbox.Address(), Enhanced: "4.3.0", Temporary: true,
				Err: errors.New("message body is not seekable")}
		}
		return res
	}
	return m.Maildir.Deliver(ctx, env, ra, targets)
}

// Local runs local delivery: it takes due local recipients from the spool, hands them to
// the transport, and records one attempt per recipient.
type Local struct {
	Store     spool.Store
	Transport LocalTransport
	Name      string // "maildir" or "lmtp", for the log
	// Separator is the subaddress separator set used by the resolver, so that a stored
	// recipient such as alice+lists@example.org is filed in alice's mailbox.
	Separator   string
	Retry       Retry
	Concurrency int // messages delivered at once; default 4
	Poll        time.Duration
	Log         *slog.Logger
	Now         func() time.Time
	Jitter      func() float64
	Metrics     *Metrics // nil: no metrics
	Bouncer     *Bouncer // nil: no DSNs
	// DelayWarning is the age after which a deferral sends a "delayed" DSN; 0 never.
	DelayWarning time.Duration

	kick chan struct{}
	once sync.Once
}

func (l *Local) init() {
	l.once.Do(func() {
		l.kick = make(chan struct{}, 1)
		if l.Concurrency <= 0 {
			l.Concurrency = 4
		}
		if l.Poll <= 0 {
			l.Poll = 5 * time.Second
		}
		if l.Log == nil {
			l.Log = slog.New(slog.DiscardHandler)
		}
		if l.Now == nil {
			l.Now = time.Now
		}
		if l.Jitter == nil {
			l.Jitter = defaultJitter
		}
	})
}

// Kick asks for a queue run now, typically right after a message was queued.
func (l *Local) Kick() {
	l.init()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is cancelled.
func (l *Local) Run(ctx context.Context) {
	l.init()
	t := time.NewTicker(l.Poll)
	defer t.Stop()
	for {
		for l.RunOnce(ctx) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-t.C:
		}
	}
}

// RunOnce delivers one batch of due messages and returns how many it handled.
func (l *Local) RunOnce(ctx context.Context) int {
	l.init()
	msgs, err := l.Store.Due(ctx, l.Now(), true, 64)
	if err != nil {
		if ctx.Err() == nil {
			l.Log.Error("local queue scan failed", "error", err)
		}
		return 0
	}
	sem := make(chan struct{}, l.Concurrency)
	var wg sync.WaitGroup
	for i := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func(m *spool.Message) {
			defer func() { <-sem; wg.Done() }()
			l.deliver(ctx, m)
		}(&msgs[i])
	}
	wg.Wait()
	return len(msgs)
}

func (l *Local) deliver(ctx context.Context, m *spool.Message) {
	now := l.Now()
	env := &m.Envelope
	targets := make([]local.Target, 0, len(env.Recipients))
	for _, r := range env.Recipients {
		targets = append(targets, local.Target{Rcpt: r.Addr, Mailbox: mailboxOf(r.Addr, l.Separator)})
	}
	var results []local.Result
	body, err := l.Store.Open(ctx, m.ID)
	if err != nil {
		results = make([]local.Result, len(targets))
		for i, t := range targets {
			results[i] = local.Result{Rcpt: t.Rcpt, Mailbox: t.Mailbox.Address(), Enhanced: "4.3.0", Temporary: true,
				Err: fmt.Errorf("open queued message: %w", err)}
		}
	} else {
		results = l.Transport.Deliver(ctx, local.Envelope{
			From:     env.From,
			EightBit: env.BodyType == spool.Body8BitMIME,
			SMTPUTF8: env.SMTPUTF8,
		}, body, targets)
		body.Close()
	}

	outcomes := make([]spool.Outcome, 0, len(results))
	var failed, delayed, delivered []bounceItem
	for i, res := range results {
		r := env.Recipients[i]
		status := res.Status()
		reason := ""
		o := spool.Outcome{Attempt: spool.Attempt{
			Rcpt: r.Addr, Time: now, Result: string(status), Reply: res.Reply(),
			Fields: map[string]string{"transport": l.Name, "mailbox": res.Mailbox},
		}}
		if status == local.Deferred {
			if l.Retry.Expired(now, env.ReceivedAt) {
				o.Result, reason = string(local.Bounced), "expired"
			} else {
				o.NextAttempt = l.Retry.Next(now, r.Attempts+1, l.Jitter())
				reason = "temporary failure"
			}
		}
		if reason != "" {
			o.Fields["reason"] = reason
		}
		item := bounceItem{rcpt: r, reply: o.Reply, expired: reason == "expired", when: now,
			retryUntil: env.ReceivedAt.Add(l.Retry.withDefaults().Lifetime)}
		switch o.Result {
		case string(local.Bounced):
			failed = append(failed, item)
		case string(local.Deferred):
			if l.DelayWarning > 0 && now.Sub(env.ReceivedAt) >= l.DelayWarning {
				delayed = append(delayed, item)
			}
		case string(local.Delivered):
			delivered = append(delivered, item)
		}
		outcomes = append(outcomes, o)
		if l.Metrics != nil {
			l.Metrics.Deliveries.WithLabelValues(o.Result, "local-delivery", "none").Inc()
		}
		level := slog.LevelInfo
		if o.Result != string(local.Delivered) {
			level = slog.LevelWarn
		}
		l.Log.Log(ctx, level, "delivery", "queue_id", string(m.ID), "rcpt", r.Addr, "domain", domainOf(r.Addr),
			"result", o.Result, "transport", l.Name, "mailbox", res.Mailbox, "reply", o.Reply, "reason", reason,
			"attempt", r.Attempts+1)
	}
	if l.Bouncer != nil {
		// Before Record: recording the last final outcome removes the body DSNs return.
		l.Bouncer.Notify(ctx, m, failed, delayed, delivered, outcomes)
	}
	if err := l.Store.Record(ctx, m.ID, outcomes); err != nil {
		// The delivery happened but could not be recorded: the next run delivers again,
		// a duplicate rather than a loss (ARCHITECTURE invariant 1).
		l.Log.Error("recording delivery failed", "queue_id", string(m.ID), "error", err)
	}
}

// mailboxOf turns a stored local recipient, already resolved at RCPT time, back into its
// mailbox without resolving aliases a second time.
func mailboxOf(addr, sep string) local.Mailbox {
	at := strings.LastIndexByte(addr, '@')
	user, domain := addr, ""
	if at >= 0 {
		user, domain = addr[:at], addr[at+1:]
	}
	mb := local.Mailbox{Domain: strings.TrimSuffix(strings.ToLower(domain), "."), User: strings.ToLower(user)}
	if sep != "" {
		if i := strings.IndexAny(mb.User, sep); i > 0 {
			mb.Separator = mb.User[i : i+1]
			mb.Detail = mb.User[i+1:]
			mb.User = mb.User[:i]
		}
	}
	return mb
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}
