//go:build !linux

package main

import "golang.org/x/sys/unix"

// disableCoreDumps sets RLIMIT_CORE to 0.
func disableCoreDumps() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
}
