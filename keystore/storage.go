package keystore

import (
	"context"
	"errors"
)

// Storage is where a Store keeps its persistent state: two documents, each
// replaced whole by compare-and-swap on its revision, and a writers' lock.
// The state document (keystore.json's content: format, KDF, verifier, keys
// with their versions and sealed material, principals, the audit key and
// the audit anchor, the key server's aliases, tags and credentials) and the
// policy document are opaque bytes to it. The Store reads the state once
// and rereads it only when Revision says it changed.
//
// The keystore directory (dirStorage) is the embedded implementation; a
// database implementation keeps a row per document with a revision number
// and maps Lock to a lease. storagetest.Run is the conformance suite every
// implementation passes.
type Storage interface {
	// Read returns the document and its revision; ErrNoDocument when the
	// document does not exist.
	Read(ctx context.Context, doc Document) ([]byte, Revision, error)
	// Revision returns the document's current revision without reading
	// it (a stat, a one-row query): NoRevision when it does not exist.
	// Unchanged revisions mean unchanged content.
	Revision(ctx context.Context, doc Document) (Revision, error)
	// Write replaces the document with data if its revision is still
	// prev, or creates it if prev is NoRevision and it does not exist,
	// atomically (readers see the old or the new content, even after a
	// crash), and returns the new revision. Otherwise it writes nothing and
	// fails with ErrConflict: of two writers starting from one revision,
	// exactly one succeeds.
	Write(ctx context.Context, doc Document, data []byte, prev Revision) (Revision, error)
	// Lock takes the exclusive writers' lock (a lease), waiting until it
	// is free or ctx is done; unlock releases it. The Store holds it around
	// every read-modify-write so that writers queue instead of retrying;
	// Write stays a compare-and-swap with or without it.
	Lock(ctx context.Context) (unlock func(), err error)
}

// Document names one of a Storage's documents.
type Document string

// The documents of a Storage.
const (
	StateDocument  Document = "state"
	PolicyDocument Document = "policy"
)

// Revision identifies one version of a document; it is opaque, compared
// only for equality. NoRevision means the document does not exist.
type Revision string

// NoRevision is the revision of a document that does not exist.
const NoRevision Revision = ""

// Errors of a Storage.
var (
	// ErrNoDocument is returned by Read for a document that does not exist.
	ErrNoDocument = errors.New("keystore: storage: no such document")
	// ErrConflict is returned by Write when the document's revision is not
	// the one the write started from: another writer got there first.
	ErrConflict = errors.New("keystore: storage: document changed since it was read (conflict)")
	// ErrUnavailable is wrapped by a Storage that cannot reach where it
	// keeps the documents (a database down or partitioned away), or that
	// has not confirmed its cached revisions within its staleness bound:
	// operations fail closed with it instead of serving stale state; the
	// key server answers it with a retryable 5xx.
	ErrUnavailable = errors.New("keystore: storage unavailable")
)
