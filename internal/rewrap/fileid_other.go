//go:build !unix

package rewrap

import "os"

// fileID is zero where the platform has no inode numbers: a journal is
// then bound to its file by size and header only.
func fileID(os.FileInfo) (dev, ino uint64) { return 0, 0 }

const openNoFollow = 0
