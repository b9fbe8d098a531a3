package spool

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schemaVersion is stored in PRAGMA user_version; Open refuses an index written by a
// newer mxward rather than misreading it.
const schemaVersion = 1

// The tables are WITHOUT ROWID so that the primary key is the table: a message's
// recipients sit together, and every secondary index carries (msg_id, idx) for free.
// Times are Unix nanoseconds, 0 for the zero time.
const schema = `
CREATE TABLE IF NOT EXISTS messages (
	id          TEXT PRIMARY KEY,
	sender      TEXT NOT NULL,
	body_type   TEXT NOT NULL,
	smtputf8    INTEGER NOT NULL,
	require_tls INTEGER NOT NULL,
	ret         TEXT NOT NULL,
	envid       TEXT NOT NULL,
	size        INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	client_ip   TEXT NOT NULL,
	helo        TEXT NOT NULL,
	auth_user   TEXT NOT NULL,
	listener    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS recipients (
	msg_id       TEXT NOT NULL,
	idx          INTEGER NOT NULL,
	addr         TEXT NOT NULL,
	domain       TEXT NOT NULL,
	notify       TEXT NOT NULL,
	orcpt        TEXT NOT NULL,
	local        INTEGER NOT NULL,
	state        TEXT NOT NULL,
	next_attempt INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	last_reply   TEXT NOT NULL,
	PRIMARY KEY (msg_id, idx)
) WITHOUT ROWID;

-- Due walks this in next_attempt order and stops after limit messages.
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (state, local, next_attempt);
-- List by domain walks this in msg_id order (the primary key is appended).
CREATE INDEX IF NOT EXISTS recipients_domain ON recipients (domain);

CREATE TABLE IF NOT EXISTS attempts (
	msg_id TEXT NOT NULL,
	rcpt   TEXT NOT NULL,
	time   INTEGER NOT NULL,
	result TEXT NOT NULL,
	reply  TEXT NOT NULL,
	fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_msg ON attempts (msg_id);
`

// Non-final states, as an SQL list. Queries write "+state IN openStates" when they
// look up a message by msg_id: the unary + stops SQLite, which has no statistics,
// from preferring the state index over the primary key.
const openStates = "('queued','held')"

// indexDSN builds the data source name for the index. The writer begins transactions
// with BEGIN IMMEDIATE so that a second process waits for the write lock under
// busy_timeout instead of failing when a read transaction tries to upgrade.
func indexDSN(path string, busy time.Duration, writer bool) (string, error) {
	if strings.ContainsRune(path, '?') {
		return "", fmt.Errorf("spool index path %q contains '?'", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	// SQLite's default page cache is 2 MiB. A million queued messages make an index of
	// some 450 MiB, and every commit touches pages all over the recipient indexes, so
	// the writer gets a larger cache (in KiB when negative).
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "cache_size(-65536)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "cache_size(-16384)")
		q.Set("_query_only", "1")
	}
	return path + "?" + q.Encode(), nil
}

// openIndex opens the writer and reader handles and creates or checks the schema.
func openIndex(ctx context.Context, path string, busy time.Duration, readers int) (w, r *sql.DB, err error) {
	wdsn, err := indexDSN(path, busy, true)
	if err != nil {
		return nil, nil, err
	}
	rdsn, _ := indexDSN(path, busy, false)

	w, err = sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open spool index: %w", err)
	}
	// One connection: all writes of this process go through it, one transaction at a
	// time, which is what makes group commit possible.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	if err := initSchema(ctx, w); err != nil {
		w.Close()
		return nil, nil, err
	}

	r, err = sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open spool index for reading: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, nil, fmt.Errorf("open spool index for reading: %w", err)
	}
	return w, r, nil
}

func initSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("init spool index: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read spool index version: %w", err)
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("spool index has schema version %d, this mxward knows up to %d", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create spool index schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("set spool index version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create spool index schema: %w", err)
	}
	return nil
}

// stmts are the statements the index writer runs most, prepared once on its single
// connection.
type stmts struct {
	insertMessage   *sql.Stmt
	insertRecipient *sql.Stmt
	insertAttempt   *sql.Stmt
	messageExists   *sql.Stmt
	finalize        *sql.Stmt // recipient delivered or bounced
	deferRcpt       *sql.Stmt
	recipientExists *sql.Stmt
	openRecipients  *sql.Stmt
	deleteAttempts  *sql.Stmt
	deleteRcpts     *sql.Stmt
	deleteMessage   *sql.Stmt
}

func prepareStmts(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := new(stmts)
	list := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.insertMessage, `INSERT INTO messages (id, sender, body_type, smtputf8, require_tls, ret, envid,
			size, received_at, client_ip, helo, auth_user, listener) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`},
		{&s.insertRecipient, `INSERT INTO recipients (msg_id, idx, addr, domain, notify, orcpt, local,
			state, next_attempt, attempts, last_reply) VALUES (?,?,?,?,?,?,?,?,?,0,'')`},
		{&s.insertAttempt, `INSERT INTO attempts (msg_id, rcpt, time, result, reply, fields) VALUES (?,?,?,?,?,?)`},
		{&s.messageExists, `SELECT 1 FROM messages WHERE id = ?`},
		{&s.finalize, `UPDATE recipients SET state = ?, last_reply = ?, attempts = attempts + 1
			WHERE msg_id = ? AND addr = ? AND +state IN ` + openStates},
		// A deferral keeps a hold the operator placed while the attempt was running.
		{&s.deferRcpt, `UPDATE recipients SET state = CASE state WHEN 'held' THEN 'held' ELSE 'queued' END,
			next_attempt = ?, last_reply = ?, attempts = attempts + 1
			WHERE msg_id = ? AND addr = ? AND +state IN ` + openStates},
		{&s.recipientExists, `SELECT 1 FROM recipients WHERE msg_id = ? AND addr = ? LIMIT 1`},
		{&s.openRecipients, `SELECT EXISTS (SELECT 1 FROM recipients WHERE msg_id = ? AND +state IN ` + openStates + `)`},
		{&s.deleteAttempts, `DELETE FROM attempts WHERE msg_id = ?`},
		{&s.deleteRcpts, `DELETE FROM recipients WHERE msg_id = ?`},
		{&s.deleteMessage, `DELETE FROM messages WHERE id = ?`},
	}
	for _, p := range list {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare spool index statement: %w", err)
		}
		*p.dst = st
	}
	return s, nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.insertMessage, s.insertRecipient, s.insertAttempt, s.messageExists,
		s.finalize, s.deferRcpt, s.recipientExists, s.openRecipients, s.deleteAttempts, s.deleteRcpts, s.deleteMessage} {
		if st != nil {
			st.Close()
		}
	}
}

// itx is one write operation's view of the shared transaction.
type itx struct {
	tx *sql.Tx
	st *stmts
}

func (t *itx) stmt(ctx context.Context, s *sql.Stmt) *sql.Stmt { return t.tx.StmtContext(ctx, s) }

// writeOp is one unit of work for the index writer. Its changes commit or roll back as
// a whole; several writeOps share one transaction.
type writeOp struct {
	fn func(ctx context.Context, t *itx) error
	// syncDirs are directories whose entries must be on stable storage before fn's
	// changes may commit (the shard a body was just renamed into).
	syncDirs []string
	done     chan error
}

// Stats counts the index writer's work. Transactions below Writes means concurrent
// writes shared transactions (group commit).
type Stats struct {
	Writes       uint64 // write operations committed
	Transactions uint64 // transactions committed
}

type writerStats struct {
	writes, transactions atomic.Uint64
}

// runWriter is the index writer goroutine. It takes the first waiting operation, then
// whatever else has queued up meanwhile (that is, while the previous COMMIT was
// waiting for fsync), and commits them all in one transaction. It exits when ops is
// closed and drained.
func (s *FileStore) runWriter() {
	defer close(s.writerDone)
	batch := make([]*writeOp, 0, s.maxBatch)
	for {
		first, ok := <-s.ops
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		open := s.collect(&batch)
		s.runBatch(batch)
		if !open {
			return
		}
	}
}

// collect adds queued operations to batch up to maxBatch, lingering up to
// commitDelay for more. It reports false once ops is closed.
func (s *FileStore) collect(batch *[]*writeOp) bool {
	var deadline <-chan time.Time
	if s.commitDelay > 0 {
		t := time.NewTimer(s.commitDelay)
		defer t.Stop()
		deadline = t.C
	}
	for len(*batch) < s.maxBatch {
		select {
		case op, ok := <-s.ops:
			if !ok {
				return false
			}
			*batch = append(*batch, op)
			continue
		default:
		}
		if deadline == nil {
			return true
		}
		select {
		case op, ok := <-s.ops:
			if !ok {
				return false
			}
			*batch = append(*batch, op)
		case <-deadline:
			return true
		}
	}
	return true
}

func (s *FileStore) runBatch(batch []*writeOp) {
	// The writer works on behalf of many callers; none of their contexts may cancel
	// the shared transaction.
	ctx := context.Background()
	errs := make([]error, len(batch))
	defer func() {
		for i, op := range batch {
			op.done <- errs[i]
		}
	}()
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}

	synced := make(map[string]error)
	for i, op := range batch {
		for _, d := range op.syncDirs {
			err, ok := synced[d]
			if !ok {
				err = syncDir(d)
				synced[d] = err
			}
			if err != nil && errs[i] == nil {
				errs[i] = err
			}
		}
	}

	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("begin spool index transaction: %w", err))
		return
	}
	t := &itx{tx: tx, st: s.st}
	applied := 0
	for i, op := range batch {
		if errs[i] != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
			tx.Rollback()
			failAll(fmt.Errorf("spool index savepoint: %w", err))
			return
		}
		if err := op.fn(ctx, t); err != nil {
			errs[i] = err
			// If SQLite already rolled the whole transaction back (it does on some I/O
			// errors), the savepoint is gone and so are the earlier operations' changes.
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO op"); rerr != nil {
				tx.Rollback()
				failAll(fmt.Errorf("spool index rollback after %v: %w", err, rerr))
				return
			}
		} else {
			applied++
		}
		if _, err := tx.ExecContext(ctx, "RELEASE op"); err != nil {
			tx.Rollback()
			failAll(fmt.Errorf("spool index release savepoint: %w", err))
			return
		}
	}
	if applied == 0 {
		tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("commit spool index: %w", err))
		return
	}
	s.stats.transactions.Add(1)
	s.stats.writes.Add(uint64(applied))
}

// syncDir makes the entries of directory path durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", path, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Times outside what int64 nanoseconds can hold (years 1678 to 2262) are clamped.
var (
	minTime = time.Unix(0, 1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func toNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return 1
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// rcptDomain returns the lower-cased domain of a forward-path, "" if it has none
// (RCPT TO:<postmaster>).
func rcptDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}
