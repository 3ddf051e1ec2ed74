package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// scriptWorkRoot is where the scripts' work directories go, removed when
// they end: in memory (memTempDir) where /dev/shm lets them run programs
// and open device nodes made there, else in the temporary directory. The
// scripts check what commands do and leave behind, also when killed, not
// durability across a power loss; on a disk, the fsyncs of their 1,300
// commands cost more than the commands.
func scriptWorkRoot(t *testing.T) string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Flags&(unix.ST_NODEV|unix.ST_NOEXEC) == 0 {
		return memTempDir(t)
	}
	return t.TempDir()
}
