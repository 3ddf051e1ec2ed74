// Package pgstorage keeps a keystore.Store's documents in PostgreSQL, so
// that several replicas of `keystack server` serve one store (issue 16).
//
// # Tables
//
// keystack_documents holds one row per document (the state and the
// policy) with a revision drawn from one sequence, so a revision is never
// reused, even for a document dropped and created again. Write is one
// conditional UPDATE (or INSERT … ON CONFLICT DO NOTHING) on the row:
// of writers starting from one revision exactly one succeeds, and the
// others get keystore.ErrConflict. A trigger sends NOTIFY keystack_changes
// with the document and its new revision when the row changes, on commit.
//
// keystack_leases holds named leases with a fencing epoch (see [Lease]),
// and keystack_schema the applied migrations (see [Migrate]).
//
// # Freshness
//
// Each Storage listens for the notifications on a connection of its own
// and polls the revisions every Options.Poll as a backstop, so its cached
// revisions are never older than Options.MaxStale (1 s by default) while it
// answers from them. When it has not confirmed them within that bound
// (the database is unreachable), Revision asks the database directly, and
// if that fails too, it fails with keystore.ErrUnavailable: the Store's
// operations fail closed instead of serving stale keys or policy. Read
// and Write always go to the database. While this Storage holds the
// writers' lock, Revision always asks the database, so a read-modify-write
// starts from the current document.
//
// # Locks and leases
//
// Lock (the writers' lock a Store takes around read-modify-write) is a
// transaction-scoped advisory lock held on a connection of its own, whose
// session PostgreSQL ends when it stays idle for Options.LockLease while
// holding it (idle_in_transaction_session_timeout): a holder that dies or
// is paused (SIGSTOP) loses the lock within the lease; a live holder
// renews it. Losing it costs no consistency: Write is a compare-and-swap
// with or without it.
//
// [Storage.AcquireLease] is the leadership lease of the rotation daemon:
// one holder at a time, with an epoch that grows with each new holder.
// [Storage.Fenced] returns a view of the Storage whose writes commit only
// while the lease's epoch is still the current one, checked in the same
// transaction, so a paused old leader that wakes up cannot write.
package pgstorage
