//go:build !unix

package dnslab

import (
	"os"
	"syscall"
)

// The lab's daemons are Debian's NSD and Unbound; elsewhere a daemon is stopped
// by killing it, and has no process group to clean up.

func ownProcessGroup() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) error { return p.Kill() }

func killGroup(*os.Process) {}
