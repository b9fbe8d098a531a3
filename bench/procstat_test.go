package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		file string
		want procStat
	}{
		{"stat", procStat{ppid: 4200, utime: 150, stime: 40, cutime: 9, cstime: 2}},
		// A command name with spaces and parentheses must not shift the fields.
		{"stat-odd-name", procStat{ppid: 1, utime: 7, stime: 3, cutime: 11, cstime: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "proc", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseStat(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"12 no name here S 1 2 3",
		"12 (short) S 1 2 3",
		"12 (bad) S x 1 1 0 -1 0 0 0 0 0 1 1 1 1",
		"12 (bad) S 1 1 1 0 -1 0 0 0 0 0 -1 1 1 1",
	} {
		if st, err := parseStat([]byte(in)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", in, st)
		}
	}
}

func TestParseKiBField(t *testing.T) {
	status, err := os.ReadFile(filepath.Join("testdata", "proc", "status"))
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile(filepath.Join("testdata", "proc", "smaps_rollup"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		in    []byte
		field string
		want  int64
		ok    bool
	}{
		{"VmRSS", status, "VmRSS", 1780, true},
		{"VmHWM", status, "VmHWM", 1780, true},
		{"Pss", smaps, "Pss", 319, true},
		// "Pss" must not match "Pss_Anon" or "SwapPss".
		{"Pss_Anon", smaps, "Pss_Anon", 112, true},
		{"missing", status, "VmNope", 0, false},
		{"no unit", []byte("VmRSS:\t 12\n"), "VmRSS", 0, false},
		{"negative", []byte("VmRSS:\t -12 kB\n"), "VmRSS", 0, false},
		{"last line without newline", []byte("A: 1 kB\nVmRSS: 7 kB"), "VmRSS", 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKiBField(tt.in, tt.field)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseKiBField(%s) = %d, %v; want %d, ok %v", tt.field, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	for _, name := range []string{"stat", "stat-odd-name"} {
		b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("1 ()) ) ) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil && st != (procStat{}) {
			t.Errorf("error %v with a non-zero result %+v", err, st)
		}
	})
}

func FuzzParseKiBField(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc", "status"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, "VmRSS")
	f.Add([]byte("Pss: 12 kB\n"), "Pss")
	f.Add([]byte("Pss:\n"), "Pss")
	f.Fuzz(func(t *testing.T, b []byte, field string) {
		v, err := parseKiBField(b, field)
		if err == nil && v < 0 {
			t.Errorf("negative value %d without an error", v)
		}
	})
}

// TestProcessOwnTree reads this test process's own figures, the way the
// benchmark reads the servers'.
func TestProcessOwnTree(t *testing.T) {
	pid := os.Getpid()
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skipf("no /proc with smaps_rollup: %v", err)
	}
	tree, err := processTree(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree) == 0 || tree[0] != pid {
		t.Fatalf("processTree(%d) = %v, want it to start with %d", pid, tree, pid)
	}
	m, err := treeMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.procs < 1 || m.rssKiB <= 0 || m.pssKiB <= 0 || m.pssKiB > m.rssKiB {
		t.Errorf("treeMemory = %+v: want at least one process with 0 < PSS <= RSS", m)
	}
	hwm, err := statusKiB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if hwm < m.rssKiB {
		t.Errorf("VmHWM %d KiB is below the current RSS %d KiB", hwm, m.rssKiB)
	}
	// Burn a little CPU so that the counter has something to show.
	before, err := treeCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
	}
	after, err := treeCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Errorf("CPU time went backwards: %v then %v", before, after)
	}
}

func TestParseCPULine(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc", "cpustat"))
	if err != nil {
		t.Fatal(err)
	}
	// user 100 + nice 5 + system 50 + irq 1 + softirq 2 + steal 3 ticks.
	if got, err := parseCPULine(b); err != nil || got != 1610*time.Millisecond {
		t.Errorf("parseCPULine = %v, %v; want 1.61s", got, err)
	}
	for _, in := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 7 x\n"} {
		if got, err := parseCPULine([]byte(in)); err == nil {
			t.Errorf("parseCPULine(%q) = %v, want an error", in, got)
		}
	}
}

func FuzzParseCPULine(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc", "cpustat"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("cpu 1 2 3 4 5 6 7 8"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseCPULine(b); err == nil && d < 0 {
			t.Errorf("negative busy time %v from %q", d, b)
		}
	})
}
