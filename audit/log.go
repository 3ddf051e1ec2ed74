package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
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

// Options configure a Log. MACKey is required.
type Options struct {
	Durability Durability
	// BatchInterval is the fsync period in Batch mode (default 100ms).
	BatchInterval time.Duration
	// CheckpointEvery writes a signed checkpoint after this many records
	// (default 1000); one is always written at Close.
	CheckpointEvery int
	// MACKey (at least 32 bytes) keys the chain (every entry), the
	// checkpoints and the encryption-context hashes.
	MACKey []byte
	// Anchor is the last anchor the owner kept outside the log. Open then
	// requires the log to hold that entry (a missing or shorter log is
	// ErrTruncated) and verifies only what follows it; without an anchor
	// Open verifies the whole file.
	Anchor *Anchor
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
	// RequestID, AuthMethod and Source describe a key server request: its
	// ID, how its principal authenticated, and the peer address.
	RequestID, AuthMethod, Source string
}

// Log is an append-only audit log file. It is safe for concurrent use;
// separate processes appending to one file serialize on flock(2).
type Log struct {
	f      *os.File
	opts   Options
	ctxKey []byte
	ch     *chain // guarded by wmu
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
	size       int64    // end of the last verified entry's line
	torn       int64    // bytes after size left by a failed append, cut before the next write
	noteHead   [32]byte // hash of the note cutTorn last made
	wrote      bool     // a record was appended: Close seals the log
	sinceCheck int
	anchor     Anchor // the last entry known to be on stable storage
	err        error  // sticky write error
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

// Open opens or creates the log at path (mode 0600) and continues its
// chain. It first verifies, under the file's lock, every entry after
// opts.Anchor (or the whole file), and fails with a *TamperError if one is
// bad, the anchored entry is gone, or the file is missing while the anchor
// says it held entries: a writer never continues a tail it has not
// verified. An incomplete last line (an append that failed) is not
// tampering: the first write cuts it and records a note saying so. Open
// itself writes nothing.
func Open(path string, opts Options) (*Log, error) {
	ctxKey, err := opts.check()
	if err != nil {
		return nil, err
	}
	var start Anchor
	if opts.Anchor != nil {
		start = *opts.Anchor
	}
	head, err := start.head()
	if err != nil {
		return nil, err
	}
	flags := os.O_RDWR | os.O_APPEND
	if start.Seq == 0 {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrNotExist) && start.Seq > 0 {
		return nil, &TamperError{Seq: 1, Truncated: true,
			Reason: fmt.Sprintf("the log file is missing, but its anchor of %s records entry %d", anchorTime(start), start.Seq)}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrWrite, err)
	}
	l := &Log{f: f, opts: opts, ctxKey: ctxKey, ch: newChain(opts.MACKey), reqs: make(chan *pending, 1024),
		done: make(chan error, 1), syncFile: (*os.File).Sync, lastSync: opts.Now(),
		seq: start.Seq, head: head, size: start.Offset, anchor: start}
	if err := l.withLock(func() error { return l.resume(start) }); err != nil {
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
	if err := (Key{MAC: o.MACKey}).check(); err != nil {
		return nil, err
	}
	return o.MACKey, nil
}

// Append writes records together, in order, as consecutive entries (one
// write(2), and in Sync mode one fsync), and returns nil only once every
// one is written (and, in Sync mode, fsynced). Callers must refuse the
// operations on error.
func (l *Log) Append(ctx context.Context, rs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range rs {
		switch r.Type {
		case "", TypeDecision, TypeOperation, TypeNote:
		default:
			return fmt.Errorf("audit: record type %q is not %q, %q or %q", r.Type, TypeDecision, TypeOperation, TypeNote)
		}
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
	return newEntry(r, l.contextHMAC, l.opts.LogContextValues)
}

// newEntry converts r into its entry (without Time, Seq, Prev and Hash):
// the one conversion the file log and a Sealer share, so that both write
// the same entry for a record. contextHMAC keys the context's HMAC; values
// keeps the context's values too.
func newEntry(r Record, contextHMAC func(map[string]string) string, values bool) Entry {
	e := Entry{Type: r.Type, Principal: r.Principal, Action: r.Action, Resource: r.Resource,
		KeyVersion: r.KeyVersion, Decision: r.Decision, Implicit: r.Implicit, Statements: r.Statements,
		Reason: r.Reason, Outcome: r.Outcome, RequestID: r.RequestID, AuthMethod: r.AuthMethod, Source: r.Source}
	if e.Type == "" {
		e.Type = TypeOperation
	}
	if len(r.MessageID) > 0 {
		e.MessageID = hex.EncodeToString(r.MessageID)
	}
	if len(r.EncryptionContext) > 0 {
		e.ContextHMAC = contextHMAC(r.EncryptionContext)
		if values {
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
	s := c.hexSum(ec)
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

// hexSum returns the hex HMAC of appendContextBytes(nil, ec).
func (c *ctxHasher) hexSum(ec map[string]string) string {
	c.mac.Reset()
	c.buf = appendContextBytes(c.buf[:0], ec)
	c.mac.Write(c.buf) // one Write: the HMAC's per-call cost exceeds a copy
	return hex.EncodeToString(c.mac.Sum(c.sum[:0]))
}

// Anchor returns the anchor of the last entry this Log knows to be on
// stable storage: the one it verified at Open, its last fsynced checkpoint,
// or, after Close, the closing checkpoint. Its owner keeps it outside the
// log and passes it to the next Open (Options.Anchor).
func (l *Log) Anchor() Anchor {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.anchor
}

// Checkpoint writes a checkpoint, fsyncs it and returns its anchor with a
// MAC, for export: "keystack audit checkpoint" prints it so that it can be
// kept where an attacker holding the audit key cannot rewrite it.
func (l *Log) Checkpoint(ctx context.Context) (Anchor, error) {
	if err := ctx.Err(); err != nil {
		return Anchor{}, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Anchor{}, ErrClosed
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.err != nil {
		return Anchor{}, l.err
	}
	l.endLease() // a checkpoint is rare: take the lock for it alone
	err := l.withLock(func() error { return l.writeCheckpoint(false) })
	if err == nil {
		err = l.sync()
	}
	if err != nil {
		if l.err == nil {
			l.err = err
		}
		return Anchor{}, err
	}
	a := l.anchor
	a.MAC = hex.EncodeToString(anchorMAC(l.opts.MACKey, a))
	return a, nil
}

// Close writes the closing checkpoint if this Log appended anything,
// fsyncs and closes the file. It returns the first write error the log
// met, if any.
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
