package policyserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mxward/internal/mtasts"
	"mxward/internal/testpeer"
)

// logBuffer collects JSON log records written concurrently.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the records whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type fixture struct {
	ca   *testpeer.CA
	pool *x509.CertPool
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := testpeer.NewCA("mxward policy server test CA")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &fixture{ca: ca, pool: pool, dir: t.TempDir()}
}

// issue writes a certificate for names, valid from notBefore to notAfter, as
// name.pem and name.key (replaced by rename, as certbot does) and returns the files.
func (f *fixture) issue(t *testing.T, name string, names []string, notBefore, notAfter time.Time) CertFiles {
	t.Helper()
	c, err := f.ca.Issue(names, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	files := CertFiles{CertFile: filepath.Join(f.dir, name+".pem"), KeyFile: filepath.Join(f.dir, name+".key")}
	for path, data := range map[string][]byte{files.CertFile: c.CertPEM, files.KeyFile: c.KeyPEM} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func (f *fixture) valid(t *testing.T, name string, names ...string) CertFiles {
	now := time.Now()
	return f.issue(t, name, names, now.Add(-time.Hour), now.Add(24*time.Hour))
}

func publish(t *testing.T, mode mtasts.Mode) *mtasts.Publication {
	t.Helper()
	pub, err := mtasts.Publish(mtasts.Policy{Mode: mode, MX: []string{"mx.example.test", "*.example.org"}, MaxAge: 86400 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// start runs s on a loopback port until the test ends.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// client returns an HTTP client that trusts the test CA, sends every connection to addr,
// and sends sni in the TLS handshake (the URL's host when empty).
func (f *fixture) client(addr, sni string, h2 bool, maxVersion uint16) *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirected") },
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			// MinVersion follows MaxVersion so that a client limited to an old
			// version really offers it and the server is the one to refuse.
			TLSClientConfig:   &tls.Config{RootCAs: f.pool, ServerName: sni, MinVersion: min(maxVersion, tls.VersionTLS12), MaxVersion: maxVersion},
			ForceAttemptHTTP2: h2,
			DisableKeepAlives: true,
		},
		Timeout: 10 * time.Second,
	}
}

func TestServeHTTP(t *testing.T) {
	f := newFixture(t)
	pub := publish(t, mtasts.ModeTesting)
	s, err := New(t.Context(), Config{
		Domains: []string{"example.test", "Example.ORG."},
		Policy:  pub,
		Certificates: []CertFiles{
			f.valid(t, "test", "mta-sts.example.test"),
			f.valid(t, "org", "*.example.org"),
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := start(t, s)
	const path = mtasts.WellKnownPath
	tests := []struct {
		name   string
		method string
		url    string
		host   string // Host header; the URL's host when empty
		sni    string // the URL's host when empty
		h2     bool
		status int
	}{
		{"STS-05 GET", "GET", "https://mta-sts.example.test" + path, "", "", false, 200},
		{"STS-05 GET over HTTP/2", "GET", "https://mta-sts.example.test" + path, "", "", true, 200},
		{"HEAD", "HEAD", "https://mta-sts.example.test" + path, "", "", false, 200},
		{"wildcard certificate", "GET", "https://mta-sts.example.org" + path, "", "", false, 200},
		{"host with port and in upper case", "GET", "https://MTA-STS.example.test:443" + path, "", "mta-sts.example.test", false, 200},
		{"query ignored", "GET", "https://mta-sts.example.test" + path + "?x=1", "", "", false, 200},
		{"POST", "POST", "https://mta-sts.example.test" + path, "", "", false, 405},
		{"PUT", "PUT", "https://mta-sts.example.test" + path, "", "", false, 405},
		{"DELETE", "DELETE", "https://mta-sts.example.test" + path, "", "", false, 405},
		{"OPTIONS", "OPTIONS", "https://mta-sts.example.test" + path, "", "", false, 405},
		{"wrong method and path: the path decides", "POST", "https://mta-sts.example.test/", "", "", false, 404},
		{"root", "GET", "https://mta-sts.example.test/", "", "", false, 404},
		{"trailing slash, no redirect (STS-07)", "GET", "https://mta-sts.example.test" + path + "/", "", "", false, 404},
		{"double slash, no redirect (STS-07)", "GET", "https://mta-sts.example.test/" + path, "", "", false, 404},
		{"dot segments, no redirect (STS-07)", "GET", "https://mta-sts.example.test/.well-known/../.well-known/mta-sts.txt", "", "", false, 404},
		{"path is case-sensitive", "GET", "https://mta-sts.example.test/.well-known/MTA-STS.txt", "", "", false, 404},
		{"other file", "GET", "https://mta-sts.example.test/.well-known/security.txt", "", "", false, 404},
		{"unknown host", "GET", "https://mta-sts.example.test" + path, "mta-sts.other.test", "", false, 404},
		{"bare domain as host", "GET", "https://mta-sts.example.test" + path, "example.test", "", false, 404},
		{"host of another domain than the SNI", "GET", "https://mta-sts.example.org" + path, "mta-sts.example.test", "mta-sts.example.org", false, 421},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := f.client(addr, tt.sni, tt.h2, 0).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.h2 && resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS state %+v", resp.TLS)
			}
			if resp.Header.Get("Location") != "" {
				t.Errorf("Location header %q: the server must never redirect", resp.Header.Get("Location"))
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
			if tt.status != 200 {
				return
			}
			// STS-08: the media type is text/plain, and what is served parses with the
			// sender's strict parser to the published values.
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if resp.Header.Get("Content-Length") != "" && resp.ContentLength != int64(len(pub.Text)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(pub.Text))
			}
			if tt.method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD body %q", body)
				}
				return
			}
			if string(body) != pub.Text {
				t.Errorf("body %q, want %q", body, pub.Text)
			}
			if strings.Count(string(body), "\n") != strings.Count(string(body), "\r\n") {
				t.Errorf("body %q: lines must end in CRLF", body)
			}
			if p, err := mtasts.ParsePolicy(body); err != nil || p.Mode != mtasts.ModeTesting {
				t.Errorf("served policy: %+v, %v", p, err)
			}
		})
	}
}

// A client that names no policy host in SNI, or none at all, or offers less than TLS
// 1.2, gets no certificate: the handshake fails before any HTTP.
func TestHandshakeRefused(t *testing.T) {
	f := newFixture(t)
	logs := &logBuffer{}
	s, err := New(t.Context(), Config{
		Domains:      []string{"example.test"},
		Policy:       publish(t, mtasts.ModeTesting),
		Certificates: []CertFiles{f.valid(t, "test", "mta-sts.example.test", "mx.example.test")},
	}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	addr := start(t, s)
	tests := []struct {
		name, url, sni string
		maxVersion     uint16
	}{
		// mx.example.test is in the certificate, but it is not a policy host.
		{"name in the certificate that is not a policy host", "https://mx.example.test" + mtasts.WellKnownPath, "", 0},
		{"policy host of another domain", "https://mta-sts.other.test" + mtasts.WellKnownPath, "", 0},
		{"no SNI (address literal)", "https://127.0.0.1" + mtasts.WellKnownPath, "", 0},
		{"TLS 1.1", "https://mta-sts.example.test" + mtasts.WellKnownPath, "", tls.VersionTLS11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(addr, tt.sni, false, tt.maxVersion)
			c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // the server must refuse, not the client
			resp, err := c.Get(tt.url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request succeeded with status %d; want a failed handshake", resp.StatusCode)
			}
			// The refusal comes from the server, as a TLS alert.
			if !strings.Contains(err.Error(), "remote error: tls:") {
				t.Errorf("error %v: want the server's TLS alert", err)
			}
		})
	}
	if recs := logs.records("tls handshake refused"); len(recs) < 3 || recs[0]["reason"] != "not a policy host" {
		t.Errorf("handshake refusals logged: %v", recs)
	}
}

// The sender's own fetcher (STS-05 … STS-09) gets the policy and it parses to the
// published values: the server and the client agree on the protocol.
func TestFetchedByMTASTSClient(t *testing.T) {
	f := newFixture(t)
	pub := publish(t, mtasts.ModeEnforce)
	s, err := New(t.Context(), Config{Domains: []string{"example.test"}, Policy: pub,
		Certificates: []CertFiles{f.valid(t, "test", "mta-sts.example.test")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := start(t, s)
	fetcher := &mtasts.HTTPFetcher{RootCAs: f.pool, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	body, err := fetcher.Fetch(t.Context(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := mtasts.ParsePolicy(body)
	if err != nil || p.Mode != mtasts.ModeEnforce || !p.Matches("mx.example.test") || p.MaxAge != pub.Policy.MaxAge || p.Raw != pub.Text {
		t.Errorf("fetched %+v, %v", p, err)
	}
	// A domain that is not local: the handshake fails, which the fetcher reports.
	if _, err := fetcher.Fetch(t.Context(), "other.test"); err == nil {
		t.Error("fetch for a domain that is not served succeeded")
	}
}

func TestNewErrors(t *testing.T) {
	f := newFixture(t)
	pub := publish(t, mtasts.ModeTesting)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no certificate", Config{Domains: []string{"example.test"}, Policy: pub}, "no certificate"},
		{"no policy", Config{Domains: []string{"example.test"}, Certificates: []CertFiles{f.valid(t, "a", "mta-sts.example.test")}}, "no policy"},
		{"missing file", Config{Domains: []string{"example.test"}, Policy: pub,
			Certificates: []CertFiles{{CertFile: filepath.Join(f.dir, "none.pem"), KeyFile: filepath.Join(f.dir, "none.key")}}}, "none.pem"},
		{"key of another certificate", Config{Domains: []string{"example.test"}, Policy: pub,
			Certificates: []CertFiles{{CertFile: f.valid(t, "b", "mta-sts.example.test").CertFile, KeyFile: f.valid(t, "c", "mta-sts.example.test").KeyFile}}}, "b.pem"},
		{"certificate for no policy host", Config{Domains: []string{"example.test"}, Policy: pub,
			Certificates: []CertFiles{f.valid(t, "d", "mx.example.test", "*.mta-sts.example.test")}}, "no certificate names a policy host (mta-sts.example.test)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A local domain that no certificate covers is reported by Coverage and logged; the
// others are served. Of two certificates for a host, one valid now beats an expired one
// and the later expiry wins among valid ones.
func TestCoverage(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	expired := f.issue(t, "expired", []string{"mta-sts.example.test"}, now.Add(-48*time.Hour), now.Add(-time.Hour))
	short := f.issue(t, "short", []string{"mta-sts.example.org"}, now.Add(-time.Hour), now.Add(time.Hour))
	current := f.valid(t, "current", "mta-sts.example.test", "mta-sts.example.org")
	logs := &logBuffer{}
	s, err := New(t.Context(), Config{
		Domains:      []string{"example.test", "example.org", "uncovered.test"},
		Policy:       publish(t, mtasts.ModeTesting),
		Certificates: []CertFiles{expired, short, current},
	}, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Coverage()
	want := map[string]string{"example.org": current.CertFile, "example.test": current.CertFile, "uncovered.test": ""}
	if len(got) != len(want) {
		t.Fatalf("coverage %+v", got)
	}
	for _, c := range got {
		if c.CertFile != want[c.Domain] || c.Host != "mta-sts."+c.Domain {
			t.Errorf("coverage of %s: %+v, want cert %q", c.Domain, c, want[c.Domain])
		}
	}
	warn := logs.records("no certificate for the mta-sts policy host; serve this domain's policy elsewhere or add a certificate")
	if len(warn) != 1 || warn[0]["domain"] != "uncovered.test" || warn[0]["level"] != "WARN" {
		t.Errorf("warnings: %v", warn)
	}
	if served := logs.records("serving mta-sts policy"); len(served) != 2 {
		t.Errorf("serving records: %v", served)
	}
}

// Update (SIGHUP) swaps the policy and rereads the certificate files; a configuration
// that cannot be served leaves the running one in place.
func TestUpdate(t *testing.T) {
	f := newFixture(t)
	files := f.valid(t, "test", "mta-sts.example.test")
	testingPub := publish(t, mtasts.ModeTesting)
	s, err := New(t.Context(), Config{Domains: []string{"example.test"}, Policy: testingPub, Certificates: []CertFiles{files}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := start(t, s)
	fetch := func() (string, *x509.Certificate) {
		t.Helper()
		resp, err := f.client(addr, "", false, 0).Get("https://mta-sts.example.test" + mtasts.WellKnownPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.TLS.PeerCertificates[0]
	}
	body, cert1 := fetch()
	if body != testingPub.Text {
		t.Fatalf("before: %q", body)
	}

	f.valid(t, "test", "mta-sts.example.test") // renewed in place
	enforce := publish(t, mtasts.ModeEnforce)
	if err := s.Update(t.Context(), Config{Domains: []string{"example.test"}, Policy: enforce, Certificates: []CertFiles{files}}); err != nil {
		t.Fatal(err)
	}
	body, cert2 := fetch()
	if body != enforce.Text || enforce.ID == testingPub.ID {
		t.Errorf("after Update: %q", body)
	}
	if cert2.SerialNumber.Cmp(cert1.SerialNumber) == 0 {
		t.Error("Update did not reread the certificate files")
	}

	bad := f.valid(t, "bad", "mx.example.test")
	if err := s.Update(t.Context(), Config{Domains: []string{"example.test"}, Policy: testingPub, Certificates: []CertFiles{bad}}); err == nil {
		t.Error("Update to a certificate for no policy host succeeded")
	}
	if body, _ := fetch(); body != enforce.Text {
		t.Errorf("after a failed Update the served policy changed: %q", body)
	}
}

// Watch puts a renewed certificate in service without a SIGHUP, also for a
// certificate added by Update.
func TestWatch(t *testing.T) {
	f := newFixture(t)
	a := f.valid(t, "a", "mta-sts.example.test")
	pub := publish(t, mtasts.ModeTesting)
	s, err := New(t.Context(), Config{Domains: []string{"example.test", "example.org"}, Policy: pub, Certificates: []CertFiles{a}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	serial := func(host string) string {
		_, c := s.state.Load().certFor(host, time.Now())
		if c == nil {
			return ""
		}
		return c.Leaf.SerialNumber.String()
	}
	waitChange := func(host, old string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if now := serial(host); now != "" && now != old {
				return
			}
		}
		t.Fatalf("certificate for %s not replaced", host)
	}
	before := serial("mta-sts.example.test")
	f.valid(t, "a", "mta-sts.example.test")
	waitChange("mta-sts.example.test", before)

	b := f.valid(t, "b", "mta-sts.example.org")
	if err := s.Update(t.Context(), Config{Domains: []string{"example.test", "example.org"}, Policy: pub, Certificates: []CertFiles{a, b}}); err != nil {
		t.Fatal(err)
	}
	before = serial("mta-sts.example.org")
	f.valid(t, "b", "mta-sts.example.org")
	waitChange("mta-sts.example.org", before)
}

// FuzzServeHTTP: whatever the method, host and path, the handler answers 200 only with
// the policy, for GET or HEAD of the well-known path on a policy host of a local
// domain; otherwise 404, 405 or 421, and never a redirect.
func FuzzServeHTTP(f *testing.F) {
	f.Add("GET", "mta-sts.example.test", mtasts.WellKnownPath, "mta-sts.example.test")
	f.Add("HEAD", "MTA-STS.EXAMPLE.TEST.:443", mtasts.WellKnownPath, "mta-sts.example.test")
	f.Add("POST", "mta-sts.example.test", "/", "")
	f.Add("GET", "[::1]:443", mtasts.WellKnownPath+"/", "x")
	f.Add("GET", "mta-sts.example.test:", "//.well-known/mta-sts.txt", "mta-sts.example.test")
	pub, err := mtasts.Publish(mtasts.Policy{Mode: mtasts.ModeTesting, MX: []string{"mx.example.test"}, MaxAge: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler), now: time.Now}
	s.state.Store(&state{policy: pub, hosts: map[string]string{"mta-sts.example.test": "example.test"}})
	f.Fuzz(func(t *testing.T, method, host, path, sni string) {
		req := httptest.NewRequest("GET", "https://mta-sts.example.test/", nil)
		req.Method, req.Host, req.URL.Path = method, host, path
		req.TLS = &tls.ConnectionState{ServerName: sni}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		res := rec.Result()
		body := rec.Body.String()
		want := http.StatusOK
		switch h := requestHost(host); {
		case h != "mta-sts.example.test":
			want = http.StatusNotFound
		case !strings.EqualFold(strings.TrimSuffix(sni, "."), h):
			want = http.StatusMisdirectedRequest
		case path != mtasts.WellKnownPath:
			want = http.StatusNotFound
		case method != "GET" && method != "HEAD":
			want = http.StatusMethodNotAllowed
		}
		if res.StatusCode != want || res.Header.Get("Location") != "" {
			t.Fatalf("%s %q host %q sni %q: status %d (Location %q), want %d", method, path, host, sni, res.StatusCode, res.Header.Get("Location"), want)
		}
		if want == http.StatusOK {
			if res.Header.Get("Content-Type") != "text/plain" || (method == "GET") != (body == pub.Text) {
				t.Fatalf("200 with Content-Type %q body %q", res.Header.Get("Content-Type"), body)
			}
		} else if strings.Contains(body, "STSv1") {
			t.Fatalf("status %d leaks the policy", res.StatusCode)
		}
	})
}

// Idle connections beyond MaxConns wait unserved: a flood cannot take the process's
// file descriptors, and service resumes when they go.
func TestConnectionLimit(t *testing.T) {
	f := newFixture(t)
	s, err := New(t.Context(), Config{Domains: []string{"example.test"}, Policy: publish(t, mtasts.ModeTesting),
		Certificates: []CertFiles{f.valid(t, "test", "mta-sts.example.test")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := start(t, s)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	url := "https://mta-sts.example.test" + mtasts.WellKnownPath
	cl := f.client(addr, "", false, tls.VersionTLS13)
	cl.Timeout = 300 * time.Millisecond
	if resp, err := cl.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("served beyond MaxConns idle connections")
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	cl.Timeout = 10 * time.Second
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("after the idle connections closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}
