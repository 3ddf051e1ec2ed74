package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the name of the cluster's superuser (initdb -U); it needs
// no password (trust authentication, on loopback and the socket only).
const Superuser = "postgres"

// readyTimeout bounds how long a start (or restart) waits for the server
// to accept connections; stopTimeout how long a stop waits for it to exit.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Cluster is one running (or stopped) throwaway PostgreSQL cluster. Its
// methods are safe for concurrent use.
type Cluster struct {
	bin     string // directory of initdb and postgres
	base    string // the temporary directory: data, sock, postgres.log
	port    int
	account *account // the user the server runs as; nil for this process's

	mu     sync.Mutex
	proc   *exec.Cmd
	done   chan struct{} // closed when proc exits
	dbs    int
	shared bool // Shared's: never stopped but by Main

	hasStandby bool // NewStandby made one
}

// Start starts a throwaway cluster for t and stops and removes it when t
// and its subtests end. It skips t (fails it under CI=true) when the
// PostgreSQL binaries are missing, and fails t when the cluster does not
// start. A test that neither stops, restarts nor kills the server wants
// [Shared] instead, which costs a database, not a cluster.
func Start(t testing.TB) *Cluster {
	t.Helper()
	skipIfMissing(t)
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// skipIfMissing skips t, or fails it under CI=true, when no cluster can
// be started here (Missing).
func skipIfMissing(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s", why)
		}
		t.Skip(why)
	}
}

// Missing says why no cluster can be started here ("" when one can): the
// PostgreSQL server binaries are not installed.
func Missing() string {
	if _, err := binDir(); err != nil {
		return err.Error()
	}
	return ""
}

// binDir finds the directory holding initdb and postgres: that of initdb
// on PATH, else Debian's /usr/lib/postgresql/N/bin, newest N first.
func binDir() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) > pgMajor(found[j]) })
	for _, d := range append(dirs, found...) {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: run scripts/test-prereqs.sh as root (installs Debian's postgresql)")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// New initialises and starts a cluster in a new temporary directory. The
// caller must Close it. Most tests want [Shared] or [Start] instead.
func New() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{bin: bin, base: base, account: acct}
	if err := c.initdb(); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	if err := c.startFreePort(); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	return c, nil
}

// initdb creates the data directory and the socket directory, owned by
// the server's account.
func (c *Cluster) initdb() error {
	if err := c.makeDirs(); err != nil {
		return err
	}
	return c.runTool("initdb", "-D", c.DataDir(), "-U", Superuser,
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
}

// makeDirs opens c's base directory to the server's account and creates
// the socket directory, both owned by that account.
func (c *Cluster) makeDirs() error {
	if err := os.Chmod(c.base, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Mkdir(c.SocketDir(), 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for _, p := range []string{c.base, c.SocketDir()} {
		if err := c.account.chown(p); err != nil {
			return err
		}
	}
	return nil
}

// runTool runs one of PostgreSQL's programs as the server's account, in
// c's base directory.
func (c *Cluster) runTool(tool string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, tool), args...)
	cmd.SysProcAttr = c.account.sysProcAttr()
	cmd.Dir = c.base
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: %s: %v\n%s", tool, err, out)
	}
	return nil
}

// startFreePort starts the server on a free loopback port, trying a few
// ports in case another process takes the one picked first.
func (c *Cluster) startFreePort() error {
	var err error
	for range 3 {
		if c.port, err = freePort(); err != nil {
			return err
		}
		if err = c.Start(); err == nil {
			return nil
		}
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DataDir is the cluster's data directory (PGDATA).
func (c *Cluster) DataDir() string { return filepath.Join(c.base, "data") }

// SocketDir is the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return filepath.Join(c.base, "sock") }

// Port is the server's TCP port on 127.0.0.1; it stays the same across
// Stop and Start.
func (c *Cluster) Port() int { return c.port }

// LogFile is the server's log (its stderr), appended to by every start.
func (c *Cluster) LogFile() string { return filepath.Join(c.base, "postgres.log") }

// DSN is the URL of database db over TCP on 127.0.0.1, as the superuser.
func (c *Cluster) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(Superuser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// SocketDSN is the URL of database db over the unix socket.
func (c *Cluster) SocketDSN(db string) string {
	q := url.Values{"host": {c.SocketDir()}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	u := url.URL{Scheme: "postgres", User: url.User(Superuser), Path: "/" + db, RawQuery: q.Encode()}
	return u.String()
}

// NewDatabase creates a new, empty database and returns its DSN (TCP).
// Each call makes a different database, so tests sharing a cluster do not
// see each other's tables.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	c.mu.Lock()
	c.dbs++
	name := fmt.Sprintf("test%d", c.dbs)
	c.mu.Unlock()
	conn, err := pgconn.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name).ReadAll(); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

// Database is NewDatabase for a test: it fails t on an error.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	dsn, err := c.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Close stops the server (fast shutdown, then kill) and removes the
// cluster's directory; the shared cluster is left alone (ErrShared).
func (c *Cluster) Close() error {
	err := c.Stop()
	if errors.Is(err, ErrShared) {
		return err
	}
	if rerr := os.RemoveAll(c.base); rerr != nil && err == nil {
		err = fmt.Errorf("pgtest: removing the cluster: %w", rerr)
	}
	return err
}

// Restart stops the server (fast shutdown) and starts it again on the same
// port and data directory.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start()
}

// WaitFor polls cond every 10 ms until it holds, and fails t, naming what
// it waited for, when it does not hold within d.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
