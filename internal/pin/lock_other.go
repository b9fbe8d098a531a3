//go:build !unix

package pin

import "context"

// dirLock is a no-op where advisory file locks are unavailable: the store's mutex still
// serialises updates within one process, and only a CLI command racing the daemon can
// then undo the other's change.
type dirLock struct{}

func lockDir(context.Context, string) (*dirLock, error) { return &dirLock{}, nil }

func (l *dirLock) unlock() {}
