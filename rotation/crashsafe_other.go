//go:build !linux

package rotation

import (
	"os"
	"path/filepath"
)

// filesystems, where syncfs(2) is missing, makes files durable one by one.
type filesystems struct{}

func openFilesystems(map[string]bool) (*filesystems, error) { return &filesystems{}, nil }

// sync fsyncs each file and its directory (for renames); with no files
// (a background flush) there is nothing to do.
func (fs *filesystems) sync(files []string) error {
	dirs := map[string]bool{}
	for _, p := range files {
		dirs[filepath.Dir(p)] = true
	}
	for _, p := range files {
		if err := fsyncPath(p); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := fsyncPath(d); err != nil {
			return err
		}
	}
	return nil
}

func (fs *filesystems) close() {}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
