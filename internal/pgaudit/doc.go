// Package pgaudit keeps keystack's audit records in PostgreSQL: one keyed
// hash chain per writer (a key-server replica), in the file log's format.
//
// Each chain is a run of rows of keystack_audit_records, (chain, seq,
// line), where line is an [audit.Entry] sealed by [audit.Sealer]:
//
//	hash_n = HMAC-SHA256(chainKey, hash_{n-1} ‖ canonical_n)
//
// with hash_0 = HMAC-SHA256(audit key, "keystack-pgaudit-genesis-v1" ‖ 0 ‖
// chain name), so that one chain's rows cannot pass for another's. Its
// anchor, the row (chain, seq, head, mac) of keystack_audit_chains, names
// the last entry and carries a MAC under the audit key; every commit moves
// it in the same statement that inserts the rows, so the two agree after
// any crash.
//
// [Log.Append] returns nil only once its records are committed: concurrent
// appends are group-committed, one INSERT of the whole batch per round
// trip. When the database cannot be reached or the commit fails, every
// record of the batch fails (wrapping [audit.ErrWrite]) and the caller
// refuses its operation: no operation succeeds without its durable record.
// The next batch reconnects, so appends resume when the database does.
//
// [Verify] checks every chain from its first entry: each line's canonical
// form and keyed hash, consecutive sequence numbers, and that the chain
// ends exactly at its anchor with a valid anchor MAC. Edited, inserted,
// reordered or deleted rows, rows cut off the end (the anchor names a later
// entry), rows appended without the key, and a forged or edited anchor are
// reported as a [*TamperError] naming the chain. What it cannot see is a
// chain deleted whole (its rows and its anchor) or cut back to an older
// anchor by someone who kept that anchor's row: as for the file log, only
// an anchor kept outside the database shows that.
package pgaudit
