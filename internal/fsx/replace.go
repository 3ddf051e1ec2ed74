package fsx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ReplaceOptions tunes Replace.
type ReplaceOptions struct {
	// Prefix starts the temporary file's name, before path's base name;
	// tree walks that must pass over a replacement in progress match it.
	Prefix string
	// NoDirSync leaves the rename to the caller to make durable (with
	// Filesystems.Sync); the new content itself is always synced first.
	NoDirSync bool
	// Step, set by tests, is called after the temporary file is synced
	// ("temp-written") and after the rename ("renamed"); an error from it
	// stops Replace there without any cleanup, as a killed process would.
	Step func(step string) error
}

// Replace replaces the regular file path with what fill writes, keeping
// path's permission bits. fill writes to a temporary file in path's
// directory (named as CreateTemp names them), which is synced and then
// renamed over path, so path never names unwritten data; the rename is
// made durable by a sync of the directory unless opts.NoDirSync. On
// failure the temporary file is removed and path is left as it was. A
// path that is not a regular file is refused with ErrNotRegular.
func Replace(path string, fill func(io.Writer) error, opts ReplaceOptions) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is %s", ErrNotRegular, path, describe(fi.Mode()))
	}
	step := func(string) error { return nil }
	if opts.Step != nil {
		step = opts.Step
	}
	tmp, err := CreateTemp(filepath.Dir(path), opts.Prefix+filepath.Base(path))
	if err != nil {
		return err
	}
	keep := false // true once the temporary file is renamed, or left as a crash leaves it
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := step("temp-written"); err != nil {
		keep = true
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	keep = true
	if err := step("renamed"); err != nil || opts.NoDirSync {
		return err
	}
	return syncDir(filepath.Dir(path))
}
