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

// preallocate gives f n bytes of disk space on ext4 without changing its
// size (fallocate(2) with FALLOC_FL_KEEP_SIZE). Buffered writes into the
// allocated, unwritten extents then skip delayed allocation's per-block
// space reservation and extent bookkeeping: writing 1 GiB took 0.39 s of
// system time instead of 0.53 s (32 KiB writes, 2026-12-02). Elsewhere,
// and on any error, it does nothing: the writes report what matters.
func preallocate(f *os.File, n int64) {
	var st unix.Statfs_t
	if n <= 0 || unix.Fstatfs(int(f.Fd()), &st) != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		return
	}
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, n)
}
