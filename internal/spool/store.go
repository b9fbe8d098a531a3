package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options tune a FileStore. The zero value is usable.
type Options struct {
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // clock for IDs, arrival and retry times; nil is time.Now

	// MaxBatch bounds how many index writes share one transaction (default 256).
	MaxBatch int
	// CommitDelay lets the index writer wait up to this long for more writes before
	// committing a batch that is not full. Zero commits as soon as the previous
	// transaction is done, which already batches everything that arrived while it was
	// being synced to disk; a delay only trades latency for fewer fsyncs.
	CommitDelay time.Duration
	// BusyTimeout is how long to wait for an index lock held by another process
	// (default 10 s).
	BusyTimeout time.Duration
}

// FileStore is the Store of one spool directory: a file per message body under
// messages/, bodies being received under tmp/, and an SQLite index in index.db.
// Several processes may open the same directory at once.
type FileStore struct {
	dir, msgDir, tmpDir string
	log                 *slog.Logger
	now                 func() time.Time
	ids                 idGen

	lock     *dirLock
	wdb, rdb *sql.DB
	st       *stmts

	ops         chan *writeOp
	writerDone  chan struct{}
	maxBatch    int
	commitDelay time.Duration
	stats       writerStats

	// closeMu is held shared by every operation in progress and exclusively by Close,
	// so that Close waits for them and nothing starts afterwards.
	closeMu sync.RWMutex
	closed  bool

	shardMu sync.Mutex
	shards  map[string]bool // shard directories known to exist and be durable
}

var _ Store = (*FileStore)(nil)

// Open opens or creates the spool in dir. When no other process has the spool open,
// Open first recovers from whatever an earlier crash left behind: it removes partial
// bodies in tmp/ and bodies without an index row, and logs index rows whose body is
// missing (those stay, so that an operator sees them).
func Open(ctx context.Context, dir string, opts Options) (*FileStore, error) {
	s := &FileStore{
		dir:         dir,
		msgDir:      filepath.Join(dir, "messages"),
		tmpDir:      filepath.Join(dir, "tmp"),
		log:         opts.Logger,
		now:         opts.Now,
		maxBatch:    opts.MaxBatch,
		commitDelay: opts.CommitDelay,
		shards:      make(map[string]bool),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 256
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}

	for _, d := range []string{dir, s.msgDir, s.tmpDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("create spool directory: %w", err)
		}
	}
	lock, exclusive, err := lockDir(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	s.lock = lock
	fail := func(err error) (*FileStore, error) {
		if s.st != nil {
			s.st.close()
		}
		if s.wdb != nil {
			s.wdb.Close()
		}
		if s.rdb != nil {
			s.rdb.Close()
		}
		s.lock.release()
		return nil, err
	}

	s.wdb, s.rdb, err = openIndex(ctx, filepath.Join(dir, "index.db"), busy, 8)
	if err != nil {
		return fail(err)
	}
	if s.st, err = prepareStmts(ctx, s.wdb); err != nil {
		return fail(err)
	}
	// messages/, tmp/ and the index may have just been created: make their entries
	// durable before any Commit relies on them.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := syncDir(d); err != nil {
			return fail(err)
		}
	}
	if exclusive {
		if err := s.recover(ctx); err != nil {
			return fail(err)
		}
		if err := s.lock.share(); err != nil {
			return fail(err)
		}
	} else {
		s.log.Info("spool open in another process, skipping recovery", "dir", dir)
	}

	s.ops = make(chan *writeOp, s.maxBatch)
	s.writerDone = make(chan struct{})
	go s.runWriter()
	return s, nil
}

// Stats reports the index writer's counters.
func (s *FileStore) Stats() Stats {
	return Stats{Writes: s.stats.writes.Load(), Transactions: s.stats.transactions.Load()}
}

// Close waits for operations in progress, commits pending writes, stops the index
// writer and releases the spool. Afterwards every method returns ErrClosed.
func (s *FileStore) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.ops)
	s.closeMu.Unlock()
	<-s.writerDone

	s.st.close()
	err := s.wdb.Close()
	if rerr := s.rdb.Close(); err == nil {
		err = rerr
	}
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// begin marks an operation in progress; it fails once the store is closed.
func (s *FileStore) begin() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *FileStore) end() { s.closeMu.RUnlock() }

// write runs fn in the index writer's next transaction and waits until that
// transaction committed or failed. The caller must be between begin and end, which
// keeps ops open. Once handed over, the operation is waited for even if ctx ends: a
// caller must never report failure for a write that took effect.
func (s *FileStore) write(ctx context.Context, fn func(context.Context, *itx) error, syncDirs ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{fn: fn, syncDirs: syncDirs, done: make(chan error, 1)}
	s.ops <- op
	return <-op.done
}

func (s *FileStore) bodyPath(id ID) string {
	return filepath.Join(s.msgDir, id.shard(), string(id))
}

func notFound(op string, id ID) error {
	return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
}

// Create starts a new message body in tmp/.
func (s *FileStore) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	id := s.ids.next(s.now())
	path := filepath.Join(s.tmpDir, string(id))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create spool body: %w", err)
	}
	return newBodyWriter(s, id, f), nil
}

// Open returns the body of a message. A message whose index row exists but whose body
// file is gone (a corrupted spool) yields an error wrapping ErrNotFound.
func (s *FileStore) Open(ctx context.Context, id ID) (io.ReadCloser, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if !validID(id) {
		return nil, notFound("open body of", id)
	}
	f, err := os.Open(s.bodyPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("open body of", id)
	}
	if err != nil {
		return nil, fmt.Errorf("open body of %s: %w", id, err)
	}
	return f, nil
}

// ensureShard creates a shard directory if needed and makes its entry in messages/
// durable, once per shard and process: another process may have created it without
// having synced messages/ yet.
func (s *FileStore) ensureShard(shard string) error {
	s.shardMu.Lock()
	known := s.shards[shard]
	s.shardMu.Unlock()
	if known {
		return nil
	}
	if err := os.Mkdir(filepath.Join(s.msgDir, shard), 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create spool shard: %w", err)
	}
	if err := syncDir(s.msgDir); err != nil {
		return err
	}
	s.shardMu.Lock()
	s.shards[shard] = true
	s.shardMu.Unlock()
	return nil
}

func (s *FileStore) forgetShard(shard string) {
	s.shardMu.Lock()
	delete(s.shards, shard)
	s.shardMu.Unlock()
}

// publish moves a complete, synced body from tmp/ into its shard. A shard directory
// removed as empty by a concurrent clean-up is created again.
func (s *FileStore) publish(id ID, tmp string) error {
	dst := s.bodyPath(id)
	for try := 0; ; try++ {
		if err := s.ensureShard(id.shard()); err != nil {
			return err
		}
		err := os.Rename(tmp, dst)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || try == 3 {
			return fmt.Errorf("move spool body into place: %w", err)
		}
		if _, serr := os.Stat(tmp); serr != nil {
			return fmt.Errorf("move spool body into place: %w", err)
		}
		s.forgetShard(id.shard())
	}
}

// insert is the index half of Commit.
func (s *FileStore) insert(ctx context.Context, id ID, env *Envelope) error {
	next := s.now()
	return s.write(ctx, func(ctx context.Context, t *itx) error {
		return insertRows(ctx, t, id, env, next)
	}, filepath.Join(s.msgDir, id.shard()))
}

// insertRows adds a new message with all its recipients due at next.
func insertRows(ctx context.Context, t *itx, id ID, env *Envelope, next time.Time) error {
	if _, err := t.stmt(ctx, t.st.insertMessage).ExecContext(ctx, string(id), env.From, string(env.BodyType),
		boolInt(env.SMTPUTF8), boolInt(env.RequireTLS), env.RET, env.EnvID, env.Size,
		toNanos(env.ReceivedAt), env.ClientIP, env.Helo, env.AuthUser, env.Listener); err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	ins := t.stmt(ctx, t.st.insertRecipient)
	for i, r := range env.Recipients {
		if _, err := ins.ExecContext(ctx, string(id), i, r.Addr, rcptDomain(r.Addr), r.Notify, r.ORCPT,
			boolInt(r.Local), string(StateQueued), toNanos(next)); err != nil {
			return fmt.Errorf("insert recipient: %w", err)
		}
	}
	return nil
}

// dropUncommitted removes the body of a message whose index insert failed, unless the
// row exists after all; when in doubt the body stays for the next start-up sweep.
func (s *FileStore) dropUncommitted(id ID) {
	var one int
	err := s.rdb.QueryRow(`SELECT 1 FROM messages WHERE id = ?`, string(id)).Scan(&one)
	if !errors.Is(err, sql.ErrNoRows) {
		return
	}
	if err := os.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove spool body after failed commit", "id", id, "err", err)
	}
}

// removeBody deletes the body of a message whose rows are gone, and the shard
// directory with it once that is empty and old enough that no new body is expected
// there. Bodies of messages still being received may land in an old shard; publish
// recreates it.
func (s *FileStore) removeBody(id ID) {
	if err := os.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The row is gone, so the next start-up sweep removes the file.
		s.log.Warn("remove spool body", "id", id, "err", err)
		return
	}
	shard := id.shard()
	if shard >= shardAt(s.now().Add(-2*shardSpan)) {
		return
	}
	if err := os.Remove(filepath.Join(s.msgDir, shard)); err == nil {
		s.forgetShard(shard)
	}
}

// Record stores the outcomes of an attempt. An outcome naming a recipient the message
// does not have fails the whole call, changing nothing. Outcomes for recipients that
// are already final are kept as history but do not change their state. When no
// recipient is left to try, the message's rows and body are removed, so a DSN that
// needs the body must be generated before the final outcome is recorded.
func (s *FileStore) Record(ctx context.Context, id ID, outcomes []Outcome) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	if !validID(id) {
		return notFound("record", id)
	}
	for _, o := range outcomes {
		switch o.Result {
		case "delivered", "deferred", "bounced":
		default:
			return fmt.Errorf("record %s: recipient %q: unknown result %q", id, o.Rcpt, o.Result)
		}
	}
	now := s.now()
	var finished bool
	err := s.write(ctx, func(ctx context.Context, t *itx) error {
		finished = false
		if err := requireMessage(ctx, t, id); err != nil {
			return err
		}
		for _, o := range outcomes {
			if err := recordOutcome(ctx, t, id, o, now); err != nil {
				return err
			}
		}
		var open bool
		if err := t.stmt(ctx, t.st.openRecipients).QueryRowContext(ctx, string(id)).Scan(&open); err != nil {
			return fmt.Errorf("count open recipients: %w", err)
		}
		if !open {
			finished = true
			return deleteMessage(ctx, t, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", id, err)
	}
	if finished {
		s.removeBody(id)
	}
	return nil
}

func recordOutcome(ctx context.Context, t *itx, id ID, o Outcome, now time.Time) error {
	at := o.Time
	if at.IsZero() {
		at = now
	}
	fields := ""
	if len(o.Fields) > 0 {
		b, err := json.Marshal(o.Fields)
		if err != nil {
			return fmt.Errorf("encode attempt fields: %w", err)
		}
		fields = string(b)
	}
	if _, err := t.stmt(ctx, t.st.insertAttempt).ExecContext(ctx, string(id), o.Rcpt, toNanos(at),
		o.Result, o.Reply, fields); err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	var res sql.Result
	var err error
	switch o.Result {
	case "delivered":
		res, err = t.stmt(ctx, t.st.finalize).ExecContext(ctx, string(StateDelivered), o.Reply, string(id), o.Rcpt)
	case "bounced":
		res, err = t.stmt(ctx, t.st.finalize).ExecContext(ctx, string(StateBounced), o.Reply, string(id), o.Rcpt)
	case "deferred":
		next := o.NextAttempt
		if next.IsZero() {
			next = now
		}
		res, err = t.stmt(ctx, t.st.deferRcpt).ExecContext(ctx, toNanos(next), o.Reply, string(id), o.Rcpt)
	}
	if err != nil {
		return fmt.Errorf("update recipient %q: %w", o.Rcpt, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var one int
	err = t.stmt(ctx, t.st.recipientExists).QueryRowContext(ctx, string(id), o.Rcpt).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("recipient %q: %w", o.Rcpt, ErrNotFound)
	}
	return err
}

func requireMessage(ctx context.Context, t *itx, id ID) error {
	var one int
	err := t.stmt(ctx, t.st.messageExists).QueryRowContext(ctx, string(id)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("look up message: %w", err)
	}
	return nil
}

func deleteMessage(ctx context.Context, t *itx, id ID) error {
	for _, st := range []*sql.Stmt{t.st.deleteAttempts, t.st.deleteRcpts, t.st.deleteMessage} {
		if _, err := t.stmt(ctx, st).ExecContext(ctx, string(id)); err != nil {
			return fmt.Errorf("delete message rows: %w", err)
		}
	}
	return nil
}

// Hold stops attempts for every non-final recipient until Release.
func (s *FileStore) Hold(ctx context.Context, id ID) error {
	return s.update(ctx, "hold", id, `UPDATE recipients SET state = 'held' WHERE msg_id = ? AND +state IN `+openStates)
}

// Release makes every non-final recipient due now, held or not.
func (s *FileStore) Release(ctx context.Context, id ID) error {
	next := toNanos(s.now())
	return s.update(ctx, "release", id, `UPDATE recipients SET state = 'queued', next_attempt = ?
		WHERE msg_id = ? AND +state IN `+openStates, next)
}

// Lease moves the next attempt of the due queued recipients (local or remote) of the
// given messages to until, so that Due does not return them again while a delivery is
// in progress; the delivery's Record replaces it. After a crash the lease simply runs
// out and the recipients are due again: a duplicate at worst, never a loss.
func (s *FileStore) Lease(ctx context.Context, ids []ID, local bool, now, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	err := s.write(ctx, func(ctx context.Context, t *itx) error {
		for _, id := range ids {
			if _, err := t.tx.ExecContext(ctx, `UPDATE recipients SET next_attempt = ?
				WHERE msg_id = ? AND state = 'queued' AND local = ? AND next_attempt <= ?`,
				toNanos(until), string(id), boolInt(local), toNanos(now)); err != nil {
				return fmt.Errorf("update recipients: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lease %d messages: %w", len(ids), err)
	}
	return nil
}

// Retry makes a message's queued recipients due now, leaving held ones held
// (`mxward queue retry`).
func (s *FileStore) Retry(ctx context.Context, id ID) error {
	next := toNanos(s.now())
	return s.update(ctx, "retry", id, `UPDATE recipients SET next_attempt = ?
		WHERE msg_id = ? AND state = 'queued'`, next)
}

func (s *FileStore) update(ctx context.Context, op string, id ID, query string, args ...any) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	if !validID(id) {
		return notFound(op, id)
	}
	args = append(args, string(id))
	err := s.write(ctx, func(ctx context.Context, t *itx) error {
		if err := requireMessage(ctx, t, id); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("update recipients: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// Delete removes a message, its history and its body.
func (s *FileStore) Delete(ctx context.Context, id ID) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	if !validID(id) {
		return notFound("delete", id)
	}
	err := s.write(ctx, func(ctx context.Context, t *itx) error {
		if err := requireMessage(ctx, t, id); err != nil {
			return err
		}
		return deleteMessage(ctx, t, id)
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	s.removeBody(id)
	return nil
}

// Columns read by scanMessages, in order.
const (
	messageCols   = `m.id, m.sender, m.body_type, m.smtputf8, m.require_tls, m.ret, m.envid, m.size, m.received_at, m.client_ip, m.helo, m.auth_user, m.listener`
	recipientCols = `r.addr, r.notify, r.orcpt, r.local, r.state, r.next_attempt, r.attempts, r.last_reply`
)

// scanMessages reads rows of messageCols followed by recipientCols, ordered so that a
// message's rows are adjacent, into one Message each.
func scanMessages(rows *sql.Rows) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var (
			id, bodyType                 string
			utf8, reqTLS, local          bool
			received, next               int64
			m                            Message
			r                            Recipient
			state                        string
			attempts                     int
			env                          = &m.Envelope
			sender, ret, envid, clientIP string
		)
		if err := rows.Scan(&id, &sender, &bodyType, &utf8, &reqTLS, &ret, &envid, &env.Size, &received,
			&clientIP, &env.Helo, &env.AuthUser, &env.Listener,
			&r.Addr, &r.Notify, &r.ORCPT, &local, &state, &next, &attempts, &r.LastReply); err != nil {
			return nil, fmt.Errorf("read spool index: %w", err)
		}
		r.Local, r.State, r.NextAttempt, r.Attempts = local, State(state), fromNanos(next), attempts
		if n := len(out); n > 0 && out[n-1].ID == ID(id) {
			out[n-1].Envelope.Recipients = append(out[n-1].Envelope.Recipients, r)
			continue
		}
		m.ID = ID(id)
		env.From, env.BodyType, env.SMTPUTF8, env.RequireTLS = sender, BodyType(bodyType), utf8, reqTLS
		env.RET, env.EnvID, env.ReceivedAt, env.ClientIP = ret, envid, fromNanos(received), clientIP
		env.Recipients = []Recipient{r}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spool index: %w", err)
	}
	return out, nil
}

// Get returns a message with all its recipients and its attempt history.
func (s *FileStore) Get(ctx context.Context, id ID) (*Message, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if !validID(id) {
		return nil, notFound("get", id)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+`, `+recipientCols+`
		FROM messages m JOIN recipients r ON r.msg_id = m.id WHERE m.id = ? ORDER BY r.idx`, string(id))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return nil, notFound("get", id)
	}
	m := &msgs[0]

	rows, err = tx.QueryContext(ctx, `SELECT rcpt, time, result, reply, fields FROM attempts
		WHERE msg_id = ? ORDER BY rowid`, string(id))
	if err != nil {
		return nil, fmt.Errorf("get %s attempts: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var at int64
		var fields string
		if err := rows.Scan(&a.Rcpt, &at, &a.Result, &a.Reply, &fields); err != nil {
			return nil, fmt.Errorf("get %s attempts: %w", id, err)
		}
		a.Time = fromNanos(at)
		if fields != "" {
			if err := json.Unmarshal([]byte(fields), &a.Fields); err != nil {
				return nil, fmt.Errorf("get %s attempts: decode fields: %w", id, err)
			}
		}
		m.Attempts = append(m.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get %s attempts: %w", id, err)
	}
	return m, nil
}

// List returns messages with at least one recipient matching f, in ID (arrival)
// order, each with all its recipients. A Domain is compared with the recipient's
// domain case-insensitively.
func (s *FileStore) List(ctx context.Context, f Filter) ([]Message, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()

	// Pick the walk that can stop after Limit messages: by domain through its index,
	// which is in msg_id order; for the states most messages are in, through messages
	// in ID order, checking each by primary key; for the rare ones (held, partially
	// finished) through the state index, sorting what it finds. A unary + keeps
	// SQLite from using an index for that term, which it would otherwise prefer
	// without knowing how unselective a state is.
	var args []any
	state := "+r.state IN " + openStates
	if f.State != "" {
		state = "+r.state = ?"
		args = append(args, string(f.State))
	}
	var sel string
	switch {
	case f.Domain != "":
		args = append(args, strings.ToLower(strings.TrimPrefix(f.Domain, "@")))
		sel = `SELECT DISTINCT r.msg_id AS id FROM recipients r INDEXED BY recipients_domain
			WHERE ` + state + ` AND r.domain = ? ORDER BY r.msg_id`
	case f.State == "" || f.State == StateQueued:
		sel = `SELECT m.id AS id FROM messages m
			WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.msg_id = m.id AND ` + state + `) ORDER BY m.id`
	default:
		sel = `SELECT DISTINCT r.msg_id AS id FROM recipients r INDEXED BY recipients_due
			WHERE r.state = ? ORDER BY r.msg_id`
	}
	limit := -1
	if f.Limit > 0 {
		limit = f.Limit
	}
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, `WITH sel AS (`+sel+` LIMIT ?)
		SELECT `+messageCols+`, `+recipientCols+`
		FROM sel JOIN messages m ON m.id = sel.id JOIN recipients r ON r.msg_id = m.id
		ORDER BY m.id, r.idx`, args...)
	if err != nil {
		return nil, fmt.Errorf("list spool: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("list spool: %w", err)
	}
	return msgs, nil
}

// Due returns up to limit messages (all if limit <= 0) that have a queued recipient
// of the wanted kind whose next attempt is not after now, with only those recipients.
// "Oldest first" is by next attempt: the message that has waited longest past its
// retry time comes first, ties broken by ID. This order is the index order, so a
// million queued messages cost no more than a hundred.
func (s *FileStore) Due(ctx context.Context, now time.Time, local bool, limit int) ([]Message, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("due: %w", err)
	}
	defer tx.Rollback()

	// First the IDs, in due order, stopping after limit distinct ones.
	rows, err := tx.QueryContext(ctx, `SELECT msg_id FROM recipients INDEXED BY recipients_due
		WHERE state = 'queued' AND local = ? AND next_attempt <= ? ORDER BY next_attempt, msg_id`,
		boolInt(local), toNanos(now))
	if err != nil {
		return nil, fmt.Errorf("due: %w", err)
	}
	order := make(map[ID]int)
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("due: %w", err)
		}
		if _, dup := order[ID(id)]; dup {
			continue
		}
		order[ID(id)] = len(ids)
		ids = append(ids, id)
		if limit > 0 && len(ids) == limit {
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}

	// Then those messages with their due recipients, a chunk at a time to stay under
	// SQLite's limit on bound parameters.
	out := make([]Message, len(ids))
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := append([]any{boolInt(local), toNanos(now)}, part...)
		rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+`, `+recipientCols+`
			FROM messages m JOIN recipients r ON r.msg_id = m.id
			WHERE +r.state = 'queued' AND +r.local = ? AND +r.next_attempt <= ?
			AND r.msg_id IN (?`+strings.Repeat(",?", len(part)-1)+`)
			ORDER BY m.id, r.idx`, args...)
		if err != nil {
			return nil, fmt.Errorf("due: %w", err)
		}
		msgs, err := scanMessages(rows)
		if err != nil {
			return nil, fmt.Errorf("due: %w", err)
		}
		for _, m := range msgs {
			out[order[m.ID]] = m
		}
	}
	return out, nil
}

// QueueStats is the size of the queue, for metrics.
type QueueStats struct {
	Messages int       // messages with at least one recipient not yet final
	Oldest   time.Time // arrival of the oldest such message; zero when empty
}

// QueueStats counts the queued messages and finds the oldest. Finished messages are
// deleted from the index, so this is a count of the messages table; IDs sort by time,
// so the oldest is the smallest ID.
func (s *FileStore) QueueStats(ctx context.Context) (QueueStats, error) {
	if err := s.begin(); err != nil {
		return QueueStats{}, err
	}
	defer s.end()
	var st QueueStats
	var oldest sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), (SELECT received_at FROM messages ORDER BY id LIMIT 1) FROM messages`).Scan(&st.Messages, &oldest)
	if err != nil {
		return QueueStats{}, fmt.Errorf("queue stats: %w", err)
	}
	if oldest.Valid {
		st.Oldest = fromNanos(oldest.Int64)
	}
	return st, nil
}
