package pgaudit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/audit"
)

// Options configure a Log. MACKey is required.
type Options struct {
	// MACKey (at least 32 bytes) is the audit key: it keys the chain, the
	// anchors and the encryption-context hashes.
	MACKey []byte
	// LogContextValues stores encryption contexts in clear as well.
	LogContextValues bool
	// CommitTimeout bounds one group commit (default 5 s): past it the
	// batch fails and its operations are refused.
	CommitTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Log appends audit records to one chain in PostgreSQL. It is safe for
// concurrent use: concurrent appends are committed together.
type Log struct {
	pool  *pgxpool.Pool
	chain string
	opts  Options

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *pending
	done   chan error // the closing checkpoint's commit

	// Committer state, owned by the commitLoop goroutine (and by Open
	// before it starts).
	sealer *audit.Sealer
	seq    uint64
	head   [32]byte
	wrote  bool // Close seals the chain

	amu    sync.Mutex
	anchor audit.Anchor // of the last checkpoint

	commits atomic.Int64
}

// pending is one AppendAll call: its records are committed together.
type pending struct {
	rs   []audit.Record
	err  error // set when this call's records cannot be encoded
	done chan error
	// checkpoint asks for a checkpoint entry after rs (final: the
	// closing one); anchor is set to it once committed.
	checkpoint, final bool
	anchor            audit.Anchor
}

// maxBatch bounds the records of one group commit.
const maxBatch = 1024

// Open continues the chain named chain (creating it when new) in the
// database behind pool, whose tables Migrate created. It checks the
// chain's anchor (its MAC, and that the anchored entry is there with the
// anchored hash) and fails with a *TamperError if not: a writer never
// continues a chain whose end it cannot vouch for. Open writes no record.
func Open(ctx context.Context, pool *pgxpool.Pool, chain string, opts Options) (*Log, error) {
	if err := checkChainName(chain); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 5 * time.Second
	}
	sealer, err := audit.NewSealer(audit.Key{MAC: opts.MACKey}, opts.LogContextValues)
	if err != nil {
		return nil, err
	}
	l := &Log{pool: pool, chain: chain, opts: opts, sealer: sealer,
		reqs: make(chan *pending, maxBatch), done: make(chan error, 1)}
	if err := l.create(ctx); err != nil {
		return nil, err
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	go l.commitLoop()
	return l, nil
}

// create inserts the chain's anchor at its genesis if the chain is new.
func (l *Log) create(ctx context.Context) error {
	g := genesis(l.sealer, l.chain)
	_, err := l.pool.Exec(ctx, `INSERT INTO keystack_audit_chains (chain, seq, head, mac)
		VALUES ($1, 0, $2, $3) ON CONFLICT (chain) DO NOTHING`, l.chain, g[:], anchorMAC(l.sealer, l.chain, 0, g))
	if err != nil {
		return fmt.Errorf("%w: chain %s: %w", audit.ErrWrite, l.chain, err)
	}
	return nil
}

// load reads and checks the chain's anchor and sets seq and head from it.
func (l *Log) load(ctx context.Context) error {
	var seq int64
	var head, mac []byte
	var line *string
	err := l.pool.QueryRow(ctx, `SELECT a.seq, a.head, a.mac, r.line FROM keystack_audit_chains a
		LEFT JOIN keystack_audit_records r ON r.chain = a.chain AND r.seq = a.seq WHERE a.chain = $1`,
		l.chain).Scan(&seq, &head, &mac, &line)
	if err != nil {
		return fmt.Errorf("%w: chain %s: read anchor: %w", audit.ErrWrite, l.chain, err)
	}
	var h [32]byte
	if seq < 0 || len(head) != len(h) || !anchorValid(l.sealer, l.chain, uint64(seq), [32]byte(head), mac) {
		return &TamperError{Chain: l.chain, Seq: uint64(max(seq, 0)), Reason: "the chain's anchor row is not authentic (edited or forged)"}
	}
	h = [32]byte(head)
	if seq > 0 {
		if err := anchoredLine(line, h); err != nil {
			return &TamperError{Chain: l.chain, Seq: uint64(seq), Truncated: line == nil, Reason: err.Error()}
		}
	}
	l.seq, l.head = uint64(seq), h
	return nil
}

// anchoredLine checks that the anchored entry is there with the anchored
// hash.
func anchoredLine(line *string, head [32]byte) error {
	if line == nil {
		return errors.New("the anchored entry is missing (rows were deleted)")
	}
	var e struct {
		Hash string `json:"hash"`
	}
	if json.Unmarshal([]byte(*line), &e) != nil || e.Hash != hex.EncodeToString(head[:]) {
		return errors.New("the anchored entry is not the one the anchor names (edited or replaced)")
	}
	return nil
}

// Append commits records, together and in order (consecutive entries of
// the chain), and returns nil only once they are committed. On error (database unreachable, commit failed
// or timed out, ctx done, log closed) the caller must refuse the
// operations: their records may or may not be in the database, but no
// operation was allowed without one.
func (l *Log) Append(ctx context.Context, rs ...audit.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	return l.send(ctx, &pending{rs: rs, done: make(chan error, 1)})
}

// send queues p and waits for its commit.
func (l *Log) send(ctx context.Context, p *pending) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return audit.ErrClosed
	}
	l.reqs <- p
	l.mu.RUnlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Checkpoint commits a checkpoint entry after every record queued before
// it and returns its anchor, with the MAC audit.Anchor.Authentic checks
// (Offset is the entry's sequence number: a chain has no byte offsets).
// Such an anchor, kept outside the database, is what shows a chain cut
// back to an older anchor row; Verify takes it.
func (l *Log) Checkpoint(ctx context.Context) (audit.Anchor, error) {
	if err := ctx.Err(); err != nil {
		return audit.Anchor{}, err
	}
	p := &pending{checkpoint: true, done: make(chan error, 1)}
	if err := l.send(ctx, p); err != nil {
		return audit.Anchor{}, err
	}
	l.amu.Lock()
	l.anchor = p.anchor
	l.amu.Unlock()
	return p.anchor, nil
}

// Anchor returns the anchor of the last Checkpoint, the zero anchor before
// one: the database keeps each chain's end in its anchor row, so the
// store's state need not follow every replica's chain.
func (l *Log) Anchor() audit.Anchor {
	l.amu.Lock()
	defer l.amu.Unlock()
	return l.anchor
}

// Commits returns the number of group commits so far (each one database
// statement); benchmarks and tests use it.
func (l *Log) Commits() int64 { return l.commits.Load() }

// Close stops the log once the records already queued are committed or
// failed and, if it appended anything, commits a closing checkpoint; it
// returns that commit's error. Later appends fail with audit.ErrClosed. It
// does not close the pool.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return audit.ErrClosed
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	return <-l.done
}
