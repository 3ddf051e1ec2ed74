//go:build !linux

package fsx

import "os"

// startWriteback is a no-op where sync_file_range(2) does not exist.
func startWriteback(*os.File, int64, int64) {}

// preallocate is a no-op outside Linux.
func preallocate(*os.File, int64) {}
