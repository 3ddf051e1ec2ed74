package fsx

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to
// disk now, without waiting (sync_file_range(2) with WRITE only). It makes
// no data durable: Commit's fsync still does that, but finds most pages
// already written, so the disk works while the data is produced instead
// of after. Errors are ignored; fsync reports what matters.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
