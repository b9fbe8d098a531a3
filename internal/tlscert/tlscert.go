// Package tlscert owns the certificate mxward presents to SMTP clients.
//
// The certificate comes from one of two places. An operator may configure a PEM
// certificate chain and private key (typically a Let's Encrypt fullchain.pem and
// privkey.pem); the files are reread when they change on disk or when Reload is
// called, so a renewal needs no restart. Without such files mxward keeps its own
// self-signed certificate under <DataDir>/tls.
//
// The self-signed key is created once and then reused for the life of the data
// directory. Mail servers that publish DANE records usually publish "TLSA 3 1 1",
// the SHA-256 of the SubjectPublicKeyInfo, which pins the key rather than the
// certificate; keeping the key therefore keeps the record valid even when the
// certificate has to be reissued, for instance because the hostname changed.
//
// The key changes only by a rollover the operator asks for. A next key waits
// beside the current one from the first start, so its record can be published
// ahead of time; Rollover switches to it only once that record is visible in
// DNS, and does so atomically even across a crash (see rollover.go).
//
// A replacement certificate that cannot be used (it does not parse, or the key
// does not match it) never displaces the one in service: receiving mail with the
// previous certificate is better than failing every STARTTLS.
package tlscert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File names of the self-signed pair inside <DataDir>/tls.
const (
	SelfSignedKeyFile  = "selfsigned-key.pem"
	SelfSignedCertFile = "selfsigned-cert.pem"
	// LockFile is locked (flock) by whatever changes the directory: Load
	// while it creates or repairs files, Rollover while it switches keys.
	LockFile = "lock"
)

const (
	// selfSignedValidity is long because nothing validates a self-signed
	// certificate's dates in opportunistic SMTP TLS or DANE-EE; a short life would
	// only add reissues.
	selfSignedValidity = 10 * 365 * 24 * time.Hour
	// selfSignedRenewBefore reissues a self-signed certificate at startup when it
	// is this close to expiry, keeping the key.
	selfSignedRenewBefore = 30 * 24 * time.Hour
	// DefaultWatchInterval is used by Watch when given a non-positive interval.
	DefaultWatchInterval = 30 * time.Second
)

// Options configures Load.
type Options struct {
	// CertFile and KeyFile name the operator's PEM certificate chain (leaf first)
	// and private key. Both or neither must be set.
	CertFile, KeyFile string
	// DataDir is mxward's data directory; the self-signed pair lives in its tls
	// subdirectory. Used only when CertFile and KeyFile are empty.
	DataDir string
	// Hostname is the name the self-signed certificate is issued for (CN and the
	// only SAN). It may also be an IP address literal. With operator files it is
	// only used to warn when their certificate does not cover it.
	Hostname string
	// Logger receives load, reload and reissue events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store holds the certificate in service and swaps it when the files change.
// Its methods are safe for concurrent use.
type Store struct {
	certFile, keyFile string
	selfSigned        bool
	hostname          string
	log               *slog.Logger
	now               func() time.Time

	cert atomic.Pointer[tls.Certificate]

	// dir is the self-signed pair's directory, <DataDir>/tls; empty with
	// operator files.
	dir string
	// side describes the next and previous keys of a self-signed Store.
	side atomic.Pointer[sideKeys]
	// rolloverHook, when set by tests, is called after each step of a
	// rollover; an error it returns stops the rollover there.
	rolloverHook func(step string) error

	// mu serializes reading the files, so Reload and Watch never interleave.
	mu sync.Mutex
	// certInfo and keyInfo describe the files as they were when last read,
	// successfully or not. Watch rereads only when they change, so a bad
	// replacement is reported once rather than on every poll.
	certInfo, keyInfo fs.FileInfo
	// watchErr is the last stat failure Watch reported, to report each once.
	watchErr string
}

// Load returns a Store serving the operator's certificate, or the self-signed
// one, creating or reissuing it as needed. It fails if no usable certificate
// can be put in service.
func Load(ctx context.Context, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Store{log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opts.CertFile != "" && opts.KeyFile != "":
		s.certFile, s.keyFile = opts.CertFile, opts.KeyFile
		s.hostname = strings.ToLower(strings.TrimSuffix(opts.Hostname, "."))
	case opts.CertFile != "" || opts.KeyFile != "":
		return nil, errors.New("load tls certificate: certificate file and key file must be configured together")
	case opts.DataDir == "":
		return nil, errors.New("load tls certificate: no certificate files and no data directory configured")
	default:
		host, err := normalizeHostname(opts.Hostname)
		if err != nil {
			return nil, fmt.Errorf("load tls certificate: %w", err)
		}
		dir := filepath.Join(opts.DataDir, "tls")
		s.certFile = filepath.Join(dir, SelfSignedCertFile)
		s.keyFile = filepath.Join(dir, SelfSignedKeyFile)
		s.selfSigned = true
		s.hostname = host
		s.dir = dir
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("load tls certificate: create tls directory: %w", err)
		}
		// Held until the pair is loaded, so another process's rollover is
		// seen whole or not at all.
		unlock, err := lockFile(ctx, filepath.Join(dir, LockFile))
		if err != nil {
			return nil, fmt.Errorf("load tls certificate: %w", err)
		}
		defer unlock()
		if err := s.ensureSelfSigned(ctx, host); err != nil {
			return nil, fmt.Errorf("load tls certificate: %w", err)
		}
	}
	if err := s.reload(); err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	return s, nil
}

// GetCertificate returns the certificate in service. It has the signature of
// tls.Config.GetCertificate; the same certificate is presented whatever the
// client asks for in SNI, as SMTP clients rarely send a name worth matching.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// Reload rereads the certificate and key files unconditionally, as on SIGHUP.
// On error the certificate in service is kept and the error says why the new
// files were refused; the caller logs it.
func (s *Store) Reload() error {
	if s.selfSigned {
		// A rollover in another process moves files under this lock; wait for it to
		// finish rather than read a half-moved pair.
		ctx, cancel := context.WithTimeout(context.Background(), reloadLockWait)
		defer cancel()
		unlock, err := lockFile(ctx, filepath.Join(s.dir, LockFile))
		if err != nil {
			return fmt.Errorf("reload tls certificate: lock %s: %w", s.dir, err)
		}
		defer unlock()
	}
	if err := s.reload(); err != nil {
		return fmt.Errorf("reload tls certificate: %w", err)
	}
	return nil
}

func (s *Store) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	certInfo, keyInfo, err := s.stat()
	if err != nil {
		return err
	}
	return s.loadLocked(certInfo, keyInfo)
}

// reloadLockWait bounds how long Reload waits for a rollover in another process.
const reloadLockWait = 10 * time.Second

// Watch polls the certificate and key files every interval until ctx is done,
// and reloads when either one's inode, size, modification time or mode changes.
// Polling rather than change notification keeps it working across symlink
// swaps (as in Let's Encrypt's live directory), bind mounts and network file
// systems. Failures are logged; the certificate in service stays until a
// usable pair appears. Watch blocks; run it in its own goroutine.
//
// An operator who writes the two files one after the other may briefly present
// a mismatched pair; that attempt is logged and the next poll, which sees the
// second file changed, loads the pair.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll()
		}
	}
}

// SPKIHash returns the SHA-256 of the SubjectPublicKeyInfo of the certificate
// in service: the association data of a TLSA 3 1 1 record.
func (s *Store) SPKIHash() [32]byte {
	return sha256.Sum256(s.cert.Load().Leaf.RawSubjectPublicKeyInfo)
}

// TLSA311 returns SPKIHash in hex, as written in a "TLSA 3 1 1" DNS record.
func (s *Store) TLSA311() string {
	h := s.SPKIHash()
	return hex.EncodeToString(h[:])
}

// ServerConfig returns a server tls.Config presenting the Store's certificate.
// minVersion is a tls.VersionTLS* constant; 0 leaves crypto/tls's default.
// Client certificates are not requested.
//
// Session tickets should normally stay off (sessionTickets false): some large
// mail providers' clients have been seen to fail handshakes with them, and
// resumption saves little on SMTP connections that each carry whole messages.
func (s *Store) ServerConfig(minVersion uint16, sessionTickets bool) *tls.Config {
	return &tls.Config{
		GetCertificate:         s.GetCertificate,
		MinVersion:             minVersion,
		SessionTicketsDisabled: !sessionTickets,
		ClientAuth:             tls.NoClientCert,
	}
}

func (s *Store) poll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	certInfo, keyInfo, err := s.stat()
	if err != nil {
		// Files may be missing for a moment while being replaced; report a
		// problem once and keep polling.
		if msg := err.Error(); msg != s.watchErr {
			s.watchErr = msg
			s.log.Warn("tls certificate files unavailable, keeping current certificate", "error", err)
		}
		return
	}
	s.watchErr = ""
	if sameFile(certInfo, s.certInfo) && sameFile(keyInfo, s.keyInfo) {
		return
	}
	if s.selfSigned {
		// Another process rolling the key over holds the lock while it
		// moves files into place; the next poll reads the finished pair
		// rather than this one a half-moved pair.
		unlock, ok, err := tryLockFile(filepath.Join(s.dir, LockFile))
		if err != nil {
			if msg := err.Error(); msg != s.watchErr {
				s.watchErr = msg
				s.log.Warn("tls directory lock unavailable, keeping current certificate", "error", err)
			}
			return
		}
		if !ok {
			return
		}
		defer unlock()
		if certInfo, keyInfo, err = s.stat(); err != nil {
			return
		}
	}
	if err := s.loadLocked(certInfo, keyInfo); err != nil {
		s.log.Error("tls certificate reload failed, keeping current certificate",
			"cert_file", s.certFile, "key_file", s.keyFile, "error", err)
	}
}

// stat describes both files. It is called before they are read, so a write
// that lands during the read changes what the next poll sees and is picked up.
func (s *Store) stat() (certInfo, keyInfo fs.FileInfo, err error) {
	if certInfo, err = os.Stat(s.certFile); err != nil {
		return nil, nil, err
	}
	if keyInfo, err = os.Stat(s.keyFile); err != nil {
		return nil, nil, err
	}
	return certInfo, keyInfo, nil
}

func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return false
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// loadLocked reads and parses the pair and puts it in service. s.mu is held.
func (s *Store) loadLocked(certInfo, keyInfo fs.FileInfo) error {
	s.certInfo, s.keyInfo = certInfo, keyInfo
	if err := s.checkKeyMode(keyInfo); err != nil {
		return err
	}
	certPEM, err := os.ReadFile(s.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(s.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("parse %s and %s: %w", s.certFile, s.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		// Only when GODEBUG x509keypairleaf=0 is set.
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse %s: %w", s.certFile, err)
		}
		cert.Leaf = leaf
	}
	prev := s.cert.Swap(&cert)
	if s.selfSigned {
		s.refreshSideKeys(leaf.RawSubjectPublicKeyInfo)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	attrs := []any{
		"cert_file", s.certFile,
		"self_signed", s.selfSigned,
		"subject", leaf.Subject.String(),
		"dns_names", leaf.DNSNames,
		"not_after", leaf.NotAfter,
		"tlsa_3_1_1", hex.EncodeToString(spki[:]),
	}
	if prev != nil && !bytes.Equal(prev.Leaf.RawSubjectPublicKeyInfo, leaf.RawSubjectPublicKeyInfo) {
		attrs = append(attrs, "key_changed", true)
	}
	if prev == nil {
		s.log.Info("tls certificate loaded", attrs...)
	} else {
		s.log.Info("tls certificate reloaded", attrs...)
	}
	// An expired certificate is still served: SMTP clients doing opportunistic
	// TLS or DANE-EE ignore dates, and the rest are better served by a warning
	// in the log than by an outage.
	if now := s.now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		s.log.Warn("tls certificate is outside its validity period",
			"cert_file", s.certFile, "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
	}
	// Clients that validate the certificate (MTA-STS, RFC 8461) check it
	// against the MX hostname.
	if s.hostname != "" {
		if err := leaf.VerifyHostname(s.hostname); err != nil {
			s.log.Warn("tls certificate does not cover the hostname",
				"cert_file", s.certFile, "hostname", s.hostname, "dns_names", leaf.DNSNames)
		}
	}
	return nil
}

// checkKeyMode refuses a self-signed key that others can access: mxward
// created it 0600, so a wider mode means someone changed it and the key may no
// longer be private. For operator keys it only warns about world access,
// because common layouts (certbot's archive directory among them) protect the
// key with the directory's permissions rather than the file's.
func (s *Store) checkKeyMode(keyInfo fs.FileInfo) error {
	perm := keyInfo.Mode().Perm()
	switch {
	case s.selfSigned && perm&0o077 != 0:
		return fmt.Errorf("private key %s has mode %04o, want 0600: restrict it, or remove it to generate a new key (which invalidates published TLSA records)", s.keyFile, perm)
	case !s.selfSigned && perm&0o007 != 0:
		s.log.Warn("tls private key is accessible to all users", "key_file", s.keyFile, "mode", fmt.Sprintf("%04o", perm))
	}
	return nil
}

// ensureSelfSigned makes sure s.dir holds a self-signed pair for host and a
// next key, finishing or discarding an interrupted rollover first. The caller
// holds the directory's lock file.
func (s *Store) ensureSelfSigned(ctx context.Context, host string) error {
	if err := s.recoverRollover(); err != nil {
		return err
	}
	key, err := s.ensureSelfSignedPair(ctx, host)
	if err != nil {
		return err
	}
	return s.ensureNextKey(ctx, key)
}

// ensureSelfSignedPair creates the key only if there is none and reissues the
// certificate whenever it does not fit the key or the hostname. It returns the
// key.
func (s *Store) ensureSelfSignedPair(ctx context.Context, host string) (crypto.Signer, error) {
	key, err := s.readSelfSignedKey()
	if err != nil {
		return nil, err
	}
	var reason string
	var oldNames []string
	if key == nil {
		var keyPEM []byte
		if key, keyPEM, err = generateKey(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(s.keyFile, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("write tls key: %w", err)
		}
		s.log.Info("tls self-signed key generated", "key_file", s.keyFile)
		reason = "new key"
	} else {
		leaf, err := readLeaf(s.certFile)
		now := s.now()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			reason = "certificate missing"
		case err != nil:
			s.log.Warn("tls self-signed certificate unusable", "cert_file", s.certFile, "error", err)
			reason = "certificate unreadable"
		case !publicKeyEqual(leaf.PublicKey, key.Public()):
			reason = "certificate does not match key"
		case !namesMatch(leaf, host):
			reason = "hostname changed"
			oldNames = certNames(leaf)
		case now.Before(leaf.NotBefore) || now.After(leaf.NotAfter.Add(-selfSignedRenewBefore)):
			reason = "certificate expiring"
		default:
			return key, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := issueSelfSigned(key, host, s.now())
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("write tls certificate: %w", err)
	}
	attrs := []any{"cert_file", s.certFile, "hostname", host, "reason", reason}
	if oldNames != nil {
		attrs = append(attrs, "previous_names", oldNames)
	}
	s.log.Info("tls self-signed certificate issued", attrs...)
	return key, nil
}

// readSelfSignedKey returns the existing self-signed key, or nil if there is
// none. A key that exists but cannot be used is an error, never a reason to
// generate a new one: replacing it silently would break published TLSA records.
func (s *Store) readSelfSignedKey() (crypto.Signer, error) {
	fi, err := os.Stat(s.keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat tls key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tls key %s is not a regular file", s.keyFile)
	}
	if err := s.checkKeyMode(fi); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("read tls key: %w", err)
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse tls key %s: %w (remove it to generate a new key, which invalidates published TLSA records)", s.keyFile, err)
	}
	return key, nil
}

// parsePrivateKey decodes the first PEM private key block in data, in PKCS #8,
// SEC 1 (EC) or PKCS #1 (RSA) form.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

// readLeaf parses the first certificate in a PEM file.
func readLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func issueSelfSigned(key crypto.Signer, host string, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // never zero
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             now.Add(-time.Hour), // tolerate clients with a slow clock
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create self-signed certificate for %q: %w", host, err)
	}
	return der, nil
}

func normalizeHostname(h string) (string, error) {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" {
		return "", errors.New("hostname required for the self-signed certificate")
	}
	if strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r == '/' || r >= 0x7f }) {
		return "", fmt.Errorf("hostname %q is not a valid certificate name", h)
	}
	return h, nil
}

func namesMatch(leaf *x509.Certificate, host string) bool {
	if leaf.Subject.CommonName != host {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 1 && leaf.IPAddresses[0].Equal(ip)
	}
	return len(leaf.IPAddresses) == 0 && len(leaf.DNSNames) == 1 && leaf.DNSNames[0] == host
}

func certNames(leaf *x509.Certificate) []string {
	names := append([]string{}, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a torn one: write a temporary file in the same
// directory, fsync it, rename it over path, fsync the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
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
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
