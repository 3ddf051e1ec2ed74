package pgaudit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/pgaudit"
)

// TestVerifyFindsTampering writes two chains, changes the database as
// someone with write access but without the audit key could, and checks
// that Verify names the chain and the class of the change, and that a
// writer refuses to continue a chain whose anchor it cannot vouch for.
func TestVerifyFindsTampering(t *testing.T) {
	c, _ := newDB(t)
	cases := []struct {
		name, sql string
		truncated bool
		want      string // in the reason
		reopen    bool   // Open of chain a fails too
	}{
		{"edit a line", `UPDATE keystack_audit_records SET line = replace(line, 'kms:GenerateDataKey', 'kms:Decrypt') WHERE chain = 'a' AND seq = 5`, false, "edited or forged", false},
		{"delete a middle row", `DELETE FROM keystack_audit_records WHERE chain = 'a' AND seq = 5`, false, "deleted, inserted or reordered", false},
		{"cut the tail", `DELETE FROM keystack_audit_records WHERE chain = 'a' AND seq > 7`, true, "cut off", true},
		{"delete every row", `DELETE FROM keystack_audit_records WHERE chain = 'a'`, true, "cut off", true},
		{"append a copied row", `INSERT INTO keystack_audit_records SELECT chain, 12, line FROM keystack_audit_records WHERE chain = 'a' AND seq = 11`, false, "", false},
		{"move the anchor back", `UPDATE keystack_audit_chains SET seq = 7 WHERE chain = 'a'`, false, "anchor row is not authentic", true},
		{"delete the anchor", `DELETE FROM keystack_audit_chains WHERE chain = 'a'`, false, "no anchor row", false},
		{"swap two rows", `UPDATE keystack_audit_records SET seq = 1003 WHERE chain = 'a' AND seq = 3; UPDATE keystack_audit_records SET seq = 3 WHERE chain = 'a' AND seq = 4; UPDATE keystack_audit_records SET seq = 4 WHERE chain = 'a' AND seq = 1003`, false, "", false},
		{"pass one chain's rows off as another's", `DELETE FROM keystack_audit_records WHERE chain = 'b';
			INSERT INTO keystack_audit_records SELECT 'b', seq, line FROM keystack_audit_records WHERE chain = 'a' AND seq <= 10;
			UPDATE keystack_audit_chains SET (seq, head, mac) = (SELECT seq, head, mac FROM keystack_audit_chains WHERE chain = 'a') WHERE chain = 'b'`, false, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a database each
			pool := newPool(t, c)
			for _, name := range []string{"a", "b"} {
				l := open(t, pool, name)
				for i := range 10 {
					if err := l.Append(context.Background(), rec(i)); err != nil {
						t.Fatal(err)
					}
				}
				l.Close()
			}
			verify(t, pool)
			if _, err := pool.Exec(context.Background(), tc.sql); err != nil {
				t.Fatal(err)
			}
			_, err := pgaudit.Verify(context.Background(), pool, audit.Key{MAC: testKey})
			var te *pgaudit.TamperError
			if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify: %v, want a TamperError", err)
			}
			if errors.Is(err, audit.ErrTruncated) != tc.truncated || !strings.Contains(te.Reason, tc.want) {
				t.Errorf("Verify: %v; want truncated=%v and reason containing %q", err, tc.truncated, tc.want)
			}
			_, oerr := pgaudit.Open(context.Background(), pool, "a", pgaudit.Options{MACKey: testKey})
			if tc.reopen && !errors.Is(oerr, audit.ErrTampered) {
				t.Errorf("Open of the tampered chain: %v, want ErrTampered", oerr)
			}
		})
	}
}

// TestVerifyWrongKey: a chain verified under another key fails at its
// first entry.
func TestVerifyWrongKey(t *testing.T) {
	_, pool := newDB(t)
	l := open(t, pool, "a")
	appendN(t, l, 0, 3)
	other := []byte("another key of thirty-two bytes!")
	_, err := pgaudit.Verify(context.Background(), pool, audit.Key{MAC: other})
	if !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Verify under another key: %v, want ErrTampered", err)
	}
	if _, err := pgaudit.Verify(context.Background(), pool, audit.Key{MAC: []byte("short")}); !errors.Is(err, audit.ErrNoKey) {
		t.Fatalf("Verify with a short key: %v, want ErrNoKey", err)
	}
}

// TestVerifyWhileWriting: Verify checks one snapshot of the chains, so a
// writer appending meanwhile never makes it report tampering (read in
// two snapshots, rows committed between them looked appended without
// the anchor moving).
func TestVerifyWhileWriting(t *testing.T) {
	_, pool := newDB(t)
	l := open(t, pool, "w")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; ctx.Err() == nil && err == nil; i++ {
			if err = l.Append(ctx, rec(i)); ctx.Err() != nil {
				err = nil
			}
		}
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Append: %v", err)
		}
	}()
	for range 40 {
		if _, err := pgaudit.Verify(context.Background(), pool, audit.Key{MAC: testKey}); err != nil {
			t.Fatalf("Verify with a writer appending: %v", err)
		}
	}
}
