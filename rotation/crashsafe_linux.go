package rotation

import (
	"os"

	"golang.org/x/sys/unix"
)

// filesystems holds one open directory per filesystem a rewrap writes to.
type filesystems struct{ dirs []*os.File }

// openFilesystems opens one of dirs per distinct filesystem (st_dev).
func openFilesystems(dirs map[string]bool) (*filesystems, error) {
	fs := &filesystems{}
	seen := map[uint64]bool{}
	for dir := range dirs {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			fs.close()
			return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
		}
		if seen[st.Dev] {
			continue
		}
		seen[st.Dev] = true
		d, err := os.Open(dir)
		if err != nil {
			fs.close()
			return nil, err
		}
		fs.dirs = append(fs.dirs, d)
	}
	return fs, nil
}

// sync makes every write to the filesystems durable with syncfs(2): data,
// inodes and directory entries, renames included. Since Linux 5.8 syncfs
// reports writeback errors since the descriptor was opened. The files a
// rewrap wrote are covered without being named.
func (fs *filesystems) sync(_ []string) error {
	for _, d := range fs.dirs {
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return &os.PathError{Op: "syncfs", Path: d.Name(), Err: err}
		}
	}
	return nil
}

func (fs *filesystems) close() {
	for _, d := range fs.dirs {
		d.Close()
	}
}
