package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
)

// replicaSet is three (or n) key servers on one PostgreSQL store.
type replicaSet struct {
	p     *pgStore
	bin   string
	addrs []string
	procs []*proc
	cred  struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
}

// startReplicas makes a store with key "k" and credentials for its owner
// in p, and starts n servers on it, each on its own loopback port.
func startReplicas(t *testing.T, p *pgStore, n int) *replicaSet {
	t.Helper()
	rs := &replicaSet{p: p, bin: buildCLITags(t, "")}
	s := rs.p.open(t, nil)
	if _, err := s.CreateKey(context.Background(), "k", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, err := rs.cli("server", "credentials", "create", "--principal", "user:ops", "--json")
	if err != nil {
		t.Fatalf("credentials create: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &rs.cred); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rs.addrs = append(rs.addrs, freeLoopback(t))
		rs.start(t, i)
	}
	return rs
}

// env is what the replicas and CLI runs add to their environment: the
// store's database ($KEYSTACK_STORAGE).
func (rs *replicaSet) env() []string { return []string{storageEnv + "=" + rs.p.dsn} }

// cli runs the CLI on the store and returns its output.
func (rs *replicaSet) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(rs.bin, append([]string{"--home", rs.p.dir}, args...)...)
	cmd.Env = append(append(cmd.Environ(), "KEYSTACK_PRINCIPAL=user:ops"), rs.env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	return out, err
}

// start starts replica i (again, after a kill) and waits until it serves.
func (rs *replicaSet) start(t *testing.T, i int) {
	t.Helper()
	p := startProc(t, rs.bin, fmt.Sprintf("replica-%d", i+1), rs.env(), "--home", rs.p.dir,
		"server", "--insecure-http-loopback", rs.addrs[i], "--replica-id", fmt.Sprintf("r%d", i+1))
	if i < len(rs.procs) {
		rs.procs[i] = p
	} else {
		rs.procs = append(rs.procs, p)
	}
	waitUntil(t, p.name+" to serve", func() bool {
		resp, err := http.Get("http://" + rs.addrs[i] + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, p)
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// client is a KMS client on one replica, without the SDK's retries: the
// failover client retries itself.
func (rs *replicaSet) client(i int) *kms.Client {
	return newKMSClient(rs.addrs[i], rs.cred.ID, rs.cred.Secret)
}

// failover calls op on replica start, and once more on the next replica
// when that fails with a connection error or a 5xx (what a client behind
// several endpoints retries). It returns the result of the last attempt
// and how many attempts it made.
func failover[T any](ctx context.Context, rs *replicaSet, start int, op func(*kms.Client) (T, error)) (T, int, error) {
	var out T
	var err error
	for attempt := range 2 {
		out, err = op(rs.client((start + attempt) % len(rs.addrs)))
		if err == nil || !retryable(err) {
			return out, attempt + 1, err
		}
	}
	return out, 2, err
}

// retryable is a connection error (no HTTP status) or an HTTP 5xx.
func retryable(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode() == 0 || re.HTTPStatusCode() >= 500
	}
	var ae smithy.APIError
	return !errors.As(err, &ae) // no API error: the request did not get an answer
}

// load is GenerateDataKey from several workers over the failover client,
// each request with a unique encryption context; it records the request
// IDs of successes and the failures left after the retry.
type load struct {
	rs       *replicaSet
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ok       atomic.Int64
	retried  atomic.Int64
	attempts atomic.Int64 // requests sent, each of which a replica may have carried out
	outcomes
}

func startLoad(rs *replicaSet, workers int) *load { return startLoadObserved(rs, workers, nil) }

// startLoadObserved is startLoad calling seen (when not nil) with the
// worker and the time of each success.
func startLoadObserved(rs *replicaSet, workers int, seen func(w int, at time.Time)) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{rs: rs, cancel: cancel}
	var n atomic.Int64
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				i := n.Add(1)
				out, tries, err := failover(ctx, rs, w, func(c *kms.Client) (*kms.GenerateDataKeyOutput, error) {
					l.attempts.Add(1)
					return c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("k"), KeySpec: types.DataKeySpecAes256,
						EncryptionContext: map[string]string{"op": fmt.Sprint(i)}})
				})
				l.record(ctx, out, tries, err)
				if err == nil && seen != nil {
					seen(w, time.Now())
				}
			}
		}()
	}
	return l
}

func (l *load) record(ctx context.Context, out *kms.GenerateDataKeyOutput, tries int, err error) {
	if tries > 1 {
		l.retried.Add(1)
	}
	l.add(ctx, out, err)
	if err == nil {
		l.ok.Add(1)
	}
}

// waitOK waits for n more successes than there were when it was called.
func (l *load) waitOK(t *testing.T, n int64, what string, live ...*proc) {
	t.Helper()
	target := l.ok.Load() + n
	waitUntil(t, what, func() bool { return l.ok.Load() >= target }, live...)
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// auditedRequests returns how many allowed GenerateDataKey decisions (the
// load's operation) the audit chains in the database hold per request ID.
func (rs *replicaSet) auditedRequests(t *testing.T) map[string]int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), rs.p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), `SELECT line::jsonb->>'request_id', count(*) FROM keystack_audit_records
		WHERE line::jsonb->>'decision' = 'Allow' AND line::jsonb->>'action' = 'keystack:GenerateDataKey'
		AND line::jsonb->>'request_id' IS NOT NULL GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// checkAudited fails t unless every successful request of l has exactly
// one allowed decision in the database (matched by the request ID the
// replica answered with), no request ID has more than one (none was
// carried out twice), the chains hold no more allowed requests than l
// sent (a retry after a lost answer may add one, never more), and `audit
// verify` passes.
func (rs *replicaSet) checkAudited(t *testing.T, l *load) {
	t.Helper()
	audited := rs.auditedRequests(t)
	for _, id := range l.okIDs {
		if n := audited[id]; id == "" || n != 1 {
			t.Fatalf("request %q succeeded with %d audit records, want 1", id, n)
		}
	}
	total := 0
	for id, n := range audited {
		if n != 1 {
			t.Fatalf("request %q has %d allowed decisions in the chains: carried out more than once", id, n)
		}
		total += n
	}
	if sent := l.attempts.Load(); int64(total) > sent || int64(total) < l.ok.Load() {
		t.Fatalf("%d audited requests for %d sent and %d successes: want between the two", total, sent, l.ok.Load())
	}
	t.Logf("%d audited requests: %d successes, %d more sent (retries, failures, in flight at the end)",
		total, l.ok.Load(), l.attempts.Load()-l.ok.Load())
	if out, err := rs.cli("audit", "verify"); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// TestReplicasKill9 kills one of three replicas with SIGKILL under a
// steady client load: no client operation fails after its one retry on
// another replica, every success has exactly one audit record matched by
// its request ID, no request was carried out twice (checkAudited), the
// chains verify, and the replica serves again on
// restart, continuing its chain.
func TestReplicasKill9(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL and three key servers")
	}
	rs := startReplicas(t, newPGStore(t), 3)
	l := startLoad(rs, 6)
	defer l.stop()
	l.waitOK(t, 300, "300 successes before the kill", rs.procs...)
	victim := rs.procs[1]
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	l.waitOK(t, 600, "600 successes after the kill", rs.procs[0], rs.procs[2])
	rs.start(t, 1)
	l.waitOK(t, 300, "300 successes after the restart", rs.procs...)
	l.stop()
	t.Logf("%d successes, %d retried on another replica, %d failed", l.ok.Load(), l.retried.Load(), len(l.failures))
	if len(l.failures) > 0 {
		t.Fatalf("%d operations failed after one retry, the first: %v", len(l.failures), l.failures[0])
	}
	rs.checkAudited(t, l)
}

// TestReplicasPostgresRestart stops PostgreSQL under load: requests fail
// closed (a 5xx; none succeeds without its record) while it is down, and
// succeed again once it is back.
func TestReplicasPostgresRestart(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL and three key servers")
	}
	rs := startReplicas(t, newPGStoreOn(t, pgtest.Start(t)), 3) // stopped below: a cluster of its own
	l := startLoad(rs, 6)
	defer l.stop()
	l.waitOK(t, 200, "200 successes before the stop", rs.procs...)
	if err := rs.p.cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "requests to fail while the database is down", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.failures) >= 20
	}, rs.procs...)
	if err := rs.p.cluster.Start(); err != nil {
		t.Fatal(err)
	}
	l.waitOK(t, 200, "200 successes after the start", rs.procs...)
	l.stop()
	for _, err := range l.failures {
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() < 500 {
			t.Fatalf("a request failed other than with a 5xx while the database was down: %v", err)
		}
	}
	t.Logf("%d successes, %d failures (5xx) while the database was down", l.ok.Load(), len(l.failures))
	rs.checkAudited(t, l)
}

// TestReplicasConcurrentChanges has workers on all three replicas rotate
// three keys on demand and create and delete aliases among them,
// at random (seeded, bounded). Afterwards every replica lists the same
// aliases, each naming an existing key; every key has exactly one version
// per successful rotation plus its first (none lost, none doubled); and
// the audit chains verify.
func TestReplicasConcurrentChanges(t *testing.T) {
	t.Parallel() // child processes and a database of its own
	if testing.Short() {
		t.Skip("starts PostgreSQL and three key servers")
	}
	rs := startReplicas(t, newPGStore(t), 3)
	ctx := context.Background()
	keys := map[string]string{} // name -> key ID
	for _, name := range []string{"a", "b", "c"} {
		out, err := rs.client(0).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = *out.KeyMetadata.KeyId
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rotated := runChanges(t, rs, keys, seed, 6, 40)
	t.Logf("rotations: a %d, b %d, c %d", rotated["a"].Load(), rotated["b"].Load(), rotated["c"].Load())
	if rotated["a"].Load()+rotated["b"].Load()+rotated["c"].Load() == 0 {
		t.Fatal("no rotation succeeded")
	}
	for name, id := range keys {
		out, err := rs.client(1).ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(out.Rotations); got != int(rotated[name].Load()) {
			t.Errorf("key %s: %d rotations listed, %d succeeded", name, got, rotated[name].Load())
		}
	}
	checkAliases(t, rs, keys)
	if out, err := rs.cli("audit", "verify"); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// runChanges runs workers*ops random changes, worker w on replica w%3, and
// returns the successful rotations per key. A change may fail only with
// the error KMS gives a loser of a race (an alias that exists or not).
func runChanges(t *testing.T, rs *replicaSet, keys map[string]string, seed int64, workers, ops int) map[string]*atomic.Int64 {
	names := []string{"a", "b", "c"}
	rotated := map[string]*atomic.Int64{}
	for _, n := range names {
		rotated[n] = &atomic.Int64{}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			c := rs.client(w % len(rs.addrs))
			for range ops {
				key := names[rnd.IntN(len(names))]
				alias := aws.String(fmt.Sprintf("alias/x%d", rnd.IntN(4)))
				var err error
				switch rnd.IntN(3) {
				case 0:
					if _, err = c.RotateKeyOnDemand(context.Background(), &kms.RotateKeyOnDemandInput{KeyId: aws.String(keys[key])}); err == nil {
						rotated[key].Add(1)
					}
				case 1:
					_, err = c.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: alias, TargetKeyId: aws.String(keys[key])})
				default:
					_, err = c.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: alias})
				}
				var exists *types.AlreadyExistsException
				var missing *types.NotFoundException
				var limit *types.LimitExceededException
				if err != nil && !errors.As(err, &exists) && !errors.As(err, &missing) && !errors.As(err, &limit) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a change failed other than as a lost race: %v", err)
	}
	return rotated
}

// checkAliases waits (the replicas are at most 1 s stale) until all
// replicas list the same aliases, and checks that each names a key.
func checkAliases(t *testing.T, rs *replicaSet, keys map[string]string) {
	t.Helper()
	ids := map[string]bool{}
	for _, id := range keys {
		ids[id] = true
	}
	list := func(i int) map[string]string {
		out, err := rs.client(i).ListAliases(context.Background(), &kms.ListAliasesInput{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, a := range out.Aliases {
			if a.TargetKeyId != nil {
				m[*a.AliasName] = *a.TargetKeyId
			}
		}
		return m
	}
	var first map[string]string
	waitUntil(t, "every replica to list the same aliases", func() bool {
		first = list(0)
		return maps.Equal(first, list(1)) && maps.Equal(first, list(2))
	}, rs.procs...)
	for alias, id := range first {
		if !ids[id] {
			t.Errorf("alias %s names %s, not one of the keys", alias, id)
		}
	}
}
