//go:build unix

package dnslab

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartWithRetryDaemonDies(t *testing.T) {
	dir := t.TempDir()
	attempts := 0
	launch := func(port int) (*daemon, error) {
		attempts++
		return startDaemon("fake", dir, filepath.Join(dir, "out"), "", "/bin/sh", "-c", `echo "can't bind socket: Address already in use" >&2; exit 1`)
	}
	ready := func(ctx context.Context, addr string) error { return errors.New("no answer") }
	_, _, err := startWithRetry(context.Background(), "fake", launch, ready)
	if err == nil || !strings.Contains(err.Error(), "exited while starting") || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error = %v, want the exit and the daemon's log", err)
	}
	if attempts != startAttempts {
		t.Errorf("%d attempts, want %d", attempts, startAttempts)
	}
}

func TestStartWithRetryDaemonSilent(t *testing.T) {
	dir := t.TempDir()
	var d *daemon
	launch := func(port int) (*daemon, error) {
		if d != nil {
			t.Error("a daemon that runs but never answers was started again")
		}
		var err error
		d, err = startDaemon("fake", dir, filepath.Join(dir, "out"), "", "/bin/sh", "-c", "echo listening; exec sleep 30")
		return d, err
	}
	ready := func(ctx context.Context, addr string) error { return errors.New("no answer") }
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	begin := time.Now()
	_, _, err := startWithRetry(ctx, "fake", launch, ready)
	if err == nil || !strings.Contains(err.Error(), "did not start") {
		t.Errorf("error = %v, want one saying it did not start", err)
	}
	if elapsed := time.Since(begin); elapsed > stopGrace {
		t.Errorf("took %v; SIGTERM should have stopped sleep at once", elapsed)
	}
	if d == nil || !d.exited() {
		t.Error("the silent daemon was left running")
	}
	if got := d.logTail(5); !strings.Contains(got, "listening") {
		t.Errorf("log tail = %q", got)
	}
}

func TestFreePort(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Errorf("port %d", port)
	}
}
