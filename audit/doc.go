// Package audit is keystack's tamper-evident audit log.
//
// Every access decision and key operation appends one JSON line (an [Entry])
// to a file. Entries form a keyed hash chain,
//
//	hash_n = HMAC-SHA256(chainKey, hash_{n-1} ‖ canonical_n)
//
// where canonical_n is the entry's JSON encoding without its "hash" field,
// hash_0 is 32 zero bytes and chainKey is derived from the audit key. Without
// the key no entry can be edited, inserted, reordered, removed from the
// middle or appended, so [Verify] finds each of those at its line. Checkpoint
// entries (every Options.CheckpointEvery records and at Close) carry their
// own MAC and mark a log that was closed cleanly.
//
// What a chain cannot show is entries cut off its end, or the file deleted
// or replaced by an older copy of itself. For that the owner keeps an
// [Anchor] (sequence number, chain hash and byte offset of an entry known to
// be on stable storage, [Log.Anchor]) outside the log and passes it to
// [Open] and [Verify]: a log that no longer holds the anchored entry fails
// with [ErrTruncated]. Records written after the last kept anchor can still
// be cut off unnoticed by someone with write access to the file. Against
// someone who holds the audit key, only an anchor kept where they cannot
// write ([Log.Checkpoint], exported) shows what the log held.
//
// A writer never continues a tail it has not verified: Open verifies every
// entry after its anchor (or the whole file), and before each write a Log
// verifies what other processes appended since it last looked. An
// incomplete last line is not tampering but an append that failed (disk
// full, crash), whose operation was refused: the next write cuts it and
// records a [TypeNote] entry saying so.
//
// The encryption context is never logged in clear unless
// Options.LogContextValues is set; instead the entry carries
// HMAC-SHA256(key, serialized context), keyed by the log's MAC key, so equal contexts can be correlated by
// whoever holds the key.
//
// The log fails closed: Append returns an error when its record is not
// written (and, in Sync mode, fsynced), and once a write or fsync has failed
// every later Append fails too.
//
// Writers of one file, in one process or several, serialize on flock(2) and
// continue each other's chain. In Sync mode a Log takes the lock per group
// commit; in Batch mode it keeps it for up to 2 ms after taking it, so that
// a run of appends costs one write(2) each, and other writers wait at most
// that long. The committed lines are encoded by hand for speed, byte for
// byte as encoding/json encodes [Entry], which is what Verify checks.
package audit
