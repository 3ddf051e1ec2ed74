package fsx

import (
	"context"
	"io/fs"
	"path/filepath"
)

// Walk says what WalkFiles does with what is not a plain regular file.
// The zero Walk passes over every entry that is not a regular file and
// stops at the first error.
type Walk struct {
	// Skip, if set, sees every regular file first; those it reports are
	// not passed to fn (a caller's scratch or temporary files).
	Skip func(path string, d fs.DirEntry) bool
	// Other, if set, sees every entry that is neither a directory nor a
	// regular file (symbolic links, devices, FIFOs, sockets); its error
	// stops the walk.
	Other func(path string, d fs.DirEntry) error
	// Err, if set, sees every error reading the tree, and returns the
	// error that stops the walk, or nil to go on without that entry (a
	// directory that cannot be read is then not descended).
	Err func(path string, err error) error
}

// WalkFiles calls fn for every regular file under root, in lexical order;
// an error from fn stops the walk and is returned. Symbolic links are
// never followed, and a ctx that is done stops the walk with ctx.Err().
func WalkFiles(ctx context.Context, root string, w Walk, fn func(path string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if w.Err == nil {
				return err
			}
			return w.Err(path, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			if w.Other == nil {
				return nil
			}
			return w.Other(path, d)
		case w.Skip != nil && w.Skip(path, d):
			return nil
		}
		return fn(path, d)
	})
}
