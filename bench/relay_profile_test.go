package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Encoding helpers for hand-made profiles.

func pbVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pbInt(b []byte, num int, v uint64) []byte {
	return pbVarint(pbVarint(b, uint64(num)<<3|wireVarint), v)
}

func pbBytes(b []byte, num int, data []byte) []byte {
	b = pbVarint(b, uint64(num)<<3|wireBytes)
	return append(pbVarint(b, uint64(len(data))), data...)
}

func pbPacked(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = pbVarint(b, v)
	}
	return b
}

// testProfile builds a CPU profile as runtime/pprof lays it out: sample types
// first, samples, the string table last. labels[i] is sample i's role label, ""
// for none; cpu[i] its nanoseconds. With packed false the values are written as
// separate fields, which decoders must accept too.
func testProfile(labels []string, cpu []uint64, packed bool) []byte {
	strs := []string{"", "samples", "count", "cpu", "nanoseconds", "role", "sink", "client", "other"}
	idx := map[string]uint64{}
	for i, s := range strs {
		idx[s] = uint64(i)
	}
	var p []byte
	p = pbBytes(p, 1, pbInt(pbInt(nil, 1, idx["samples"]), 2, idx["count"]))
	p = pbBytes(p, 1, pbInt(pbInt(nil, 1, idx["cpu"]), 2, idx["nanoseconds"]))
	for i := range cpu {
		var s []byte
		s = pbBytes(s, 1, pbPacked(1, 2, 3))
		if packed {
			s = pbBytes(s, 2, pbPacked(1, cpu[i]))
		} else {
			s = pbInt(pbInt(s, 2, 1), 2, cpu[i])
		}
		if labels[i] != "" {
			s = pbBytes(s, 3, pbInt(pbInt(nil, 1, idx["role"]), 2, idx[labels[i]]))
		}
		p = pbBytes(p, 2, s)
	}
	p = pbInt(p, 9, 1234567) // time_nanos, ignored
	for _, s := range strs {
		p = pbBytes(p, 6, []byte(s))
	}
	return p
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestCPUByLabel(t *testing.T) {
	labels := []string{"sink", "client", "", "sink", "other"}
	cpu := []uint64{10e6, 20e6, 30e6, 40e6, 5e6}
	want := map[string]time.Duration{"sink": 50 * time.Millisecond, "client": 20 * time.Millisecond, "other": 5 * time.Millisecond}
	noCPU := pbBytes(nil, 1, pbInt(pbInt(nil, 1, 1), 2, 2))
	noCPU = pbBytes(pbBytes(pbBytes(noCPU, 6, nil), 6, []byte("samples")), 6, []byte("count"))
	tests := []struct {
		name    string
		prof    []byte
		want    map[string]time.Duration
		total   time.Duration
		wantErr bool
	}{
		{"packed", testProfile(labels, cpu, true), want, 105 * time.Millisecond, false},
		{"unpacked", testProfile(labels, cpu, false), want, 105 * time.Millisecond, false},
		{"gzip", gzipped(testProfile(labels, cpu, true)), want, 105 * time.Millisecond, false},
		{"no samples", testProfile(nil, nil, true), map[string]time.Duration{}, 0, false},
		{"no cpu sample type", noCPU, nil, 0, true},
		{"truncated", testProfile(labels, cpu, true)[:40], nil, 0, true},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, nil, 0, true},
		{"bad wire type", []byte{0x0b}, nil, 0, true},
		{"empty", nil, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := cpuByLabel(tt.prof, "role")
			if (err != nil) != tt.wantErr {
				t.Fatalf("cpuByLabel error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errBadProfile) {
					t.Errorf("error %v does not wrap errBadProfile", err)
				}
				return
			}
			if total != tt.total {
				t.Errorf("total = %v, want %v", total, tt.total)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestCPUByLabelRuntimeProfile checks the decoder against what runtime/pprof
// writes: a labelled goroutine that burns CPU must show up under its label.
func TestCPUByLabelRuntimeProfile(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiler busy: %v", err)
	}
	var wg sync.WaitGroup
	for _, role := range []string{"sink", "client"} {
		wg.Add(1)
		pprof.Do(context.Background(), pprof.Labels("role", role), func(context.Context) {
			go func() {
				defer wg.Done()
				burnCPU(100*time.Millisecond, 5*time.Second)
			}()
		})
	}
	wg.Wait()
	pprof.StopCPUProfile()
	got, total, err := cpuByLabel(buf.Bytes(), "role")
	if err != nil {
		t.Fatal(err)
	}
	if got["sink"] <= 0 || got["client"] <= 0 {
		t.Errorf("labelled CPU %v of %v total: want both roles present", got, total)
	}
	if got["sink"]+got["client"] > total {
		t.Errorf("labelled CPU %v exceeds the total %v", got, total)
	}
}

// burnCPU spins until its thread has used cpu of CPU time, or wall has passed.
func burnCPU(cpu, wall time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threadCPU := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, deadline := threadCPU(), time.Now().Add(wall)
	x := 0
	for threadCPU()-start < cpu && time.Now().Before(deadline) {
		for range 10000 {
			x++
		}
	}
	_ = x
}

func FuzzCPUByLabel(f *testing.F) {
	f.Add(testProfile([]string{"sink", ""}, []uint64{1e7, 2e7}, true))
	f.Add(testProfile([]string{"client"}, []uint64{3e7}, false))
	f.Add(gzipped(testProfile([]string{"sink"}, []uint64{1e7}, true)))
	f.Add([]byte{0x12, 0x03, 0x10, 0x01, 0x1a})
	f.Fuzz(func(t *testing.T, prof []byte) {
		got, _, err := cpuByLabel(prof, "role")
		if err != nil && !errors.Is(err, errBadProfile) {
			t.Errorf("error %v does not wrap errBadProfile", err)
		}
		if err != nil && got != nil {
			t.Errorf("error %v with a result %v", err, got)
		}
	})
}
