//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// dirLock is an advisory lock on the spool directory. Every process with the spool open
// holds it shared; start-up recovery needs it exclusive, because sweeping tmp/ and
// orphan bodies is only safe when no other process can be half-way through a Commit.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock at path, exclusive if no other process holds it, and shared
// otherwise (waiting while another process holds it exclusive for its own recovery).
func lockDir(path string) (l *dirLock, exclusive bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, false, fmt.Errorf("open spool lock: %w", err)
	}
	fd := int(f.Fd())
	err = flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return &dirLock{f: f}, true, nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, false, fmt.Errorf("lock spool: %w", err)
	}
	if err := flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock spool shared: %w", err)
	}
	return &dirLock{f: f}, false, nil
}

// share turns an exclusive lock into a shared one, letting other processes open the
// spool once recovery is done.
func (l *dirLock) share() error {
	if err := flock(int(l.f.Fd()), syscall.LOCK_SH); err != nil {
		return fmt.Errorf("share spool lock: %w", err)
	}
	return nil
}

func (l *dirLock) release() error {
	return l.f.Close() // closing the descriptor drops the lock
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}
