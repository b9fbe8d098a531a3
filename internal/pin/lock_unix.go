//go:build unix

package pin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockFileName is the advisory lock of a pin directory. It starts with "." so that it
// is never taken for an entry.
const lockFileName = ".lock"

// dirLock is an exclusive advisory lock (flock) on a pin directory, held across the
// read-modify-write of one entry by whichever process (daemon or CLI) makes it.
type dirLock struct{ f *os.File }

// lockDir takes the directory's lock, polling so that ctx can end the wait: flock
// itself cannot be interrupted by a context.
func lockDir(ctx context.Context, dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open pin lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &dirLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock pin directory: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock pin directory: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (l *dirLock) unlock() { l.f.Close() } // closing the descriptor drops the lock
