package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. Linux fixes
// it at 100 on every architecture it exposes to user space, so it is not looked up.
const clockTicks = 100

// procStat is the part of /proc/PID/stat the benchmark uses.
type procStat struct {
	ppid int
	// CPU time in clock ticks: the process's own, and that of its children it
	// has waited for.
	utime, stime, cutime, cstime uint64
}

// parseStat parses the contents of /proc/PID/stat. The command name in
// parentheses may itself contain parentheses and spaces, so fields are counted
// from the last ")".
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("parse /proc stat: no command name")
	}
	// Fields after the name, numbered as in proc(5) from 3 (state).
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 15", len(f))
	}
	var st procStat
	ppid, err := strconv.Atoi(string(f[4-3]))
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat: ppid: %w", err)
	}
	st.ppid = ppid
	for j, dst := range []*uint64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		v, err := strconv.ParseUint(string(f[14-3+j]), 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("parse /proc stat: field %d: %w", 14+j, err)
		}
		*dst = v
	}
	return st, nil
}

// parseKiBField returns the value of a "Name:   1234 kB" line, as found in
// /proc/PID/status and /proc/PID/smaps_rollup.
func parseKiBField(b []byte, name string) (int64, error) {
	prefix := []byte(name + ":")
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("parse %s: unexpected value %q", name, bytes.TrimSpace(rest))
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("parse %s: unexpected value %q", name, f[0])
		}
		return v, nil
	}
	return 0, fmt.Errorf("parse %s: field not present", name)
}

func procFile(pid int, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), name))
}

// statusKiB reads one kB field of /proc/PID/status, such as VmRSS or VmHWM.
func statusKiB(pid int, field string) (int64, error) {
	b, err := procFile(pid, "status")
	if err != nil {
		return 0, err
	}
	return parseKiBField(b, field)
}

// readStat reads and parses /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := procFile(pid, "stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// processTree returns root and all its live descendants. Postfix is a master
// daemon with one child per service instance (every smtpd, every cleanup), so
// this is the whole of a Postfix instance given its master.
func processTree(root int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone since the listing
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// memory is the memory of a group of processes at one instant.
type memory struct {
	procs int
	// rssKiB sums the resident set of every process, so pages shared between
	// them (program text, libraries, shared memory) are counted once per
	// process: an overstatement for a multi-process server.
	rssKiB int64
	// pssKiB sums the proportional set size: each shared page is divided
	// among the processes sharing it, so the sum is what the group as a whole
	// holds.
	pssKiB int64
}

// treeMemory sums the memory of root and its descendants. Processes that exit
// while they are being read are left out.
func treeMemory(root int) (memory, error) {
	pids, err := processTree(root)
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, pid := range pids {
		rss, err := statusKiB(pid, "VmRSS")
		if err != nil {
			continue
		}
		b, err := procFile(pid, "smaps_rollup")
		if err != nil {
			continue
		}
		pss, err := parseKiBField(b, "Pss")
		if err != nil {
			return memory{}, fmt.Errorf("process %d: %w", pid, err)
		}
		m.procs++
		m.rssKiB += rss
		m.pssKiB += pss
	}
	if m.procs == 0 {
		return memory{}, fmt.Errorf("process %d: %w", root, fs.ErrNotExist)
	}
	return m, nil
}

// treeCPU returns the CPU time used so far by root and all its descendants,
// counting children that have already exited through root's cumulative child
// times. A child that exits between the two reads can be counted twice or not at
// all; over thousands of sessions that is noise of a few ticks.
func treeCPU(root int) (time.Duration, error) {
	pids, err := processTree(root)
	if err != nil {
		return 0, err
	}
	var ticks uint64
	for i, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("read CPU time of %d: %w", root, err)
			}
			continue
		}
		ticks += st.utime + st.stime
		if i == 0 {
			ticks += st.cutime + st.cstime
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
