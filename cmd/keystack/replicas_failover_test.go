package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keystack/keystack/internal/pgtest"
)

// failoverBound is how soon after the standby's promotion every replica
// must serve again, without a restart.
const failoverBound = 15 * time.Second

// TestReplicasPostgresFailover runs two key servers on a PostgreSQL
// primary with a synchronous streaming standby, both named in the
// servers' connection string (host list, target_session_attrs=read-write).
// Under GenerateDataKey load and a writer that creates keys and encrypts
// under them, the primary's postmaster is killed with SIGKILL and the
// standby promoted. While no primary takes writes, requests fail closed
// with a 5xx; after the promotion both replicas serve again within
// failoverBound without a restart, and a rotation daemon (also not
// restarted) rotates a key that became due after it; every key created and every ciphertext
// and data key acknowledged, before the kill or after, is there and
// decrypts on both replicas; every successful request has exactly one
// audit record, and `audit verify` passes over the chains.
func TestReplicasPostgresFailover(t *testing.T) {
	t.Parallel() // child processes and clusters of its own
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers and two key servers")
	}
	primary := pgtest.Start(t) // killed below: a cluster of its own
	standby := primary.StartStandby(t)
	u, err := url.Parse(primary.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	rs := startReplicas(t, newPGStoreAt(t, primary, pgtest.FailoverDSN(strings.TrimPrefix(u.Path, "/"), primary, standby)), 2)
	rs.p.addDueKey(t, "due1")
	daemon := startProc(t, rs.bin, "rotate daemon", nil, "--home", rs.p.dir, "rotate", "daemon", "--storage", rs.p.dsn,
		"--replica-id", "d1", "--interval", "100ms", "--lease-ttl", "1s")
	waitUntil(t, "the rotation daemon to rotate due1", func() bool { return rs.p.primary(t, "due1") == 2 }, daemon)
	l := startLoad(rs, 4)
	defer l.stop()
	w := startWriter(rs, l)
	defer w.stop()
	l.waitOK(t, 200, "200 successes before the kill", rs.procs...)
	w.waitKeys(t, 3, "3 keys created before the kill", rs.procs...)
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	before := w.snapshot()
	waitUntil(t, "requests to fail with the primary dead", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.failures) >= 10
	}, rs.procs...)
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	for i := range rs.addrs {
		waitServes(t, rs, i, promoted)
	}
	l.waitOK(t, 200, "200 successes after the promotion", rs.procs...)
	rs.p.addDueKey(t, "due2")
	waitUntil(t, "the rotation daemon to rotate due2 after the promotion", func() bool { return rs.p.primary(t, "due2") == 2 }, daemon)
	if v := rs.p.primary(t, "due1"); v != 2 {
		t.Errorf("due1: primary v%d after the failover, want v2 (rotated once)", v)
	}
	if n := daemon.count("failed=1") + daemon.count("outcome=failed"); n > 0 {
		t.Errorf("the rotation daemon reported %d failed rotations", n)
	}
	w.waitKeys(t, before.keys+3, "3 keys created after the promotion", rs.procs...)
	l.stop()
	w.stop()
	t.Logf("primary killed; standby promoted %v later; %d successes, %d failures; writer: %d keys, %d ciphertexts (%d keys, %d ciphertexts before the kill), %d failures",
		promoted.Sub(killed).Round(time.Millisecond), l.ok.Load(), len(l.failures), len(w.keys), len(w.acked), before.keys, before.acked, len(w.failures))
	for _, err := range append(l.failures, w.failures...) {
		if !is5xx(err) {
			t.Fatalf("a request failed other than with a 5xx during the failover: %v", err)
		}
	}
	w.check(t, rs)
	rs.checkAudited(t, l)
}

// waitServes waits until replica i answers GenerateDataKey, and fails t
// unless it does within failoverBound of since.
func waitServes(t *testing.T, rs *replicaSet, i int, since time.Time) {
	t.Helper()
	var err error
	waitUntil(t, fmt.Sprintf("replica %d to serve after the promotion", i+1), func() bool {
		_, err = rs.client(i).GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: aws.String("k"), KeySpec: types.DataKeySpecAes256})
		return err == nil || time.Since(since) > failoverBound
	}, rs.procs...)
	if err != nil {
		t.Fatalf("replica %d does not serve %v after the promotion: %v", i+1, failoverBound, err)
	}
	t.Logf("replica %d serves %v after the promotion", i+1, time.Since(since).Round(time.Millisecond))
}

func is5xx(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

// ackedBlob is a ciphertext a replica acknowledged (Encrypt, or the
// ciphertext blob of GenerateDataKey), with the key it was made under and
// the plaintext it must decrypt to.
type ackedBlob struct {
	key              string
	plain, encrypted []byte
}

// writer creates keys and encrypts under them, and makes data keys under
// "k", alternating replicas, one request at a time, and keeps every
// acknowledged key and ciphertext.
type writer struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	keys     []string
	acked    []ackedBlob
	failures []error
}

// startWriter runs the writer: each round creates a key on one replica,
// encrypts under it there, and makes a data key under "k" on the next,
// whose outcome it adds to l's.
func startWriter(rs *replicaSet, l *load) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			c := rs.client(i % len(rs.addrs))
			ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprint("failover ", i))})
			if !w.note(ctx, err) {
				continue
			}
			id := *ck.KeyMetadata.KeyId
			w.add(id, nil)
			plain := []byte(fmt.Sprint("message ", i))
			// On the replica that created the key: another may learn of
			// it up to a second later (--storage-max-stale).
			enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: plain})
			if w.note(ctx, err) {
				w.add("", &ackedBlob{key: id, plain: plain, encrypted: enc.CiphertextBlob})
			}
			// Counted as the load's: checkAudited matches it to its record.
			l.attempts.Add(1)
			dk, err := rs.client((i+1)%len(rs.addrs)).GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("k"), KeySpec: types.DataKeySpecAes256})
			l.record(ctx, dk, 1, err)
			if err == nil {
				w.add("", &ackedBlob{key: "k", plain: dk.Plaintext, encrypted: dk.CiphertextBlob})
			}
		}
	}()
	return w
}

// note records err if the writer was not stopped meanwhile, and reports
// whether the call succeeded.
func (w *writer) note(ctx context.Context, err error) bool {
	if err != nil && ctx.Err() == nil {
		w.mu.Lock()
		w.failures = append(w.failures, err)
		w.mu.Unlock()
	}
	return err == nil
}

func (w *writer) add(key string, b *ackedBlob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if key != "" {
		w.keys = append(w.keys, key)
	}
	if b != nil {
		w.acked = append(w.acked, *b)
	}
}

type writerCounts struct{ keys, acked int }

func (w *writer) snapshot() writerCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writerCounts{len(w.keys), len(w.acked)}
}

func (w *writer) waitKeys(t *testing.T, n int, what string, live ...*proc) {
	t.Helper()
	waitUntil(t, what, func() bool { return w.snapshot().keys >= n }, live...)
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
}

// check fails t unless every acknowledged key is described by every
// replica, and every acknowledged ciphertext decrypts, on the replicas in
// turn, to its plaintext under its key.
func (w *writer) check(t *testing.T, rs *replicaSet) {
	t.Helper()
	ctx := context.Background()
	// A key reaches the replica that did not create it within a second.
	waitUntil(t, "every replica to know the last key", func() bool {
		for i := range rs.addrs {
			if _, err := rs.client(i).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(w.keys[len(w.keys)-1])}); err != nil {
				return false
			}
		}
		return true
	}, rs.procs...)
	for _, id := range w.keys {
		for i := range rs.addrs {
			if _, err := rs.client(i).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
				t.Fatalf("key %s, created before the failover's end, on replica %d: %v", id, i+1, err)
			}
		}
	}
	for j, b := range w.acked {
		out, err := rs.client(j%len(rs.addrs)).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b.encrypted})
		if err != nil {
			t.Fatalf("acknowledged ciphertext %d of %d (key %s) does not decrypt: %v", j+1, len(w.acked), b.key, err)
		}
		if !bytes.Equal(out.Plaintext, b.plain) {
			t.Fatalf("acknowledged ciphertext %d of %d (key %s) decrypts to other bytes", j+1, len(w.acked), b.key)
		}
	}
}
