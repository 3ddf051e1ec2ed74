package rewrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/keystack/keystack/internal/fsx"
)

// SyncMode says when a tree rewrap makes its writes durable.
type SyncMode int

const (
	// SyncBatch, the default, writes each file without waiting for the
	// disk and makes the whole run durable with one flush per filesystem
	// (syncfs(2) on Linux) before RewrapPaths returns; flushes in the
	// background overlap the disk work with the rewrap. Crash safety does
	// not depend on the flush: see rewriteHeaderInPlace and writeBeside.
	SyncBatch SyncMode = iota
	// SyncPerFile makes each file durable (fsync(2)) before the next step,
	// as RewrapFile always does: slower, but a power cut mid-run loses no
	// finished file, and no flush waits for other processes' dirty data on
	// the same filesystem.
	SyncPerFile
)

// flushEvery is how many rewritten files start a background flush; a
// variable so tests can exercise the background flusher on small trees.
var flushEvery = 1024

// flushHook, set by tests, sees every successful final batch flush: the
// rewritten files it made durable.
var flushHook func(files []string)

// fileSyncs, read by tests, counts per-file fsyncs of rewritten messages.
var fileSyncs atomic.Int64

// flusher collects the writes of a batch rewrap that are not yet durable
// and makes them durable together. It holds one descriptor per filesystem
// from before the first write, so the final syncfs reports every writeback
// error since then. Journals of in-place rewrites stay on disk until the
// final flush has made their headers durable, so a power cut before it
// rolls those headers forward again.
type flusher struct {
	fs       *fsx.Filesystems
	kick     chan struct{}
	bg       sync.WaitGroup
	bgErr    error // first background flush error, sticky
	mu       sync.Mutex
	files    []string
	journals []string
}

// newFlusher opens the filesystems holding files and starts the
// background flusher; finish stops it.
func newFlusher(files []string) (*flusher, error) {
	var dirs []string
	for _, f := range files {
		dirs = append(dirs, filepath.Dir(f))
	}
	fs, err := fsx.OpenFilesystems(dirs...)
	if err != nil {
		return nil, err
	}
	fl := &flusher{fs: fs, kick: make(chan struct{}, 1)}
	fl.bg.Go(func() {
		for range fl.kick {
			if err := fl.fs.Sync(nil); err != nil && fl.bgErr == nil {
				fl.bgErr = err
			}
		}
	})
	return fl, nil
}

// add records a rewritten file whose last write, or rename, is not yet
// durable, and journal (if not empty) to remove once it is.
func (fl *flusher) add(path, journal string) {
	fl.mu.Lock()
	fl.files = append(fl.files, path)
	if journal != "" {
		fl.journals = append(fl.journals, journal)
	}
	n := len(fl.files)
	fl.mu.Unlock()
	if n%flushEvery == 0 {
		select {
		case fl.kick <- struct{}{}:
		default: // one is running or queued: it covers this file's writes too
		}
	}
}

// errNotDurable marks files a rewrap wrote but could not make durable.
var errNotDurable = errors.New("rewrap not made durable")

// finish stops the background flusher, makes every recorded write
// durable, then removes the journals the writes no longer need. On
// failure nothing recorded is known durable. It releases the filesystems.
func (fl *flusher) finish() error {
	close(fl.kick)
	fl.bg.Wait()
	defer fl.fs.Close()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	err := fl.bgErr
	if len(fl.files) > 0 && err == nil {
		err = fl.fs.Sync(fl.files)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errNotDurable, err)
	}
	if crash("flushed") {
		return errSimulatedCrash
	}
	if flushHook != nil && len(fl.files) > 0 {
		flushHook(fl.files)
	}
	// No directory sync: a journal that outlives a power loss is applied
	// again by the next rewrap, which writes the same header.
	for _, j := range fl.journals {
		if err := os.Remove(j); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// abandon stops the flusher without flushing, as a killed process would.
func (fl *flusher) abandon() {
	close(fl.kick)
	fl.bg.Wait()
	fl.fs.Close()
}
