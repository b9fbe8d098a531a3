package tlscert

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A rollover replaces five files in <DataDir>/tls, and no file system renames
// five files at once. It is made atomic with a directory that acts as a
// journal, so a crash at any point leaves either the old state or the new one
// as Load sees it:
//
//  1. Every new file is written, fsynced, into rollover-staging, which is then
//     fsynced itself. A crash here leaves the staging directory, which Load
//     removes: the old state.
//  2. rollover-staging is renamed to rollover-committed and <DataDir>/tls is
//     fsynced. This rename is the switch: from here on the new state is the
//     one in force.
//  3. The files are moved from rollover-committed into place in the order of
//     rolloverOrder, <DataDir>/tls is fsynced, and rollover-committed is
//     removed. A crash here leaves rollover-committed, whose remaining files
//     Load (or the next Rollover) moves into place the same way: moving is
//     idempotent, so a crash during that recovery is recovered the same way.
//
// The new files are complete before anything in place is touched, so the only
// mixed states are inside step 3, and Load never serves them. Steps 1 to 3 run
// under the lock file, which Load also holds while it recovers and reads the
// pair and which Watch will not wait for, so no other process reads a mixed
// state either.
const (
	rolloverStaging   = "rollover-staging"
	rolloverCommitted = "rollover-committed"
)

// rolloverOrder lists the files a rollover replaces in the order they are moved
// into place: the copies of the old pair first, so the old key is never absent
// from the directory, then the new pair, then the new next key.
func rolloverOrder() []string {
	return []string{
		SelfSignedPreviousKeyFile,
		SelfSignedPreviousCertFile,
		SelfSignedKeyFile,
		SelfSignedCertFile,
		SelfSignedNextKeyFile,
	}
}

var (
	// ErrOperatorCertificate is returned by Rollover for a Store serving the
	// operator's certificate files: their keys are the operator's to roll.
	ErrOperatorCertificate = errors.New("the certificate comes from the configured cert_file and key_file")
	// ErrNextNotPublished is returned by Rollover when the next key's TLSA
	// record is not among the published ones.
	ErrNextNotPublished = errors.New("the next key's TLSA record is not published")
)

// Rollover switches the self-signed certificate to the next key, provided that
// key's TLSA 3 1 1 record is published: published returns the association data
// (hex) of the TLSA RRset currently visible for _25._tcp.<hostname>. Nothing
// changes when it is not there, so DANE-EE clients (RFC 7672 §3.1.1) never meet
// a key they hold no record for.
//
// published should report only records that have been visible for longer than
// the RRset's TTL: a client that cached the RRset before the record was added
// still holds the old one until then (RFC 7671 §8.1). Rollover cannot tell how
// long a record has been visible.
//
// On success the old key and certificate become the previous ones, a new next
// key is generated, a certificate for the now-current key is issued, and
// GetCertificate serves it at once; connections already established keep the
// certificate they were handshaken with. The old record may be removed from DNS
// once the new key has been in service for longer than the TTL.
//
// A rollover interrupted after its switch (see the journal above) is completed
// first. With operator certificate files Rollover returns ErrOperatorCertificate.
func (s *Store) Rollover(ctx context.Context, published func(ctx context.Context) ([]string, error)) error {
	if !s.selfSigned {
		return fmt.Errorf("tls key rollover: %w (%s): replace them and publish their TLSA record yourself", ErrOperatorCertificate, s.certFile)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tls key rollover: %w", err)
	}
	// The lock is not held while published runs: it may wait on DNS, and
	// Reload and Watch must not wait with it.
	s.mu.Lock()
	err := s.finishPendingLocked(ctx)
	side := s.side.Load()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("tls key rollover: %w", err)
	}
	if side.next == "" {
		return fmt.Errorf("tls key rollover: no usable next key: %w", side.nextErr)
	}
	digests, err := published(ctx)
	if err != nil {
		return fmt.Errorf("tls key rollover: look up the TLSA records published for %s: %w", s.tlsaOwner(), err)
	}
	if !containsDigest(digests, side.next) {
		return fmt.Errorf("tls key rollover: %w: publish %s IN TLSA 3 1 1 %s beside the current record, wait until it has been visible for longer than the TTL, and retry",
			ErrNextNotPublished, s.tlsaOwner(), side.next)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.side.Load(); now.next != side.next {
		return fmt.Errorf("tls key rollover: the next key changed to %q while its record was checked; retry", now.next)
	}
	if err := s.rolloverLocked(ctx, side.next); err != nil {
		return fmt.Errorf("tls key rollover: %w", err)
	}
	return nil
}

// tlsaOwner is the owner name of the host's TLSA RRset for SMTP on port 25
// (RFC 6698 §3), fully qualified.
func (s *Store) tlsaOwner() string {
	return "_25._tcp." + s.hostname + "."
}

// rolloverLocked performs the rollover to the next key, whose digest is next,
// holding the directory's lock file. s.mu is held.
func (s *Store) rolloverLocked(ctx context.Context, next string) (err error) {
	unlock, err := lockFile(ctx, filepath.Join(s.dir, LockFile))
	if err != nil {
		return err
	}
	defer unlock()
	// What is about to become previous must be what is served: a pair changed
	// on disk and not yet loaded would otherwise be rolled away unseen.
	curKey, curKeyPEM, err := readKey(s.keyFile, true)
	if err != nil {
		return fmt.Errorf("read current key: %w", err)
	}
	if d, err := tlsa311(curKey.Public()); err != nil {
		return err
	} else if d != s.TLSA311() {
		return fmt.Errorf("the key in %s (TLSA 3 1 1 %s) is not the one in service (%s); reload first", s.keyFile, d, s.TLSA311())
	}
	curCertPEM, err := os.ReadFile(s.certFile)
	if err != nil {
		return fmt.Errorf("read current certificate: %w", err)
	}
	nextKey, nextKeyPEM, err := readKey(s.nextKeyFile(), true)
	if err != nil {
		return fmt.Errorf("read next key: %w", err)
	}
	if d, err := tlsa311(nextKey.Public()); err != nil {
		return err
	} else if d != next {
		return fmt.Errorf("the next key in %s (TLSA 3 1 1 %s) is not the one whose record was checked (%s); retry", s.nextKeyFile(), d, next)
	}
	_, newNextPEM, err := generateKey()
	if err != nil {
		return err
	}
	der, err := issueSelfSigned(nextKey, s.hostname, s.now())
	if err != nil {
		return err
	}
	files := []stagedFile{
		{SelfSignedPreviousKeyFile, curKeyPEM, 0o600},
		{SelfSignedPreviousCertFile, curCertPEM, 0o644},
		{SelfSignedKeyFile, nextKeyPEM, 0o600},
		{SelfSignedCertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644},
		{SelfSignedNextKeyFile, newNextPEM, 0o600},
	}

	// A hook's error stands for a crash: return at once, clean nothing up.
	crashed := false
	step := func(name string) error {
		if s.rolloverHook == nil {
			return nil
		}
		if err := s.rolloverHook(name); err != nil {
			crashed = true
			return err
		}
		return nil
	}
	staging := filepath.Join(s.dir, rolloverStaging)
	committed := false
	defer func() {
		if !committed && !crashed {
			os.RemoveAll(staging)
		}
	}()

	if err := stage(staging, files); err != nil {
		return fmt.Errorf("stage new files: %w", err)
	}
	if err := step("staged"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The switch. Past this point the rollover is completed, not undone, and
	// ctx is no longer consulted.
	if err := os.Rename(staging, filepath.Join(s.dir, rolloverCommitted)); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("commit: %w (the rollover completes at the next start)", err)
	}
	if err := step("committed"); err != nil {
		return err
	}
	if err := s.completeRollover(step); err != nil {
		if crashed {
			return err
		}
		return fmt.Errorf("committed but not completed: %w (the rollover completes at the next start or Rollover)", err)
	}
	certInfo, keyInfo, err := s.stat()
	if err == nil {
		err = s.loadLocked(certInfo, keyInfo)
	}
	if err != nil {
		return fmt.Errorf("rolled over on disk but not put in service: %w (restart or reload)", err)
	}
	s.log.Info("tls key rolled over",
		"tlsa_3_1_1", s.TLSA311(), "previous_tlsa_3_1_1", s.PreviousTLSA311(), "next_tlsa_3_1_1", s.NextTLSA311(),
		"remove_after_ttl", s.tlsaOwner()+" IN TLSA 3 1 1 "+s.PreviousTLSA311())
	return nil
}

// stagedFile is one file of a rollover as written into the staging directory.
type stagedFile struct {
	name string
	data []byte
	perm fs.FileMode
}

// stage writes files into a fresh directory dir and makes them durable.
func stage(dir string, files []stagedFile) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFileSynced(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// completeRollover moves the files of a committed rollover into place and
// removes the journal directory, calling step after each move. Files already
// moved by an earlier, interrupted attempt are skipped.
func (s *Store) completeRollover(step func(string) error) error {
	journal := filepath.Join(s.dir, rolloverCommitted)
	for _, name := range rolloverOrder() {
		err := os.Rename(filepath.Join(journal, name), filepath.Join(s.dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("move %s into place: %w", name, err)
		}
		if err := step("moved " + name); err != nil {
			return err
		}
	}
	// The moves are durable before the journal goes: until then a crash
	// leaves the journal to repeat them.
	if err := syncDir(s.dir); err != nil {
		return err
	}
	if err := os.RemoveAll(journal); err != nil {
		return fmt.Errorf("remove %s: %w", journal, err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return step("cleaned")
}

// recoverRollover, called by Load before the pair is read, completes a
// rollover that was committed and discards one that was not.
func (s *Store) recoverRollover() error {
	switch _, err := os.Stat(filepath.Join(s.dir, rolloverCommitted)); {
	case err == nil:
		if err := s.completeRollover(func(string) error { return nil }); err != nil {
			return fmt.Errorf("complete interrupted tls key rollover: %w", err)
		}
		s.log.Warn("tls key rollover was interrupted after its switch; completed", "dir", s.dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("check for an interrupted tls key rollover: %w", err)
	}
	staging := filepath.Join(s.dir, rolloverStaging)
	switch _, err := os.Stat(staging); {
	case err == nil:
		if err := os.RemoveAll(staging); err != nil {
			return fmt.Errorf("discard interrupted tls key rollover: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("discard interrupted tls key rollover: %w", err)
		}
		s.log.Warn("tls key rollover was interrupted before its switch; discarded", "dir", s.dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("check for an interrupted tls key rollover: %w", err)
	}
	return nil
}

// finishPendingLocked completes a committed rollover left by a failure in this
// process or a crash in another, and serves its result. s.mu is held.
func (s *Store) finishPendingLocked(ctx context.Context) error {
	unlock, err := lockFile(ctx, filepath.Join(s.dir, LockFile))
	if err != nil {
		return err
	}
	defer unlock()
	_, err = os.Stat(filepath.Join(s.dir, rolloverCommitted))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check for an interrupted rollover: %w", err)
	}
	if err := s.completeRollover(func(string) error { return nil }); err != nil {
		return fmt.Errorf("complete interrupted rollover: %w", err)
	}
	certInfo, keyInfo, err := s.stat()
	if err == nil {
		err = s.loadLocked(certInfo, keyInfo)
	}
	if err != nil {
		return fmt.Errorf("serve the completed interrupted rollover: %w", err)
	}
	s.log.Warn("tls key rollover was interrupted after its switch; completed",
		"dir", s.dir, "tlsa_3_1_1", s.TLSA311(), "next_tlsa_3_1_1", s.NextTLSA311())
	return nil
}

// containsDigest reports whether want, a lower-case hex digest, is among the
// published association data.
func containsDigest(published []string, want string) bool {
	for _, p := range published {
		if d, ok := normalizeDigest(p); ok && d == want {
			return true
		}
	}
	return false
}

// normalizeDigest returns hex association data in lower case without the white
// space that zone files and dig allow inside it (RFC 6698 §2.2), and whether it
// is hex at all.
func normalizeDigest(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "", false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// writeFileSynced creates path with data and makes it durable. The directory
// entry is made durable by the caller.
func writeFileSynced(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
