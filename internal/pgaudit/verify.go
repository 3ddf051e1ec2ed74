package pgaudit

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/audit"
)

// TamperError names a chain and the first entry of it that is wrong.
type TamperError struct {
	Chain     string
	Seq       uint64 // the entry expected there
	Reason    string
	Truncated bool // entries were cut off the chain's end
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("%v: chain %s, entry %d: %s", audit.ErrTampered, e.Chain, e.Seq, e.Reason)
}

// Is matches audit.ErrTampered, and audit.ErrTruncated for a chain cut
// short.
func (e *TamperError) Is(target error) bool {
	return target == audit.ErrTampered || (e.Truncated && target == audit.ErrTruncated)
}

// ChainReport describes one verified chain.
type ChainReport struct {
	Chain       string
	Entries     uint64 // its last sequence number
	Checkpoints uint64 // entries that are checkpoints
	Head        string // hex hash of its last entry ("" when empty)
}

// Report describes every verified current chain (not those set aside),
// sorted by name.
type Report struct {
	Chains      []ChainReport
	Records     uint64 // entries in all chains
	Checkpoints uint64 // of which checkpoints
}

// Verify checks every chain in the database under the audit key: every
// row's canonical form, keyed hash and sequence number, and each chain's
// end against its authenticated anchor. It reads one snapshot (a
// repeatable-read transaction), so writers appending meanwhile do not
// make anchors and rows disagree. It returns the report of the chains it
// checked and a *TamperError for the first bad one; other errors (the
// database unreachable) wrap audit.ErrWrite.
func Verify(ctx context.Context, pool *pgxpool.Pool, key audit.Key) (*Report, error) {
	sealer, err := audit.NewSealer(key, false)
	if err != nil {
		return nil, err
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("%w: read anchors: %w", audit.ErrWrite, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	anchors, err := readAnchors(ctx, tx)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, a := range anchors {
		cr, err := verifyChain(ctx, tx, sealer, a)
		if err != nil {
			return rep, err
		}
		rep.Chains = append(rep.Chains, cr)
		rep.Records += cr.Entries
		rep.Checkpoints += cr.Checkpoints
	}
	return rep, nil
}

// anchor is one row of keystack_audit_chains; orphan marks a chain that
// has records but no anchor row.
type anchor struct {
	chain     string
	seq       int64
	head, mac []byte
	orphan    bool
}

// querier runs a query: the transaction Verify reads in.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readAnchors(ctx context.Context, q querier) ([]anchor, error) {
	rows, err := q.Query(ctx, `SELECT c.chain, a.seq, a.head, a.mac, a.chain IS NULL FROM
		(SELECT chain FROM keystack_audit_chains WHERE aside IS NULL UNION SELECT DISTINCT chain FROM keystack_audit_records r
		 WHERE NOT EXISTS (SELECT 1 FROM keystack_audit_chains x WHERE x.chain = r.chain)) c
		LEFT JOIN keystack_audit_chains a ON a.chain = c.chain`)
	if err != nil {
		return nil, fmt.Errorf("%w: read anchors: %w", audit.ErrWrite, err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (anchor, error) {
		var a anchor
		var seq *int64
		err := r.Scan(&a.chain, &seq, &a.head, &a.mac, &a.orphan)
		if seq != nil {
			a.seq = *seq
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: read anchors: %w", audit.ErrWrite, err)
	}
	sort.Slice(as, func(i, j int) bool { return as[i].chain < as[j].chain })
	return as, nil
}

// verifyChain checks one chain's rows in order and its end against a.
func verifyChain(ctx context.Context, q querier, s *audit.Sealer, a anchor) (ChainReport, error) {
	cr := ChainReport{Chain: a.chain}
	bad := func(seq uint64, truncated bool, format string, args ...any) error {
		return &TamperError{Chain: a.chain, Seq: seq, Truncated: truncated, Reason: fmt.Sprintf(format, args...)}
	}
	if a.orphan {
		return cr, bad(1, false, "the chain has records but no anchor row (anchor deleted, or rows inserted without the key)")
	}
	if a.seq < 0 || len(a.head) != 32 || !anchorValid(s, a.chain, uint64(a.seq), [32]byte(a.head), a.mac) {
		return cr, bad(uint64(max(a.seq, 0)), false, "the chain's anchor row is not authentic (edited or forged)")
	}
	rows, err := q.Query(ctx, `SELECT seq, line FROM keystack_audit_records WHERE chain = $1 ORDER BY seq`, a.chain)
	if err != nil {
		return cr, fmt.Errorf("%w: read chain %s: %w", audit.ErrWrite, a.chain, err)
	}
	defer rows.Close()
	prev, n := genesis(s, a.chain), uint64(0)
	var seq int64
	var line []byte
	for rows.Next() {
		if err := rows.Scan(&seq, &line); err != nil {
			return cr, fmt.Errorf("%w: read chain %s: %w", audit.ErrWrite, a.chain, err)
		}
		if uint64(seq) != n+1 {
			return cr, bad(n+1, false, "row %d follows entry %d (entries deleted, inserted or reordered)", seq, n)
		}
		e, h, err := s.Check(line, prev, n+1)
		if err != nil {
			return cr, bad(n+1, false, "%v", err)
		}
		prev, n, cr.Entries, cr.Head = h, n+1, n+1, e.Hash
		if e.Type == audit.TypeCheckpoint {
			cr.Checkpoints++
		}
	}
	if err := rows.Err(); err != nil {
		return cr, fmt.Errorf("%w: read chain %s: %w", audit.ErrWrite, a.chain, err)
	}
	return cr, checkEnd(a, n, prev, bad)
}

// checkEnd compares a chain that ends at entry n with hash head to its
// anchor.
func checkEnd(a anchor, n uint64, head [32]byte, bad func(uint64, bool, string, ...any) error) error {
	switch {
	case n < uint64(a.seq):
		return bad(n+1, true, "the chain ends at entry %d but its anchor records entry %d: %d entries were cut off", n, a.seq, uint64(a.seq)-n)
	case n > uint64(a.seq):
		return bad(uint64(a.seq)+1, false, "entries %d-%d follow the anchored end (appended without the anchor moving)", a.seq+1, n)
	case head != [32]byte(a.head):
		return bad(n, false, "the last entry is not the one the anchor names (chain rewritten)")
	}
	return nil
}
