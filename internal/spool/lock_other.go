//go:build !unix

package spool

import (
	"fmt"
	"runtime"
)

// dirLock is unavailable: without advisory file locks, recovery could delete another
// process's in-flight bodies, so the spool refuses to open rather than risk that.
type dirLock struct{}

func lockDir(path string) (*dirLock, bool, error) {
	return nil, false, fmt.Errorf("spool: no advisory file locking on %s", runtime.GOOS)
}

func (l *dirLock) share() error   { return nil }
func (l *dirLock) release() error { return nil }
