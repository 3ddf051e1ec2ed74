package main

import "golang.org/x/sys/unix"

// disableCoreDumps sets RLIMIT_CORE to 0 and makes the process not
// dumpable (PR_SET_DUMPABLE 0), which also stops other processes of the
// same user from reading its memory through /proc or ptrace.
func disableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
