package pgtest_test

import (
	"context"
	"errors"
	"os"
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
