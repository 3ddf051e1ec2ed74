package pgaudit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keystack/keystack/audit"
)

// commitSQL moves the anchor from ($2, $3) to ($4, $5, mac $6) and inserts
// the rows in one statement, so one round trip commits a batch and the
// anchor and rows never disagree. If the anchor is not where this writer
// left it (another writer of the chain, or a commit whose outcome this one
// did not see), nothing is inserted.
const commitSQL = `WITH a AS (
	UPDATE keystack_audit_chains SET seq = $4, head = $5, mac = $6, updated = now()
	WHERE chain = $1 AND seq = $2 AND head = $3 RETURNING chain)
INSERT INTO keystack_audit_records (chain, seq, line)
SELECT a.chain, r.seq, r.line FROM a, unnest($7::bigint[], $8::text[]) AS r(seq, line)`

// errMoved is a commit that found the anchor moved.
var errMoved = errors.New("the chain's anchor moved")

// commitLoop is the single committer: it takes every queued call and
// commits their records with one statement (group commit).
func (l *Log) commitLoop() {
	for p := range l.reqs {
		batch, n := []*pending{p}, len(p.rs)
	drain:
		for n < maxBatch {
			select {
			case q, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, q)
				n += len(q.rs)
			default:
				break drain
			}
		}
		err := l.commit(batch)
		for _, p := range batch {
			if p.err != nil {
				p.done <- p.err
			} else {
				p.done <- err
			}
		}
	}
	var err error
	if l.wrote {
		err = l.commit([]*pending{{checkpoint: true, final: true}})
	}
	l.done <- err
}

// commit writes a batch. A batch whose anchor moved (another writer of the
// chain) is resealed on the chain's new end and tried again, until the
// commit timeout.
func (l *Log) commit(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	err := l.commitOnce(ctx, batch)
	for errors.Is(err, errMoved) && ctx.Err() == nil {
		if err = l.reload(ctx); err == nil {
			err = l.commitOnce(ctx, batch)
		}
	}
	if err != nil && !errors.Is(err, audit.ErrWrite) {
		err = fmt.Errorf("%w: chain %s: %w", audit.ErrWrite, l.chain, err)
	}
	return err
}

// reload is load after a commit found the anchor moved. When this
// writer's chain was set aside exactly at the end it knew (keystack audit
// reset-anchor, Destination.SetAside), it starts the chain anew at its
// genesis, as a restarted writer would, so a running replica recovers
// without a restart; a chain gone any other way stays an error, and the
// batch fails closed.
func (l *Log) reload(ctx context.Context) error {
	err := l.load(ctx)
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var aside bool
	qerr := l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM keystack_audit_chains
		WHERE aside = $1 AND seq = $2 AND head = $3)`, l.chain, int64(l.seq), l.head[:]).Scan(&aside)
	if qerr != nil || !aside {
		return err
	}
	if err := l.create(ctx); err != nil {
		return err
	}
	return l.load(ctx)
}

// commitOnce seals the batch after the chain's current end and commits it.
func (l *Log) commitOnce(ctx context.Context, batch []*pending) error {
	now := l.opts.Now().UTC().Format(time.RFC3339Nano)
	seq, head := l.seq, l.head
	var seqs []int64
	var lines []string
	for _, p := range batch {
		ps, ph, pl := seq, head, len(lines)
		for _, r := range p.rs {
			line, h, err := l.seal(r, now, seq+1, head)
			if err != nil {
				p.err = err // this call only: its records are not written
				seq, head, seqs, lines = ps, ph, seqs[:pl], lines[:pl]
				break
			}
			seq, head = seq+1, h
			seqs, lines = append(seqs, int64(seq)), append(lines, string(line))
		}
		if p.checkpoint && p.err == nil {
			line, h := l.sealer.Checkpoint(seq+1, head, now, p.final)
			seq, head = seq+1, h
			seqs, lines = append(seqs, int64(seq)), append(lines, string(line))
			p.anchor = l.sealer.SignAnchor(audit.Anchor{Seq: seq, Head: hex.EncodeToString(h[:]), Offset: int64(seq), Time: now})
		}
	}
	if len(lines) == 0 {
		return nil
	}
	l.commits.Add(1)
	tag, err := l.pool.Exec(ctx, commitSQL, l.chain, int64(l.seq), l.head[:], int64(seq), head[:],
		anchorMAC(l.sealer, l.chain, seq, head), seqs, lines)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(lines)) {
		return errMoved
	}
	l.seq, l.head, l.wrote = seq, head, true
	return nil
}

// seal returns the stored line of r as entry seq after head, and its hash.
func (l *Log) seal(r audit.Record, now string, seq uint64, head [32]byte) ([]byte, [32]byte, error) {
	e, err := l.sealer.Entry(r)
	if err != nil {
		return nil, head, err
	}
	e.Time, e.Seq = now, seq
	return l.sealer.Seal(&e, head)
}
