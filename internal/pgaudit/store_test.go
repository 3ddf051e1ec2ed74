package pgaudit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/pgaudit"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// TestStoreRecordsIntoPostgres opens a keystore.Store with its audit in
// PostgreSQL: every operation's decision is a row of the chain; with the
// database stopped operations fail closed (policy.ErrAuditFailed) and
// change nothing; after a start they succeed again, and the store's own
// VerifyAudit checks the chain.
func TestStoreRecordsIntoPostgres(t *testing.T) {
	t.Parallel() // a cluster of its own, stopped and started: overlaps the others
	c, pool := newOwnDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: "user:test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	dest := &pgaudit.Destination{Pool: pool, Chain: "replica-1"}
	s, err = keystore.Open(dir, keystore.OpenOptions{Principal: "user:test", Audit: dest})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateKey(ctx, "k1", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Gate().VerifyAudit(ctx)
	if err != nil || rep.Records == 0 {
		t.Fatalf("after CreateKey: %+v, %v; want records in the database", rep, err)
	}
	before := rep.Records
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKey(ctx, "k2", keystore.CreateKeyOptions{}); !errors.Is(err, policy.ErrAuditFailed) {
		t.Fatalf("CreateKey with the database down: %v, want ErrAuditFailed", err)
	}
	if _, err := s.DescribeKey(ctx, "k2"); !errors.Is(err, policy.ErrAuditFailed) {
		t.Fatalf("DescribeKey with the database down: %v, want ErrAuditFailed", err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "operations to succeed again", 30*time.Second, func() bool {
		_, err := s.CreateKey(ctx, "k3", keystore.CreateKeyOptions{})
		return err == nil
	})
	if _, err := s.DescribeKey(ctx, "k2"); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("k2, refused while the database was down: %v, want ErrKeyNotFound", err)
	}
	rep, err = s.Gate().VerifyAudit(ctx)
	if err != nil || rep.Records <= before {
		t.Fatalf("VerifyAudit: %+v, %v", rep, err)
	}
	if rep, err := pgaudit.Verify(ctx, pool, audit.Key{MAC: make([]byte, 32)}); err == nil {
		t.Fatalf("verified under a wrong key: %+v", rep)
	}
}
