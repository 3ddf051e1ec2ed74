// Package fsx owns keystack's file-system discipline: durable and atomic
// file writes, batch flushing, file locks and tree walks.
//
// Create writes output files so that a reader never sees a
// partial file, and so that nothing is left behind whatever happens to the
// process. Data goes to a private temporary file in the target's
// directory, which replaces the target only after it was fully written and
// synced. On Linux that file is unnamed (O_TMPFILE): no directory lists it
// while it is written, and if the process dies, even by SIGKILL, the
// kernel frees it. It gets a name only at publication: linked straight to
// the target when no file may be replaced (which fails atomically if one
// appeared), or linked to a temporary name and renamed over the target.
// Where O_TMPFILE is missing, and for that last step, temporary names
// carry the owner's process ID (see CreateTemp) and the next run in the
// same directory sweeps those whose owner is gone. On failure, or when
// the process is interrupted, the temporary file is removed and the
// target is left as it was. Only regular files are ever replaced.
//
// Replace rewrites an existing file the same way, for a caller that
// needs the temporary file named while it writes (a rewrap of a message).
//
// SyncPath is the one fsync rule (a directory that cannot be synced,
// EINVAL, counts as synced); Filesystems and Batch make many writes
// durable with one syncfs(2) per filesystem.
package fsx
