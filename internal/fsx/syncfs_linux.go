package fsx

import (
	"os"

	"golang.org/x/sys/unix"
)

// Add adds the filesystem holding dir, keeping a descriptor open on it:
// since Linux 5.8 syncfs reports every writeback error on the filesystem
// since that descriptor was opened, so Add must come before the writes.
func (fs *Filesystems) Add(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if fs.devs[st.Dev] {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	fs.devs[st.Dev] = true
	fs.dirs = append(fs.dirs, d)
	return nil
}

// Sync makes every write to the filesystems durable with syncfs(2): data,
// inodes and directory entries, renames included, so the files need not
// be named. It also flushes other processes' dirty data on them.
func (fs *Filesystems) Sync(_ []string) error {
	for _, d := range fs.dirs {
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return &os.PathError{Op: "syncfs", Path: d.Name(), Err: err}
		}
	}
	return nil
}

// Datasync makes f's data durable with fdatasync(2): for an overwrite in
// place it skips the inode write that fsync(2) adds for the new mtime.
func Datasync(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}
