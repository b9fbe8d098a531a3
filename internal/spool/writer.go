package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
)

// bodyBufSize is the write buffer per message being received. Bodies stream through
// it to the file; nothing holds a whole body in memory.
const bodyBufSize = 64 << 10

var errWriterDone = errors.New("spool: message already committed or aborted")

// bodyWriter receives one body into tmp/. It is used by one goroutine at a time.
type bodyWriter struct {
	s    *FileStore
	id   ID
	path string
	f    *os.File
	w    *bufio.Writer
	n    int64
	err  error // first write error; Commit reports it
	done bool
}

func newBodyWriter(s *FileStore, id ID, f *os.File) *bodyWriter {
	return &bodyWriter{s: s, id: id, path: f.Name(), f: f, w: bufio.NewWriterSize(f, bodyBufSize)}
}

func (b *bodyWriter) Write(p []byte) (int, error) {
	if b.done {
		return 0, errWriterDone
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.w.Write(p)
	b.n += int64(n)
	if err != nil {
		b.err = fmt.Errorf("write spool body: %w", err)
		return n, b.err
	}
	return n, nil
}

// Commit syncs the body, moves it into messages/, and returns once the index
// transaction holding its envelope has committed. On failure nothing is queued.
func (b *bodyWriter) Commit(ctx context.Context, env Envelope) (ID, error) {
	if b.done {
		return "", errWriterDone
	}
	b.done = true
	if err := b.s.begin(); err != nil {
		b.discard()
		return "", err
	}
	defer b.s.end()

	if len(env.Recipients) == 0 {
		b.discard()
		return "", fmt.Errorf("commit %s: no recipients", b.id)
	}
	if err := b.finish(); err != nil {
		b.discard()
		return "", fmt.Errorf("commit %s: %w", b.id, err)
	}
	if err := b.s.publish(b.id, b.path); err != nil {
		os.Remove(b.path)
		return "", fmt.Errorf("commit %s: %w", b.id, err)
	}

	env.Size = b.n
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = b.s.now()
	}
	if err := b.s.insert(ctx, b.id, &env); err != nil {
		b.s.dropUncommitted(b.id)
		return "", fmt.Errorf("commit %s: %w", b.id, err)
	}
	return b.id, nil
}

// finish flushes, syncs and closes the file.
func (b *bodyWriter) finish() error {
	if b.err != nil {
		b.f.Close()
		return b.err
	}
	err := b.w.Flush()
	if err == nil {
		err = b.f.Sync()
	}
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write spool body: %w", err)
	}
	return nil
}

// discard closes and removes the partial body.
func (b *bodyWriter) discard() error {
	b.f.Close() // may already be closed by finish
	if err := os.Remove(b.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove partial spool body: %w", err)
	}
	return nil
}

// Abort discards the body. After Commit, whether it succeeded or not, Abort does
// nothing, so a deferred Abort is always safe.
func (b *bodyWriter) Abort() error {
	if b.done {
		return nil
	}
	b.done = true
	return b.discard()
}
