package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keystack/keystack/internal/pgtest"
)

// TestCluster starts a cluster, writes a row, restarts and kills the
// server, and checks that the committed row survives both and that Close
// removes the directory.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	dsn := c.Database(t)
	exec(t, dsn, "CREATE TABLE t (v int)", "INSERT INTO t VALUES (7)")
	if c.Pid() == 0 {
		t.Fatal("Pid is 0 for a running server")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, dsn); got != 1 {
		t.Fatalf("after a restart: %d rows, want 1", got)
	}
	exec(t, dsn, "INSERT INTO t VALUES (8)")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("connected to a killed server")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, dsn); got != 2 {
		t.Fatalf("after a kill and start: %d rows, want 2 (a committed row was lost)", got)
	}
	if other := c.Database(t); other == dsn {
		t.Fatalf("Database returned %s twice", dsn)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.DataDir()); !os.IsNotExist(err) {
		t.Fatalf("data directory after Close: %v, want it removed", err)
	}
}

func exec(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func count(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestShared checks that tests of one binary get the same cluster, a
// database each, and that nobody can stop it under the others.
func TestShared(t *testing.T) {
	c := pgtest.Shared(t)
	if again := pgtest.Shared(t); again != c {
		t.Fatal("Shared returned two clusters in one test binary")
	}
	a, b := c.Database(t), c.Database(t)
	if a == b {
		t.Fatalf("Database returned %s twice", a)
	}
	exec(t, a, "CREATE TABLE t (v int)", "INSERT INTO t VALUES (7)")
	exec(t, b, "CREATE TABLE t (v int)")
	if got := count(t, b); got != 0 {
		t.Fatalf("a row written to one database shows in another: %d rows", got)
	}
	for name, op := range map[string]func() error{"Stop": c.Stop, "Kill": c.Kill, "Restart": c.Restart, "Close": c.Close, "Start": c.Start} {
		if err := op(); !errors.Is(err, pgtest.ErrShared) {
			t.Errorf("%s of the shared cluster: %v, want ErrShared", name, err)
		}
	}
	if got := count(t, a); got != 1 {
		t.Fatalf("the shared cluster after refused stops: %d rows, want 1", got)
	}
}

// TestStandbyPromote starts a synchronous standby of a cluster: it
// refuses writes, and after the primary is killed (SIGKILL) and the
// standby promoted, it holds every row the primary acknowledged and takes
// writes; FailoverDSN reaches the primary before and the promoted standby
// after. A second standby of the primary, and promoting the promoted
// server again, are refused.
func TestStandbyPromote(t *testing.T) {
	primary := pgtest.Start(t)
	standby := primary.StartStandby(t)
	if _, err := primary.NewStandby(); !errors.Is(err, pgtest.ErrHasStandby) {
		t.Fatalf("a second standby: %v, want ErrHasStandby", err)
	}
	if standby.Port() == primary.Port() || standby.DataDir() == primary.DataDir() {
		t.Fatal("the standby shares the primary's port or directory")
	}
	u, err := url.Parse(primary.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	both := pgtest.FailoverDSN(db, primary, standby)
	exec(t, both, "CREATE TABLE t (v int)")
	for i := range 20 {
		exec(t, both, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	var state string
	if err := queryRow(t, primary.DSN("postgres"), "SELECT sync_state FROM pg_stat_replication", &state); err != nil || state != "sync" {
		t.Fatalf("the primary's replication: %q (%v), want one sync standby", state, err)
	}
	if err := execErr(standby.DSN(db), "INSERT INTO t VALUES (100)"); err == nil {
		t.Fatal("the standby took a write before its promotion")
	}
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := execErr(both, "INSERT INTO t VALUES (100)"); err == nil {
		t.Fatal("FailoverDSN took a write with the primary dead and the standby not promoted")
	}
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, both); got != 20 {
		t.Fatalf("the promoted standby has %d rows, want the 20 the primary acknowledged", got)
	}
	exec(t, both, "INSERT INTO t VALUES (100)")
	if err := standby.Promote(); !errors.Is(err, pgtest.ErrNotStandby) {
		t.Fatalf("promoting a primary: %v, want ErrNotStandby", err)
	}
}

func execErr(dsn, sql string) error {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	return err
}

func queryRow(t *testing.T, dsn, sql string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(context.Background(), sql).Scan(dest...)
}
