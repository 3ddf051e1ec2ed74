// Package audit is keystack's tamper-evident audit log.
//
// Every access decision and key operation appends one JSON line (an [Entry])
// to a file. Entries form a hash chain,
//
//	hash_n = SHA-256(hash_{n-1} ‖ canonical_n)
//
// where canonical_n is the entry's JSON encoding without its "hash" field and
// hash_0 is 32 zero bytes, so any edit, deletion, insertion or reorder breaks
// the chain. Because anybody can recompute a plain hash chain, the log also
// writes checkpoint entries every Options.CheckpointEvery records and at
// Close: a checkpoint carries the chain head and an HMAC-SHA256 (RFC 2104)
// or Ed25519 (RFC 8032) signature over it, made with a key the attacker does
// not hold. [Verify] checks the chain and every checkpoint and requires the
// file to end with the closing checkpoint; records after the last checkpoint
// are reported as unsealed ([ErrTruncated]), since their removal could not
// otherwise be told apart from a log that was never longer. Compare
// [VerifyReport.Head] with a head kept elsewhere (Log.Head) to detect a log
// cut back to an earlier closing checkpoint.
//
// The encryption context is never logged in clear unless
// Options.LogContextValues is set; instead the entry carries
// HMAC-SHA256(key, serialized context), keyed by the log's MAC key (or a key
// derived from the Ed25519 seed), so equal contexts can be correlated by
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
