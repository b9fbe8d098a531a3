package dnslab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A daemon is a server the lab runs in the foreground as a child of the test
// process, in a process group of its own so that its child processes (NSD forks
// a main process and servers) can be stopped with it.
type daemon struct {
	name string
	cmd  *exec.Cmd
	logs []string      // the file that receives stdout and stderr, then the program's own log
	done chan struct{} // closed once the process has exited
	err  error         // the result of Wait; read only after done is closed

	// exitedEarly records that the process ended before it answered, the sign
	// of a port taken by someone else in the meantime.
	exitedEarly bool
}

// stopGrace is how long a daemon has to exit after SIGTERM before its process
// group is killed.
const stopGrace = 5 * time.Second

// startDaemon starts prog with args in dir, its output appended to outPath.
// logPath, if not empty, is the log file the program writes itself.
func startDaemon(name, dir, outPath, logPath, prog string, args ...string) (*daemon, error) {
	logf, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = ownProcessGroup()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logs: []string{outPath}, done: make(chan struct{})}
	if logPath != "" {
		d.logs = append(d.logs, logPath)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop ends the daemon: SIGTERM to the process, then, once it has exited or the
// grace period is over, SIGKILL to its process group for any child process left
// behind.
// Only the group the lab created is signalled, by its id.
func (d *daemon) stop() {
	if !d.exited() {
		_ = terminate(d.cmd.Process)
		select {
		case <-d.done:
		case <-time.After(stopGrace):
		}
	}
	killGroup(d.cmd.Process)
	<-d.done
}

// logTail returns the last n lines of each of the daemon's logs that has any,
// for error messages.
func (d *daemon) logTail(n int) string {
	var parts []string
	for _, p := range d.logs {
		if t := tail(p, n); t != "" {
			parts = append(parts, filepath.Base(p)+":\n"+t)
		}
	}
	return strings.Join(parts, "\n")
}

// tail returns the last n lines of the file at path, or a note that it could not
// be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a port on 127.0.0.1 that was free for both UDP and TCP a moment
// ago. Another process can take it before the caller binds it; callers retry
// with a new port when the bind fails.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port, nil
	}
	return 0, errors.New("find a free port: no port free for both UDP and TCP after 20 tries")
}

// listenBoth binds UDP and TCP on the same free port of 127.0.0.1, for the
// in-process proxies, which can keep their sockets instead of racing for a port.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		pc, err := net.ListenPacket("udp", l.Addr().String())
		if err != nil {
			l.Close()
			lastErr = err
			continue
		}
		return pc, l, nil
	}
	return nil, nil, fmt.Errorf("listen on loopback: no port free for both UDP and TCP: %w", lastErr)
}
