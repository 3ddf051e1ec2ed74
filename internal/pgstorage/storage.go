package pgstorage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/keystore"
)

// Options configures a Storage; the zero value means the defaults.
type Options struct {
	// MaxStale bounds how old the revisions a Storage answers Revision
	// from may be: past it, without a fresh confirmation from the
	// database, Revision fails with keystore.ErrUnavailable. Default 1 s.
	MaxStale time.Duration
	// Poll is how often the revisions are polled as a backstop to
	// LISTEN/NOTIFY. Default MaxStale/4.
	Poll time.Duration
	// LockLease is how long the writers' lock outlives a holder that
	// stopped renewing it (died, paused). Default 10 s.
	LockLease time.Duration
	// QueryTimeout bounds each query this package makes on its own
	// (revision checks, lock renewals) and connection attempts. Default 2 s.
	QueryTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxStale <= 0 {
		o.MaxStale = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = o.MaxStale / 4
	}
	if o.LockLease <= 0 {
		o.LockLease = 10 * time.Second
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Second
	}
	return o
}

// Storage is a keystore.Storage on PostgreSQL (see the package doc). It is
// safe for concurrent use; Close stops it.
type Storage struct {
	pool   *pgxpool.Pool
	opts   Options
	w      *watcher
	locks  atomic.Int32 // writers' locks this Storage holds
	trips  atomic.Int64 // statements sent for callers; see RoundTrips
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ keystore.Storage = (*Storage)(nil)

// Open connects to the database of dsn (a postgres:// URL or key=value
// string as libpq takes; the password best comes from PGPASSWORD or
// ~/.pgpass, not the command line), checks that its schema is at
// SchemaVersion (ErrSchemaOutdated: run Migrate first), reads the current
// revisions and starts following changes.
func Open(ctx context.Context, dsn string, opts Options) (*Storage, error) {
	opts = opts.withDefaults()
	cfg, err := parseConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, unavailable("connect", err)
	}
	v, err := schemaVersion(ctx, pool)
	if err == nil && v < SchemaVersion {
		err = fmt.Errorf("%w (database %d, keystack %d)", ErrSchemaOutdated, v, SchemaVersion)
	}
	if err == nil && v > SchemaVersion {
		err = fmt.Errorf("%w (database %d, keystack %d)", ErrSchemaNewer, v, SchemaVersion)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Storage{pool: pool, opts: opts, done: make(chan struct{})}
	s.w = newWatcher(pool, opts)
	if err := s.w.poll(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { defer close(s.done); s.w.run(wctx) }()
	return s, nil
}

// parseConfig parses dsn; a connect timeout of opts.QueryTimeout applies
// when dsn sets none, and the pool holds at least 16 connections unless
// dsn says otherwise (pool_max_conns).
func parseConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, fmt.Errorf("%w: the PostgreSQL connection string does not parse", keystore.ErrInvalidOptions)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.withDefaults().QueryTimeout
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	return cfg, nil
}

// RoundTrips is how many statements this Storage has sent to the database
// for its callers (Read, Write, Revision when its cache would not do,
// Lock), not counting the change following of its own connection: what
// an operation costs in database round trips.
func (s *Storage) RoundTrips() int64 { return s.trips.Load() }

// Close stops following changes and closes the connections; a writers'
// lock still held is released by the database.
func (s *Storage) Close() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.pool.Close()
	})
}

// unavailable wraps a database error as keystore.ErrUnavailable.
func unavailable(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: pgstorage: %s: %w", keystore.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: pgstorage: %s: %v", keystore.ErrUnavailable, what, err)
}

func checkDoc(doc keystore.Document) error {
	if doc != keystore.StateDocument && doc != keystore.PolicyDocument {
		return fmt.Errorf("%w: unknown storage document %q", keystore.ErrInvalidOptions, doc)
	}
	return nil
}

// Read implements keystore.Storage with one query.
func (s *Storage) Read(ctx context.Context, doc keystore.Document) ([]byte, keystore.Revision, error) {
	if err := checkDoc(doc); err != nil {
		return nil, keystore.NoRevision, err
	}
	var data []byte
	var rev int64
	s.trips.Add(1)
	err := s.pool.QueryRow(ctx, "SELECT data, revision FROM keystack_documents WHERE name = $1", string(doc)).Scan(&data, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keystore.NoRevision, keystore.ErrNoDocument
	}
	if err != nil {
		return nil, keystore.NoRevision, unavailable("read "+string(doc), err)
	}
	s.w.saw(doc, rev)
	return data, revision(rev), nil
}

// Revision implements keystore.Storage: from the revisions the Storage
// follows when they are confirmed within Options.MaxStale and it holds no
// writers' lock, else with one query (see the package doc).
func (s *Storage) Revision(ctx context.Context, doc keystore.Document) (keystore.Revision, error) {
	if err := checkDoc(doc); err != nil {
		return keystore.NoRevision, err
	}
	if s.locks.Load() == 0 {
		if rev, ok := s.w.fresh(doc); ok {
			return revision(rev), nil
		}
	}
	qctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	start := time.Now()
	var rev int64
	s.trips.Add(1)
	err := s.pool.QueryRow(qctx, "SELECT revision FROM keystack_documents WHERE name = $1", string(doc)).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		s.w.confirm(doc, 0, start)
		return keystore.NoRevision, nil
	case err != nil:
		return keystore.NoRevision, unavailable("revision of "+string(doc), err)
	}
	s.w.confirm(doc, rev, start)
	return revision(rev), nil
}

// Write implements keystore.Storage with one conditional statement.
func (s *Storage) Write(ctx context.Context, doc keystore.Document, data []byte, prev keystore.Revision) (keystore.Revision, error) {
	rev, err := s.write(ctx, s.pool, doc, data, prev)
	if err == nil {
		s.w.saw(doc, revNum(rev))
	}
	return rev, err
}

// execer is a pool or a transaction.
type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Storage) write(ctx context.Context, q execer, doc keystore.Document, data []byte, prev keystore.Revision) (keystore.Revision, error) {
	if err := checkDoc(doc); err != nil {
		return keystore.NoRevision, err
	}
	var row pgx.Row
	s.trips.Add(1)
	if prev == keystore.NoRevision {
		row = q.QueryRow(ctx, `INSERT INTO keystack_documents (name, revision, data) VALUES ($1, nextval('keystack_revision'), $2)
			ON CONFLICT (name) DO NOTHING RETURNING revision`, string(doc), data)
	} else {
		p, err := strconv.ParseInt(string(prev), 10, 64)
		if err != nil || p <= 0 {
			return keystore.NoRevision, keystore.ErrConflict // no document ever had it
		}
		row = q.QueryRow(ctx, `UPDATE keystack_documents SET data = $2, revision = nextval('keystack_revision'), updated_at = now()
			WHERE name = $1 AND revision = $3 RETURNING revision`, string(doc), data, p)
	}
	var rev int64
	err := row.Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return keystore.NoRevision, keystore.ErrConflict
	}
	if err != nil {
		return keystore.NoRevision, unavailable("write "+string(doc), err)
	}
	return revision(rev), nil
}

func revision(rev int64) keystore.Revision {
	if rev == 0 {
		return keystore.NoRevision
	}
	return keystore.Revision(strconv.FormatInt(rev, 10))
}
