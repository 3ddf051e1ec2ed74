package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Durability selects when appended records reach stable storage.
type Durability int

const (
	// Sync fsyncs before Append returns; concurrent Appends share one
	// write and one fsync (group commit).
	Sync Durability = iota
	// Batch fsyncs at most every Options.BatchInterval; Append returns once
	// the record is written to the file. A Batch-mode Log keeps the file's
	// lock for a few milliseconds after an append, so other writers of the
	// same file wait that long at most.
	Batch
)

// Options configure a Log. Exactly one of MACKey and SigningKey is required.
type Options struct {
	Durability Durability
	// BatchInterval is the fsync period in Batch mode (default 100ms).
	BatchInterval time.Duration
	// CheckpointEvery writes a signed checkpoint after this many records
	// (default 1000); one is always written at Close.
	CheckpointEvery int
	// MACKey (at least 32 bytes) authenticates checkpoints with
	// HMAC-SHA256 and keys the encryption-context hashes.
	MACKey []byte
	// SigningKey signs checkpoints with Ed25519 instead.
	SigningKey ed25519.PrivateKey
	// LogContextValues stores encryption contexts in clear as well.
	LogContextValues bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Record is what callers append: a decision or a key operation.
type Record struct {
	Type              string // TypeDecision or TypeOperation (default)
	Principal         string
	Action            string
	Resource          string
	KeyVersion        int
	Decision          string   // "Allow" or "Deny" for decisions
	Implicit          bool     // implicit deny
	Statements        []string // Sids that decided
	Reason            string   // why, for denials; never shown to the requester
	Outcome           string   // "ok" or the error class of an operation
	MessageID         []byte
	EncryptionContext map[string]string
}

// Log is an append-only audit log file. It is safe for concurrent use;
// separate processes appending to one file serialize on flock(2).
type Log struct {
	f      *os.File
	opts   Options
	ctxKey []byte
	// ctxMACs pools *ctxHasher, so hashing a record's encryption context
	// neither redoes the key schedule nor allocates.
	ctxMACs sync.Pool

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *pending
	done   chan error

	// Committer state, guarded by wmu: the committer goroutine holds it
	// in Sync mode, and in Batch mode each Append commits under it itself.
	wmu        sync.Mutex
	buf        []byte // reused line buffer
	leased     bool   // Batch mode holds the flock between batches
	lease      *time.Timer
	seq        uint64
	head       [32]byte
	size       int64
	sinceCheck int
	err        error // sticky write error
	dirty      bool
	lastSync   time.Time
	syncFile   func(*os.File) error // fsync; replaced in tests
	syncs      atomic.Int64
}

type pending struct {
	e    Entry
	err  error // set when this record alone cannot be encoded
	done chan error
}

// result is the outcome of p in a batch that failed with err (or not).
func (p *pending) result(err error) error {
	if p.err != nil {
		return p.err
	}
	return err
}

// Open opens or creates the log at path (mode 0600) and continues its chain
// from the last entry, which must be intact. The caller passes the path,
// normally $KEYSTACK_HOME/audit.log.
func Open(path string, opts Options) (*Log, error) {
	ctxKey, err := opts.check()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrWrite, err)
	}
	l := &Log{f: f, opts: opts, ctxKey: ctxKey, reqs: make(chan *pending, 1024), done: make(chan error, 1),
		syncFile: (*os.File).Sync, lastSync: opts.Now()}
	if err := l.withLock(l.refreshTail); err != nil {
		f.Close()
		return nil, err
	}
	go l.commitLoop()
	return l, nil
}

func (o *Options) check() ([]byte, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchInterval <= 0 {
		o.BatchInterval = 100 * time.Millisecond
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 1000
	}
	switch {
	case len(o.MACKey) > 0 && o.SigningKey != nil:
		return nil, fmt.Errorf("%w: set either MACKey or SigningKey, not both", ErrNoKey)
	case len(o.MACKey) > 0:
		if len(o.MACKey) < MinMACKeySize {
			return nil, fmt.Errorf("%w: MAC key of %d bytes, at least %d", ErrNoKey, len(o.MACKey), MinMACKeySize)
		}
		return o.MACKey, nil
	case len(o.SigningKey) == ed25519.PrivateKeySize:
		k := sha256.Sum256(append([]byte("keystack-audit-context-key-v1\x00"), o.SigningKey.Seed()...))
		return k[:], nil
	}
	return nil, ErrNoKey
}

// Append writes one record and returns nil only once it is written (and,
// in Sync mode, fsynced). Callers must refuse the operation on error.
func (l *Log) Append(ctx context.Context, r Record) error {
	return l.AppendAll(ctx, r)
}

// AppendAll is Append for several records, written together in order (one
// write(2), and in Sync mode one fsync). It returns nil only if every
// record was written; callers must refuse the operations on error.
func (l *Log) AppendAll(ctx context.Context, rs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ps := make([]pending, len(rs))
	batch := make([]*pending, len(rs))
	for i := range rs {
		if i > 0 && sameMap(rs[i].EncryptionContext, rs[i-1].EncryptionContext) {
			// Decisions for one operation share its context: hash it once.
			r := rs[i]
			r.EncryptionContext = nil
			ps[i].e = l.entry(r)
			ps[i].e.ContextHMAC, ps[i].e.Context = ps[i-1].e.ContextHMAC, ps[i-1].e.Context
		} else {
			ps[i].e = l.entry(rs[i])
		}
		batch[i] = &ps[i]
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	if l.opts.Durability == Batch {
		// Nothing to share but the fsync, which the ticker does: commit
		// here rather than pay two goroutine switches per record.
		l.wmu.Lock()
		err := l.commit(batch)
		l.wmu.Unlock()
		l.mu.RUnlock()
		return firstResult(batch, err)
	}
	for _, p := range batch {
		p.done = make(chan error, 1)
		l.reqs <- p
	}
	l.mu.RUnlock()
	// Once queued a record is committed or failed; wait for which.
	var first error
	for _, p := range batch {
		if err := <-p.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b map[string]string) bool {
	return a != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func firstResult(batch []*pending, err error) error {
	for _, p := range batch {
		if e := p.result(err); e != nil {
			return e
		}
	}
	return nil
}

func (l *Log) entry(r Record) Entry {
	e := Entry{Type: r.Type, Principal: r.Principal, Action: r.Action, Resource: r.Resource,
		KeyVersion: r.KeyVersion, Decision: r.Decision, Implicit: r.Implicit, Statements: r.Statements,
		Reason: r.Reason, Outcome: r.Outcome}
	if e.Type == "" {
		e.Type = TypeOperation
	}
	if len(r.MessageID) > 0 {
		e.MessageID = hex.EncodeToString(r.MessageID)
	}
	if len(r.EncryptionContext) > 0 {
		e.ContextHMAC = l.contextHMAC(r.EncryptionContext)
		if l.opts.LogContextValues {
			e.Context = r.EncryptionContext
		}
	}
	e.toValidUTF8()
	return e
}

// contextHMAC returns the hex HMAC-SHA256 of appendContextBytes(nil, ec) under
// the log's context key.
func (l *Log) contextHMAC(ec map[string]string) string {
	c, _ := l.ctxMACs.Get().(*ctxHasher)
	if c == nil {
		c = &ctxHasher{mac: hmac.New(sha256.New, l.ctxKey)}
	}
	c.mac.Reset()
	c.buf = appendContextBytes(c.buf[:0], ec)
	c.mac.Write(c.buf) // one Write: the HMAC's per-call cost exceeds a copy
	s := hex.EncodeToString(c.mac.Sum(c.sum[:0]))
	if cap(c.buf) <= 4<<10 {
		l.ctxMACs.Put(c)
	}
	return s
}

// ctxHasher is a pooled HMAC-SHA256 state keyed with a Log's context key,
// with its scratch buffers.
type ctxHasher struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// Head returns the hex chain hash of the last entry this Log wrote or read.
func (l *Log) Head() string {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.seq == 0 {
		return ""
	}
	return hex.EncodeToString(l.head[:])
}

// Close writes the closing checkpoint, fsyncs and closes the file. It
// returns the first write error the log met, if any.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	return <-l.done
}

var errShortWrite = errors.New("short write")
