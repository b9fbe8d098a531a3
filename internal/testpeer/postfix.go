package testpeer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// startAttempts bounds retries when the chosen port is taken between
	// picking it and Postfix binding it.
	startAttempts = 3
	// readyTimeout bounds the wait for the SMTP banner after starting.
	readyTimeout = 20 * time.Second
	// commandTimeout bounds each Postfix command (check, stop, sendmail, ...).
	commandTimeout = 60 * time.Second
	// stopTimeout bounds the wait for the master to exit after "postfix stop"
	// before the harness kills it.
	stopTimeout = 10 * time.Second
	// pollInterval is how often log files, Maildirs and the queue are polled.
	pollInterval = 50 * time.Millisecond
)

// errPortInUse means the master could not bind its SMTP port.
var errPortInUse = errors.New("port already in use")

// Postfix is a running private Postfix instance. Its methods may be called from
// the test's goroutine and from goroutines the test waits for.
type Postfix struct {
	opts   PostfixOptions
	layout instanceLayout
	cert   *Cert
	addr   string

	cmd       *exec.Cmd     // "postfix start-fg", parent of the master
	done      chan struct{} // closed once cmd has been waited for
	waitErr   error         // cmd's exit status; read only after done
	masterPID int
}

// StartPostfix starts a private Postfix instance in a new temporary directory and
// returns once its SMTP server answers on 127.0.0.1. The instance is stopped when
// the test ends, and if the test failed its maillog is written to the test log.
// The test is skipped or failed (see RequireTool) when Postfix is not installed or
// the test does not run as root.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	p := newPostfix(t, opts)
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err == nil {
			err = p.start(port)
		}
		if err == nil {
			break
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			continue
		}
		t.Fatalf("start postfix in %s: %v", p.layout.dir, err)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// newPostfix sets up and checks an instance without starting it.
func newPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	if !supported {
		unavailable(t, "private Postfix instances are only supported on Linux")
	}
	RequireTool(t, PostfixPath)
	if os.Geteuid() != 0 {
		unavailable(t, "private Postfix instances need root")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("start postfix: %v", err)
	}

	dir := t.TempDir()
	p := &Postfix{opts: opts, layout: newLayout(dir)}
	if err := p.prepare(); err != nil {
		t.Fatalf("start postfix in %s: %v", dir, err)
	}
	// Registered before the stop, so it runs after it and the log is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfix in %s (%s) maillog:\n%s", dir, p.addr, p.Log())
		}
	})
	if out, err := p.command(PostfixPath, "-c", p.layout.configDir, "check"); err != nil {
		t.Fatalf("postfix check in %s: %v\n%s", dir, err, out)
	}
	for _, line := range logLines(p.readLog()) {
		if strings.Contains(line, "warning:") {
			t.Logf("postfix check: %s", line)
		}
	}
	return p
}

// prepare creates the instance's directories and configuration files, owned the
// way Postfix insists on.
func (p *Postfix) prepare() error {
	l := p.layout
	if err := makeTraversable(l.dir); err != nil {
		return err
	}
	postfixUser, err := lookupIDs("postfix")
	if err != nil {
		return err
	}
	// virtual(8) refuses uids below virtual_minimum_uid (100), so not root.
	nobody, err := lookupIDs("nobody")
	if err != nil {
		return err
	}
	for _, d := range []string{l.configDir, l.queueDir, l.dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("create instance directory: %w", err)
		}
	}
	if err := os.Chown(l.dataDir, postfixUser.uid, postfixUser.gid); err != nil {
		return fmt.Errorf("hand data_directory to postfix: %w", err)
	}
	if p.opts.Deliver {
		if err := os.Mkdir(l.maildirBase, 0o755); err != nil {
			return fmt.Errorf("create maildir base: %w", err)
		}
		if err := os.Chown(l.maildirBase, nobody.uid, nobody.gid); err != nil {
			return fmt.Errorf("hand maildir base to nobody: %w", err)
		}
		if err := os.WriteFile(l.mailboxMap, mailboxMap(p.opts.Domains), 0o644); err != nil {
			return fmt.Errorf("write mailbox map: %w", err)
		}
	}
	if p.opts.ServerTLS {
		p.cert = p.opts.Cert
		if p.cert == nil {
			if p.cert, err = NewCert(p.opts.Hostname); err != nil {
				return err
			}
		}
		if err := os.WriteFile(l.certFile, p.cert.CertPEM, 0o644); err != nil {
			return fmt.Errorf("write server certificate: %w", err)
		}
		if err := os.WriteFile(l.keyFile, p.cert.KeyPEM, 0o600); err != nil {
			return fmt.Errorf("write server key: %w", err)
		}
	}
	mainCF := renderMainCF(mainCF(p.opts, l, nobody.uid, nobody.gid))
	if err := os.WriteFile(filepath.Join(l.configDir, "main.cf"), mainCF, 0o644); err != nil {
		return fmt.Errorf("write main.cf: %w", err)
	}
	// "postfix check" validates master.cf too, so write one now; start replaces
	// it with the real port.
	if err := os.WriteFile(filepath.Join(l.configDir, "master.cf"), masterCF(0), 0o644); err != nil {
		return fmt.Errorf("write master.cf: %w", err)
	}
	return nil
}

// start writes master.cf for port, starts the master and waits for the SMTP
// banner. On failure it leaves no process running.
func (p *Postfix) start(port int) error {
	l := p.layout
	if err := os.WriteFile(filepath.Join(l.configDir, "master.cf"), masterCF(port), 0o644); err != nil {
		return fmt.Errorf("write master.cf: %w", err)
	}
	// A pid file left by a failed attempt must not be mistaken for this one's.
	if err := os.Remove(filepath.Join(l.queueDir, "pid", "master.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale master pid file: %w", err)
	}
	// "postfix check" has just run; quick-start tells postfix-script to skip
	// repeating it (it removes the file itself).
	if err := os.WriteFile(filepath.Join(l.queueDir, "quick-start"), nil, 0o644); err != nil {
		return fmt.Errorf("mark queue for quick start: %w", err)
	}
	// The master's stdout and stderr go to a file, not a pipe: its children
	// inherit them, and a pipe would keep cmd.Wait waiting for all of them.
	outPath := filepath.Join(l.dir, "start-fg.out")
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open start-up output file: %w", err)
	}
	defer out.Close()

	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.cmd = exec.Command(PostfixPath, "-c", l.configDir, "start-fg")
	p.cmd.Env = commandEnv(l.configDir)
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	p.cmd.SysProcAttr = ownProcessGroup()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("run postfix start-fg: %w", err)
	}
	done := make(chan struct{})
	p.done = done
	go func() {
		p.waitErr = p.cmd.Wait()
		close(done)
	}()

	if err := p.waitReady(port); err != nil {
		p.forceStop()
		output, _ := os.ReadFile(outPath)
		if bytes.Contains(output, []byte("Address already in use")) ||
			strings.Contains(p.readLog(), fmt.Sprintf("port %d: Address already in use", port)) {
			return fmt.Errorf("listen on %s: %w", p.addr, errPortInUse)
		}
		return fmt.Errorf("%w\npostfix start-fg output:\n%s", err, output)
	}
	pid, err := readPIDFile(filepath.Join(l.queueDir, "pid", "master.pid"))
	if err != nil {
		p.forceStop()
		return err
	}
	p.masterPID = pid
	return nil
}

// waitReady waits until the SMTP server on port sends its banner, the master
// exits, or readyTimeout passes.
func (p *Postfix) waitReady(port int) error {
	deadline := time.Now().Add(readyTimeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("postfix start-fg exited before serving SMTP: %v", p.waitErr)
		default:
		}
		if lastErr = readBanner(addr, p.done); lastErr == nil {
			return nil
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("no SMTP banner on %s within %v: %v", addr, readyTimeout, lastErr)
}

// readBanner connects to addr, expects a 220 greeting and says QUIT. It gives up
// as soon as abort is closed: if the master has exited, whatever accepted the
// connection is some other program that will never greet.
func readBanner(addr string, abort <-chan struct{}) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-abort:
			c.Close()
		case <-finished:
		}
	}()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read banner: %w", err)
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("unexpected banner %q", strings.TrimSpace(line))
	}
	_, err = c.Write([]byte("QUIT\r\n"))
	return err
}

// stop shuts the instance down at the end of the test and makes sure none of its
// processes is left behind.
func (p *Postfix) stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		t.Errorf("postfix %s: master exited before the test ended: %v", p.addr, p.waitErr)
	default:
		if out, err := p.command(PostfixPath, "-c", p.layout.configDir, "stop"); err != nil {
			t.Errorf("postfix %s stop: %v\n%s", p.addr, err, out)
		}
		if !p.waitDone(stopTimeout) {
			t.Errorf("postfix %s: master %d still running %v after stop; killing it", p.addr, p.masterPID, stopTimeout)
			p.forceStop()
		}
	}
	// The master signals its children as it exits; give them a moment to go,
	// since the temporary directory cannot be removed under a process that
	// still writes to it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesIn(p.layout.dir)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("postfix %s: processes %v still run in %s after the master exited; killing them", p.addr, left, p.layout.dir)
			for _, pid := range left {
				_ = killPID(pid)
			}
			break
		}
		time.Sleep(pollInterval)
	}
}

// forceStop kills the master by its pid, or failing that the postfix-script
// parent, and waits for the parent to be reaped.
func (p *Postfix) forceStop() {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.masterPID
	if pid == 0 {
		pid, _ = readPIDFile(filepath.Join(p.layout.queueDir, "pid", "master.pid"))
	}
	// Only a process working in this instance's directory is this instance's
	// master; a pid read from the file could otherwise have been reused.
	if pid > 0 && slices.Contains(processesIn(p.layout.dir), pid) {
		_ = killPID(pid)
	}
	if !p.waitDone(5 * time.Second) {
		_ = p.cmd.Process.Kill()
		p.waitDone(5 * time.Second)
	}
}

func (p *Postfix) waitDone(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Addr returns the "127.0.0.1:port" address of the instance's SMTP server.
func (p *Postfix) Addr() string { return p.addr }

// Port returns the port of the instance's SMTP server.
func (p *Postfix) Port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// ConfigDir returns the instance's config_directory, for running other Postfix
// commands (postconf -c, postqueue -c) against it.
func (p *Postfix) ConfigDir() string { return p.layout.configDir }

// MasterPID returns the pid of the instance's master daemon.
func (p *Postfix) MasterPID() int { return p.masterPID }

// Cert returns the certificate smtpd offers with STARTTLS, or nil without
// ServerTLS.
func (p *Postfix) Cert() *Cert { return p.cert }

// Log returns the instance's maillog so far.
func (p *Postfix) Log() string {
	b, err := os.ReadFile(p.layout.maillog)
	if err != nil {
		return fmt.Sprintf("(no maillog: %v)", err)
	}
	return string(b)
}

// readLog is Log for matching: a missing maillog is an empty one.
func (p *Postfix) readLog() string {
	b, _ := os.ReadFile(p.layout.maillog)
	return string(b)
}

// WaitLog waits until a maillog line contains substr and returns that line. The
// test fails if none does within timeout (and the log is then dumped).
func (p *Postfix) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range logLines(p.readLog()) {
			if strings.Contains(line, substr) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix %s: no maillog line containing %q within %v", p.addr, substr, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// Send injects msg with the instance's sendmail command, as a local program
// would. A line holding a single dot does not end the message.
func (p *Postfix) Send(t testing.TB, from string, to []string, msg []byte) {
	t.Helper()
	if len(to) == 0 {
		t.Fatalf("postfix %s: send: no recipients", p.addr)
	}
	args := append([]string{"-C", p.layout.configDir, "-i", "-f", from, "--"}, to...)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, SendmailPath, args...)
	cmd.Env = commandEnv(p.layout.configDir)
	cmd.Stdin = bytes.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postfix %s: sendmail %s: %v\n%s", p.addr, strings.Join(args, " "), err, out)
	}
}

// QueueEmpty reports whether the instance's queue holds no message. It reports
// false if the queue cannot be listed, since emptiness is then unknown.
func (p *Postfix) QueueEmpty() bool {
	out, err := p.command(PostqueuePath, "-c", p.layout.configDir, "-j")
	return err == nil && len(bytes.TrimSpace(out)) == 0
}

// WaitQueueEmpty waits until the queue is empty, failing the test with the queue
// listing if it is not within timeout.
func (p *Postfix) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !p.QueueEmpty() {
		if time.Now().After(deadline) {
			out, err := p.command(PostqueuePath, "-c", p.layout.configDir, "-p")
			t.Fatalf("postfix %s: queue not empty after %v (%v):\n%s", p.addr, timeout, err, out)
		}
		time.Sleep(pollInterval)
	}
}

// Flush asks the instance to retry all deferred mail now, as "postqueue -f" does.
func (p *Postfix) Flush(t testing.TB) {
	t.Helper()
	if out, err := p.command(PostqueuePath, "-c", p.layout.configDir, "-f"); err != nil {
		t.Fatalf("postfix %s: postqueue -f: %v\n%s", p.addr, err, out)
	}
}

// WaitMaildir waits until at least n messages have been delivered to rcpt (an
// address in one of the Deliver domains) and returns the contents of all of them,
// oldest first. The test fails if fewer than n arrive within timeout.
func (p *Postfix) WaitMaildir(t testing.TB, rcpt string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := p.Maildir(t, rcpt)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix %s: %d of %d messages for %s after %v", p.addr, len(msgs), n, rcpt, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// Maildir returns the messages delivered to rcpt so far (an address in one of the
// Deliver domains), oldest first, without waiting: for tests that prove nothing
// arrived.
func (p *Postfix) Maildir(t testing.TB, rcpt string) []string {
	t.Helper()
	if !p.opts.Deliver {
		t.Fatalf("postfix %s: Maildir on an instance without Deliver", p.addr)
	}
	local, domain, ok := splitAddress(rcpt)
	if !ok || !localPartRE.MatchString(local) || !slices.Contains(p.opts.Domains, domain) {
		t.Fatalf("postfix %s: %q is not a deliverable address in %v", p.addr, rcpt, p.opts.Domains)
	}
	dir := filepath.Join(p.layout.maildirBase, domain, "new")
	all, err := readMaildir(dir)
	if err != nil {
		t.Fatalf("postfix %s: read Maildir of %s: %v", p.addr, domain, err)
	}
	var msgs []string
	for _, m := range all {
		if strings.EqualFold(deliveredTo(m), local+"@"+domain) {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// deliveredTo returns the address in a delivered message's first Delivered-To
// header: the one virtual(8) prepended, above any the message already carried.
// It returns "" if the header section has none or cannot be read.
func deliveredTo(msg string) string {
	m, err := mail.ReadMessage(strings.NewReader(msg))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(m.Header.Get("Delivered-To"))
}

// splitAddress splits an address at its last "@" and folds it to lower case:
// Postfix folds addresses before table lookups, and the domain names the Maildir.
func splitAddress(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return strings.ToLower(addr[:i]), strings.ToLower(addr[i+1:]), true
}

// readMaildir returns the contents of the messages in a Maildir's new/ directory,
// ordered by modification time and then name. A directory that does not exist
// yet holds no messages.
func readMaildir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		files = append(files, file{e.Name(), fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	msgs := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, string(b))
	}
	return msgs, nil
}

// command runs a Postfix command against this instance with a timeout and returns
// its combined output.
func (p *Postfix) command(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = commandEnv(p.layout.configDir)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

// commandEnv is the environment for Postfix commands: the test's, with MAIL_CONFIG
// naming the instance (Postfix hands it to the programs it runs) and no Postfix
// debugging variables leaking in from the developer's shell.
func commandEnv(configDir string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(name, "MAIL_") || name == "POSTLOG_SERVICE" || name == "POSTLOG_HOSTNAME"
	})
	return append(env, "MAIL_CONFIG="+configDir, "LANG=C")
}

func logLines(log string) []string {
	return strings.Split(strings.TrimRight(log, "\n"), "\n")
}

// freePort asks the kernel for a free loopback port. Another process can take it
// before Postfix binds it; StartPostfix retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read master pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("read master pid from %s: bad contents %q", path, b)
	}
	return pid, nil
}

type ids struct{ uid, gid int }

func lookupIDs(name string) (ids, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return ids{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return ids{}, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return ids{}, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return ids{uid, gid}, nil
}

// makeTraversable lets the postfix and nobody users reach dir: dir itself becomes
// 0755, and the private per-test directories above it (t.TempDir makes its parent
// 0700) gain search permission for others. Directories outside the system's
// temporary directory are never changed; if one of them blocks the way, that is
// reported instead.
func makeTraversable(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("open up instance directory: %w", err)
	}
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check search permission on %s: %w", d, err)
		}
		if mode := fi.Mode().Perm(); mode&0o001 == 0 {
			if !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
				return fmt.Errorf("%s (mode %v) is not searchable by the postfix and nobody users; set TMPDIR to a directory that is", d, mode)
			}
			if err := os.Chmod(d, mode|0o711); err != nil {
				return fmt.Errorf("allow search in %s: %w", d, err)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
