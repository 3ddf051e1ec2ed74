package rewrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/internal/msgtree"
)

// A journal is bound to the file it was written for: the file's device,
// inode and size, and the exact header the rewrite replaces. It is rolled
// forward only while the file is still that file and still holds that
// header (or a torn mix of it and the new one, as a power cut mid-write
// leaves); anything else at the path is never written to.
var journalMagic = []byte("keystack-rewrap-journal-v2\n")

// olderJournalMagic marks journals of earlier keystack versions, which
// name no file identity and no old header: they are never applied.
var olderJournalMagic = []byte("keystack-rewrap-journal-v1\n")

const journalSuffix = ".journal"

// journal is one in-place header rewrite: the file it belongs to, the
// header it replaces and the header it writes (of the same length).
type journal struct {
	dev, ino  uint64
	size      int64
	oldHeader []byte
	newHeader []byte
}

// Outcomes of resolving a journal left by an interrupted rewrap.
const (
	// JournalApplied: the file still held the old header (or a torn mix),
	// and the new header was written.
	JournalApplied = "applied"
	// JournalRemoved: nothing was left to do (the file already held the new
	// header, or the journal was incomplete, so the file was never touched).
	JournalRemoved = "removed"
	// JournalDiscarded: the path no longer holds the file the journal was
	// written for; the journal was removed and the path not touched.
	JournalDiscarded = "discarded"
)

// JournalResult is what a rewrap did with a journal an interrupted rewrap
// left behind. Discarded journals deserve a warning.
type JournalResult struct {
	Journal string `json:"journal"`
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// journalPath is where the journal of path lives: beside it.
func journalPath(path string) string {
	return filepath.Join(filepath.Dir(path), msgtree.ScratchPrefix+filepath.Base(path)+journalSuffix)
}

// isJournal reports whether name is a rewrap journal's file name.
func isJournal(name string) bool {
	return msgtree.IsScratch(name) && strings.HasSuffix(name, journalSuffix) &&
		len(name) > len(msgtree.ScratchPrefix)+len(journalSuffix)
}

// journalTarget is the file a journal at jp belongs to.
func journalTarget(jp string) string {
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jp), msgtree.ScratchPrefix), journalSuffix)
	return filepath.Join(filepath.Dir(jp), name)
}

// newJournal binds a rewrite of f's header old to new to f as it is now.
func newJournal(f *os.File, oldHeader, newHeader []byte) (*journal, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	dev, ino := fileID(fi)
	return &journal{dev: dev, ino: ino, size: fi.Size(), oldHeader: oldHeader, newHeader: newHeader}, nil
}

// encode is magic ‖ u64 dev ‖ u64 inode ‖ u64 size ‖ u32 header length ‖
// old header ‖ new header ‖ SHA-256 of all that, so a torn journal is
// recognised and ignored.
func (j *journal) encode() []byte {
	n := len(j.newHeader)
	body := make([]byte, 0, len(journalMagic)+28+2*n+sha256.Size)
	body = append(body, journalMagic...)
	body = binary.BigEndian.AppendUint64(body, j.dev)
	body = binary.BigEndian.AppendUint64(body, j.ino)
	body = binary.BigEndian.AppendUint64(body, uint64(j.size))
	body = binary.BigEndian.AppendUint32(body, uint32(n))
	body = append(body, j.oldHeader...)
	body = append(body, j.newHeader...)
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}

var (
	errJournalTorn  = errors.New("incomplete journal: the interrupted rewrap never touched the file")
	errJournalOlder = errors.New("journal of an earlier keystack version, which does not record the file it belongs to; the file was left as it is")
)

func parseJournal(data []byte) (*journal, error) {
	m := len(journalMagic)
	if bytes.HasPrefix(data, olderJournalMagic) {
		return nil, errJournalOlder
	}
	if len(data) < m+28+sha256.Size || !bytes.Equal(data[:m], journalMagic) {
		return nil, errJournalTorn
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return nil, errJournalTorn
	}
	p := body[m:]
	j := &journal{dev: binary.BigEndian.Uint64(p), ino: binary.BigEndian.Uint64(p[8:]), size: int64(binary.BigEndian.Uint64(p[16:]))}
	n := int(binary.BigEndian.Uint32(p[24:]))
	if p = p[28:]; n == 0 || len(p) != 2*n {
		return nil, errJournalTorn
	}
	j.oldHeader, j.newHeader = p[:n], p[n:]
	return j, nil
}

// errJournalStale marks a journal whose path holds something other than
// the file it was written for.
var errJournalStale = errors.New("the file changed since the interrupted rewrap and was left as it is")

// errJournalOrphan marks a journal whose file no longer exists.
var errJournalOrphan = errors.New("the file no longer exists")

// resolveJournal finishes or discards the journal at jp and removes it; a
// journal is written to its file only when that file still holds the old
// header it replaces. A crash during resolveJournal leaves the journal,
// so the next run resolves it again.
func resolveJournal(jp string) (JournalResult, error) {
	res := JournalResult{Journal: jp, Path: journalTarget(jp)}
	data, err := os.ReadFile(jp)
	if err != nil {
		return res, err
	}
	res.Outcome, err = settleJournal(res.Path, data)
	switch {
	case errors.Is(err, errJournalTorn):
		res.Outcome, res.Reason = JournalRemoved, err.Error()
	case errors.Is(err, errJournalStale), errors.Is(err, errJournalOlder), errors.Is(err, errJournalOrphan):
		res.Outcome, res.Reason = JournalDiscarded, err.Error()
	case err != nil:
		return res, fmt.Errorf("finishing interrupted rewrap of %s: %w", res.Path, err)
	}
	if crash("journal-resolved") {
		return res, errSimulatedCrash
	}
	if err := os.Remove(jp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	return res, fsx.SyncPath(filepath.Dir(jp))
}

// settleJournal writes j's new header to path if path is still j's file
// and holds its old header, and reports what it did.
func settleJournal(path string, data []byte) (string, error) {
	j, err := parseJournal(data)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errJournalOrphan
	}
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w (not a regular file)", errJournalStale)
	}
	// O_NOFOLLOW and the identity check on the open descriptor: the file
	// written to is the one checked, even if the path changes meanwhile.
	f, err := os.OpenFile(path, os.O_RDWR|openNoFollow, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := j.check(f); errors.Is(err, errAlreadyApplied) {
		return JournalRemoved, nil
	} else if err != nil {
		return "", err
	}
	if err := writeHeaderAt(f, j.newHeader, true); err != nil {
		return "", err
	}
	return JournalApplied, nil
}

// check returns nil when f is j's file and holds j's old header, or a torn
// mix of the old and new headers; errAlreadyApplied when it holds the new
// header; errJournalStale otherwise.
func (j *journal) check(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if dev, ino := fileID(fi); dev != j.dev || ino != j.ino || fi.Size() != j.size {
		return fmt.Errorf("%w (device, inode or size differ)", errJournalStale)
	}
	cur := make([]byte, len(j.newHeader))
	if _, err := f.ReadAt(cur, 0); err != nil && err != io.EOF {
		return err
	}
	if bytes.Equal(cur, j.newHeader) {
		return errAlreadyApplied
	}
	if !tornMix(cur, j.oldHeader, j.newHeader) {
		return fmt.Errorf("%w (its header is neither the one the rewrap replaced nor the one it wrote)", errJournalStale)
	}
	return nil
}

var errAlreadyApplied = errors.New("the file already holds the new header")

// tornMix reports whether every sector of cur equals the same sector of
// either old or new: the state an interrupted header write can leave
// (all-old included). Anything else was written by someone else.
func tornMix(cur, old, new []byte) bool {
	for off := 0; off < len(cur); off += atomicWriteSize {
		end := min(off+atomicWriteSize, len(cur))
		if !bytes.Equal(cur[off:end], old[off:end]) && !bytes.Equal(cur[off:end], new[off:end]) {
			return false
		}
	}
	return true
}

// recoverJournals resolves the journals interrupted rewraps left under
// paths: in the trees named, and beside the files named. Each journal is
// applied only to the file it was written for while that file still holds
// the header it replaces; otherwise it is discarded (JournalDiscarded)
// and the path is not touched. A journal whose file no longer exists is
// discarded too. Stale temp files of interrupted rewraps are removed.
// RewrapPaths and Rewrap resolve journals themselves, before reading any
// header; callers that read headers otherwise call it first.
func recoverJournals(ctx context.Context, paths []string) ([]JournalResult, error) {
	_, jps, err := scanPaths(ctx, paths, true)
	if err != nil {
		return nil, err
	}
	results, unresolved, err := resolveEach(jps)
	if err != nil {
		return results, err
	}
	for _, jp := range jps {
		if err := unresolved[journalTarget(jp)]; err != nil {
			return results, err
		}
	}
	return results, nil
}

// resolveEach resolves every journal in jps. A journal that cannot be
// resolved (an I/O error) stays, and its file is listed in unresolved so
// that it is not rewrapped over the journal; a simulated crash stops it.
func resolveEach(jps []string) (results []JournalResult, unresolved map[string]error, err error) {
	results, unresolved = []JournalResult{}, map[string]error{}
	for _, jp := range jps {
		res, err := resolveJournal(jp)
		if errors.Is(err, errSimulatedCrash) {
			return results, unresolved, err
		}
		if err != nil {
			unresolved[res.Path] = err
			continue
		}
		results = append(results, res)
	}
	return results, unresolved, nil
}

// scanPaths lists the files under paths (not rewrap scratch files) and
// the journals in the trees named and beside the files named; with sweep
// it removes stale temp files on the way. It walks each tree once.
func scanPaths(ctx context.Context, paths []string, sweep bool) (files, journals []string, err error) {
	beside := map[string]bool{}
	for _, r := range paths {
		fi, err := os.Lstat(r)
		if jp := journalPath(r); err == nil && fi.Mode().IsRegular() && !msgtree.IsScratch(fi.Name()) && exists(jp) && !beside[jp] {
			beside[jp] = true
			journals = append(journals, jp)
		}
	}
	scratch := func(p string) {
		switch name := filepath.Base(p); {
		case isStaleTemp(name) && sweep && !fsx.OwnerAlive(name):
			os.Remove(p)
		case isJournal(name) && !beside[p]:
			journals = append(journals, p)
		}
	}
	err = msgtree.Walk(ctx, paths, scratch, func(p string, _ fs.DirEntry) error {
		files = append(files, p)
		return nil
	})
	return files, journals, err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// listFiles returns the regular files under paths (files and trees) in
// lexical order, without following symbolic links and without the
// scratch files of interrupted rewraps (journals, temp files), which are
// not messages to plan for: recoverJournals resolves them.
func listFiles(ctx context.Context, paths []string) ([]string, error) {
	files, _, err := scanPaths(ctx, paths, false)
	return files, err
}
