// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb
// into a fresh temporary directory, a postgres server of its own on a free
// loopback port and a private unix socket directory, stopped and removed
// when the test ends (also when it fails). Tests that need PostgreSQL call
// [Shared] for a database of their own on the cluster their test binary
// shares (TestMain runs them through [Main], which removes it), or
// [Start] for a cluster of their own, which they may stop, restart and
// kill. [Cluster.StartStandby] adds a synchronous streaming-replication
// standby to a cluster of one's own, which [Cluster.Promote] turns into
// the primary (after [Cluster.Kill] of the old one, for a failover test);
// [FailoverDSN] names both, as a client configured for failover would.
// [Shared] and [Start] skip them with a clear message when the PostgreSQL server
// binaries are missing (scripts/test-prereqs.sh installs Debian's
// postgresql when it can), and fail them instead under CI=true.
//
// initdb and postgres refuse to run as root. Run as root, the cluster runs
// as the system user "postgres" when it exists, else "nobody"; the
// directory is theirs, and removed by the test process.
//
// The cluster trades durability against a machine crash for speed
// (fsync=off, full_page_writes=off), but keeps synchronous_commit=on:
// a committed transaction survives a kill -9 of the server, so tests of
// restarts and crashes of PostgreSQL itself mean what they say.
package pgtest
