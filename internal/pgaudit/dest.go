package pgaudit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/gate"
)

var (
	_ gate.AuditDestination = (*Destination)(nil)
	_ gate.AuditSink        = (*Log)(nil)
)

// Destination is the gate.AuditDestination of a store whose records are
// in PostgreSQL, seen from one writer (a key-server replica) whose chain is Chain: it opens that
// chain for appending, and reads, verifies and sets aside every chain.
type Destination struct {
	Pool  *pgxpool.Pool
	Chain string
	// CommitTimeout bounds one group commit (Options.CommitTimeout).
	CommitTimeout time.Duration
}

// Open opens d.Chain with the audit key, the context-logging choice and
// the clock of opts; Durability does not apply (a commit is durable).
// opts.Anchor, the anchor the store's state records, is not consulted:
// each chain's end is anchored in the database, in its anchor row,
// which Open checks; exported anchors (Log.Checkpoint) are checked by
// Verify. (A store that moved from the file log to PostgreSQL records
// the file's anchor, which no chain holds.)
func (d *Destination) Open(ctx context.Context, opts audit.Options) (gate.AuditSink, error) {
	l, err := Open(ctx, d.Pool, d.Chain, Options{MACKey: opts.MACKey, LogContextValues: opts.LogContextValues,
		Now: opts.Now, CommitTimeout: d.CommitTimeout})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return l, nil
}

// findAnchor fails with a *TamperError unless some current chain holds
// entry a.Seq with hash a.Head.
func findAnchor(ctx context.Context, pool *pgxpool.Pool, a audit.Anchor) error {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM keystack_audit_records r JOIN keystack_audit_chains c
		ON c.chain = r.chain AND c.aside IS NULL WHERE r.seq = $1 AND r.line LIKE $2`,
		int64(a.Seq), `%,"hash":"`+a.Head+`"}`).Scan(&n)
	if err != nil {
		return fmt.Errorf("%w: find anchor: %w", audit.ErrWrite, err)
	}
	if n == 0 {
		return &TamperError{Chain: "(any)", Seq: a.Seq, Truncated: true,
			Reason: fmt.Sprintf("no chain holds the anchored entry %d (head %.16s…): entries were cut off or deleted", a.Seq, a.Head)}
	}
	return nil
}

// Read returns every current chain's entries as JSON lines (audit.Query
// parses them), chain after chain, each in order. The caller closes it.
func (d *Destination) Read(ctx context.Context) (io.ReadCloser, error) {
	rows, err := d.Pool.Query(ctx, `SELECT r.line FROM keystack_audit_records r JOIN keystack_audit_chains c
		ON c.chain = r.chain AND c.aside IS NULL ORDER BY r.chain, r.seq`)
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", audit.ErrWrite, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer rows.Close()
		w := bufio.NewWriter(pw)
		var line []byte
		for rows.Next() {
			if err := rows.Scan(&line); err != nil {
				pw.CloseWithError(err)
				return
			}
			w.Write(line)
			if err := w.WriteByte('\n'); err != nil {
				return // the reader closed the pipe
			}
		}
		err := rows.Err()
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// Verify checks every current chain (see the package Verify) and that each
// chain anchor's entry is in one of them (isChainAnchor: anchors of a file
// log, such as the store state's from before the database, are skipped), and returns the totals as an
// audit.VerifyReport (Entries and Records over all chains; LastSeq and
// Head of the last chain by name).
func (d *Destination) Verify(ctx context.Context, key audit.Key, anchors ...audit.Anchor) (*audit.VerifyReport, error) {
	rep, err := Verify(ctx, d.Pool, key)
	out := &audit.VerifyReport{}
	if rep != nil {
		out.Entries, out.Records = int(rep.Records), int(rep.Records-rep.Checkpoints)
		out.Checkpoints = int(rep.Checkpoints)
		if n := len(rep.Chains); n > 0 {
			out.LastSeq, out.Head = rep.Chains[n-1].Entries, rep.Chains[n-1].Head
		}
	}
	if err != nil {
		return out, err
	}
	for _, a := range anchors {
		if !isChainAnchor(a) {
			continue // a file log's position, such as the state's anchor from before the database
		}
		if err := findAnchor(ctx, d.Pool, a); err != nil {
			return out, err
		}
	}
	return out, nil
}

// isChainAnchor reports whether a names an entry of a chain here (as
// Log.Checkpoint makes them: Offset is the sequence number) rather than a
// position in an audit log file (Offset is a byte offset, always larger).
// Verify checks the former and skips the latter.
func isChainAnchor(a audit.Anchor) bool { return a.Seq > 0 && a.Offset == int64(a.Seq) }

// SetAside renames every current chain to CHAIN.WHY-TIME, marked as set
// aside (kept, no longer verified, read or continued), in one transaction,
// and returns the suffix ("" when there was no chain). Writers still
// holding a chain then fail closed until reopened.
func (d *Destination) SetAside(ctx context.Context, why string, now time.Time) (string, error) {
	if strings.ContainsAny(why, " \t\n") || why == "" {
		return "", fmt.Errorf("pgaudit: set aside: bad reason %q", why)
	}
	suffix := "." + why + "-" + now.UTC().Format("20060102T150405.000000000Z")
	var n int64
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE keystack_audit_records SET chain = chain || $1
			WHERE chain IN (SELECT chain FROM keystack_audit_chains WHERE aside IS NULL)`, suffix); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE keystack_audit_chains SET aside = chain, chain = chain || $1 WHERE aside IS NULL`, suffix)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%w: set aside: %w", audit.ErrWrite, err)
	}
	if n == 0 {
		return "", nil
	}
	return "chains *" + suffix, nil
}

// ErrBadDSN is returned for a connection string that does not parse; it
// never quotes the string, which may hold a password.
var ErrBadDSN = errors.New("pgaudit: the PostgreSQL connection string does not parse")

// Connect opens a pool on the database of dsn (a postgres:// URL or
// key=value string as libpq takes), creates the audit tables if needed
// (Migrate) and returns the Destination of chain there. The caller closes
// the pool (d.Pool.Close) after closing the store.
func Connect(ctx context.Context, dsn, chain string) (*Destination, error) {
	if err := checkChainName(chain); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ErrBadDSN
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %w", audit.ErrWrite, err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Destination{Pool: pool, Chain: chain}, nil
}
