package tlscert

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output from concurrently running code.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func leafOf(t *testing.T, s *Store) *x509.Certificate {
	t.Helper()
	c, err := s.GetCertificate(nil)
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("GetCertificate = %v, %v; want a certificate with a leaf", c, err)
	}
	return c.Leaf
}

// spkiOfKeyFile computes the TLSA 3 1 1 hash from the private key file, a path
// independent of the certificate the Store parsed.
func spkiOfKeyFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// pair is a certificate and key as an operator would install them.
type pair struct {
	certPEM, keyPEM []byte
	spki            string
}

func newPair(t *testing.T, host string) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := issueSelfSigned(key, host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(pub)
	return pair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		spki:    hex.EncodeToString(h[:]),
	}
}

// install writes the pair by rename, as certbot and configuration tools do.
func (p pair) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	if err := writeFileAtomic(keyFile, p.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(certFile, p.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

func operatorFiles(t *testing.T) (certFile, keyFile string) {
	dir := t.TempDir()
	return filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
}

func TestSelfSignedReusedAcrossLoads(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	s1, err := Load(ctx, Options{DataDir: dataDir, Hostname: "MX.Example.org."})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dataDir, "tls", SelfSignedKeyFile)
	certFile := filepath.Join(dataDir, "tls", SelfSignedCertFile)
	if got, want := s1.TLSA311(), spkiOfKeyFile(t, keyFile); got != want {
		t.Errorf("TLSA311 = %s, want %s (from the key file)", got, want)
	}
	leaf := leafOf(t, s1)
	if leaf.Subject.CommonName != "mx.example.org" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "mx.example.org" {
		t.Errorf("certificate names: CN %q SANs %q, want mx.example.org", leaf.Subject.CommonName, leaf.DNSNames)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("key usage %v, ext key usage %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("public key is %T, want ECDSA", leaf.PublicKey)
	}
	for path, want := range map[string]os.FileMode{keyFile: 0o600, certFile: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
	certBefore, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}

	s2, err := Load(ctx, Options{DataDir: dataDir, Hostname: "mx.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if s1.SPKIHash() != s2.SPKIHash() {
		t.Errorf("SPKI changed across loads: %s then %s", s1.TLSA311(), s2.TLSA311())
	}
	certAfter, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certBefore, certAfter) {
		t.Error("certificate was reissued although nothing changed")
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{LockFile, SelfSignedCertFile, SelfSignedKeyFile, SelfSignedNextKeyFile}; !equalStrings(names, want) {
		t.Errorf("tls directory holds %q, want %q", names, want)
	}
}

func TestSelfSignedReissueKeepsKey(t *testing.T) {
	tests := []struct {
		name       string
		hostname   string
		now        time.Time // zero: real time
		wantReason string
		wantNames  []string
		wantIPs    []string
	}{
		{name: "hostname changed", hostname: "mail.example.net", wantReason: "hostname changed", wantNames: []string{"mail.example.net"}},
		{name: "hostname became an address", hostname: "127.0.0.1", wantReason: "hostname changed", wantIPs: []string{"127.0.0.1"}},
		{name: "expiring", hostname: "mx.example.org", now: time.Now().Add(selfSignedValidity - 24*time.Hour), wantReason: "certificate expiring", wantNames: []string{"mx.example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			ctx := context.Background()
			s1, err := Load(ctx, Options{DataDir: dataDir, Hostname: "mx.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			oldLeaf := leafOf(t, s1)
			log, logs := newLogger()
			opts := Options{DataDir: dataDir, Hostname: tt.hostname, Logger: log}
			if !tt.now.IsZero() {
				opts.Now = func() time.Time { return tt.now }
			}
			s2, err := Load(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if s1.SPKIHash() != s2.SPKIHash() {
				t.Errorf("SPKI changed on reissue: %s then %s", s1.TLSA311(), s2.TLSA311())
			}
			leaf := leafOf(t, s2)
			if bytes.Equal(leaf.Raw, oldLeaf.Raw) {
				t.Fatal("certificate was not reissued")
			}
			if !equalStrings(leaf.DNSNames, tt.wantNames) {
				t.Errorf("DNS names %q, want %q", leaf.DNSNames, tt.wantNames)
			}
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !equalStrings(ips, tt.wantIPs) {
				t.Errorf("IP addresses %q, want %q", ips, tt.wantIPs)
			}
			if !tt.now.IsZero() && !leaf.NotAfter.After(tt.now.Add(selfSignedValidity-time.Hour)) {
				t.Errorf("reissued certificate expires %v, want about %v", leaf.NotAfter, tt.now.Add(selfSignedValidity))
			}
			out := logs.String()
			if !strings.Contains(out, "tls self-signed certificate issued") || !strings.Contains(out, `reason="`+tt.wantReason+`"`) {
				t.Errorf("log lacks the reissue with reason %q:\n%s", tt.wantReason, out)
			}
			if strings.Contains(out, "tls self-signed key generated") {
				t.Errorf("a new key was generated:\n%s", out)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSelfSignedDamagedFiles(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, keyFile, certFile string)
		wantErr string // empty: Load succeeds
		// sameKey reports whether the original key must still be in use.
		sameKey bool
	}{
		{
			name:    "key readable by others",
			damage:  func(t *testing.T, keyFile, _ string) { chmod(t, keyFile, 0o644) },
			wantErr: "want 0600",
		},
		{
			name:    "key readable by group",
			damage:  func(t *testing.T, keyFile, _ string) { chmod(t, keyFile, 0o640) },
			wantErr: "want 0600",
		},
		{
			name:    "key garbage",
			damage:  func(t *testing.T, keyFile, _ string) { writeFile(t, keyFile, "not a key\n", 0o600) },
			wantErr: "parse tls key",
		},
		{
			name: "key PEM with garbage body",
			damage: func(t *testing.T, keyFile, _ string) {
				writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})), 0o600)
			},
			wantErr: "parse tls key",
		},
		{
			name:    "key is a directory",
			damage:  func(t *testing.T, keyFile, _ string) { remove(t, keyFile); mkdir(t, keyFile) },
			wantErr: "not a regular file",
		},
		{
			name:    "certificate garbage",
			damage:  func(t *testing.T, _, certFile string) { writeFile(t, certFile, "garbage", 0o644) },
			sameKey: true,
		},
		{
			name:    "certificate missing",
			damage:  func(t *testing.T, _, certFile string) { remove(t, certFile) },
			sameKey: true,
		},
		{
			name: "certificate for another key",
			damage: func(t *testing.T, _, certFile string) {
				writeFile(t, certFile, string(newPair(t, "mx.example.org").certPEM), 0o644)
			},
			sameKey: true,
		},
		{
			name:    "key missing",
			damage:  func(t *testing.T, keyFile, _ string) { remove(t, keyFile) },
			sameKey: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			ctx := context.Background()
			opts := Options{DataDir: dataDir, Hostname: "mx.example.org"}
			s1, err := Load(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(dataDir, "tls", SelfSignedKeyFile)
			certFile := filepath.Join(dataDir, "tls", SelfSignedCertFile)
			tt.damage(t, keyFile, certFile)
			keyBefore, _ := os.ReadFile(keyFile)

			s2, err := Load(ctx, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
				}
				keyAfter, _ := os.ReadFile(keyFile)
				if !bytes.Equal(keyBefore, keyAfter) {
					t.Error("Load replaced an unusable key; it must leave it for the operator")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s1.SPKIHash() == s2.SPKIHash(); got != tt.sameKey {
				t.Errorf("same key after repair = %v, want %v", got, tt.sameKey)
			}
			if got, want := s2.TLSA311(), spkiOfKeyFile(t, keyFile); got != want {
				t.Errorf("served SPKI %s does not match the key file's %s", got, want)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOptions(t *testing.T) {
	certFile, keyFile := operatorFiles(t)
	newPair(t, "mx.example.org").install(t, certFile, keyFile)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "cert without key", opts: Options{CertFile: certFile}, wantErr: "together"},
		{name: "key without cert", opts: Options{KeyFile: keyFile, DataDir: t.TempDir()}, wantErr: "together"},
		{name: "nothing configured", opts: Options{Hostname: "mx.example.org"}, wantErr: "no data directory"},
		{name: "self-signed without hostname", opts: Options{DataDir: t.TempDir()}, wantErr: "hostname required"},
		{name: "self-signed with bad hostname", opts: Options{DataDir: t.TempDir(), Hostname: "mx example"}, wantErr: "not a valid certificate name"},
		{name: "missing operator files", opts: Options{CertFile: certFile + ".missing", KeyFile: keyFile}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, Options{DataDir: t.TempDir(), Hostname: "mx.example.org"}); err == nil {
		t.Error("Load with a cancelled context succeeded")
	}
}

func TestOperatorFiles(t *testing.T) {
	good := newPair(t, "mx.example.org")
	other := newPair(t, "mx.example.org")
	tests := []struct {
		name     string
		certPEM  []byte
		keyPEM   []byte
		keyMode  os.FileMode
		hostname string
		wantErr  string
		wantWarn string
	}{
		{name: "valid", certPEM: good.certPEM, keyPEM: good.keyPEM, keyMode: 0o600},
		{name: "group readable key", certPEM: good.certPEM, keyPEM: good.keyPEM, keyMode: 0o640},
		{name: "world readable key", certPEM: good.certPEM, keyPEM: good.keyPEM, keyMode: 0o644, wantWarn: "accessible to all users"},
		{name: "hostname covered", certPEM: good.certPEM, keyPEM: good.keyPEM, keyMode: 0o600, hostname: "MX.example.org."},
		{name: "hostname not covered", certPEM: good.certPEM, keyPEM: good.keyPEM, keyMode: 0o600, hostname: "mail.example.org", wantWarn: "does not cover the hostname"},
		{name: "key does not match", certPEM: good.certPEM, keyPEM: other.keyPEM, keyMode: 0o600, wantErr: "does not match"},
		{name: "garbage certificate", certPEM: []byte("garbage"), keyPEM: good.keyPEM, keyMode: 0o600, wantErr: "parse"},
		{name: "garbage key", certPEM: good.certPEM, keyPEM: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), keyMode: 0o600, wantErr: "parse"},
		{name: "empty files", keyMode: 0o600, wantErr: "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := operatorFiles(t)
			writeFile(t, certFile, string(tt.certPEM), 0o644)
			writeFile(t, keyFile, string(tt.keyPEM), tt.keyMode)
			log, logs := newLogger()
			s, err := Load(context.Background(), Options{CertFile: certFile, KeyFile: keyFile, Hostname: tt.hostname, Logger: log})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.TLSA311() != good.spki {
				t.Errorf("TLSA311 = %s, want %s", s.TLSA311(), good.spki)
			}
			for _, warn := range []string{"accessible to all users", "does not cover the hostname"} {
				if got, want := strings.Contains(logs.String(), warn), warn == tt.wantWarn; got != want {
					t.Errorf("warning %q logged = %v, want %v:\n%s", warn, got, want, logs.String())
				}
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	certFile, keyFile := operatorFiles(t)
	first := newPair(t, "mx.example.org")
	first.install(t, certFile, keyFile)
	log, logs := newLogger()
	s, err := Load(context.Background(), Options{CertFile: certFile, KeyFile: keyFile, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Watch(ctx, 10*time.Millisecond)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	// Replacement by rename: new inodes.
	second := newPair(t, "mx.example.org")
	second.install(t, certFile, keyFile)
	waitFor(t, "the renamed pair to be served", func() bool { return s.TLSA311() == second.spki })

	// Rewrite in place: same inodes, new contents and times.
	third := newPair(t, "mx.example.org")
	writeFile(t, keyFile, string(third.keyPEM), 0o600)
	writeFile(t, certFile, string(third.certPEM), 0o644)
	later := time.Now().Add(time.Minute)
	for _, f := range []string{keyFile, certFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the rewritten pair to be served", func() bool { return s.TLSA311() == third.spki })

	// A certificate whose key was not replaced with it must not be served.
	mismatched := newPair(t, "mx.example.org")
	if err := writeFileAtomic(certFile, mismatched.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mismatched pair to be refused", func() bool {
		return strings.Contains(logs.String(), "tls certificate reload failed")
	})
	if s.TLSA311() != third.spki {
		t.Errorf("after a mismatched replacement TLSA311 = %s, want the previous %s", s.TLSA311(), third.spki)
	}

	// Garbage is refused as well.
	if err := writeFileAtomic(certFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the garbage to be refused", func() bool {
		return strings.Count(logs.String(), "tls certificate reload failed") >= 2
	})
	if s.TLSA311() != third.spki {
		t.Errorf("after a garbage replacement TLSA311 = %s, want the previous %s", s.TLSA311(), third.spki)
	}

	// The operator fixes things by completing the pair: the key arrives.
	if err := writeFileAtomic(certFile, mismatched.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(keyFile, mismatched.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the completed pair to be served", func() bool { return s.TLSA311() == mismatched.spki })

	// A file that disappears for a while leaves the certificate in service.
	remove(t, certFile)
	waitFor(t, "the missing file to be reported", func() bool {
		return strings.Contains(logs.String(), "tls certificate files unavailable")
	})
	if s.TLSA311() != mismatched.spki {
		t.Errorf("with the certificate file missing TLSA311 = %s, want %s", s.TLSA311(), mismatched.spki)
	}
	last := newPair(t, "mx.example.org")
	last.install(t, certFile, keyFile)
	waitFor(t, "the pair to be served after the gap", func() bool { return s.TLSA311() == last.spki })

	if n := strings.Count(logs.String(), "tls certificate files unavailable"); n != 1 {
		t.Errorf("missing file reported %d times, want once", n)
	}
}

func TestReload(t *testing.T) {
	certFile, keyFile := operatorFiles(t)
	first := newPair(t, "mx.example.org")
	first.install(t, certFile, keyFile)
	s, err := Load(context.Background(), Options{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	second := newPair(t, "mx.example.org")
	second.install(t, certFile, keyFile)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if s.TLSA311() != second.spki {
		t.Fatalf("after Reload TLSA311 = %s, want %s", s.TLSA311(), second.spki)
	}
	if err := writeFileAtomic(keyFile, first.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Reload of a mismatched pair: error %v", err)
	}
	if s.TLSA311() != second.spki {
		t.Errorf("after a failed Reload TLSA311 = %s, want the previous %s", s.TLSA311(), second.spki)
	}
	remove(t, keyFile)
	if err := s.Reload(); err == nil {
		t.Fatal("Reload with the key missing succeeded")
	}
	if s.TLSA311() != second.spki {
		t.Errorf("after a failed Reload TLSA311 = %s, want the previous %s", s.TLSA311(), second.spki)
	}
}

// ticketCache records the sessions a client is offered for resumption.
type ticketCache struct {
	mu   sync.Mutex
	puts int
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
}

func (c *ticketCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

// handshake runs one TLS connection over loopback and returns the certificate
// the server presented and how many session tickets the client received.
func handshake(t *testing.T, srv *tls.Config, cli *tls.Config) (*x509.Certificate, int, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			srvDone <- err
			return
		}
		if _, err := tc.Write([]byte("220 ready\r\n")); err != nil {
			srvDone <- err
			return
		}
		// Wait for the client to finish before closing.
		_, err = bufio.NewReader(tc).ReadString('\n')
		srvDone <- err
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cache := &ticketCache{}
	cli = cli.Clone()
	cli.ClientSessionCache = cache
	tc := tls.Client(conn, cli)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		<-srvDone
		return nil, 0, err
	}
	// Reading application data processes post-handshake TLS 1.3 tickets.
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || line != "220 ready\r\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	if _, err := tc.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	return tc.ConnectionState().PeerCertificates[0], cache.count(), nil
}

func TestServerConfigHandshake(t *testing.T) {
	s, err := Load(context.Background(), Options{DataDir: t.TempDir(), Hostname: "mx.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, s)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	tests := []struct {
		name           string
		version        uint16
		sessionTickets bool
		wantTickets    bool
	}{
		{name: "TLS 1.3 tickets off", version: tls.VersionTLS13},
		{name: "TLS 1.2 tickets off", version: tls.VersionTLS12},
		{name: "TLS 1.3 tickets on", version: tls.VersionTLS13, sessionTickets: true, wantTickets: true},
		{name: "TLS 1.2 tickets on", version: tls.VersionTLS12, sessionTickets: true, wantTickets: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := &tls.Config{
				RootCAs:    roots,
				ServerName: "mx.example.org",
				MinVersion: tt.version,
				MaxVersion: tt.version,
			}
			peer, tickets, err := handshake(t, s.ServerConfig(tls.VersionTLS12, tt.sessionTickets), cli)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(peer.Raw, leaf.Raw) {
				t.Error("server presented a certificate other than the Store's")
			}
			got := sha256.Sum256(peer.RawSubjectPublicKeyInfo)
			if got != s.SPKIHash() {
				t.Error("presented SPKI differs from SPKIHash")
			}
			if (tickets > 0) != tt.wantTickets {
				t.Errorf("client received %d session tickets, want tickets = %v", tickets, tt.wantTickets)
			}
		})
	}

	t.Run("minimum version enforced", func(t *testing.T) {
		cli := &tls.Config{RootCAs: roots, ServerName: "mx.example.org", MaxVersion: tls.VersionTLS12}
		if _, _, err := handshake(t, s.ServerConfig(tls.VersionTLS13, false), cli); err == nil {
			t.Error("TLS 1.2 client completed a handshake with a TLS 1.3 minimum")
		}
	})

	t.Run("defaults", func(t *testing.T) {
		cfg := s.ServerConfig(0, false)
		if !cfg.SessionTicketsDisabled || cfg.ClientAuth != tls.NoClientCert || cfg.Certificates != nil {
			t.Errorf("config: tickets disabled %v, client auth %v, static certificates %d",
				cfg.SessionTicketsDisabled, cfg.ClientAuth, len(cfg.Certificates))
		}
	})
}

func TestParsePrivateKeyForms(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFirst := append(newPair(t, "x.example").certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), true},
		{"sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), true},
		{"after a certificate", certFirst, true},
		{"sec1 labelled pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sec1}), false},
		{"no PEM", []byte("hello"), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePrivateKey(tt.data)
			if (err == nil) != tt.ok {
				t.Fatalf("parsePrivateKey error = %v, want ok = %v", err, tt.ok)
			}
			if tt.ok && !publicKeyEqual(got.Public(), crypto.PublicKey(&key.PublicKey)) {
				t.Error("parsed a different key")
			}
		})
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\n\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parsePrivateKey(data)
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
		if err == nil && k.Public() == nil {
			t.Fatal("key without a public half")
		}
	})
}
