//go:build unix

package rewrap

import (
	"os"
	"syscall"
)

// fileID is the device and inode of fi, which name one file for as long
// as it exists.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// openNoFollow is O_NOFOLLOW: a symbolic link at the path is not opened.
const openNoFollow = syscall.O_NOFOLLOW
