package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/fsx"
)

// AuditSink is one open audit chain that this process appends to: an
// append-only sequence of records, each chained to the one before by an
// HMAC-SHA256 keyed with audit.Options.MACKey, with MAC'd checkpoints.
// *audit.Log (one file) is the single-node implementation. A sink shared
// by several writers (one chain per replica in a database) implements the
// same contract per chain.
//
// A Gate calls Append for every decision before the operation it decides
// proceeds, from many goroutines at once; the sink may batch concurrent
// appends into one commit (group commit) as long as each call returns only
// once its own records are committed. All methods are safe for concurrent
// use.
type AuditSink interface {
	// Append appends records, in order, as consecutive entries of the
	// chain, and returns nil only once every one is committed (written;
	// durable too when opened with audit.Sync). On error the operations
	// they record are refused, so an error must never hide a success nor
	// a success hide a loss. After Close it fails with audit.ErrClosed.
	Append(ctx context.Context, records ...audit.Record) error
	// Checkpoint makes every entry so far durable, appends a checkpoint
	// and returns its anchor with a MAC (audit.Anchor.MAC), which the
	// caller may export and later hand to Verify.
	Checkpoint(ctx context.Context) (audit.Anchor, error)
	// Anchor returns the last entry known to be durable: the one verified
	// at Open, the last checkpoint, or after Close the closing one. The
	// Gate records it in the store's state (Config.AuditAnchor) so that
	// the next Open can refuse a chain cut short.
	Anchor() audit.Anchor
	// Close commits what is pending, writes a closing checkpoint if the
	// sink appended anything, and makes it durable.
	Close() error
}

// AuditDestination is where a Gate keeps its audit records: it opens the
// chain this process appends to and reads, verifies and sets aside what
// every writer recorded. FileAudit is the single-node destination, one
// file; keystore.OpenOptions.Audit plugs in another.
//
// Anchoring. The Gate keeps one anchor in the store's state
// (Config.AuditAnchor): it passes it to Open as opts.Anchor, and moves it
// to the sink's Anchor at Close, at AuditCheckpoint and in the background
// while the store stays open. FileAudit keeps those moves itself, in
// AnchorFile, cheaper than a rewrite of the state (anchorfile.go). A destination with one chain per writer
// (one per key-server replica) either checks at Open that one of its
// chains still holds opts.Anchor, or anchors its chains itself and
// returns the zero audit.Anchor from AuditSink.Anchor, so that the Gate
// never moves the state's anchor (internal/pgaudit.Destination does, until a
// Checkpoint, whose anchor its Verify then checks). Its
// Verify checks every chain and every anchor it is given (which
// Checkpoint exported); its report sums the chains (Records, Entries) and
// leaves what has no meaning for it at zero.
type AuditDestination interface {
	// Open opens this process's chain for appending with opts (durability,
	// the MAC key, the clock). When opts.Anchor is set the chain must
	// still hold that entry: a chain that is missing, shorter, or differs
	// up to it fails with an error matching audit.ErrTampered, which the
	// Gate reports as ErrAuditDamaged until ResetAuditAnchor.
	Open(ctx context.Context, opts audit.Options) (AuditSink, error)
	// Read returns every record, as the JSON lines audit.Query parses.
	// The caller closes it.
	Read(ctx context.Context) (io.ReadCloser, error)
	// Verify checks every record with key (each entry's chain hash and
	// checkpoint MAC) and that the records still hold each anchor, reading
	// what exists when it starts and writing nothing. Damage is an error
	// matching audit.ErrTampered, with the report so far.
	Verify(ctx context.Context, key audit.Key, anchors ...audit.Anchor) (*audit.VerifyReport, error)
	// SetAside moves the recorded chain out of the way, durably, under a
	// name saying why and when, and returns that name ("" when there was
	// nothing to move); the next Open starts an empty chain.
	SetAside(ctx context.Context, why string, now time.Time) (string, error)
}

// AuditFile is the name of the file audit log in the store directory.
const AuditFile = "audit.log"

// FileAudit is the single-node AuditDestination: the file audit.log in dir
// (an *audit.Log per open), set aside by renaming it to
// audit.log.WHY-TIME beside it, with its anchor in AnchorFile.
func FileAudit(dir string) AuditDestination { return fileAudit{dir: dir} }

type fileAudit struct{ dir string }

func (d fileAudit) path() string { return filepath.Join(d.dir, AuditFile) }

// Open implements AuditDestination with audit.Open.
func (d fileAudit) Open(_ context.Context, opts audit.Options) (AuditSink, error) {
	log, err := audit.Open(d.path(), opts)
	if err != nil {
		return nil, err
	}
	return log, nil
}

// Read implements AuditDestination.
func (d fileAudit) Read(context.Context) (io.ReadCloser, error) {
	f, err := os.Open(d.path())
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	return f, nil
}

// Verify implements AuditDestination with audit.Verify over the file as
// long as it is when Verify starts; a missing file holds no entries.
func (d fileAudit) Verify(_ context.Context, key audit.Key, anchors ...audit.Anchor) (*audit.VerifyReport, error) {
	lf, err := os.Open(d.path())
	if errors.Is(err, fs.ErrNotExist) {
		rep, verr := audit.Verify(strings.NewReader(""), key, anchors...)
		if verr != nil {
			verr = fmt.Errorf("the audit log file is missing: %w", verr)
		}
		return rep, verr
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	defer lf.Close()
	fi, err := lf.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	return audit.Verify(io.LimitReader(lf, fi.Size()), key, anchors...)
}

// SetAside implements AuditDestination: it renames audit.log, if there is
// one, to audit.log.<why>-<time> and fsyncs the directory.
func (d fileAudit) SetAside(_ context.Context, why string, now time.Time) (string, error) {
	name := AuditFile + "." + why + "-" + now.UTC().Format("20060102T150405.000000000Z")
	err := os.Rename(d.path(), filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("keystore: audit log: %w", err)
	}
	if err := fsx.SyncPath(d.dir); err != nil {
		return "", fmt.Errorf("keystore: audit log: %w", err)
	}
	return name, nil
}

// *audit.Log is the single-node AuditSink.
var _ AuditSink = (*audit.Log)(nil)
