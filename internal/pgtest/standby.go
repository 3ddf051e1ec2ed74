package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// standbyName is the application_name a standby streams under, which the
// primary's synchronous_standby_names names.
const standbyName = "pgtest_standby"

// ErrHasStandby is returned by NewStandby of a cluster that has one: a
// cluster has at most one standby.
var ErrHasStandby = errors.New("pgtest: the cluster has a standby already")

// StartStandby is NewStandby for a test: it fails t on an error, and the
// standby is stopped and removed when t and its subtests end.
func (c *Cluster) StartStandby(t testing.TB) *Cluster {
	t.Helper()
	s, err := c.NewStandby()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// NewStandby makes a streaming-replication standby of the running
// cluster c in a new temporary directory (pg_basebackup -R, run as the
// same account as c's server), starts it on a port and socket of its own,
// and makes it c's synchronous standby. When it returns, every commit c
// acknowledges has been flushed to the standby's WAL (synchronous_commit
// on, synchronous_standby_names naming it), so a standby promoted after
// c dies has every acknowledged transaction. A commit on c waits while the
// standby is down. The standby serves reads (hot standby) and refuses
// writes until Promote. The caller must Close it; the initdb defaults of
// PostgreSQL 15 (wal_level replica, max_wal_senders 10, replication
// entries in pg_hba.conf) let it connect.
func (c *Cluster) NewStandby() (*Cluster, error) {
	c.mu.Lock()
	if c.shared || c.hasStandby {
		c.mu.Unlock()
		if c.shared {
			return nil, ErrShared // its settings are the other tests' too
		}
		return nil, ErrHasStandby
	}
	c.hasStandby = true
	c.mu.Unlock()
	s, err := c.newStandby()
	if err != nil {
		c.mu.Lock()
		c.hasStandby = false
		c.mu.Unlock()
	}
	return s, err
}

func (c *Cluster) newStandby() (*Cluster, error) {
	base, err := os.MkdirTemp("", "pgtest-standby-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Cluster{bin: c.bin, base: base, account: c.account}
	if err := s.basebackup(c); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	if err := s.startFreePort(); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	// Set only now, on the primary: the copy taken above does not carry
	// it, so the standby, once promoted, waits for no standby of its own.
	if err := c.makeSynchronous(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// basebackup copies primary's data directory into s's (pg_basebackup
// -R: standby.signal, and primary_conninfo with standbyName).
func (s *Cluster) basebackup(primary *Cluster) error {
	if err := s.makeDirs(); err != nil {
		return err
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s application_name=%s", primary.Port(), Superuser, standbyName)
	return s.runTool("pg_basebackup", "-D", s.DataDir(), "-d", conninfo,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
}

// makeSynchronous names the standby in c's synchronous_standby_names and
// waits until c reports it streaming as its synchronous standby.
func (c *Cluster) makeSynchronous() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	// Two statements: ALTER SYSTEM refuses the implicit transaction of a
	// multi-statement query.
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = '" + standbyName + "'", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			return fmt.Errorf("pgtest: making the standby synchronous: %w", err)
		}
	}
	for {
		res := conn.ExecParams(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
			[][]byte{[]byte(standbyName)}, nil, nil, nil).Read()
		if res.Err != nil {
			return fmt.Errorf("pgtest: waiting for the synchronous standby: %w", res.Err)
		}
		if len(res.Rows) == 1 && string(res.Rows[0][0]) == "sync" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: the standby did not become synchronous within %v (rows %q)", readyTimeout, res.Rows)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ErrNotStandby is returned by Promote of a cluster that is not in
// recovery (a primary, or a standby promoted already).
var ErrNotStandby = errors.New("pgtest: the server is not a standby")

// Promote promotes a running standby to a primary (pg_promote, the SQL
// form of pg_ctl promote: the standby replays the WAL it has and leaves
// recovery) and returns once it accepts writes. It stops following its
// old primary, which must not run again as one (Close it).
func (s *Cluster) Promote() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, s.SocketDSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if recovering, err := inRecovery(ctx, conn); err != nil || !recovering {
		if err == nil {
			err = ErrNotStandby
		}
		return err
	}
	res := conn.ExecParams(ctx, "SELECT pg_promote(true, $1)", [][]byte{[]byte(strconv.Itoa(int(readyTimeout / time.Second)))},
		nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("pgtest: promote: %w", res.Err)
	}
	if len(res.Rows) != 1 || string(res.Rows[0][0]) != "t" {
		return fmt.Errorf("pgtest: the standby was not promoted within %v", readyTimeout)
	}
	// pg_promote(wait) returns once recovery has ended; a new session
	// then gets a read-write transaction.
	conn2, err := pgconn.Connect(ctx, s.SocketDSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: after promotion: %w", err)
	}
	defer conn2.Close(context.Background())
	res = conn2.ExecParams(ctx, "SHOW transaction_read_only", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "off" {
		return fmt.Errorf("pgtest: the promoted server does not accept writes (%v, %q)", res.Err, res.Rows)
	}
	return nil
}

func inRecovery(ctx context.Context, conn *pgconn.PgConn) (bool, error) {
	res := conn.ExecParams(ctx, "SELECT pg_is_in_recovery()", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return false, fmt.Errorf("pgtest: %w", res.Err)
	}
	return len(res.Rows) == 1 && string(res.Rows[0][0]) == "t", nil
}

// FailoverDSN is the URL of database db on whichever of cs takes writes,
// tried in order (libpq's multi-host form, which pgx reads too: every
// cluster's 127.0.0.1 port, target_session_attrs=read-write): after a
// standby among cs is promoted, new connections reach it.
func FailoverDSN(db string, cs ...*Cluster) string {
	hosts := make([]string, len(cs))
	for i, c := range cs {
		hosts[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	}
	u := url.URL{Scheme: "postgres", User: url.User(Superuser), Host: strings.Join(hosts, ","),
		Path: "/" + db, RawQuery: "sslmode=disable&target_session_attrs=read-write"}
	return u.String()
}
