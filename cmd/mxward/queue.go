package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"mxward/internal/delivery"
	"mxward/internal/spool"
)

const queueUsage = `usage: mxward queue [--config FILE] [--json] <action> [ID...]

actions:
  list             queued messages (not yet delivered, bounced or deleted)
  show ID          one message: envelope, recipients and attempt history
  delete ID...     remove messages from the queue (no bounce is sent)
  hold ID...       stop delivery attempts until released
  release ID...    make held messages due now
  retry ID...|--all   try queued (not held) messages now
  bounce ID...     give up on messages: bounce them now, with a DSN to the sender
`

func cmdQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, queueUsage) }
	cfgPath := fs.String("config", "", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "with retry: every queued message")
	// Accept flags before and after the action: "queue list --json" reads naturally.
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		fs.Usage()
		return &exitError{code: 64, err: errors.New("")}
	}
	action, ids := rest[0], rest[1:]
	cfg, _, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	store, err := spool.Open(ctx, filepath.Join(cfg.DataDir, "spool"), spool.Options{})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	defer store.Close()

	switch action {
	case "list":
		if len(ids) > 0 {
			return &exitError{code: 64, err: errors.New("queue list takes no arguments")}
		}
		msgs, err := store.List(ctx, spool.Filter{})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, listJSON(msgs))
		}
		printList(stdout, msgs)
		return nil
	case "show":
		if len(ids) != 1 {
			return &exitError{code: 64, err: errors.New("usage: mxward queue show ID")}
		}
		m, err := store.Get(ctx, spool.ID(ids[0]))
		if err != nil {
			return queueErr(ids[0], err)
		}
		if *asJSON {
			return writeJSON(stdout, messageJSON(m, true))
		}
		printMessage(stdout, m)
		return nil
	case "retry":
		if *all == (len(ids) > 0) {
			return &exitError{code: 64, err: errors.New("usage: mxward queue retry ID... | --all")}
		}
		if *all {
			msgs, err := store.List(ctx, spool.Filter{State: spool.StateQueued})
			if err != nil {
				return err
			}
			for _, m := range msgs {
				ids = append(ids, string(m.ID))
			}
		}
		fallthrough
	case "delete", "hold", "release", "bounce":
		if len(ids) == 0 && action != "retry" {
			return &exitError{code: 64, err: fmt.Errorf("usage: mxward queue %s ID...", action)}
		}
		bouncer := &delivery.Bouncer{Store: store, Hostname: cfg.Hostname, IsLocal: func(addr string) bool {
			i := strings.LastIndexByte(addr, '@')
			return i >= 0 && slices.Contains(cfg.Local.Domains, strings.ToLower(addr[i+1:]))
		}}
		op := map[string]func(context.Context, spool.ID) error{
			"delete": store.Delete, "hold": store.Hold, "release": store.Release, "retry": store.Retry,
			"bounce": func(ctx context.Context, id spool.ID) error {
				_, err := bouncer.BounceMessage(ctx, id, "550 5.0.0 Delivery abandoned by the mail system administrator")
				return err
			},
		}[action]
		var failed error
		done := []string{}
		for _, id := range ids {
			if err := op(ctx, spool.ID(id)); err != nil {
				failed = errors.Join(failed, queueErr(id, err))
				continue
			}
			done = append(done, id)
		}
		if *asJSON {
			if err := writeJSON(stdout, map[string]any{"action": action, "ids": done}); err != nil {
				return err
			}
		} else {
			for _, id := range done {
				fmt.Fprintf(stdout, "%s: %s\n", id, pastTense[action])
			}
		}
		if failed != nil {
			return &exitError{code: 1, err: failed}
		}
		return nil
	}
	fs.Usage()
	return &exitError{code: 64, err: fmt.Errorf("unknown queue action %q", action)}
}

var pastTense = map[string]string{"delete": "deleted", "hold": "held", "release": "released", "retry": "due now", "bounce": "bounced"}

func queueErr(id string, err error) error {
	if errors.Is(err, spool.ErrNotFound) {
		return &exitError{code: 1, err: fmt.Errorf("%s: no such message in the queue", id)}
	}
	return fmt.Errorf("%s: %w", id, err)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type rcptJSON struct {
	Addr        string     `json:"addr"`
	State       string     `json:"state"`
	Local       bool       `json:"local"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	LastReply   string     `json:"last_reply,omitempty"`
	Notify      string     `json:"notify,omitempty"`
	ORCPT       string     `json:"orcpt,omitempty"`
}

type attemptJSON struct {
	Time   time.Time         `json:"time"`
	Rcpt   string            `json:"rcpt"`
	Result string            `json:"result"`
	Reply  string            `json:"reply,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

type msgJSON struct {
	ID         string        `json:"id"`
	From       string        `json:"from"`
	Size       int64         `json:"size"`
	ReceivedAt time.Time     `json:"received_at"`
	ClientIP   string        `json:"client_ip,omitempty"`
	Helo       string        `json:"helo,omitempty"`
	AuthUser   string        `json:"auth_user,omitempty"`
	Listener   string        `json:"listener,omitempty"`
	BodyType   string        `json:"body_type,omitempty"`
	SMTPUTF8   bool          `json:"smtputf8,omitempty"`
	RequireTLS bool          `json:"requiretls,omitempty"`
	RET        string        `json:"ret,omitempty"`
	EnvID      string        `json:"envid,omitempty"`
	Recipients []rcptJSON    `json:"recipients"`
	Attempts   []attemptJSON `json:"attempts,omitempty"`
}

func messageJSON(m *spool.Message, withAttempts bool) msgJSON {
	e := m.Envelope
	j := msgJSON{ID: string(m.ID), From: e.From, Size: e.Size, ReceivedAt: e.ReceivedAt, ClientIP: e.ClientIP,
		Helo: e.Helo, AuthUser: e.AuthUser, Listener: e.Listener, BodyType: string(e.BodyType), SMTPUTF8: e.SMTPUTF8,
		RequireTLS: e.RequireTLS, RET: e.RET, EnvID: e.EnvID, Recipients: []rcptJSON{}}
	for _, r := range e.Recipients {
		rj := rcptJSON{Addr: r.Addr, State: string(r.State), Local: r.Local, Attempts: r.Attempts, LastReply: r.LastReply,
			Notify: r.Notify, ORCPT: r.ORCPT}
		if !r.NextAttempt.IsZero() && !r.State.Final() {
			t := r.NextAttempt
			rj.NextAttempt = &t
		}
		j.Recipients = append(j.Recipients, rj)
	}
	if withAttempts {
		for _, a := range m.Attempts {
			j.Attempts = append(j.Attempts, attemptJSON{Time: a.Time, Rcpt: a.Rcpt, Result: a.Result, Reply: a.Reply, Fields: a.Fields})
		}
	}
	return j
}

func listJSON(msgs []spool.Message) []msgJSON {
	out := make([]msgJSON, 0, len(msgs))
	for i := range msgs {
		out = append(out, messageJSON(&msgs[i], false))
	}
	return out
}

func printList(w io.Writer, msgs []spool.Message) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "queue is empty")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tARRIVED\tSENDER\tRECIPIENTS")
	for _, m := range msgs {
		var rs []string
		for _, r := range m.Envelope.Recipients {
			s := r.Addr
			if r.State != spool.StateQueued {
				s += " (" + string(r.State) + ")"
			}
			rs = append(rs, s)
		}
		from := m.Envelope.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.ID, m.Envelope.Size, m.Envelope.ReceivedAt.Local().Format(time.DateTime), from, strings.Join(rs, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d messages\n", len(msgs))
}

func printMessage(w io.Writer, m *spool.Message) {
	e := m.Envelope
	from := e.From
	if from == "" {
		from = "<>"
	}
	fmt.Fprintf(w, "id:          %s\n", m.ID)
	fmt.Fprintf(w, "from:        %s\n", from)
	fmt.Fprintf(w, "size:        %d\n", e.Size)
	fmt.Fprintf(w, "received:    %s from %s (helo %s) on %s\n", e.ReceivedAt.Local().Format(time.RFC3339), e.ClientIP, e.Helo, e.Listener)
	if e.AuthUser != "" {
		fmt.Fprintf(w, "auth user:   %s\n", e.AuthUser)
	}
	fmt.Fprintf(w, "body:        %s smtputf8=%v requiretls=%v ret=%s envid=%s\n", e.BodyType, e.SMTPUTF8, e.RequireTLS, e.RET, e.EnvID)
	fmt.Fprintln(w, "recipients:")
	for _, r := range e.Recipients {
		line := fmt.Sprintf("  %s  %s  attempts=%d", r.Addr, r.State, r.Attempts)
		if !r.State.Final() && !r.NextAttempt.IsZero() {
			line += "  next=" + r.NextAttempt.Local().Format(time.RFC3339)
		}
		if r.LastReply != "" {
			line += "  last=" + r.LastReply
		}
		fmt.Fprintln(w, line)
	}
	if len(m.Attempts) > 0 {
		fmt.Fprintln(w, "attempts:")
		for _, a := range m.Attempts {
			keys := make([]string, 0, len(a.Fields))
			for k := range a.Fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var fs []string
			for _, k := range keys {
				fs = append(fs, k+"="+a.Fields[k])
			}
			fmt.Fprintf(w, "  %s  %s  %s  %s  %s\n", a.Time.Local().Format(time.RFC3339), a.Rcpt, a.Result, a.Reply, strings.Join(fs, " "))
		}
	}
}
