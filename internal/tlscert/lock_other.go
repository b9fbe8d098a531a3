//go:build !unix

package tlscert

import "context"

// lockFile does nothing where flock is unavailable: processes sharing a data
// directory there must not run a rollover while another one loads it.
func lockFile(context.Context, string) (func(), error) {
	return func() {}, nil
}

func tryLockFile(string) (func(), bool, error) {
	return func() {}, true, nil
}
