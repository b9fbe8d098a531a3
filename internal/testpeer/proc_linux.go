package testpeer

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// supported reports whether private Postfix instances can run on this system.
const supported = true

// processGone reports whether pid no longer runs. A zombie counts as gone: it runs
// no code, and in containers whose PID 1 does not reap orphans it never disappears.
func processGone(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may itself
	// contain parentheses, so look after the last one.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state == 'Z' || state == 'X'
}

// processesIn returns the pids of live processes whose working directory is dir or
// below it. Every Postfix daemon changes into its queue directory, so this finds
// an instance's processes without relying on names or on the process tree.
func processesIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		if (cwd == dir || strings.HasPrefix(cwd, dir+"/")) && !processGone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killPID(pid int) error {
	return syscall.Kill(pid, syscall.SIGKILL)
}

// ownProcessGroup puts the started command in a process group of its own, so that
// a signal meant for the test's process group never reaches Postfix and Postfix's
// signals to its group never reach the test.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
