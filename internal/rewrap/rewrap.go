package rewrap

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/msgtree"
	"github.com/keystack/keystack/keyring"
)

// Outcomes of rewrapping one file.
const (
	Rewrapped   = "rewrapped"
	WouldRewrap = "would-rewrap" // dry run
	Skipped     = "skipped"
	Failed      = "failed"
)

// RewrapOptions says which keys a rewrap moves messages from and to.
type RewrapOptions struct {
	// From unwraps the data key of existing messages; To wraps it under the
	// target master keys.
	From, To envelope.Keyring
	// Targets, when set, describes the EDKs To produces, so messages already
	// on exactly those keys are skipped without any key operation.
	Targets []keyring.EDKInfo
	// Decrypt carries AllowLegacy, the required context and limits.
	Decrypt envelope.DecryptOptions
	DryRun  bool
	// Sync says when RewrapPaths makes its writes durable: SyncBatch (the
	// default) or SyncPerFile. RewrapFile always syncs its one file.
	Sync SyncMode
	// Workers rewrap files in parallel; 0 means DefaultWorkers.
	Workers int
	// Progress, when set, is called after each file.
	Progress func(done, total int)
}

// FileResult is what happened to one file.
type FileResult struct {
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	InPlace bool   `json:"in_place,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Err is why the file failed (Reason is its text), for errors.Is.
	Err error `json:"-"`
	// Journal is what RewrapFile did with a journal an interrupted rewrap
	// left for this file (RewrapPaths reports journals in the summary).
	Journal *JournalResult `json:"journal,omitempty"`
}

// RewrapSummary lists every file by outcome.
type RewrapSummary struct {
	Rewrapped []FileResult `json:"rewrapped"`
	Skipped   []FileResult `json:"skipped"`
	Failed    []FileResult `json:"failed"`
	// Journals are the journals of interrupted rewraps found and resolved
	// before rewrapping; a JournalDiscarded one deserves a warning.
	Journals []JournalResult `json:"journals"`
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
	return rewrapTree(ctx, paths, opts, nil)
}

// planner gives each message the keys it moves between, from its parsed
// header: RewrapOptions with From, To and Targets set. An error from
// either method stops the run.
type planner interface {
	// start runs once the tree is walked and its journals are resolved.
	start(ctx context.Context) error
	plan(ctx context.Context, h *envelope.Header) (RewrapOptions, error)
}

// rewrapTree is RewrapPaths with each message's keys from pl (nil: opts'
// own). It walks each tree once and parses each header once.
func rewrapTree(ctx context.Context, paths []string, opts RewrapOptions, pl planner) (*RewrapSummary, error) {
	files, journals, err := scanPaths(ctx, paths, !opts.DryRun)
	if err != nil {
		return nil, err
	}
	jres, unresolved := []JournalResult{}, map[string]error{}
	if !opts.DryRun {
		if jres, unresolved, err = resolveEach(journals); err != nil {
			return nil, err
		}
	}
	if pl != nil {
		if err := pl.start(ctx); err != nil {
			return summarize(nil, jres), err
		}
	}
	var fl *flusher
	if opts.Sync == SyncBatch && !opts.DryRun {
		if fl, err = newFlusher(files); err != nil {
			return nil, err
		}
	}
	run := rewrapAll(ctx, files, unresolved, opts, pl, fl)
	if err := finishRun(fl, run); err != nil {
		if errors.Is(err, errSimulatedCrash) {
			return nil, err
		}
		return summarize(run.results, jres), err
	}
	if run.stop != nil {
		return summarize(run.results, jres), run.stop
	}
	return summarize(run.results, jres), ctx.Err()
}

// treeRun is the outcome of rewrapAll: a result per file (zero for files
// never started), whether a simulated crash (tests) stopped it, and the
// planner's error that stopped it.
type treeRun struct {
	results []FileResult
	crashed bool
	stop    error
}

// finishRun makes a batch run durable: on a flush error the files it
// covered are reported failed. A simulated crash flushes nothing.
func finishRun(fl *flusher, run *treeRun) error {
	if run.crashed || (fl != nil && crash("before-flush")) {
		if fl != nil {
			fl.abandon()
		}
		return errSimulatedCrash // a killed process flushes nothing
	}
	if fl == nil {
		return nil
	}
	err := fl.finish()
	if err != nil && !errors.Is(err, errSimulatedCrash) {
		failUnflushed(run.results, err)
	}
	return err
}

// rewrapAll rewraps files with opts.Workers workers until done, ctx is
// cancelled, or the planner fails. Files in unresolved fail with their
// journal's error.
func rewrapAll(ctx context.Context, files []string, unresolved map[string]error, opts RewrapOptions, pl planner, fl *flusher) *treeRun {
	run := &treeRun{results: make([]FileResult, len(files))}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range workerCount(opts.Workers) {
		wg.Go(func() {
			for i := range jobs {
				res, stop := rewrapOne(ctx, files[i], unresolved, opts, pl, fl)
				run.results[i] = res
				mu.Lock()
				done++
				run.crashed = run.crashed || (crashAt != nil && res.Reason == errSimulatedCrash.Error())
				run.stop = cmp.Or(run.stop, stop)
				if opts.Progress != nil {
					opts.Progress(done, len(files))
				}
				mu.Unlock()
			}
		})
	}
	for i := range files {
		mu.Lock()
		stop := run.crashed || run.stop != nil
		mu.Unlock()
		if ctx.Err() != nil || stop {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return run
}

// rewrapOne rewraps one file of a tree, unless its journal could not be
// resolved.
func rewrapOne(ctx context.Context, path string, unresolved map[string]error, opts RewrapOptions, pl planner, fl *flusher) (FileResult, error) {
	if err := unresolved[filepath.Clean(path)]; err != nil {
		return FileResult{Path: path}.fail(err), nil
	}
	return rewrapFile(ctx, path, opts, pl, fl)
}

// DefaultWorkers is how many files a tree rewrap works on in parallel
// unless told otherwise: with SyncPerFile the work is mostly waiting for
// fsync; with SyncBatch, 2 per core suffice.
const DefaultWorkers = 8

func workerCount(n int) int {
	if n <= 0 {
		return DefaultWorkers
	}
	return n
}

// failUnflushed reports the rewritten files as failed: a flush error
// leaves unknown which of them are durable.
func failUnflushed(results []FileResult, err error) {
	for i, r := range results {
		if r.Outcome == Rewrapped {
			results[i] = r.fail(err)
		}
	}
}

func summarize(results []FileResult, journals []JournalResult) *RewrapSummary {
	s := &RewrapSummary{Rewrapped: []FileResult{}, Skipped: []FileResult{}, Failed: []FileResult{}, Journals: journals}
	for _, r := range results {
		switch r.Outcome {
		case Rewrapped, WouldRewrap:
			s.Rewrapped = append(s.Rewrapped, r)
		case Skipped:
			s.Skipped = append(s.Skipped, r)
		case Failed:
			s.Failed = append(s.Failed, r)
		}
	}
	return s
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
	var jr *JournalResult
	if jp := journalPath(path); !opts.DryRun && exists(jp) {
		r, err := resolveJournal(jp)
		if err != nil {
			return FileResult{Path: path, Journal: &r}.fail(err)
		}
		jr = &r
	}
	res, _ := rewrapFile(ctx, path, opts, nil, nil)
	res.Journal = jr
	return res
}

// rewrapFile is RewrapFile once journals are resolved, with the keys from
// pl (nil: opts' own); an error from pl is returned and stops the run.
// With a flusher, writes are made durable by its flush instead of one by
// one. The header is read and parsed once, here.
func rewrapFile(ctx context.Context, path string, opts RewrapOptions, pl planner, fl *flusher) (FileResult, error) {
	res := FileResult{Path: path}
	flag := os.O_RDWR
	if opts.DryRun {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return res.fail(err), nil
	}
	defer f.Close()
	buf := msgtree.Buffers.Get().(*[]byte)
	defer msgtree.Buffers.Put(buf)
	raw, old, err := msgtree.ReadHeader(f, *buf, opts.Decrypt.MaxEncryptedDataKeys)
	if errors.Is(err, msgtree.ErrRead) {
		return res.fail(err), nil
	}
	if err != nil {
		res.Outcome, res.Reason = Skipped, "not a message: "+err.Error()
		return res, nil
	}
	if pl != nil {
		if opts, err = pl.plan(ctx, old); err != nil {
			return res, err
		}
	}
	return rewrapMessage(ctx, f, raw, old, opts, fl), nil
}

// rewrapMessage rewraps the message in f, whose header old was parsed
// from raw.
func rewrapMessage(ctx context.Context, f *os.File, raw []byte, old *envelope.Header, opts RewrapOptions, fl *flusher) FileResult {
	res := FileResult{Path: f.Name()}
	if opts.Targets != nil && onTargets(old, opts.Targets) {
		res.Outcome, res.Reason = Skipped, "already on the target keys"
		return res
	}
	if old.Suite.Signed() {
		f.Close() // the signed rewrite reads the file anew and renames over it
		return rewrapSigned(ctx, old, opts, res, fl)
	}
	to := &edkRecorder{Keyring: opts.To}
	newHeader, err := envelope.RewrapHeader(ctx, old, opts.From, to, opts.Decrypt)
	if err != nil {
		return res.fail(err)
	}
	if slices.Equal(keySet(old.EncryptedDataKeys), keySet(to.edks)) {
		res.Outcome, res.Reason = Skipped, "already on the target keys"
		return res
	}
	res.InPlace = len(newHeader) == old.HeaderLength
	if opts.DryRun {
		res.Outcome = WouldRewrap
		return res
	}
	if res.InPlace {
		err = rewriteHeaderInPlace(f, res.Path, raw, newHeader, fl)
	} else {
		err = replaceHeader(res.Path, newHeader, int64(old.HeaderLength), fl)
	}
	if err != nil {
		return res.fail(err)
	}
	res.Outcome = Rewrapped
	return res
}

func (r FileResult) fail(err error) FileResult {
	r.Outcome, r.Reason, r.Err = Failed, err.Error(), err
	return r
}

// rewrapSigned writes the rewrapped signed message, whose header old was
// already parsed, beside res.Path and renames it over.
func rewrapSigned(ctx context.Context, old *envelope.Header, opts RewrapOptions, res FileResult, fl *flusher) FileResult {
	if opts.DryRun {
		res.Outcome = WouldRewrap
		return res
	}
	err := writeBeside(res.Path, fl, func(dst io.Writer) error {
		src, err := os.Open(res.Path)
		if err != nil {
			return err
		}
		defer src.Close()
		body := bufio.NewReaderSize(io.NewSectionReader(src, int64(old.HeaderLength), math.MaxInt64-int64(old.HeaderLength)), 1<<20)
		return envelope.RewrapSigned(ctx, old, body, dst, opts.From, opts.To, opts.Decrypt)
	})
	if err != nil {
		return res.fail(err)
	}
	res.Outcome = Rewrapped
	return res
}

// edkRecorder passes OnEncrypt on and keeps the EDKs it appended, which
// are exactly the new header's (see envelope.Keyring), so the rewrap need
// not parse the header back to learn its keys.
type edkRecorder struct {
	envelope.Keyring
	edks []envelope.EncryptedDataKey
}

func (r *edkRecorder) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	err := r.Keyring.OnEncrypt(ctx, m)
	r.edks = m.EncryptedDataKeys
	return err
}

// keySet is the set of (provider, key, version) an EDK list names.
func keySet(edks []envelope.EncryptedDataKey) []string {
	s := make([]string, 0, len(edks))
	for _, edk := range edks {
		d := keyring.DescribeEDK(edk)
		s = append(s, d.ProviderID+"\x00"+d.KeyName)
	}
	sort.Strings(s)
	return s
}

func onTargets(h *envelope.Header, targets []keyring.EDKInfo) bool {
	var want []string
	for _, t := range targets {
		want = append(want, t.ProviderID+"\x00"+t.KeyName)
	}
	sort.Strings(want)
	return slices.Equal(keySet(h.EncryptedDataKeys), want)
}
