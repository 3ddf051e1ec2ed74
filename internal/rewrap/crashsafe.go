package rewrap

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/internal/msgtree"
)

// crashAt, set by tests, simulates a crash at a named step: the operation
// stops there without any cleanup, as a killed process would.
var crashAt func(step string) bool

var errSimulatedCrash = errors.New("simulated crash")

func crash(step string) bool { return crashAt != nil && crashAt(step) }

// atomicWriteSize is the largest header rewritten without a journal: one
// sector-aligned write of at most 512 bytes at offset 0, which storage
// devices complete whole or not at all (PostgreSQL relies on the same for
// pg_control, PG_CONTROL_MAX_SAFE_SIZE).
const atomicWriteSize = 512

// rewriteHeaderInPlace overwrites a message's header with one of the same
// length. A header of at most atomicWriteSize bytes is written directly: a
// killed process leaves the write in the page cache, and a power cut
// leaves the old or the new sector. A larger one is first made durable in
// a journal bound to this file and its old header, so a crash at any later
// point is finished by the next rewrap (see resolveJournal). With a
// flusher (batch mode) the header write is not synced here: fl makes it
// durable later, and keeps the journal until then.
func rewriteHeaderInPlace(f *os.File, path string, oldHeader, newHeader []byte, fl *flusher) error {
	jp := "" // no journal: one sector-sized write is atomic
	if len(newHeader) > atomicWriteSize {
		var err error
		if jp, err = writeJournal(f, path, oldHeader, newHeader); err != nil {
			return err
		}
	}
	if err := writeHeaderAt(f, newHeader, fl == nil); err != nil {
		return err
	}
	if crash("header-written") {
		return errSimulatedCrash
	}
	if fl != nil {
		fl.add(path, jp)
		return nil
	}
	if jp == "" {
		return nil
	}
	// No directory sync: a journal that outlives a power loss is applied
	// again, which writes the same header.
	return os.Remove(jp)
}

// writeJournal makes the journal of path's header rewrite durable and
// returns its path.
func writeJournal(f *os.File, path string, oldHeader, newHeader []byte) (string, error) {
	j, err := newJournal(f, oldHeader, newHeader)
	if err != nil {
		return "", err
	}
	jp := journalPath(path)
	if err := fsx.WriteFileSync(jp, j.encode(), 0o600); err != nil {
		return "", fmt.Errorf("rewrap journal: %w", err)
	}
	if crash("journal-written") {
		return "", errSimulatedCrash
	}
	return jp, nil
}

// writeHeaderAt writes header at offset 0 in one write and, with sync,
// makes it durable.
func writeHeaderAt(f *os.File, header []byte, sync bool) error {
	if _, err := f.WriteAt(header, 0); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	fileSyncs.Add(1)
	return f.Sync()
}

// isStaleTemp reports whether a scratch file is a new-file rewrap's temp
// file, which a crash can leave behind and nothing ever resumes.
func isStaleTemp(name string) bool {
	return msgtree.IsScratch(name) && fsx.IsTemp(name)
}

// replaceHeader writes the new header and the old body into a new file
// beside the message and renames it over the message (see writeBeside).
func replaceHeader(path string, newHeader []byte, oldHeaderLen int64, fl *flusher) error {
	return writeBeside(path, fl, func(dst io.Writer) error {
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := dst.Write(newHeader); err != nil {
			return err
		}
		if _, err := src.Seek(oldHeaderLen, io.SeekStart); err != nil {
			return err
		}
		_, err = io.Copy(dst, src)
		return err
	})
}

// writeBeside replaces path with what fill writes (fsx.Replace), under a
// scratch name that tree walks pass over; with a flusher the rename is made
// durable by its flush instead of a directory sync.
func writeBeside(path string, fl *flusher, fill func(io.Writer) error) error {
	fileSyncs.Add(1)
	err := fsx.Replace(path, fill, fsx.ReplaceOptions{Prefix: msgtree.ScratchPrefix, NoDirSync: fl != nil, Step: crashStep})
	if err != nil {
		return err
	}
	if fl != nil {
		fl.add(path, "")
	}
	return nil
}

// crashStep is crash as fsx.Replace's Step.
func crashStep(step string) error {
	if crash(step) {
		return errSimulatedCrash
	}
	return nil
}
