//go:build !linux

package fsx

import "os"

// openUnnamed reports errUnnamed: only Linux has O_TMPFILE, so files are
// named (see CreateTemp) and swept after a crash.
func openUnnamed(string, string) (*os.File, error) { return nil, errUnnamed }

func linkUnnamed(*os.File, string) error { return errUnnamed }
