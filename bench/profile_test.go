package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// runProfile is the optional profiling pass (MXWARD_BENCH_PROFILE=DIR): it builds
// mxward with testdata/profilehook added through go build -overlay, drives it with
// the 32-client cells and then parks idle connections on it, and writes to DIR:
//
//	mxward            the profiled binary
//	cpu.pprof         CPU profile of the whole pass
//	heap.pprof        heap profile taken with idle STARTTLS connections open
//	cpu-top.txt       go tool pprof -top of cpu.pprof (flat and cumulative)
//	heap-top.txt      go tool pprof -top of heap.pprof (in-use space)
func runProfile(ctx context.Context, t *testing.T, set settings) {
	dir, err := filepath.Abs(set.profileDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildProfiledMxward(t, dir)

	cpuPath, heapPath := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
	os.Remove(cpuPath + ".done")
	mx := startMxward(t, bin, []string{"MXWARD_BENCH_CPUPROFILE=" + cpuPath, "MXWARD_BENCH_HEAPPROFILE=" + heapPath})
	tg := mx.target()
	for _, c := range []cell{{1 << 10, 32, false}, {1 << 10, 32, true}, {100 << 10, 32, false}} {
		res := load{
			session: tg.session(c, makeMessage(c.size, sender, recipient)), concurrency: c.clients,
			maxMessages: set.messages, maxDuration: set.duration,
		}.run(ctx)
		if res.failed > 0 {
			t.Errorf("%v: %d sessions failed; first: %v", c, res.failed, res.firstErr)
		}
		t.Logf("profiling %v: %d messages, %.0f/s", c, res.sent, res.rate())
	}
	// The heap profile is taken with idle connections that have completed
	// STARTTLS: those cost the most, so they are where savings would be.
	conns, err := openIdle(ctx, tg.addr, set.idle, true)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		t.Fatalf("idle connections: %v", err)
	}
	time.Sleep(2 * settle)
	if err := syscall.Kill(mx.pid, syscall.SIGUSR1); err != nil {
		t.Fatalf("signal mxward to write its profiles: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(cpuPath + ".done"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mxward wrote no profiles within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, p := range []struct {
		out  string
		args [][]string
	}{
		{"cpu-top.txt", [][]string{{"-top", "-nodecount=35", bin, cpuPath}, {"-top", "-cum", "-nodecount=35", bin, cpuPath}}},
		{"heap-top.txt", [][]string{{"-top", "-sample_index=inuse_space", "-nodecount=25", bin, heapPath}}},
	} {
		var text []byte
		for _, a := range p.args {
			out, err := exec.Command("go", append([]string{"tool", "pprof"}, a...)...).CombinedOutput()
			if err != nil {
				t.Errorf("go tool pprof %v: %v\n%s", a, err, out)
			}
			text = append(text, out...)
			text = append(text, '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, p.out), text, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("%s:\n%s", p.out, text)
	}
}

// buildProfiledMxward builds mxward into dir with testdata/profilehook added through
// go build -overlay (the tree is not touched); the hook writes CPU and heap profiles
// where the MXWARD_BENCH_CPUPROFILE and MXWARD_BENCH_HEAPPROFILE variables say.
func buildProfiledMxward(t *testing.T, dir string) string {
	t.Helper()
	hook, err := filepath.Abs(filepath.Join("testdata", "profilehook", "hook.go"))
	if err != nil {
		t.Fatal(err)
	}
	mainDir, err := filepath.Abs(filepath.Join("..", "cmd", "mxward"))
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(mainDir, "zz_bench_profile_hook.go"): hook},
	})
	if err != nil {
		t.Fatal(err)
	}
	overlayPath := filepath.Join(t.TempDir(), "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := buildMxward(t, dir, overlayPath)
	return bin
}
