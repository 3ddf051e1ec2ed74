package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/keystack/keystack/internal/fsx"
)

const (
	metaFile = "keystore.json"
	lockFile = "keystore.lock"
	// maxMetaSize caps how much of keystore.json is read before parsing.
	maxMetaSize = 16 << 20
	// lockPoll is how often a waiting writer retries the lock.
	lockPoll = 5 * time.Millisecond
)

// lockDir takes the store's exclusive write lock: flock(2) on keystore.lock,
// which also excludes other Store values of this process (each opens its own
// file description). It waits until the lock is free or ctx is done. The
// lock file is never removed, so two writers can never lock different files.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	unlock, err = fsx.LockFile(ctx, filepath.Join(dir, lockFile), lockPoll)
	if err != nil && !errors.Is(err, ctx.Err()) {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	return unlock, err
}

// readFileBounded reads path, refusing files over limit bytes before
// reading them whole.
func readFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptStore, filepath.Base(path), limit)
	}
	return data, nil
}

// writeFileAtomic replaces path with data so that readers see either the
// old or the new file, never a mix, even after a crash, and so that no
// copy of data is left behind if the process dies while writing: see
// internal/fsx (an unnamed 0600 file on Linux, fsynced, then
// renamed over path, and the directory fsynced).
func writeFileAtomic(path string, data []byte) error {
	f, err := fsx.Create(path, true)
	if err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	return nil
}
