//go:build unix

package tlscert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadWaitsForLock(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)

	// Another process holding the lock, as in the middle of a rollover.
	f, err := os.OpenFile(filepath.Join(dataDir, "tls", LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Load(ctx, Options{DataDir: dataDir, Hostname: testHost}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load while locked: error %v, want the deadline", err)
	}
	if err := s.Rollover(ctx, publish(s.NextTLSA311())); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Rollover while locked: error %v, want the deadline", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: testHost})
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load did not proceed once the lock was released")
	}
}

// TestLoadDuringRollover loads the directory again and again, as a second
// process would, while a Store rolls its key over: every Load sees a whole
// state.
func TestLoadDuringRollover(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			l, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: testHost})
			if err != nil {
				errs <- err
				return
			}
			if st := stateOf(l); st.next == "" || st.next == st.current {
				errs <- errors.New("Load saw no distinct next key")
				return
			}
		}
	}()
	for range 5 {
		if err := s.Rollover(context.Background(), publish(s.NextTLSA311())); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, dataDir, s)
	if l := loadSelfSigned(t, dataDir); stateOf(l) != stateOf(s) {
		t.Errorf("Load after the rollovers: %+v, want %+v", stateOf(l), stateOf(s))
	}
}

// TestWatchSkipsLockedDirectory checks that Watch does not read the pair while
// another process holds the lock, and reads it once the lock is released.
func TestWatchSkipsLockedDirectory(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	other := loadSelfSigned(t, dataDir)
	log, logs := newLogger()
	s.log = log

	f, err := os.OpenFile(filepath.Join(dataDir, "tls", LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	go func() {
		defer close(done)
		s.Watch(ctx, 5*time.Millisecond)
	}()

	// A rollover by another Store, then a half-moved state under its lock:
	// the current key replaced by the new next key, the certificate not.
	old := stateOf(s)
	if err := other.Rollover(context.Background(), publish(old.next)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rolled-over pair to be served", func() bool { return s.TLSA311() == old.next })
	if s.NextTLSA311() != other.NextTLSA311() || s.PreviousTLSA311() != old.current {
		t.Errorf("watching Store: next %s previous %s, want %s and %s", s.NextTLSA311(), s.PreviousTLSA311(), other.NextTLSA311(), old.current)
	}

	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, "tls")
	keyPEM, err := os.ReadFile(filepath.Join(dir, SelfSignedNextKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, SelfSignedKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if s.TLSA311() != old.next {
		t.Error("Watch changed the certificate while the directory was locked")
	}
	if strings.Contains(logs.String(), "reload failed") {
		t.Errorf("Watch read a half-moved pair:\n%s", logs.String())
	}
	// Released with the mismatch still there: Watch reads it and refuses it.
	f.Close()
	waitFor(t, "the mismatch to be refused", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if s.TLSA311() != old.next {
		t.Error("mismatched pair displaced the certificate in service")
	}
}
