// Package smtpserver owns mxward's SMTP listeners (RFC 5321): inbound mail for local
// domains, relay for trusted networks, submission with AUTH after TLS, and local injection
// over a unix socket. Sessions write bodies straight into the spool and answer 250 only
// after the spool's commit, so an acknowledged message is never lost.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"mxward/internal/spool"
)

// Role says what a listener is for; it decides relay and AUTH rules.
type Role string

const (
	// RoleInbound accepts mail for local domains from anyone, and relays only for clients in
	// the trusted networks. Anything else gets 554 5.7.1: never an open relay.
	RoleInbound Role = "inbound"
	// RoleSubmission requires AUTH (offered only under TLS) before MAIL; authenticated
	// users may relay.
	RoleSubmission Role = "submission"
	// RoleLocal is the unix socket used by `mxward sendmail`: local users may send anywhere.
	RoleLocal Role = "local"
)

// TLSMode is how a listener offers TLS.
type TLSMode string

const (
	TLSNone     TLSMode = "none"
	TLSStartTLS TLSMode = "starttls" // RFC 3207
	TLSImplicit TLSMode = "implicit" // RFC 8314 (port 465)
)

// Listener describes one listening socket.
type Listener struct {
	Name string
	Role Role
	TLS  TLSMode
}

// Recipients decides which addresses are local and expands them. It must be cheap and free
// of side effects: it is called for every RCPT.
type Recipients interface {
	// IsLocalDomain reports whether mail for domain is delivered here.
	IsLocalDomain(domain string) bool
	// Expand resolves a local address into final local mailboxes and remote targets
	// (aliases may point elsewhere). It returns ErrNoSuchUser for an unknown address.
	Expand(addr string) (local, remote []string, err error)
	// Postmaster returns the address that the bare "postmaster" recipient (RFC 5321
	// §4.1.1.3) stands for, or "" when there is no local domain.
	Postmaster() string
}

// ErrNoSuchUser is returned by Recipients.Expand for an address that does not exist.
var ErrNoSuchUser = errors.New("no such user")

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	Verify(user, password string) bool
}

// Throttle limits failed AUTH attempts per client address.
type Throttle interface {
	Allowed(ip netip.Addr) bool
	Failure(ip netip.Addr)
	Success(ip netip.Addr)
	Delay(ip netip.Addr) time.Duration
}

// Config is everything a session needs. A new Config can be swapped in with Reload; sessions
// keep the one they started with.
type Config struct {
	Hostname            string
	MaxMessageSize      int64 // bytes of client data (RFC 1870 SIZE)
	MaxRecipients       int
	MaxLineLength       int // DATA text line, including CRLF (RFC 5321 §4.5.3.1.6: at least 1000)
	MaxCommandLength    int // command line including CRLF (RFC 5321 §4.5.3.1.4: at least 512)
	MaxConnections      int
	MaxConnectionsPerIP int
	CommandTimeout      time.Duration
	DataTimeout         time.Duration
	MaxErrors           int
	TrustedNetworks     []netip.Prefix
	TLS                 *tls.Config // nil: no TLS at all
	Recipients          Recipients
	Users               Authenticator // nil: AUTH never succeeds
	AuthThrottle        Throttle      // nil: no throttling
	// Queued, if set, is called after a message was committed, so that delivery can start
	// at once instead of at the next queue scan.
	Queued func(id spool.ID, env *spool.Envelope)
}

// withDefaults fills zero values with RFC-safe defaults.
func (c Config) withDefaults() *Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 50 << 20
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.MaxLineLength < 1000 {
		c.MaxLineLength = 1000
	}
	if c.MaxCommandLength < 512 {
		c.MaxCommandLength = 2048
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1000
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = 20
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Minute
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = 10
	}
	return &c
}

// Server runs SMTP sessions on any number of listeners.
type Server struct {
	store spool.Store
	log   *slog.Logger
	now   func() time.Time
	cfg   atomic.Pointer[Config]

	shutting atomic.Bool
	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	sessions map[*session]struct{}
	perIP    map[netip.Addr]int
	total    int
	wg       sync.WaitGroup
}

// New returns a server that queues into store.
func New(cfg Config, store spool.Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		store:    store,
		log:      log,
		now:      time.Now,
		lns:      make(map[net.Listener]struct{}),
		sessions: make(map[*session]struct{}),
		perIP:    make(map[netip.Addr]int),
	}
	s.cfg.Store(cfg.withDefaults())
	return s
}

// Reload swaps in a new configuration for sessions that start from now on.
func (s *Server) Reload(cfg Config) { s.cfg.Store(cfg.withDefaults()) }

// Config returns the configuration new sessions use.
func (s *Server) Config() *Config { return s.cfg.Load() }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("smtpserver: server closed")

// Serve accepts connections on ln until Shutdown or a permanent accept error.
func (s *Server) Serve(ln net.Listener, l Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// EMFILE and friends: back off instead of spinning or dying.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "listener", l.Name, "error", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startSession(conn, l)
	}
}

// startSession applies the connection limits and runs a session in its own goroutine.
func (s *Server) startSession(conn net.Conn, l Listener) {
	cfg := s.cfg.Load()
	ip := remoteIP(conn)
	s.mu.Lock()
	reject := ""
	switch {
	case s.shutting.Load():
		reject = "421 4.3.2 " + cfg.Hostname + " Service shutting down\r\n"
	case s.total >= cfg.MaxConnections:
		reject = "421 4.7.0 " + cfg.Hostname + " Too many connections, try again later\r\n"
	case l.Role != RoleLocal && s.perIP[ip] >= cfg.MaxConnectionsPerIP:
		reject = "421 4.7.0 " + cfg.Hostname + " Too many connections from your address, try again later\r\n"
	}
	if reject != "" {
		s.mu.Unlock()
		s.log.Warn("connection refused", "listener", l.Name, "remote_ip", ip.String(), "reason", reject[10:len(reject)-2])
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if l.TLS != TLSImplicit {
				conn.Write([]byte(reject))
			}
			conn.Close()
		}()
		return
	}
	s.total++
	s.perIP[ip]++
	sess := newSession(s, cfg, conn, l, ip)
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.total--
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
		sess.run()
	}()
}

// Shutdown stops accepting, tells idle sessions 421 and closes them, lets sessions in the
// middle of a transaction finish it, and waits for all of them until ctx is done; then it
// closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
	for sess := range s.sessions {
		sess.wakeIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			sess.raw.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{} // unix socket
}

func (c *Config) trusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range c.TrustedNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
