package main

// This file is not part of mxward's source. The benchmark's profiling pass adds
// it to cmd/mxward at build time with "go build -overlay", so that the binary it
// profiles is mxward's own code plus this hook, without a profiling endpoint in
// the real server.
//
// With MXWARD_BENCH_CPUPROFILE set, the process records a CPU profile from start
// until SIGUSR1; it then writes a heap profile to MXWARD_BENCH_HEAPPROFILE (if
// set) and creates "<cpu profile>.done" to say both files are complete.

import (
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

func init() {
	cpuPath := os.Getenv("MXWARD_BENCH_CPUPROFILE")
	if cpuPath == "" {
		return
	}
	// Fine enough to see per-connection allocations of a few KiB.
	runtime.MemProfileRate = 4096
	f, err := os.Create(cpuPath)
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		<-sig
		pprof.StopCPUProfile()
		f.Close()
		if heapPath := os.Getenv("MXWARD_BENCH_HEAPPROFILE"); heapPath != "" {
			runtime.GC()
			if h, err := os.Create(heapPath); err == nil {
				pprof.WriteHeapProfile(h)
				h.Close()
			}
		}
		os.WriteFile(cpuPath+".done", nil, 0o644)
	}()
}
