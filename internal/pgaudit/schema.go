package pgaudit

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/audit"
)

// schemaLock is the advisory-lock key under which Migrate creates the
// tables, so that replicas starting at once do not race on the catalog.
const schemaLock = 0x6b73_6175_6469_7401 // "ksaudit\x01"

// schema is version 1 of the audit tables.
const schema = `
CREATE TABLE IF NOT EXISTS keystack_audit_chains (
	chain   text PRIMARY KEY,
	seq     bigint NOT NULL CHECK (seq >= 0),
	head    bytea NOT NULL,
	mac     bytea NOT NULL,
	aside   text,
	updated timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS keystack_audit_records (
	chain text NOT NULL,
	seq   bigint NOT NULL CHECK (seq > 0),
	line  text NOT NULL,
	PRIMARY KEY (chain, seq)
);`

// Migrate creates the audit tables if they do not exist. It is safe to run
// from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: create tables: %w", audit.ErrWrite, err)
	}
	return nil
}

// maxChainName bounds a chain's name.
const maxChainName = 200

// ErrChainName is returned for a chain name that is empty, too long or not
// printable ASCII.
var ErrChainName = errors.New("pgaudit: chain name must be 1-200 printable ASCII characters")

func checkChainName(name string) error {
	if name == "" || len(name) > maxChainName {
		return ErrChainName
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' {
			return ErrChainName
		}
	}
	return nil
}

// genesis is hash_0 of the chain name.
func genesis(s *audit.Sealer, chain string) [32]byte {
	var h [32]byte
	copy(h[:], s.MAC("keystack-pgaudit-genesis-v1", []byte(chain)))
	return h
}

// anchorMAC authenticates a chain's anchor row.
func anchorMAC(s *audit.Sealer, chain string, seq uint64, head [32]byte) []byte {
	msg := binary.BigEndian.AppendUint64(nil, seq)
	msg = append(msg, head[:]...)
	return s.MAC("keystack-pgaudit-anchor-v1", append(msg, chain...))
}

func anchorValid(s *audit.Sealer, chain string, seq uint64, head [32]byte, mac []byte) bool {
	return hmac.Equal(mac, anchorMAC(s, chain, seq, head))
}
