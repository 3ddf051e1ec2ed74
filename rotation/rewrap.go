package rotation

import (
	"context"

	"github.com/keystack/keystack/internal/rewrap"
	"github.com/keystack/keystack/keystore"
)

// Outcomes of rewrapping one file (FileResult.Outcome).
const (
	Rewrapped   = rewrap.Rewrapped   // "rewrapped"
	WouldRewrap = rewrap.WouldRewrap // "would-rewrap": a dry run's
	Skipped     = rewrap.Skipped     // "skipped": not a message, or already on the targets
	Failed      = rewrap.Failed      // "failed"
)

// Outcomes of resolving a journal left by an interrupted rewrap
// (JournalResult.Outcome).
const (
	// JournalApplied: the file still held the old header (or a torn mix),
	// and the new header was written.
	JournalApplied = rewrap.JournalApplied
	// JournalRemoved: nothing was left to do (the file already held the new
	// header, or the journal was incomplete, so the file was never touched).
	JournalRemoved = rewrap.JournalRemoved
	// JournalDiscarded: the path no longer holds the file the journal was
	// written for; the journal was removed and the path not touched.
	JournalDiscarded = rewrap.JournalDiscarded
)

// DefaultWorkers is how many files a tree rewrap works on in parallel
// unless told otherwise.
const DefaultWorkers = rewrap.DefaultWorkers

// SyncMode says when a tree rewrap makes its writes durable.
type SyncMode = rewrap.SyncMode

const (
	// SyncBatch, the default, writes each file without waiting for the
	// disk and makes the whole run durable with one flush per filesystem
	// (syncfs(2) on Linux) before RewrapPaths or Rewrap returns. Crash
	// safety does not depend on the flush.
	SyncBatch = rewrap.SyncBatch
	// SyncPerFile makes each file durable (fsync(2)) before the next step,
	// as RewrapFile always does: slower, but a power cut mid-run loses no
	// finished file, and no flush waits for other processes' dirty data on
	// the same filesystem.
	SyncPerFile = rewrap.SyncPerFile
)

// RewrapOptions says which keys a rewrap moves messages from and to: From
// unwraps the data key of existing messages and To wraps it under the
// target master keys. Targets, when set, describes the EDKs To produces,
// so messages already on exactly those keys are skipped without any key
// operation. Decrypt carries AllowLegacy, the required context and limits;
// DryRun changes nothing; Sync is when RewrapPaths makes its writes
// durable (RewrapFile always syncs its one file); Workers rewrap files in
// parallel (0 means DefaultWorkers); Progress, when set, is called after
// each file.
type RewrapOptions = rewrap.RewrapOptions

// StoreRewrapOptions configures Rewrap. Keys are the target keys (store key
// names or BACKEND:REF specs); empty, each message moves to the primary
// versions of the store keys its encrypted data keys already name.
// Decrypt, DryRun, Sync, Workers and Progress are as in RewrapOptions
// (Progress also gets the number of files found). StopOn lists the errors
// (matched with errors.Is), besides the store's own (a bad passphrase, a
// locked, corrupt or missing store), that stop the run when opening a
// target group's keys fails: the caller's passphrase source's.
type StoreRewrapOptions = rewrap.StoreRewrapOptions

// FileResult is what happened to one file: its Path, Outcome (Rewrapped,
// WouldRewrap, Skipped or Failed), whether it was rewritten InPlace, and
// for a failure the Reason and Err (for errors.Is). Journal is what
// RewrapFile did with a journal an interrupted rewrap left for the file
// (RewrapPaths and Rewrap report journals in the summary).
type FileResult = rewrap.FileResult

// RewrapSummary lists every file by outcome (Rewrapped, Skipped, Failed)
// and the Journals of interrupted rewraps found and resolved before
// rewrapping; a JournalDiscarded one deserves a warning.
type RewrapSummary = rewrap.RewrapSummary

// JournalResult is what a rewrap did with a journal an interrupted rewrap
// left behind: the Journal's path, the Path it was for, its Outcome
// (JournalApplied, JournalRemoved or JournalDiscarded) and the Reason.
// Discarded journals deserve a warning.
type JournalResult = rewrap.JournalResult

// ErrNoRewrapTarget fails a message that names a key outside the store
// when Rewrap has no explicit target keys.
var ErrNoRewrapTarget = rewrap.ErrNoRewrapTarget

// Rewrap rewraps every message under paths (files and trees) with the
// keys of st, as RewrapPaths does, walking each tree once and parsing each
// header once. Messages are grouped by target keys: opts.Keys, or else the
// store keys each message's EDKs name (a message naming a key outside the
// store fails with ErrNoRewrapTarget rather than silently losing a
// recipient). Each group's keyrings are opened once, when its first
// message is reached, through st.RewrapKeyrings, which authorizes and
// audits the unwrapping as keystack:ReWrap; messages already on their
// group's targets are skipped without any key operation when the store
// alone tells which EDKs the targets write (local and PKCS#11 keys, and
// AWS KMS keys named by key ARN rather than alias).
//
// A group whose keys cannot be opened fails its messages with the reason
// (FileResult.Err), and the others go on; with opts.Keys, or when the
// whole store is unusable (see StopOn), Rewrap stops with the error and
// the summary of the files done so far. The summary is sorted by path.
func Rewrap(ctx context.Context, st *keystore.Store, paths []string, opts StoreRewrapOptions) (*RewrapSummary, error) {
	return rewrap.Rewrap(ctx, st, paths, opts)
}

// RewrapPaths rewraps every message under paths (files and trees) to the
// target keys without touching message bodies: see RewrapFile. Files that
// are not messages are skipped and reported, never modified. Running it
// again after an interruption finishes interrupted files and skips the done
// ones (with Targets set, without key operations).
//
// Every file the summary reports as rewrapped is durable when RewrapPaths
// returns, also when ctx is cancelled: with SyncBatch, one flush per
// filesystem (syncfs(2) on Linux) runs after the last file and before the
// return; if it fails, the files it covered are reported failed. Progress
// calls come before that flush. At every point before, a crash leaves each
// path holding its old or its new message, as with RewrapFile.
//
// Journals of interrupted rewraps, in the trees and beside the files named,
// are resolved first (except in a dry run) and reported in the summary. A file
// whose journal cannot be resolved fails and is not rewrapped.
func RewrapPaths(ctx context.Context, paths []string, opts RewrapOptions) (*RewrapSummary, error) {
	return rewrap.RewrapPaths(ctx, paths, opts)
}

// RewrapFile moves one message's encrypted data keys to the target keys:
// the data key is unwrapped once and wrapped again, the header is rebuilt
// with a new authentication tag, and the body bytes are kept unchanged. The
// message ID and commitment key stay the same. A header of unchanged size is
// rewritten in place under a journal; otherwise a new file is written beside
// the old one and renamed over it. Signed messages are re-signed in one pass.
// At every point a crash leaves the path holding the old or the new message.
// RewrapFile returns once the result is durable (fsync), whatever opts.Sync.
// A journal an interrupted rewrap left for path is resolved first (except
// in a dry run) and reported in the result's Journal.
func RewrapFile(ctx context.Context, path string, opts RewrapOptions) FileResult {
	return rewrap.RewrapFile(ctx, path, opts)
}
