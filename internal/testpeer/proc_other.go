//go:build !linux

package testpeer

import (
	"errors"
	"syscall"
)

// supported is false: the harness finds and stops Postfix processes through
// /proc, and the Postfix packages it drives are Debian's.
const supported = false

func processGone(pid int) bool              { return true }
func processesIn(dir string) []int          { return nil }
func killPID(pid int) error                 { return errors.ErrUnsupported }
func ownProcessGroup() *syscall.SysProcAttr { return nil }
