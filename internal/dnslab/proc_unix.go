//go:build unix

package dnslab

import (
	"os"
	"syscall"
)

// ownProcessGroup puts a daemon in a process group of its own, led by itself, so
// that signals for the test's group never reach it and its child processes can be
// stopped together.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks the daemon to shut down cleanly.
func terminate(p *os.Process) error {
	return p.Signal(syscall.SIGTERM)
}

// killGroup kills whatever is left of the daemon's process group. The group id is
// the leader's pid, which the kernel does not reuse while any member, even a
// zombie, is left; with no members left the call fails harmlessly.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
