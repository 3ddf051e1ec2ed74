package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEmptyEncrypt runs the CLI's encrypt of an empty file on an
// unsealed store in this process, as the command runs after start-up:
// what scripts/bench_startup.sh measures less exec, the dynamic loader and
// package initialisation. BenchmarkVersion is the same for --version, the
// command tree alone. Profile with -cpuprofile.
func BenchmarkEmptyEncrypt(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("KEYSTACK_HOME", filepath.Join(dir, "home"))
	for _, args := range [][]string{{"init", "--insecure-no-passphrase"}, {"key", "create", "k1"}} {
		if code := runQuiet(b, args...); code != 0 {
			b.Fatalf("keystack %v: exit %d", args, code)
		}
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if code := runQuiet(b, "encrypt", "-k", "k1", "-i", empty, "-o", os.DevNull); code != 0 {
			b.Fatalf("encrypt: exit %d", code)
		}
	}
}

func BenchmarkVersion(b *testing.B) {
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if code := runQuiet(b, "--version"); code != 0 {
			b.Fatalf("--version: exit %d", code)
		}
	}
}

// runQuiet runs the CLI with stdout and stderr sent to /dev/null.
func runQuiet(b *testing.B, args ...string) int {
	b.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = null, null
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	return run(append([]string{"keystack"}, args...))
}

// reportCPU reports the process's CPU time (user + system, every thread,
// from getrusage) per iteration as cpu-ns/op: wall time is mostly the
// fsyncs' wait, and on a loaded machine other processes' turns.
func reportCPU(b *testing.B) func() {
	b.Helper()
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
