//go:build !linux

package fsx

import "os"

// startWriteback does nothing where sync_file_range(2) is missing: Commit's
// fsync still makes the data durable, but writes all of it then instead
// of while it is produced (slower, the same guarantee).
func startWriteback(*os.File, int64, int64) {}

// preallocate does nothing outside Linux. There it is only a speed-up
// measured on ext4 and reserves nothing the writes rely on (they report
// ENOSPC either way); macOS's F_PREALLOCATE is not used because nothing
// shows it would speed APFS up.
func preallocate(*os.File, int64) {}
