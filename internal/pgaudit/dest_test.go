package pgaudit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/pgaudit"
)

// TestDestination: two replicas' chains through the Destination API:
// Read gives every record to audit.Query, a checkpoint's anchor is
// authentic and verifies, the same anchor finds a chain cut back past it
// (even with the anchor row moved back consistently), and SetAside starts
// over with the old chains kept but no longer verified.
func TestDestination(t *testing.T) {
	_, pool := newDB(t)
	ctx := context.Background()
	key := audit.Key{MAC: testKey}
	opts := audit.Options{MACKey: testKey}
	da, db := &pgaudit.Destination{Pool: pool, Chain: "a"}, &pgaudit.Destination{Pool: pool, Chain: "b"}
	la, err := da.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := db.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, la.(*pgaudit.Log), 0, 5)
	appendN(t, lb.(*pgaudit.Log), 100, 3)
	cp, err := la.Checkpoint(ctx)
	if err != nil || cp.Seq != 6 || !cp.Authentic(key) || la.Anchor() != cp {
		t.Fatalf("checkpoint %+v (%v), want entry 6, authentic, and the log's anchor", cp, err)
	}
	if a := lb.Anchor(); a.Seq != 0 {
		t.Fatalf("anchor before any checkpoint: %+v, want the zero anchor", a)
	}
	appendN(t, la.(*pgaudit.Log), 10, 2)
	r, err := da.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for e, err := range audit.Query(r, audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == audit.TypeOperation {
			n++
		}
	}
	r.Close()
	if n != 10 {
		t.Fatalf("Read gave %d records, want 10", n)
	}
	if rep, err := db.Verify(ctx, key, cp); err != nil || rep.Records != 10 || rep.Checkpoints != 1 {
		t.Fatalf("Verify with the anchor: %+v, %v", rep, err)
	}
	fileAnchor := audit.Anchor{Seq: 3, Head: cp.Head, Offset: 812}
	if _, err := db.Verify(ctx, key, fileAnchor); err != nil {
		t.Fatalf("Verify with a file log's anchor (skipped): %v", err)
	}
	if _, err := db.Verify(ctx, key, audit.Anchor{Seq: 3, Head: cp.Head, Offset: 3}); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify with a chain anchor no chain holds: %v, want ErrTruncated", err)
	}
	bogus := audit.Anchor{Seq: 99, Head: cp.Head, Offset: 99}
	if _, err := da.Open(ctx, audit.Options{MACKey: testKey, Anchor: &bogus}); err != nil {
		t.Fatalf("Open with the state's anchor of another log (not consulted): %v", err)
	}
	setAside(t, da, key, cp)
}

// setAside checks SetAside, then cuts the new chain back before a new
// checkpoint, moving its anchor row back to match (copied from before), and
// expects Verify with the exported anchor to find it.
func setAside(t *testing.T, d *pgaudit.Destination, key audit.Key, old audit.Anchor) {
	ctx := context.Background()
	name, err := d.SetAside(ctx, "damaged", time.Now())
	if err != nil || name == "" {
		t.Fatalf("SetAside: %q, %v", name, err)
	}
	if _, err := d.Verify(ctx, key, old); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify with an anchor of a set-aside chain: %v, want ErrTruncated", err)
	}
	l, err := d.Open(ctx, audit.Options{MACKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l.(*pgaudit.Log), 0, 2)
	var seq int64
	var head, mac []byte
	if err := d.Pool.QueryRow(ctx, `SELECT seq, head, mac FROM keystack_audit_chains WHERE chain = 'a'`).Scan(&seq, &head, &mac); err != nil || seq != 2 {
		t.Fatalf("anchor row: %d, %v", seq, err)
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l.(*pgaudit.Log), 10, 2)
	if rep, err := d.Verify(ctx, key, cp); err != nil || rep.Records != 4 {
		t.Fatalf("Verify after SetAside: %+v, %v", rep, err)
	}
	if _, err := d.Pool.Exec(ctx, `DELETE FROM keystack_audit_records WHERE chain = 'a' AND seq > 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE keystack_audit_chains SET seq = $1, head = $2, mac = $3 WHERE chain = 'a'`, seq, head, mac); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Verify(ctx, key); err != nil {
		t.Fatalf("a chain cut back to an older anchor row verifies on its own (documented): %v", err)
	}
	if _, err := d.Verify(ctx, key, cp); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify with the exported anchor: %v, want ErrTruncated", err)
	}
}
