package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mxward/internal/auth"
	"mxward/internal/config"
	"mxward/internal/dane"
	"mxward/internal/delivery"
	"mxward/internal/local"
	"mxward/internal/mtasts"
	"mxward/internal/mtasts/policyserver"
	"mxward/internal/policylist"
	"mxward/internal/route"
	"mxward/internal/smtpclient"
	"mxward/internal/smtpserver"
	"mxward/internal/spool"
	"mxward/internal/tlscert"
	"mxward/internal/tlspolicy"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: $MXWARD_CONFIG, "+systemConfig+" if present, else embedded defaults)")
	logFormat := fs.String("log-format", "", "log format: text or json (overrides log_format)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 64, err: errors.New("")}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 64, err: fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}
	cfg, source, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	switch *logFormat {
	case "":
	case "text", "json":
		cfg.LogFormat = config.LogFormat(*logFormat)
	default:
		return &exitError{code: 64, err: fmt.Errorf("serve: --log-format must be text or json, not %q", *logFormat)}
	}
	log := newLogger(stderr, cfg)
	log.Info("starting", "version", versionString(), "config", source, "hostname", cfg.Hostname, "data_dir", cfg.DataDir)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Signals are caught before "ready" is logged: a SIGHUP sent the moment the server
	// says it is ready must reload, not kill it (SIGHUP's default action).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	d, err := startDaemon(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "error", err)
		return &exitError{code: 1, err: err}
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			d.reload(*cfgPath, source)
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	return d.shutdown(30 * time.Second)
}

func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemon is a running mxward: listeners, the spool and the delivery workers.
type daemon struct {
	log    *slog.Logger
	cfg    *config.Config
	store  *spool.FileStore
	certs  *tlscert.Store
	srv    *smtpserver.Server
	local  *delivery.Local
	remote *delivery.Remote
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sock   string
	reg    *prometheus.Registry
	admin  *http.Server

	resolver *resolver
	sts      *mtasts.Manager    // nil when MTA-STS is disabled
	list     policylist.Current // the static policy list in force, swapped on reload

	stsPolicy *policyserver.Server // serves our own MTA-STS policy; nil when mta_sts_policy.listen is empty
	dkim      *dkimSigner          // nil when no [[dkim]] key was configured at start
}

func startDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) (*daemon, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	store, err := spool.Open(ctx, filepath.Join(cfg.DataDir, "spool"), spool.Options{Logger: log.With("component", "spool")})
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	d := &daemon{log: log, cfg: cfg, store: store}
	ok := false
	defer func() {
		if !ok {
			store.Close()
		}
	}()

	d.certs, err = tlscert.Load(ctx, tlscert.Options{
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, DataDir: cfg.DataDir,
		Hostname: cfg.Hostname, Logger: log.With("component", "tls"),
	})
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}

	transport, name, err := localTransport(cfg)
	if err != nil {
		return nil, err
	}
	scfg, err := d.serverConfig(cfg)
	if err != nil {
		return nil, err
	}
	retry := delivery.Retry{First: time.Duration(cfg.Delivery.RetryFirst), Max: time.Duration(cfg.Delivery.RetryMax),
		Lifetime: time.Duration(cfg.Delivery.MessageLifetime)}
	bouncer := &delivery.Bouncer{
		Store: store, Hostname: cfg.Hostname, Log: log.With("component", "dsn"),
		IsLocal: func(addr string) bool {
			i := strings.LastIndexByte(addr, '@')
			// The server's current configuration: a reload may add local domains.
			return i >= 0 && d.srv.Config().Recipients.IsLocalDomain(strings.ToLower(addr[i+1:]))
		},
		Queued: func(local bool) {
			if local {
				d.local.Kick()
			} else {
				d.remote.Kick()
			}
		},
	}
	d.local = &delivery.Local{
		Store: store, Transport: transport, Name: name, Separator: cfg.Local.SubaddressSeparator,
		Log: log.With("component", "local"), Retry: retry, Bouncer: bouncer,
		DelayWarning: time.Duration(cfg.Delivery.DelayWarning),
	}
	d.resolver, err = newResolver(cfg, log.With("component", "dns"))
	if err != nil {
		return nil, err
	}
	d.remote, err = newRemote(cfg, d.resolver, store, retry, bouncer, log.With("component", "delivery"))
	if err != nil {
		return nil, err
	}
	if d.dkim, d.sts, err = outboundPolicies(cfg, d.resolver, d.remote, &d.list, log); err != nil {
		return nil, err
	}
	d.srv = smtpserver.New(scfg, store, log.With("component", "smtp"))
	if cfg.MTASTSPolicy.Listen != "" {
		pcfg, err := policyServerConfig(cfg)
		if err != nil {
			return nil, err
		}
		if d.stsPolicy, err = policyserver.New(ctx, pcfg, log.With("component", "mta-sts-server")); err != nil {
			return nil, err
		}
	}

	// Bind everything before serving anything, so a port conflict fails the start cleanly.
	type bound struct {
		ln net.Listener
		l  smtpserver.Listener
	}
	var lns []bound
	var stsLn net.Listener
	closeAll := func() {
		for _, b := range lns {
			b.ln.Close()
		}
		if stsLn != nil {
			stsLn.Close()
		}
	}
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s (listener %q): %w", l.Address, l.Name, err)
		}
		lns = append(lns, bound{ln, smtpserver.Listener{Name: l.Name, Role: smtpserver.Role(l.Role), TLS: smtpserver.TLSMode(l.TLS)}})
		log.Info("listening", "listener", l.Name, "address", ln.Addr().String(), "role", string(l.Role), "tls", string(l.TLS))
	}
	if cfg.Sendmail.Socket != "" {
		ln, err := listenUnix(cfg.Sendmail.Socket)
		if err != nil {
			closeAll()
			return nil, err
		}
		d.sock = cfg.Sendmail.Socket
		lns = append(lns, bound{ln, smtpserver.Listener{Name: "sendmail", Role: smtpserver.RoleLocal, TLS: smtpserver.TLSNone}})
		log.Info("listening", "listener", "sendmail", "address", cfg.Sendmail.Socket, "role", "local")
	}
	if d.stsPolicy != nil {
		if stsLn, err = net.Listen("tcp", cfg.MTASTSPolicy.Listen); err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s (mta_sts_policy.listen): %w", cfg.MTASTSPolicy.Listen, err)
		}
		log.Info("listening", "listener", "mta-sts", "address", stsLn.Addr().String(), "role", "mta-sts-policy", "tls", "implicit")
	}

	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.local.Metrics = delivery.NewMetrics(d.reg, store)
	d.remote.Metrics = d.local.Metrics
	watch := newResolverWatch(d.resolver, log.With("component", "dns"), d.reg)
	if d.sts != nil {
		sts := d.sts
		d.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mxward_mta_sts_refresh_alerts_total",
			Help: "Refreshes of a cached MTA-STS policy that failed after the alert threshold of consecutive failures (each is also logged at error level).",
		}, func() float64 { return float64(sts.Alerts()) }))
	}
	if cfg.Admin.Address != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on admin address %s: %w", cfg.Admin.Address, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		d.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin listener stopped", "error", err)
			}
		}()
		log.Info("listening", "listener", "admin", "address", ln.Addr().String(), "role", "admin")
	}

	ctx, d.cancel = context.WithCancel(ctx)
	for _, b := range lns {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.srv.Serve(b.ln, b.l); err != nil && !errors.Is(err, smtpserver.ErrServerClosed) {
				log.Error("listener stopped", "listener", b.l.Name, "error", err)
			}
		}()
	}
	d.wg.Add(4)
	go func() { defer d.wg.Done(); watch.run(ctx) }()
	if d.sts != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); refreshMTASTS(ctx, d.sts) }()
	}
	go func() { defer d.wg.Done(); d.local.Run(ctx) }()
	go func() { defer d.wg.Done(); d.remote.Run(ctx) }()
	go func() { defer d.wg.Done(); d.certs.Watch(ctx, 30*time.Second) }()
	if d.stsPolicy != nil {
		d.wg.Add(2)
		go func() {
			defer d.wg.Done()
			if err := d.stsPolicy.Serve(stsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("listener stopped", "listener", "mta-sts", "error", err)
			}
		}()
		go func() { defer d.wg.Done(); d.stsPolicy.Watch(ctx, 30*time.Second) }()
	}
	ok = true
	log.Info("ready")
	return d, nil
}

// listenUnix opens the sendmail socket. Any local user may inject mail, as with Postfix's
// world-writable maildrop, so the socket is mode 0666; the Received header records the
// sender's uid.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create sendmail socket directory: %w", err)
	}
	// A socket left by a previous run that died; refuse to remove anything else.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("sendmail socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("sendmail socket %s is in use: is another mxward running?", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on sendmail socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod sendmail socket: %w", err)
	}
	return ln, nil
}

func localTransport(cfg *config.Config) (delivery.LocalTransport, string, error) {
	switch cfg.Local.Delivery {
	case config.DeliveryLMTP:
		c, err := local.NewLMTP(cfg.Local.LMTP.String(), cfg.Hostname)
		if err != nil {
			return nil, "", fmt.Errorf("local.lmtp: %w", err)
		}
		return c, "lmtp", nil
	default:
		md, err := local.NewMaildir(cfg.Local.Maildir, cfg.Hostname)
		if err != nil {
			return nil, "", fmt.Errorf("local.maildir: %w", err)
		}
		return delivery.MaildirTransport{Maildir: md}, "maildir", nil
	}
}

// serverConfig turns the file's settings into the SMTP server's.
func (d *daemon) serverConfig(cfg *config.Config) (smtpserver.Config, error) {
	mailboxes := map[string][]string{}
	for _, m := range cfg.Local.Mailboxes {
		if i := strings.LastIndexByte(m, '@'); i > 0 {
			dom := strings.ToLower(m[i+1:])
			mailboxes[dom] = append(mailboxes[dom], m[:i])
		}
	}
	res, err := local.NewResolver(local.Config{
		Domains: cfg.Local.Domains, Mailboxes: mailboxes, Aliases: cfg.Local.Aliases,
		CatchAll: cfg.Local.CatchAll, DetailSeparator: cfg.Local.SubaddressSeparator,
	})
	if err != nil {
		return smtpserver.Config{}, err
	}
	users := make([]auth.User, len(cfg.Users))
	for i, u := range cfg.Users {
		users[i] = auth.User{Name: u.Name, PasswordHash: string(u.PasswordHash)}
	}
	us, err := auth.NewUsers(users)
	if err != nil {
		return smtpserver.Config{}, fmt.Errorf("users: %w", err)
	}
	lim := cfg.Limits
	return smtpserver.Config{
		Hostname:            cfg.Hostname,
		MaxMessageSize:      int64(lim.MaxMessageSize),
		MaxRecipients:       lim.MaxRecipients,
		MaxLineLength:       lim.MaxLineLength,
		MaxCommandLength:    lim.MaxCommandLength,
		MaxConnections:      lim.MaxConnections,
		MaxConnectionsPerIP: lim.MaxConnectionsPerIP,
		CommandTimeout:      time.Duration(lim.CommandTimeout),
		DataTimeout:         time.Duration(lim.DataTimeout),
		MaxErrors:           lim.MaxErrors,
		TrustedNetworks:     cfg.Relay.TrustedNetworks,
		TLS:                 d.certs.ServerConfig(uint16(cfg.TLS.MinVersion), cfg.TLS.SessionTickets),
		Recipients:          resolverAdapter{res, cfg.Local.Domains},
		Users:               us,
		AuthThrottle:        auth.NewThrottle(cfg.Auth.MaxFailures, time.Duration(cfg.Auth.FailureWindow), nil),
		Queued: func(id spool.ID, env *spool.Envelope) {
			for _, r := range env.Recipients {
				if r.Local {
					d.local.Kick()
					break
				}
			}
			d.remote.Enqueue(id, env)
		},
	}, nil
}

// resolverAdapter lets the SMTP server ask the local resolver about recipients.
type resolverAdapter struct {
	r       *local.Resolver
	domains []string
}

func (a resolverAdapter) IsLocalDomain(d string) bool { return a.r.IsLocal(d) }

func (a resolverAdapter) Postmaster() string {
	if len(a.domains) == 0 {
		return ""
	}
	return "postmaster@" + a.domains[0]
}

func (a resolverAdapter) Expand(addr string) (loc, remote []string, err error) {
	res, err := a.r.Resolve(addr)
	if errors.Is(err, local.ErrNoSuchUser) {
		return nil, nil, smtpserver.ErrNoSuchUser
	}
	if err != nil {
		return nil, nil, err
	}
	for _, m := range res.Mailboxes {
		loc = append(loc, m.Address())
	}
	return loc, res.Remote, nil
}

// reload rereads the configuration and certificates (SIGHUP). Sessions already open keep
// the settings they started with; listeners and the delivery method need a restart.
func (d *daemon) reload(path, source string) {
	if source == "embedded defaults" {
		path = ""
	} else if path == "" {
		path = source
	}
	cfg := config.Default()
	if path != "" {
		c, err := config.Load(path)
		if err != nil {
			d.log.Error("reload failed, keeping the running configuration", "error", err)
			return
		}
		cfg = c
	}
	if err := d.certs.Reload(); err != nil {
		// The certificate in service stays. Say so loudly: an operator who believes the
		// new key is in service and removes the old TLSA record breaks DANE senders.
		d.log.Error("tls certificate reload failed, keeping current certificate", "component", "tls", "error", err)
	}
	scfg, err := d.serverConfig(cfg)
	if err != nil {
		d.log.Error("reload failed, keeping the running configuration", "error", err)
		return
	}
	if !sameListeners(d.cfg, cfg) || d.cfg.Local.Delivery != cfg.Local.Delivery ||
		d.cfg.Local.Maildir != cfg.Local.Maildir || d.cfg.Local.LMTP != cfg.Local.LMTP || d.cfg.DataDir != cfg.DataDir {
		d.log.Warn("listener, data_dir and local delivery changes take effect after a restart")
	}
	if d.cfg.Pinning != cfg.Pinning {
		d.log.Warn("[pinning] changes take effect after a restart")
	}
	if !sameRouting(d.cfg, cfg) {
		d.log.Warn("delivery routing and [dns] changes (resolvers, dns mode, trust anchors, smarthost, transports, limits) take effect after a restart; tls_level and tls_policy apply now")
	}
	policies, err := tlsPolicies(cfg.Delivery.TLSPolicy)
	if err != nil {
		d.log.Error("reload failed, keeping the running configuration", "error", err)
		return
	}
	if cfg.List.File != d.cfg.List.File || cfg.List.File != "" {
		list, err := installPolicyList(cfg, time.Now(), d.log.With("component", "policy-list"))
		if err != nil {
			d.log.Error("reload failed, keeping the running configuration", "error", err)
			return
		}
		d.list.Store(list)
	}
	if !d.reloadPolicyServer(cfg) {
		return
	}
	switch {
	case d.dkim != nil:
		// Keys rotate without a restart; a key that cannot be loaded keeps the old ones.
		if err := d.dkim.reload(cfg); err != nil {
			d.log.Error("reload failed, keeping the running configuration", "error", err)
			return
		}
	case len(cfg.DKIM) > 0:
		d.log.Warn("dkim signing was off at start; [[dkim]] keys take effect after a restart")
	}
	d.srv.Reload(scfg)
	d.remote.SetPolicies(tlspolicy.Level(cfg.Delivery.TLSLevel), policies)
	d.cfg = cfg
	d.log.Info("configuration reloaded", "config", path)
}

// reloadPolicyServer gives the MTA-STS policy server the reloaded policy, domains and
// certificates, and says when the policy id changed, since the _mta-sts TXT record
// must then change too (RFC 8461 §3.1). It reports false, having logged why, when the
// new configuration cannot be served.
func (d *daemon) reloadPolicyServer(cfg *config.Config) bool {
	if cfg.MTASTSPolicy.Listen != d.cfg.MTASTSPolicy.Listen {
		d.log.Warn("mta_sts_policy.listen changes take effect after a restart")
	}
	oldPub, err1 := d.cfg.MTASTSPublication()
	newPub, err2 := cfg.MTASTSPublication()
	if err2 != nil {
		d.log.Error("reload failed, keeping the running configuration", "error", err2)
		return false
	}
	// A policy server that is to stop keeps its last state until the restart.
	if d.stsPolicy != nil && cfg.MTASTSPolicy.Listen != "" {
		pcfg, err := policyServerConfig(cfg)
		if err == nil {
			err = d.stsPolicy.Update(context.Background(), pcfg)
		}
		if err != nil {
			d.log.Error("reload failed, keeping the running configuration", "error", err)
			return false
		}
	}
	if err1 == nil && oldPub.ID != newPub.ID {
		d.log.Warn("mta-sts policy changed: publish the new id in the _mta-sts TXT records (mxward dns-records)",
			"component", "mta-sts-server", "policy_id", newPub.ID, "mode", string(newPub.Policy.Mode))
	}
	return true
}

func sameListeners(a, b *config.Config) bool {
	if len(a.Listeners) != len(b.Listeners) || a.Sendmail.Socket != b.Sendmail.Socket {
		return false
	}
	for i := range a.Listeners {
		if a.Listeners[i] != b.Listeners[i] {
			return false
		}
	}
	return true
}

// shutdown drains sessions (idle ones get 421 at once, transactions may finish), stops the
// workers and closes the spool.
func (d *daemon) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := d.srv.Shutdown(ctx)
	if d.admin != nil {
		d.admin.Shutdown(ctx)
	}
	if d.stsPolicy != nil {
		d.stsPolicy.Shutdown(ctx)
	}
	d.cancel()
	d.wg.Wait()
	if d.sock != "" {
		os.Remove(d.sock)
	}
	if cerr := d.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		d.log.Error("shutdown", "error", err)
		return err
	}
	d.log.Info("stopped")
	return nil
}

// newRemote builds the outbound delivery engine from the [delivery] table.
func newRemote(cfg *config.Config, resolver *resolver, store spool.Store, retry delivery.Retry, b *delivery.Bouncer, log *slog.Logger) (*delivery.Remote, error) {
	dc := cfg.Delivery
	transports := route.Transports{}
	for dom, hop := range dc.Transport {
		n, err := route.ParseNexthop(hop)
		if err != nil {
			return nil, fmt.Errorf("delivery.transport.%q: %w", dom, err)
		}
		transports[dom] = n
	}
	if dc.Smarthost != "" {
		n, err := route.ParseNexthop(dc.Smarthost)
		if err != nil {
			return nil, fmt.Errorf("delivery.smarthost: %w", err)
		}
		transports["*"] = n
	}
	family := map[string]route.Family{"ipv6": route.PreferIPv6, "ipv4": route.PreferIPv4,
		"ipv6-only": route.IPv6Only, "ipv4-only": route.IPv4Only}[dc.AddressPreference]
	policies, err := tlsPolicies(dc.TLSPolicy)
	if err != nil {
		return nil, err
	}
	router := delivery.DNSRouter(resolver, route.Options{
		Family: family, MaxAddresses: dc.AddressLimit, Transport: transports.Lookup,
		Self: route.SelfSet([]string{cfg.Hostname}, selfAddrs(cfg.Listeners)), Logger: log,
	})
	if dc.SmarthostUser != "" {
		pw, err := os.ReadFile(dc.SmarthostPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("delivery.smarthost_password_file: %w", err)
		}
		creds := &smtpclient.Credentials{User: dc.SmarthostUser, Password: strings.TrimRight(string(pw), "\r\n")}
		// The login goes to the smarthost only, never to a per-domain transport.
		viaSmarthost := func(domain string) bool {
			n, ok := transports.Lookup(domain)
			return ok && n == transports["*"]
		}
		router = delivery.WithCredentials(router, viaSmarthost, creds)
	}
	digests, err := dane.ParseDigests(dc.DANEDigests)
	if err != nil {
		return nil, fmt.Errorf("delivery.dane_digests: %w", err)
	}
	return &delivery.Remote{
		DANEDigests:  digests,
		Store:        store,
		Route:        router,
		Hostname:     cfg.Hostname,
		DefaultLevel: tlspolicy.Level(dc.TLSLevel),
		Policies:     policies,
		Retry:        retry,
		DelayWarning: time.Duration(dc.DelayWarning),
		MaxConns:     dc.MaxConnections,
		MaxPerDomain: dc.MaxConnectionsPerDomain,
		MaxPerConn:   dc.MaxMessagesPerConnection,
		Timeouts:     smtpclient.Timeouts{Connect: time.Duration(dc.ConnectTimeout)},
		// Postfix's smtp_connection_cache_time_limit: an open session waits this long
		// for the destination's next message.
		Linger:  2 * time.Second,
		Bouncer: b,
		Log:     log,
	}, nil
}

// outboundPolicies gives remote what decides and shapes its deliveries besides the
// TLS level: DKIM signing, the MTA-STS manager, the static policy list (installed into
// list, which reload swaps) and the pin store. serve and lab build their delivery
// engines with it.
func outboundPolicies(cfg *config.Config, res *resolver, remote *delivery.Remote, list *policylist.Current, log *slog.Logger) (*dkimSigner, *mtasts.Manager, error) {
	signer, err := newSigner(cfg, log.With("component", "dkim"))
	if err != nil {
		return nil, nil, err
	}
	if signer != nil {
		remote.Sign = signer.sign
	}
	sts, err := newMTASTS(cfg, res, log.With("component", "mta-sts"))
	if err != nil {
		return nil, nil, err
	}
	if sts != nil {
		remote.MTASTS = sts.Lookup
		remote.MTASTSRecheck = sts.Recheck
	}
	l, err := installPolicyList(cfg, time.Now(), log.With("component", "policy-list"))
	if err != nil {
		return nil, nil, err
	}
	list.Store(l)
	remote.PolicyList = list.Lookup
	if cfg.Pinning.Enabled {
		pins, err := openPins(cfg, log.With("component", "pin"), true)
		if err != nil {
			return nil, nil, err
		}
		remote.Pins = pins
	}
	return signer, sts, nil
}

// tlsPolicies parses the delivery.tls_policy table.
func tlsPolicies(m map[string]string) (tlspolicy.Table, error) {
	t := tlspolicy.Table{}
	for dom, v := range m {
		p, err := tlspolicy.ParsePolicy(v)
		if err != nil {
			return nil, fmt.Errorf("delivery.tls_policy.%q: %w", dom, err)
		}
		t[dom] = p
	}
	return t, nil
}

// sameRouting reports whether the [delivery] settings that are fixed at start-up agree.
func sameRouting(a, b *config.Config) bool {
	x, y := a.Delivery, b.Delivery
	x.TLSLevel, y.TLSLevel, x.TLSPolicy, y.TLSPolicy = "", "", nil, nil
	return reflect.DeepEqual(x, y) && reflect.DeepEqual(a.DNS, b.DNS)
}

// selfAddrs are the addresses at which this server is an MX host, for mail-loop
// detection (MX-11). Only a listener on port 25 can be reached as an MX host: another
// port on the same address (a test, a second instance) is not this server.
func selfAddrs(ls []config.Listener) []netip.Addr {
	var out []netip.Addr
	for _, l := range ls {
		if ap, err := netip.ParseAddrPort(l.Address); err == nil && ap.Port() == 25 && !ap.Addr().IsUnspecified() {
			out = append(out, ap.Addr())
		}
	}
	return out
}
