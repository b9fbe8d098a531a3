// Package policyserver serves mxward's own MTA-STS policy over HTTPS, at
// https://mta-sts.<domain>/.well-known/mta-sts.txt for each local domain (RFC 8461
// §3.2), so that the policy senders fetch is always the one whose id
// `mxward dns-records` prints.
//
// The server answers nothing but the policy: GET or HEAD of exactly
// /.well-known/mta-sts.txt on a policy host of a local domain, as text/plain with CRLF
// line endings (RFC 8461 §3.3). Any other path or host gets 404, any other method 405,
// and it never redirects, since senders must not follow redirects (STS-07). TLS 1.2 is
// the minimum. The certificate is chosen by the name the client sends in SNI among the
// configured certificates, and a client asking for a name that is not a policy host
// gets no certificate at all, so a scan by address learns nothing.
//
// The certificate files are watched like the SMTP certificate (internal/tlscert) and
// reread on Update, which the daemon calls on SIGHUP.
package policyserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"mxward/internal/mtasts"
	"mxward/internal/tlscert"
)

// Limits of the HTTP server. A policy fetch is one small request; these bound what a
// slow or hostile client can hold.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 20 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// CertFiles names one certificate of the policy hosts: a PEM chain, leaf first, and
// its private key.
type CertFiles struct {
	CertFile, KeyFile string
}

// Config is what the server serves.
type Config struct {
	// Domains are the local domains; the policy is served for mta-sts.<domain>.
	Domains []string
	// Policy is the policy text and id (mtasts.Publish), the same for every domain.
	Policy *mtasts.Publication
	// Certificates are the certificates of the policy hosts, tried in order.
	Certificates []CertFiles
}

// Coverage says which certificate, if any, is presented for one domain's policy host.
type Coverage struct {
	Domain string // the local domain
	Host   string // mta-sts.<domain>
	// CertFile is the certificate presented for Host, or "" when no configured
	// certificate names it: senders then cannot fetch this domain's policy from
	// mxward, and it must be served elsewhere.
	CertFile string
	NotAfter time.Time // of that certificate
}

// Server serves the policy. Its methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	now   func() time.Time
	state atomic.Pointer[state]

	http *http.Server

	mu sync.Mutex // serializes Update and Watch's restarts
	// changed is closed and replaced when Update installs a new state.
	changed chan struct{}
}

// state is what one configuration serves; Update swaps it whole, so a request sees
// either the old or the new policy, hosts and certificates, never a mix.
type state struct {
	policy *mtasts.Publication
	// hosts maps each policy host mta-sts.<domain> to its domain.
	hosts map[string]string
	certs []*certEntry
}

type certEntry struct {
	files CertFiles
	store *tlscert.Store
}

// New loads the certificates and returns a server for cfg; it does not listen. It fails
// when a certificate cannot be loaded, or when none covers the policy host of any
// domain (a listener that can complete no handshake a sender would accept). A domain
// left uncovered while others are covered is logged as a warning: its policy may be
// served by another host.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, now: time.Now, changed: make(chan struct{})}
	st, err := s.load(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	s.logCoverage(st)
	s.http = &http.Server{
		Handler:           s,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Handshake failures from scanners and the like go to debug.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// load builds the state for cfg. Certificate pairs already in prev are reread rather
// than loaded anew, so their watchers and log history carry over.
func (s *Server) load(ctx context.Context, cfg Config, prev *state) (*state, error) {
	if cfg.Policy == nil {
		return nil, errors.New("mta-sts policy server: no policy")
	}
	if len(cfg.Certificates) == 0 {
		return nil, errors.New("mta-sts policy server: no certificate")
	}
	st := &state{policy: cfg.Policy, hosts: make(map[string]string, len(cfg.Domains))}
	for _, d := range cfg.Domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		st.hosts["mta-sts."+d] = d
	}
	for _, f := range cfg.Certificates {
		if prev != nil {
			if i := slices.IndexFunc(prev.certs, func(e *certEntry) bool { return e.files == f }); i >= 0 {
				if err := prev.certs[i].store.Reload(); err != nil {
					return nil, fmt.Errorf("mta-sts policy server: certificate %s: %w", f.CertFile, err)
				}
				st.certs = append(st.certs, prev.certs[i])
				continue
			}
		}
		store, err := tlscert.Load(ctx, tlscert.Options{CertFile: f.CertFile, KeyFile: f.KeyFile, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("mta-sts policy server: certificate %s: %w", f.CertFile, err)
		}
		st.certs = append(st.certs, &certEntry{files: f, store: store})
	}
	covered := false
	for _, c := range st.coverage(s.now()) {
		covered = covered || c.CertFile != ""
	}
	if !covered && len(st.hosts) > 0 {
		return nil, fmt.Errorf("mta-sts policy server: no certificate names a policy host (%s)", strings.Join(st.sortedHosts(), ", "))
	}
	return st, nil
}

// Update switches to cfg: a new policy, new domains, and the certificate files reread
// (as on SIGHUP). On error the running state is kept.
func (s *Server) Update(ctx context.Context, cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load(ctx, cfg, s.state.Load())
	if err != nil {
		return err
	}
	s.state.Store(st)
	close(s.changed)
	s.changed = make(chan struct{})
	s.logCoverage(st)
	return nil
}

func (s *Server) logCoverage(st *state) {
	for _, c := range st.coverage(s.now()) {
		if c.CertFile == "" {
			s.log.Warn("no certificate for the mta-sts policy host; serve this domain's policy elsewhere or add a certificate",
				"domain", c.Domain, "host", c.Host)
			continue
		}
		s.log.Info("serving mta-sts policy", "domain", c.Domain, "host", c.Host, "cert_file", c.CertFile,
			"not_after", c.NotAfter, "policy_id", st.policy.ID, "mode", string(st.policy.Policy.Mode))
	}
}

// Coverage reports, for each domain in order of its policy host name, the certificate
// presented for it.
func (s *Server) Coverage() []Coverage {
	return s.state.Load().coverage(s.now())
}

func (st *state) sortedHosts() []string {
	hosts := make([]string, 0, len(st.hosts))
	for h := range st.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return hosts
}

func (st *state) coverage(now time.Time) []Coverage {
	var out []Coverage
	for _, h := range st.sortedHosts() {
		c := Coverage{Domain: st.hosts[h], Host: h}
		if e, cert := st.certFor(h, now); cert != nil {
			c.CertFile, c.NotAfter = e.files.CertFile, cert.Leaf.NotAfter
		}
		out = append(out, c)
	}
	return out
}

// certFor picks the certificate to present for host: of those whose leaf names it (a
// wildcard counts only for one whole left-most label, as clients check, STS-06), one
// valid now before one that is not, then the one that expires last, then the first
// configured. Preferring the later expiry lets a renewed certificate be added next to
// the old one.
func (st *state) certFor(host string, now time.Time) (*certEntry, *tls.Certificate) {
	var (
		best      *certEntry
		bestCert  *tls.Certificate
		bestValid bool
	)
	for _, e := range st.certs {
		c, _ := e.store.GetCertificate(nil)
		if c == nil || c.Leaf == nil || c.Leaf.VerifyHostname(host) != nil {
			continue
		}
		valid := !now.Before(c.Leaf.NotBefore) && !now.After(c.Leaf.NotAfter)
		if best == nil || valid && !bestValid || valid == bestValid && c.Leaf.NotAfter.After(bestCert.Leaf.NotAfter) {
			best, bestCert, bestValid = e, c, valid
		}
	}
	return best, bestCert
}

// getCertificate is tls.Config.GetCertificate: the certificate for the policy host the
// client names. A client that names no policy host, or none at all, gets an error and
// the handshake fails: serving a default certificate would only tell scanners which
// domains this host serves.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	st := s.state.Load()
	if _, ok := st.hosts[name]; !ok {
		s.log.Debug("tls handshake refused", "remote_ip", remoteIP(hello.Conn), "sni", hello.ServerName, "reason", "not a policy host")
		return nil, fmt.Errorf("no MTA-STS policy host %q", hello.ServerName)
	}
	_, cert := st.certFor(name, s.now())
	if cert == nil {
		s.log.Debug("tls handshake refused", "remote_ip", remoteIP(hello.Conn), "sni", hello.ServerName, "reason", "no certificate")
		return nil, fmt.Errorf("no certificate for %q", name)
	}
	return cert, nil
}

// TLSConfig returns the server's TLS settings: TLS 1.2 or later (RFC 8461 §3.3 asks
// for HTTPS as senders use it; STS-19 sets the same floor for SMTP), the certificate
// chosen by SNI, no session tickets (their keys are not rotated), HTTP/2 and HTTP/1.1.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		GetCertificate:         s.getCertificate,
		SessionTicketsDisabled: true,
		NextProtos:             []string{"h2", "http/1.1"},
	}
}

// Serve accepts TLS connections on ln and serves the policy until Shutdown; it returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.ServeTLS(s.limit(ln), "", "")
}

// MaxConns bounds the connections served at once.
const MaxConns = 256

// limit bounds the connections of ln at MaxConns. Senders fetch a policy about once a
// day each; a flood of idle connections must not exhaust the process's file
// descriptors. Connections beyond the limit wait in the kernel's backlog.
func (s *Server) limit(ln net.Listener) net.Listener { return netutil.LimitListener(ln, MaxConns) }

// Shutdown stops accepting connections and waits for requests in progress, until ctx
// is done.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// Watch polls the certificate files every interval until ctx is done and puts a
// changed pair in service, as the SMTP certificate is (tlscert.Store.Watch). It
// follows Update: certificates added are watched, removed ones no longer. Watch
// blocks; run it in its own goroutine.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	for {
		s.mu.Lock()
		st, changed := s.state.Load(), s.changed
		s.mu.Unlock()
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, e := range st.certs {
			wg.Go(func() { e.store.Watch(wctx, interval) })
		}
		select {
		case <-ctx.Done():
		case <-changed:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

// ServeHTTP answers one request: the policy, or why not. Checks run from the outside
// in: the host first (404 for a host that is not a policy host of a local domain),
// then that it is the host the TLS connection was opened for (421), then the path
// (404), then the method (405). Nothing ever redirects (STS-07).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	host := requestHost(r.Host)
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// The policy may change at any time with its id; no cache should keep it.
	h.Set("Cache-Control", "no-store")
	status, reason := http.StatusOK, ""
	switch _, known := st.hosts[host]; {
	case !known:
		status, reason = http.StatusNotFound, "unknown host"
	case r.TLS != nil && !strings.EqualFold(strings.TrimSuffix(r.TLS.ServerName, "."), host):
		// A connection opened for one policy host is not used for another
		// (RFC 9110 §15.5.20).
		status, reason = http.StatusMisdirectedRequest, "host differs from sni"
	case r.URL.Path != mtasts.WellKnownPath:
		status, reason = http.StatusNotFound, "unknown path"
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.Set("Allow", "GET, HEAD")
		status, reason = http.StatusMethodNotAllowed, "method"
	}
	if status != http.StatusOK {
		s.log.Debug("mta-sts request refused", "remote_ip", remoteAddrIP(r.RemoteAddr), "host", r.Host,
			"method", r.Method, "path", r.URL.Path, "status", status, "reason", reason)
		body := http.StatusText(status) + "\n"
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write([]byte(body))
		}
		return
	}
	// RFC 8461 §3.2: media type text/plain. No parameter, since some senders compare
	// the whole header value.
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(st.policy.Text)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte(st.policy.Text))
	}
	s.log.Info("mta-sts policy served", "remote_ip", remoteAddrIP(r.RemoteAddr), "host", host, "domain", st.hosts[host],
		"method", r.Method, "policy_id", st.policy.ID)
}

// requestHost returns the host of a Host header in lower case, without a port or a
// trailing dot.
func requestHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

func remoteIP(c net.Conn) string {
	if c == nil {
		return ""
	}
	return remoteAddrIP(c.RemoteAddr().String())
}

func remoteAddrIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
