package pgstorage

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/keystore"
)

// channel is the NOTIFY channel of document changes; payloads are
// "DOCUMENT:REVISION".
const channel = "keystack_changes"

// watcher follows the documents' revisions: LISTEN on a connection of its
// own, and a poll every Options.Poll. Revisions only grow (one sequence,
// row-locked updates), so of two reports of a document the higher wins,
// whatever order they arrive in.
type watcher struct {
	pool *pgxpool.Pool
	opts Options

	mu        sync.Mutex
	revs      map[keystore.Document]int64
	confirmed map[keystore.Document]time.Time // when a query that saw revs[doc] started
	changed   chan struct{}                   // closed and replaced at each change seen
}

func newWatcher(pool *pgxpool.Pool, opts Options) *watcher {
	return &watcher{pool: pool, opts: opts, revs: map[keystore.Document]int64{},
		confirmed: map[keystore.Document]time.Time{}, changed: make(chan struct{})}
}

// fresh returns the revision of doc if it was confirmed within MaxStale.
func (w *watcher) fresh(doc keystore.Document) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.confirmed[doc]
	return w.revs[doc], ok && time.Since(at) <= w.opts.MaxStale
}

// saw records that doc had revision rev (a notification, a read, a write).
func (w *watcher) saw(doc keystore.Document, rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sawLocked(doc, rev)
}

func (w *watcher) sawLocked(doc keystore.Document, rev int64) {
	if rev > w.revs[doc] {
		w.revs[doc] = rev
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// confirm records that a query started at start saw doc at rev (0: the
// document did not exist).
func (w *watcher) confirm(doc keystore.Document, rev int64, start time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sawLocked(doc, rev)
	if start.After(w.confirmed[doc]) {
		w.confirmed[doc] = start
	}
}

// poll reads every document's revision and confirms them all.
func (w *watcher) poll(ctx context.Context) error {
	return w.pollWith(ctx, w.pool)
}

// rowQuerier is a pool or a connection.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (w *watcher) pollWith(ctx context.Context, q rowQuerier) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.QueryTimeout)
	defer cancel()
	start := time.Now()
	rows, err := q.Query(ctx, "SELECT name, revision FROM keystack_documents")
	if err != nil {
		return unavailable("poll revisions", err)
	}
	seen := map[keystore.Document]int64{}
	for rows.Next() {
		var name string
		var rev int64
		if err := rows.Scan(&name, &rev); err != nil {
			return unavailable("poll revisions", err)
		}
		seen[keystore.Document(name)] = rev
	}
	if err := rows.Err(); err != nil {
		return unavailable("poll revisions", err)
	}
	for _, doc := range []keystore.Document{keystore.StateDocument, keystore.PolicyDocument} {
		w.confirm(doc, seen[doc], start)
	}
	return nil
}

// run follows changes until ctx is done, reconnecting after errors.
func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		_ = w.listen(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(min(w.opts.Poll, 100*time.Millisecond)):
		}
	}
}

// listen holds one connection: LISTEN, poll, then wait for notifications,
// polling every Options.Poll, until an error.
func (w *watcher) listen(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, w.opts.QueryTimeout)
	pc, err := w.pool.Acquire(actx)
	cancel()
	if err != nil {
		return err
	}
	conn := pc.Hijack() // not returned to the pool: it stays LISTENing
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			next = time.Now().Add(w.opts.Poll)
			if err := w.pollWith(ctx, conn); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case n != nil:
			w.notified(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && wctx.Err() == nil:
			return err
		}
	}
}

// notified records a notification's "DOCUMENT:REVISION".
func (w *watcher) notified(payload string) {
	doc, r, ok := strings.Cut(payload, ":")
	if rev, err := strconv.ParseInt(r, 10, 64); ok && err == nil {
		w.saw(keystore.Document(doc), rev)
	}
}

// Changes returns a channel closed at the next change of a document this
// Storage sees (its own writes, other replicas' through NOTIFY or the
// poll); call it again for the change after.
func (s *Storage) Changes() <-chan struct{} {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.changed
}
