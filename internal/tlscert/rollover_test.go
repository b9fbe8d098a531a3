package tlscert

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testHost = "mx.example.org"

func loadSelfSigned(t *testing.T, dataDir string) *Store {
	t.Helper()
	s, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: testHost})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publish returns a published callback reporting digests.
func publish(digests ...string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return digests, nil }
}

// snapshot returns the tls directory's tree: each file's mode and contents.
func snapshot(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	root := filepath.Join(dataDir, "tls")
	m := make(map[string]string)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			m[rel] = "dir " + fi.Mode().String()
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m[rel] = fi.Mode().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalSnapshots(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// state is what a self-signed Store says about its keys.
type state struct{ current, next, previous string }

func stateOf(s *Store) state {
	return state{s.TLSA311(), s.NextTLSA311(), s.PreviousTLSA311()}
}

// checkConsistent verifies that the files in dataDir form a usable
// self-signed state and that s describes them.
func checkConsistent(t *testing.T, dataDir string, s *Store) {
	t.Helper()
	dir := filepath.Join(dataDir, "tls")
	st := stateOf(s)
	if got := spkiOfKeyFile(t, filepath.Join(dir, SelfSignedKeyFile)); got != st.current {
		t.Errorf("key file's TLSA %s, served %s", got, st.current)
	}
	if st.next == "" || st.next == st.current {
		t.Errorf("next key %q, current %q: want a distinct next key", st.next, st.current)
	}
	if got := spkiOfKeyFile(t, filepath.Join(dir, SelfSignedNextKeyFile)); got != st.next {
		t.Errorf("next key file's TLSA %s, NextTLSA311 %s", got, st.next)
	}
	leaf, err := readLeaf(filepath.Join(dir, SelfSignedCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(leaf.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != st.current {
		t.Error("certificate file does not match the key in service")
	}
	for _, name := range []string{rolloverStaging, rolloverCommitted} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", name, err)
		}
	}
	for _, name := range []string{SelfSignedKeyFile, SelfSignedNextKeyFile, SelfSignedPreviousKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && name == SelfSignedPreviousKeyFile {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
}

func TestNextKeyCreatedOnceAndStable(t *testing.T) {
	dataDir := t.TempDir()
	s1 := loadSelfSigned(t, dataDir)
	checkConsistent(t, dataDir, s1)
	if s1.PreviousTLSA311() != "" {
		t.Errorf("PreviousTLSA311 = %q before any rollover", s1.PreviousTLSA311())
	}
	nextFile := filepath.Join(dataDir, "tls", SelfSignedNextKeyFile)
	before, err := os.ReadFile(nextFile)
	if err != nil {
		t.Fatal(err)
	}

	// Reloading, and reissuing for another hostname, keep the next key.
	s2 := loadSelfSigned(t, dataDir)
	s3, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: "mail.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{s2, s3} {
		if stateOf(s) != stateOf(s1) {
			t.Errorf("state %+v after Load, want %+v", stateOf(s), stateOf(s1))
		}
	}
	after, err := os.ReadFile(nextFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("next key file rewritten by Load")
	}
}

func TestNextKeyDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, nextFile, keyFile string)
		// regenerated: Load replaces the next key; otherwise it leaves the
		// file alone and disables rollover.
		regenerated bool
		wantErr     string
	}{
		{name: "readable by others", damage: func(t *testing.T, next, _ string) { chmod(t, next, 0o644) }, wantErr: "want 0600"},
		{name: "garbage", damage: func(t *testing.T, next, _ string) { writeFile(t, next, "garbage", 0o600) }, wantErr: "parse"},
		{name: "directory", damage: func(t *testing.T, next, _ string) { remove(t, next); mkdir(t, next) }, wantErr: "not a regular file"},
		{name: "missing", damage: func(t *testing.T, next, _ string) { remove(t, next) }, regenerated: true},
		{
			name: "same as current",
			damage: func(t *testing.T, next, key string) {
				data, err := os.ReadFile(key)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, next, string(data), 0o600)
			},
			regenerated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			s1 := loadSelfSigned(t, dataDir)
			dir := filepath.Join(dataDir, "tls")
			nextFile := filepath.Join(dir, SelfSignedNextKeyFile)
			tt.damage(t, nextFile, filepath.Join(dir, SelfSignedKeyFile))
			before := snapshot(t, dataDir)

			log, logs := newLogger()
			s2, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: testHost, Logger: log})
			if err != nil {
				t.Fatalf("Load failed over the next key: %v", err)
			}
			if s2.TLSA311() != s1.TLSA311() {
				t.Error("current key changed")
			}
			if tt.regenerated {
				checkConsistent(t, dataDir, s2)
				if s2.NextTLSA311() == s1.NextTLSA311() {
					t.Error("next key not regenerated")
				}
				return
			}
			if s2.NextTLSA311() != "" {
				t.Errorf("NextTLSA311 = %q for an unusable file", s2.NextTLSA311())
			}
			if !equalSnapshots(before, snapshot(t, dataDir)) {
				t.Error("Load changed the directory; an unusable next key is the operator's to fix")
			}
			if !strings.Contains(logs.String(), "tls next key unusable") {
				t.Errorf("log lacks the unusable next key:\n%s", logs.String())
			}
			err = s2.Rollover(context.Background(), publish(s1.NextTLSA311()))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Rollover error = %v, want one containing %q", err, tt.wantErr)
			}
			if !equalSnapshots(before, snapshot(t, dataDir)) {
				t.Error("refused Rollover changed the directory")
			}
		})
	}
}

func TestRolloverRefusedWhenNotPublished(t *testing.T) {
	lookupErr := errors.New("SERVFAIL")
	tests := []struct {
		name      string
		published func(s *Store) func(context.Context) ([]string, error)
		wantIs    error
	}{
		{name: "no records", published: func(*Store) func(context.Context) ([]string, error) { return publish() }, wantIs: ErrNextNotPublished},
		{name: "only current", published: func(s *Store) func(context.Context) ([]string, error) { return publish(s.TLSA311()) }, wantIs: ErrNextNotPublished},
		{
			name: "next truncated",
			published: func(s *Store) func(context.Context) ([]string, error) {
				return publish(s.TLSA311(), s.NextTLSA311()[:62])
			},
			wantIs: ErrNextNotPublished,
		},
		{
			name: "lookup failed",
			published: func(*Store) func(context.Context) ([]string, error) {
				return func(context.Context) ([]string, error) { return nil, lookupErr }
			},
			wantIs: lookupErr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := loadSelfSigned(t, dataDir)
			before, beforeState := snapshot(t, dataDir), stateOf(s)
			leaf := leafOf(t, s)

			err := s.Rollover(context.Background(), tt.published(s))
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("Rollover error = %v, want %v", err, tt.wantIs)
			}
			if tt.wantIs == ErrNextNotPublished {
				record := "_25._tcp.mx.example.org. IN TLSA 3 1 1 " + s.NextTLSA311()
				if !strings.Contains(err.Error(), record) {
					t.Errorf("error %q does not name the record to publish, %q", err, record)
				}
			}
			if !equalSnapshots(before, snapshot(t, dataDir)) {
				t.Error("refused rollover changed the tls directory")
			}
			if stateOf(s) != beforeState || !bytes.Equal(leafOf(t, s).Raw, leaf.Raw) {
				t.Error("refused rollover changed the Store")
			}
		})
	}
}

func TestRolloverAccepted(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	old := stateOf(s)
	oldLeaf := leafOf(t, s)

	// dig prints association data in upper case, split by spaces.
	upper := strings.ToUpper(old.next)
	if err := s.Rollover(context.Background(), publish(old.current, upper[:32]+" "+upper[32:])); err != nil {
		t.Fatal(err)
	}
	got := stateOf(s)
	if got.current != old.next {
		t.Errorf("TLSA311 = %s, want the old next %s", got.current, old.next)
	}
	if got.previous != old.current {
		t.Errorf("PreviousTLSA311 = %s, want the old current %s", got.previous, old.current)
	}
	if got.next == old.next || got.next == old.current {
		t.Errorf("NextTLSA311 = %s, want a new key", got.next)
	}
	checkConsistent(t, dataDir, s)

	dir := filepath.Join(dataDir, "tls")
	if got := spkiOfKeyFile(t, filepath.Join(dir, SelfSignedPreviousKeyFile)); got != old.current {
		t.Errorf("previous key file holds %s, want %s", got, old.current)
	}
	prevCert, err := os.ReadFile(filepath.Join(dir, SelfSignedPreviousCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if prevLeaf, err := readLeaf(filepath.Join(dir, SelfSignedPreviousCertFile)); err != nil || !bytes.Equal(prevLeaf.Raw, oldLeaf.Raw) {
		t.Errorf("previous certificate file is not the old certificate (%v): %s", err, prevCert)
	}
	leaf := leafOf(t, s)
	if leaf.Subject.CommonName != testHost || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != testHost {
		t.Errorf("new certificate names: CN %q SANs %q", leaf.Subject.CommonName, leaf.DNSNames)
	}

	// A handshake presents the new key.
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	peer, _, err := handshake(t, s.ServerConfig(tls.VersionTLS12, false), &tls.Config{RootCAs: roots, ServerName: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(peer.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != old.next {
		t.Error("handshake presented a key other than the old next one")
	}

	// A later Load sees the same state and changes nothing.
	before := snapshot(t, dataDir)
	if s2 := loadSelfSigned(t, dataDir); stateOf(s2) != got {
		t.Errorf("Load after rollover: %+v, want %+v", stateOf(s2), got)
	}
	if !equalSnapshots(before, snapshot(t, dataDir)) {
		t.Error("Load after rollover changed the directory")
	}

	// A second rollover replaces the previous pair.
	if err := s.Rollover(context.Background(), publish(got.next)); err != nil {
		t.Fatal(err)
	}
	if third := stateOf(s); third.current != got.next || third.previous != got.current {
		t.Errorf("second rollover: %+v after %+v", third, got)
	}
	checkConsistent(t, dataDir, s)
}

func TestRolloverRefusedForOperatorFiles(t *testing.T) {
	certFile, keyFile := operatorFiles(t)
	p := newPair(t, testHost)
	p.install(t, certFile, keyFile)
	s, err := Load(context.Background(), Options{CertFile: certFile, KeyFile: keyFile, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if s.NextTLSA311() != "" || s.PreviousTLSA311() != "" {
		t.Errorf("NextTLSA311 %q, PreviousTLSA311 %q with operator files, want empty", s.NextTLSA311(), s.PreviousTLSA311())
	}
	called := false
	err = s.Rollover(context.Background(), func(context.Context) ([]string, error) {
		called = true
		return []string{p.spki}, nil
	})
	if !errors.Is(err, ErrOperatorCertificate) || !strings.Contains(err.Error(), certFile) {
		t.Errorf("Rollover error = %v, want ErrOperatorCertificate naming %s", err, certFile)
	}
	if called {
		t.Error("published was consulted for operator files")
	}
	if s.TLSA311() != p.spki {
		t.Error("operator certificate changed")
	}
}

func TestRolloverCancelled(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	before, old := snapshot(t, dataDir), stateOf(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled after the new files are staged: the rollover is abandoned
	// before its switch and the staging directory removed.
	s.rolloverHook = func(step string) error {
		if step == "staged" {
			cancel()
		}
		return nil
	}
	if err := s.Rollover(ctx, publish(old.next)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rollover error = %v, want context.Canceled", err)
	}
	if !equalSnapshots(before, snapshot(t, dataDir)) || stateOf(s) != old {
		t.Error("cancelled rollover changed something")
	}
}

// rolloverSteps are the points a rollover reports to its hook, in order; the
// switch happens between "staged" and "committed".
func rolloverSteps() []string {
	steps := []string{"staged", "committed"}
	for _, name := range rolloverOrder() {
		steps = append(steps, "moved "+name)
	}
	return append(steps, "cleaned")
}

func TestRolloverCrash(t *testing.T) {
	crash := errors.New("crash")
	for i, step := range rolloverSteps() {
		switched := i > 0
		t.Run(step, func(t *testing.T) {
			dataDir := t.TempDir()
			s := loadSelfSigned(t, dataDir)
			old := stateOf(s)
			oldLeaf := leafOf(t, s)
			s.rolloverHook = func(got string) error {
				if got == step {
					return crash
				}
				return nil
			}
			if err := s.Rollover(context.Background(), publish(old.next)); !errors.Is(err, crash) {
				t.Fatalf("Rollover error = %v, want the crash", err)
			}
			// The crashed process kept serving the old certificate.
			if !bytes.Equal(leafOf(t, s).Raw, oldLeaf.Raw) {
				t.Error("certificate in service changed before the rollover completed")
			}

			// A restart finds either the old state or the new one.
			log, logs := newLogger()
			s2, err := Load(context.Background(), Options{DataDir: dataDir, Hostname: testHost, Logger: log})
			if err != nil {
				t.Fatalf("Load after crash: %v", err)
			}
			checkConsistent(t, dataDir, s2)
			got := stateOf(s2)
			if !switched {
				if got != old {
					t.Errorf("crash before the switch: state %+v, want the old %+v", got, old)
				}
				if !strings.Contains(logs.String(), "discarded") {
					t.Errorf("log lacks the discarded rollover:\n%s", logs.String())
				}
				return
			}
			if got.current != old.next || got.previous != old.current || got.next == old.next {
				t.Errorf("crash after the switch: state %+v, want the new state after %+v", got, old)
			}
			if step != "cleaned" && !strings.Contains(logs.String(), "completed") {
				t.Errorf("log lacks the completed rollover:\n%s", logs.String())
			}
		})
	}
}

// TestRolloverResumedInProcess checks that a rollover that failed after its
// switch is completed by the next Rollover of the same Store.
func TestRolloverResumedInProcess(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	old := stateOf(s)
	fail := errors.New("rename failed")
	s.rolloverHook = func(step string) error {
		if step == "moved "+SelfSignedKeyFile {
			return fail
		}
		return nil
	}
	if err := s.Rollover(context.Background(), publish(old.next)); !errors.Is(err, fail) {
		t.Fatalf("Rollover error = %v, want %v", err, fail)
	}
	s.rolloverHook = nil
	// Nothing published for the new next key: the interrupted rollover is
	// completed, the new one refused.
	err := s.Rollover(context.Background(), publish(old.current, old.next))
	if !errors.Is(err, ErrNextNotPublished) {
		t.Fatalf("Rollover error = %v, want ErrNextNotPublished", err)
	}
	if got := stateOf(s); got.current != old.next || got.previous != old.current {
		t.Errorf("state %+v, want the completed rollover after %+v", got, old)
	}
	checkConsistent(t, dataDir, s)
}

func TestRolloverConcurrentGetCertificate(t *testing.T) {
	dataDir := t.TempDir()
	s := loadSelfSigned(t, dataDir)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Watch(ctx, time.Millisecond)
	}()

	const rollovers = 5
	keys := map[string]bool{s.TLSA311(): true}
	var mu sync.Mutex
	seen := make(map[string]bool)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := s.GetCertificate(nil)
				if err != nil || c == nil || c.Leaf == nil || c.PrivateKey == nil {
					t.Errorf("GetCertificate = %v, %v", c, err)
					return
				}
				if !publicKeyEqual(c.Leaf.PublicKey, c.PrivateKey.(crypto.Signer).Public()) {
					t.Error("served certificate and key do not match")
					return
				}
				h := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
				_ = s.NextTLSA311()
				_ = s.PreviousTLSA311()
				mu.Lock()
				seen[hex.EncodeToString(h[:])] = true
				mu.Unlock()
			}
		}()
	}
	for range rollovers {
		next := s.NextTLSA311()
		keys[next] = true
		if err := s.Rollover(ctx, publish(next)); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	readers.Wait()
	for k := range seen {
		if !keys[k] {
			t.Errorf("served key %s was never current", k)
		}
	}
	checkConsistent(t, dataDir, s)
}

func TestNormalizeDigest(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"ab01", "ab01", true},
		{"AB01", "ab01", true},
		{" AB 01\t", "ab01", true},
		{"ab0", "", false},
		{"xyz1", "", false},
		{"", "", false},
		{"   ", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeDigest(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeDigest(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormalizeDigest(f *testing.F) {
	f.Add("ab01")
	f.Add("AB 01")
	f.Add("0123456789ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef")
	f.Add("zz")
	f.Add("\t\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := normalizeDigest(in)
		if !ok {
			if got != "" {
				t.Fatalf("normalizeDigest(%q) = %q with ok false", in, got)
			}
			return
		}
		if got == "" || got != strings.ToLower(got) {
			t.Fatalf("normalizeDigest(%q) = %q, want non-empty lower-case hex", in, got)
		}
		if again, ok := normalizeDigest(got); !ok || again != got {
			t.Fatalf("normalizeDigest not idempotent on %q: %q, %v", got, again, ok)
		}
		if up, ok := normalizeDigest(strings.ToUpper(in)); !ok || up != got {
			t.Fatalf("normalizeDigest(%q) = %q, %v; want %q regardless of case", strings.ToUpper(in), up, ok, got)
		}
	})
}

// TestRolloverKeepsEstablishedSessions checks that a connection handshaken
// with the old key carries on after the rollover, while the next handshake
// presents the new key.
func TestRolloverKeepsEstablishedSessions(t *testing.T) {
	s := loadSelfSigned(t, t.TempDir())
	old := stateOf(s)
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
		tc := tls.Server(c, s.ServerConfig(tls.VersionTLS12, false))
		r := bufio.NewReader(tc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				srvDone <- err
				return
			}
			if _, err := tc.Write([]byte("250 " + line)); err != nil {
				srvDone <- err
				return
			}
			if line == "QUIT\r\n" {
				srvDone <- nil
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	r := bufio.NewReader(tc)
	exchange := func(cmd string) {
		t.Helper()
		if _, err := tc.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "250 "+cmd {
			t.Fatalf("reply to %q: %q, %v", cmd, line, err)
		}
	}
	exchange("EHLO client.example\r\n")

	if err := s.Rollover(context.Background(), publish(old.next)); err != nil {
		t.Fatal(err)
	}
	exchange("NOOP\r\n")
	exchange("QUIT\r\n")
	if err := <-srvDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	peer := tc.ConnectionState().PeerCertificates[0]
	if h := sha256.Sum256(peer.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != old.current {
		t.Error("established connection's certificate is not the old one")
	}
	leaf := leafOf(t, s)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	peer, _, err = handshake(t, s.ServerConfig(tls.VersionTLS12, false), &tls.Config{RootCAs: roots, ServerName: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(peer.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != old.next {
		t.Error("new connection was not presented the new key")
	}
}

func BenchmarkRollover(b *testing.B) {
	s, err := Load(context.Background(), Options{DataDir: b.TempDir(), Hostname: testHost})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Rollover(context.Background(), publish(s.NextTLSA311())); err != nil {
			b.Fatal(err)
		}
	}
}
