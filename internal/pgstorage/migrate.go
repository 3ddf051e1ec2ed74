package pgstorage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema, in order: migration i+1 takes the schema
// from version i to i+1. Append only; never edit a released one.
var migrations = []string{
	// 1: documents with revisions and change notification; leases.
	`CREATE SEQUENCE keystack_revision;
CREATE TABLE keystack_documents (
	name       text PRIMARY KEY,
	revision   bigint NOT NULL,
	data       bytea NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION keystack_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('keystack_changes', NEW.name || ':' || NEW.revision);
	RETURN NULL;
END $$;
CREATE TRIGGER keystack_documents_notify AFTER INSERT OR UPDATE ON keystack_documents
	FOR EACH ROW EXECUTE FUNCTION keystack_notify();
CREATE TABLE keystack_leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	epoch      bigint NOT NULL,
	expires_at timestamptz NOT NULL
);`,
}

// SchemaVersion is the schema version this keystack reads and writes.
var SchemaVersion = len(migrations)

// migrateLock is the advisory lock key migrators take (an arbitrary
// constant: "keystack" in ASCII), so replicas starting at once apply each
// migration exactly once.
const migrateLock int64 = 0x6b65797374616b

// Errors of the schema.
var (
	// ErrSchemaOutdated is returned by Open when the database's schema is
	// older than SchemaVersion (or absent): run Migrate (keystack server
	// migrate) first.
	ErrSchemaOutdated = errors.New("pgstorage: the database schema is older than this keystack's: run `keystack server migrate`")
	// ErrSchemaNewer is returned by Open and Migrate when a newer keystack
	// has migrated the database: this one would misread it.
	ErrSchemaNewer = errors.New("pgstorage: the database schema is newer than this keystack's: upgrade keystack")
)

// Migrate brings the database of dsn to SchemaVersion and returns the
// versions it applied (none when it was current). Each migration and its
// record commit in one transaction; concurrent migrators (replicas
// starting at once) queue on an advisory lock, so each migration is
// applied once.
func Migrate(ctx context.Context, dsn string) (applied []int, err error) {
	cfg, err := parseConfig(dsn, Options{})
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, unavailable("connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return nil, unavailable("migration lock", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS keystack_schema (
	version    int PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("pgstorage: migrate: %w", err)
	}
	have, err := schemaVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	if have > SchemaVersion {
		return nil, fmt.Errorf("%w (database %d, keystack %d)", ErrSchemaNewer, have, SchemaVersion)
	}
	for v := have + 1; v <= SchemaVersion; v++ {
		if err := applyMigration(ctx, conn, v); err != nil {
			return applied, err
		}
		applied = append(applied, v)
	}
	return applied, nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, v int) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("pgstorage: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO keystack_schema (version) VALUES ($1)", v); err != nil {
			return fmt.Errorf("pgstorage: recording migration %d: %w", v, err)
		}
		return nil
	})
}

// querier is what schemaVersion needs of a connection or pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion is the highest applied migration; 0 when there is none
// or no keystack_schema table.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('keystack_schema') IS NOT NULL").Scan(&exists); err != nil {
		return 0, unavailable("schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM keystack_schema").Scan(&v); err != nil {
		return 0, unavailable("schema version", err)
	}
	return v, nil
}
