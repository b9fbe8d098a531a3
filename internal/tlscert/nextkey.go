package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names of the keys kept beside the self-signed pair in <DataDir>/tls.
//
// The next key is the one a rollover will switch to. It exists ahead of time so
// that its TLSA 3 1 1 record can be published alongside the current one and be
// in every DNS cache before the key is used (RFC 7671 §8.1): DANE-EE clients
// authenticate against whatever TLSA RRset they hold, so a key they have not
// yet seen a record for would fail their handshakes.
//
// The previous key and certificate are what a rollover replaced, kept so the
// operator can tell which record has become stale and can undo the switch.
const (
	SelfSignedNextKeyFile      = "selfsigned-next-key.pem"
	SelfSignedPreviousKeyFile  = "selfsigned-previous-key.pem"
	SelfSignedPreviousCertFile = "selfsigned-previous-cert.pem"
)

// sideKeys describes the next and previous keys on disk as hex TLSA 3 1 1
// digests; an empty digest means there is none that can be used.
type sideKeys struct {
	next     string
	nextErr  error // why next is empty
	previous string
}

// NextTLSA311 returns the TLSA 3 1 1 association data (hex SHA-256 of the
// SubjectPublicKeyInfo) of the key the next Rollover switches to. It is empty
// with operator certificate files, whose keys mxward does not manage, and when
// the next key file cannot be used (the log of Load says why).
func (s *Store) NextTLSA311() string {
	if k := s.side.Load(); k != nil {
		return k.next
	}
	return ""
}

// PreviousTLSA311 returns the TLSA 3 1 1 association data of the key the last
// Rollover replaced: the record that may be removed from DNS once the new key
// has been in service for longer than the TLSA RRset's TTL. It is empty when no
// rollover has happened or the file cannot be used.
func (s *Store) PreviousTLSA311() string {
	if k := s.side.Load(); k != nil {
		return k.previous
	}
	return ""
}

// nextKeyFile and friends name the side files; they are meaningful only for a
// self-signed Store.
func (s *Store) nextKeyFile() string     { return filepath.Join(s.dir, SelfSignedNextKeyFile) }
func (s *Store) previousKeyFile() string { return filepath.Join(s.dir, SelfSignedPreviousKeyFile) }

// ensureNextKey creates the next key if there is none, or if it is the current
// key (nothing could be rolled over to). An existing next key that cannot be
// used is left for the operator and reported: regenerating it silently would
// invalidate a record that may already be published, and it is no reason to
// stop receiving mail with the current key.
func (s *Store) ensureNextKey(ctx context.Context, current crypto.Signer) error {
	path := s.nextKeyFile()
	key, _, err := readKey(path, true)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.log.Error("tls next key unusable, rollover disabled until it is fixed or removed", "key_file", path, "error", err)
		return nil
	case publicKeyEqual(key.Public(), current.Public()):
		s.log.Warn("tls next key is the current key, generating another", "key_file", path)
	default:
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	next, pemData, err := generateKey()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, pemData, 0o600); err != nil {
		return fmt.Errorf("write tls next key: %w", err)
	}
	digest, err := tlsa311(next.Public())
	if err != nil {
		return err
	}
	s.log.Info("tls next key generated", "key_file", path, "next_tlsa_3_1_1", digest)
	return nil
}

// refreshSideKeys rereads the next and previous keys so NextTLSA311 and
// PreviousTLSA311 describe the files; currentSPKI is the key in service.
func (s *Store) refreshSideKeys(currentSPKI []byte) {
	var k sideKeys
	cur := sha256.Sum256(currentSPKI)
	if digest, err := keyFileDigest(s.nextKeyFile()); err != nil {
		k.nextErr = fmt.Errorf("next key %s: %w", s.nextKeyFile(), err)
	} else if digest == hex.EncodeToString(cur[:]) {
		k.nextErr = fmt.Errorf("next key %s is the key in service", s.nextKeyFile())
	} else {
		k.next = digest
	}
	if digest, err := keyFileDigest(s.previousKeyFile()); err == nil {
		k.previous = digest
	}
	s.side.Store(&k)
}

func keyFileDigest(path string) (string, error) {
	key, _, err := readKey(path, true)
	if err != nil {
		return "", err
	}
	return tlsa311(key.Public())
}

// readKey reads a private key file and returns the key and the file's bytes.
// With private set, a key others can access is refused, as checkKeyMode does
// for the self-signed key. A missing file is reported as fs.ErrNotExist.
func readKey(path string, private bool) (crypto.Signer, []byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); private && perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("private key %s has mode %04o, want 0600", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return key, data, nil
}

// generateKey returns a new P-256 key and its PKCS #8 PEM encoding.
func generateKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate tls key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode tls key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// tlsa311 returns the association data of a TLSA 3 1 1 record for pub: the
// SHA-256 of its DER SubjectPublicKeyInfo, in hex (RFC 6698 §2.1.2–§2.1.3).
func tlsa311(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:]), nil
}
