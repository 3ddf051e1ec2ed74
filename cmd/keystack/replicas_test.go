package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
)

// replicaWait bounds every wait of the replica tests: they wait for
// conditions, never for fixed times.
const replicaWait = 60 * time.Second

// pgStore is a store kept in a throwaway PostgreSQL database, with a
// Storage handle of the test's own for checking and changing it.
type pgStore struct {
	cluster *pgtest.Cluster
	dsn     string
	dir     string // the store's home directory (nothing of the state is in it)
	st      *pgstorage.Storage
}

// newPGStore makes an insecure store (no passphrase to pass around) in a
// new database of the shared cluster, trusting $KEYSTACK_PRINCIPAL; its
// owner is user:ops.
func newPGStore(t *testing.T) *pgStore { return newPGStoreOn(t, pgtest.Shared(t)) }

// newPGStoreOn is newPGStore on cluster c: a test that stops PostgreSQL,
// or changes its settings, passes a cluster of its own (pgtest.Start).
func newPGStoreOn(t *testing.T, c *pgtest.Cluster) *pgStore {
	t.Helper()
	return newPGStoreAt(t, c, c.Database(t))
}

// newPGStoreAt is newPGStoreOn in the database of dsn, on c or, through
// pgtest.FailoverDSN, on c and its standby.
func newPGStoreAt(t *testing.T, c *pgtest.Cluster, dsn string) *pgStore {
	t.Helper()
	ctx := context.Background()
	if _, err := pgstorage.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	st, err := pgstorage.Open(ctx, dsn, pgstorage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	dir := t.TempDir()
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: "user:ops", TrustPrincipalEnv: true, Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return &pgStore{cluster: c, dsn: dsn, dir: dir, st: st}
}

// open opens the store as user:ops on the test's Storage, with clock now
// (nil: time.Now). The caller closes it.
func (p *pgStore) open(t *testing.T, now func() time.Time) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(p.dir, keystore.OpenOptions{Principal: "user:ops", Storage: p.st, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addDueKey creates key name rotating every hour, made two hours ago: due
// at once, and not again for an hour once rotated.
func (p *pgStore) addDueKey(t *testing.T, name string) {
	t.Helper()
	s := p.open(t, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	defer s.Close()
	ctx := context.Background()
	if _, err := s.CreateKey(ctx, name, keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRotationSettings(ctx, name, &keystore.RotationSettings{Every: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// primary returns key name's primary version.
func (p *pgStore) primary(t *testing.T, name string) int {
	t.Helper()
	s := p.open(t, nil)
	defer s.Close()
	ki, err := s.DescribeKey(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ki.Primary
}

// proc is a keystack process of a test, its stderr kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
	mu   sync.Mutex
	out  bytes.Buffer
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// count returns how many lines of its stderr so far contain s.
func (p *proc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Count(p.out.String(), s)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProc starts the built CLI with args as user:ops, env added to its
// environment; it is killed (and continued, if stopped) when the test ends.
func startProc(t *testing.T, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "KEYSTACK_PRINCIPAL=user:ops"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			log := p.log()
			t.Logf("%s (last 4 KiB of its log):\n%s", p.name, log[max(0, len(log)-4096):])
		}
	})
	return p
}

// waitUntil waits for cond, failing t when it takes longer than
// replicaWait or one of live exits meanwhile.
func waitUntil(t *testing.T, what string, cond func() bool, live ...*proc) {
	t.Helper()
	deadline := time.Now().Add(replicaWait)
	for !cond() {
		for _, p := range live {
			if p.exited() {
				t.Fatalf("waiting for %s: %s exited", what, p.name)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", replicaWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotationLeaderSIGSTOP runs three rotation daemons on one store in
// PostgreSQL. One leads and rotates the due key once. Stopped with
// SIGSTOP, it is replaced within the lease: another daemon rotates a key
// that became due meanwhile. Continued with SIGCONT, the old leader finds
// its lease taken and rotates nothing: each key has exactly two versions,
// and no daemon reports a failed rotation.
func TestRotationLeaderSIGSTOP(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL and three daemons")
	}
	bin := buildCLITags(t, "")
	p := newPGStore(t)
	p.addDueKey(t, "k1")
	const lease = time.Second
	var ds []*proc
	for _, id := range []string{"r1", "r2", "r3"} {
		ds = append(ds, startProc(t, bin, id, nil, "--home", p.dir, "rotate", "daemon", "--storage", p.dsn,
			"--replica-id", id, "--interval", "100ms", "--lease-ttl", lease.String()))
	}
	// leader is a daemon other than not whose log says it leads.
	leader := func(not *proc) *proc {
		for _, d := range ds {
			if d != not && d.count("rotation leadership taken") > d.count("rotation leadership lost") {
				return d
			}
		}
		return nil
	}
	waitUntil(t, "a leader to rotate k1", func() bool { return leader(nil) != nil && p.primary(t, "k1") == 2 }, ds...)
	old := leader(nil)
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	p.addDueKey(t, "k2")
	waitUntil(t, "another daemon to rotate k2", func() bool { return p.primary(t, "k2") == 2 }, ds...)
	t.Logf("k2 rotated %v after the leader's SIGSTOP (lease %v, interval 100ms)", time.Since(stopped).Round(time.Millisecond), lease)
	if leader(old) == nil {
		t.Fatal("no other daemon says it leads after the SIGSTOP")
	}
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old leader to see its lease lost", func() bool { return old.count("rotation leadership lost") > 0 })
	// Let every daemon make more passes: the new leader's and the old
	// one's attempts, if any, are then done.
	passes := map[*proc]int{}
	for _, d := range ds {
		passes[d] = d.count("rotation pass finished")
	}
	waitUntil(t, "the new leader's next passes", func() bool { l := leader(old); return l != nil && l.count("rotation pass finished") >= passes[l]+3 })
	for _, k := range []string{"k1", "k2"} {
		if v := p.primary(t, k); v != 2 {
			t.Errorf("%s: primary v%d, want v2 (rotated exactly once)", k, v)
		}
	}
	for _, d := range ds {
		if n := d.count("failed=1") + d.count("outcome=failed"); n > 0 {
			t.Errorf("%s reported %d failed rotations", d.name, n)
		}
	}
}

// TestReplicaAuditCheckpoint: with the store in PostgreSQL, the CLI's
// records go to the database; `audit checkpoint --json` exports an anchor
// (and records it in the store's state) that `audit verify --anchor`
// checks; both find a chain cut back together with its anchor row to an
// older copy of that row, which the chain's own anchor cannot show.
func TestReplicaAuditCheckpoint(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	rs := &replicaSet{p: newPGStore(t), bin: buildCLITags(t, "")}
	if out, err := rs.cli("key", "create", "x"); err != nil {
		t.Fatalf("key create: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(context.Background(), rs.p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var chain string
	var seq int64
	var head, mac []byte
	if err := pool.QueryRow(context.Background(), `SELECT chain, seq, head, mac FROM keystack_audit_chains WHERE chain LIKE 'cli:%'`).Scan(&chain, &seq, &head, &mac); err != nil {
		t.Fatalf("the CLI's chain: %v", err)
	}
	out, err := rs.cli("audit", "checkpoint", "--json")
	if err != nil {
		t.Fatalf("audit checkpoint: %v\n%s", err, out)
	}
	anchor := filepath.Join(t.TempDir(), "anchor.json")
	if err := os.WriteFile(anchor, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := rs.cli("audit", "verify", "--anchor", anchor); err != nil {
		t.Fatalf("audit verify --anchor: %v\n%s", err, out)
	}
	// Cut the chain back to the copy of its anchor row taken before.
	if _, err := pool.Exec(context.Background(), `DELETE FROM keystack_audit_records WHERE chain = $1 AND seq > $2`, chain, seq); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE keystack_audit_chains SET seq = $2, head = $3, mac = $4 WHERE chain = $1`, chain, seq, head, mac); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--anchor", anchor}} {
		out, err := rs.cli(args...)
		if err == nil || !strings.Contains(err.Error(), "tampered") || !strings.Contains(err.Error(), "cut off") {
			t.Fatalf("%s after the cut: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRotationLeaderSIGSTOPMidPass stops the leading rotation daemon with
// SIGSTOP in the middle of a pass over many due keys, most likely between
// deciding to rotate a key and writing it: another daemon rotates the
// rest within the lease, and after SIGCONT the old leader's pending write
// is refused (fencing), so every key has exactly two versions.
func TestRotationLeaderSIGSTOPMidPass(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL and three daemons")
	}
	const keys = 40
	bin := buildCLITags(t, "")
	p := newPGStore(t)
	s := p.open(t, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	for i := range keys {
		name := fmt.Sprintf("k%02d", i)
		if _, err := s.CreateKey(context.Background(), name, keystore.CreateKeyOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetRotationSettings(context.Background(), name, &keystore.RotationSettings{Every: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	var ds []*proc
	for _, id := range []string{"r1", "r2", "r3"} {
		ds = append(ds, startProc(t, bin, id, nil, "--home", p.dir, "rotate", "daemon", "--storage", p.dsn,
			"--replica-id", id, "--interval", "100ms", "--lease-ttl", "1s"))
	}
	rotating := func() *proc {
		for _, d := range ds {
			if d.count("outcome=rotated") > 0 {
				return d
			}
		}
		return nil
	}
	waitUntil(t, "a leader to rotate a few keys", func() bool { l := rotating(); return l != nil && l.count("outcome=rotated") >= 3 }, ds...)
	old := rotating()
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	done := old.count("outcome=rotated")
	waitUntil(t, "every key rotated", func() bool { return p.rotatedKeys(t) == keys }, ds...)
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old leader to see its lease lost", func() bool { return old.count("rotation leadership lost") > 0 })
	waitUntil(t, "the old leader's next pass or two", func() bool { return old.count("rotation pass finished") >= 1 }, ds...)
	t.Logf("the leader had rotated %d of %d keys when stopped; after SIGCONT it logged %d rotations in all, %d refused writes",
		done, keys, old.count("outcome=rotated"), old.count("taken over"))
	total := 0
	for _, d := range ds {
		total += d.count("outcome=rotated")
	}
	if total != keys {
		t.Errorf("the daemons logged %d rotations of %d keys, want one each", total, keys)
	}
	for name, v := range p.primaries(t) {
		if v != 2 {
			t.Errorf("%s: primary v%d, want v2 (rotated exactly once)", name, v)
		}
	}
}

// primaries returns every key's primary version.
func (p *pgStore) primaries(t *testing.T) map[string]int {
	t.Helper()
	s := p.open(t, nil)
	defer s.Close()
	ks, err := s.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, k := range ks {
		m[k.Name] = k.Primary
	}
	return m
}

// rotatedKeys counts the keys past their first version.
func (p *pgStore) rotatedKeys(t *testing.T) int {
	n := 0
	for _, v := range p.primaries(t) {
		if v > 1 {
			n++
		}
	}
	return n
}
