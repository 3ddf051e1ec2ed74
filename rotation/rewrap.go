package rotation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
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
	Targets []keystore.EDKInfo
	// Decrypt carries AllowLegacy, the required context and limits.
	Decrypt envelope.DecryptOptions
	DryRun  bool
	// Sync says when RewrapPaths makes its writes durable: SyncBatch (the
	// default) or SyncPerFile. RewrapFile always syncs its one file.
	Sync SyncMode
	// Workers rewrap files in parallel; 0 means 8 (with SyncPerFile the
	// work is mostly waiting for fsync; with SyncBatch, 2 per core suffice).
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
// are resolved first (except in a dry run): see RecoverJournals. A file
// whose journal cannot be resolved fails and is not rewrapped.
func RewrapPaths(ctx context.Context, paths []string, opts RewrapOptions) (*RewrapSummary, error) {
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
	var fl *flusher
	if opts.Sync == SyncBatch && !opts.DryRun {
		if fl, err = newFlusher(files); err != nil {
			return nil, err
		}
	}
	results, crashed := rewrapAll(ctx, files, unresolved, opts, fl)
	if crashed || (fl != nil && crash("before-flush")) {
		if fl != nil {
			fl.abandon()
		}
		return nil, errSimulatedCrash // a killed process flushes nothing
	}
	if fl != nil {
		if err := fl.finish(); err != nil {
			if errors.Is(err, errSimulatedCrash) {
				return nil, err
			}
			failUnflushed(results, err)
			return summarize(results, jres), err
		}
	}
	return summarize(results, jres), ctx.Err()
}

// rewrapAll rewraps files with opts.Workers workers until done or ctx is
// cancelled. Files in unresolved fail with their journal's error.
// crashed reports a simulated crash (tests), which stops it.
func rewrapAll(ctx context.Context, files []string, unresolved map[string]error, opts RewrapOptions, fl *flusher) (results []FileResult, crashed bool) {
	results = make([]FileResult, len(files))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	workers := opts.Workers
	if workers <= 0 {
		workers = 8
	}
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := unresolved[filepath.Clean(files[i])]; err != nil {
					results[i] = FileResult{Path: files[i]}.fail(err)
				} else {
					results[i] = rewrapFile(ctx, files[i], opts, fl)
				}
				mu.Lock()
				done++
				crashed = crashed || (crashAt != nil && results[i].Reason == errSimulatedCrash.Error())
				if opts.Progress != nil {
					opts.Progress(done, len(files))
				}
				mu.Unlock()
			}
		})
	}
	for i := range files {
		mu.Lock()
		stop := crashed
		mu.Unlock()
		if ctx.Err() != nil || stop {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results, crashed
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
// in a dry run) and reported in the result: see RecoverJournals.
func RewrapFile(ctx context.Context, path string, opts RewrapOptions) FileResult {
	var jr *JournalResult
	if jp := journalPath(path); !opts.DryRun && exists(jp) {
		r, err := resolveJournal(jp)
		if err != nil {
			return FileResult{Path: path, Journal: &r}.fail(err)
		}
		jr = &r
	}
	res := rewrapFile(ctx, path, opts, nil)
	res.Journal = jr
	return res
}

// rewrapFile is RewrapFile once journals are resolved. With a flusher,
// writes are made durable by its flush instead of one by one.
func rewrapFile(ctx context.Context, path string, opts RewrapOptions, fl *flusher) FileResult {
	res := FileResult{Path: path}
	flag := os.O_RDWR
	if opts.DryRun {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return res.fail(err)
	}
	defer f.Close()
	buf := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(buf)
	raw, old, err := readHeader(f, *buf, opts.Decrypt.MaxEncryptedDataKeys)
	if errors.Is(err, errRead) {
		return res.fail(err)
	}
	if err != nil {
		res.Outcome, res.Reason = Skipped, "not a message: "+err.Error()
		return res
	}
	if opts.Targets != nil && onTargets(old, opts.Targets) {
		res.Outcome, res.Reason = Skipped, "already on the target keys"
		return res
	}
	if old.Suite.Signed() {
		f.Close()
		return rewrapSigned(ctx, path, opts, res, fl)
	}
	to := &edkRecorder{Keyring: opts.To}
	newHeader, _, err := envelope.RewrapHeader(ctx, bytes.NewReader(raw), opts.From, to, opts.Decrypt)
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
		err = rewriteHeaderInPlace(f, path, raw, newHeader, fl)
	} else {
		err = replaceHeader(path, newHeader, int64(old.HeaderLength), fl)
	}
	if err != nil {
		return res.fail(err)
	}
	res.Outcome = Rewrapped
	return res
}

// headerReadSize covers the headers of nearly all messages in one read.
const headerReadSize = 4096

var errRead = errors.New("reading the message")

// headerBufs recycles readHeader's buffers across files.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, headerReadSize); return &b }}

// readHeader reads and parses the header at the start of f, returning its
// bytes too (in buf when they fit), so that the rewrap parses them from
// memory instead of reading the file again. Most headers take one pread.
func readHeader(f *os.File, buf []byte, maxEDKs int) ([]byte, *envelope.Header, error) {
	opts := envelope.InspectOptions{MaxEncryptedDataKeys: maxEDKs}
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("%w: %w", errRead, err)
	}
	h, err := envelope.Inspect(bytes.NewReader(buf[:n]), opts)
	if errors.Is(err, envelope.ErrTruncated) && n == len(buf) {
		// A longer header: Inspect bounds it while reading the file.
		if h, err = envelope.Inspect(bufio.NewReader(io.NewSectionReader(f, 0, envelope.MaxHeaderLength)), opts); err != nil {
			return nil, nil, err
		}
		buf = make([]byte, h.HeaderLength)
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errRead, err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return buf[:h.HeaderLength], h, nil
}

func (r FileResult) fail(err error) FileResult {
	r.Outcome, r.Reason = Failed, err.Error()
	return r
}

func rewrapSigned(ctx context.Context, path string, opts RewrapOptions, res FileResult, fl *flusher) FileResult {
	if opts.DryRun {
		res.Outcome = WouldRewrap
		return res
	}
	err := writeBeside(path, fl, func(dst io.Writer) error {
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = envelope.RewrapSigned(ctx, bufio.NewReaderSize(src, 1<<20), dst, opts.From, opts.To, opts.Decrypt)
		return err
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
		d := keystore.DescribeEDK(edk)
		s = append(s, d.ProviderID+"\x00"+d.KeyName)
	}
	sort.Strings(s)
	return s
}

func onTargets(h *envelope.Header, targets []keystore.EDKInfo) bool {
	var want []string
	for _, t := range targets {
		want = append(want, t.ProviderID+"\x00"+t.KeyName)
	}
	sort.Strings(want)
	return slices.Equal(keySet(h.EncryptedDataKeys), want)
}

var errNotRegular = errors.New("not a regular file")

func checkRegular(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", errNotRegular, fi.Name())
	}
	return nil
}
