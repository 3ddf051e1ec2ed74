package fsx

import (
	"cmp"
	"path/filepath"
)

// Batch publishes many files with two flushes per filesystem instead of
// two fsyncs per file. Commit of a file it created only closes the file
// and queues it; Flush makes the queued files durable (syncfs on Linux),
// then moves each into place and flushes again. A target thus never names
// data that is not on disk, even after a crash. Until Flush, queued files
// stay temporary, under names that carry the process ID (so that they need
// no open descriptor): RemovePending (the signal path) removes them, and
// after a SIGKILL the next run in the directory sweeps them.
// A Batch is not safe for concurrent use.
type Batch struct {
	fs     *Filesystems
	queued []*File
}

// NewBatch returns an empty batch; Close releases it.
func NewBatch() *Batch { return &Batch{fs: NewFilesystems()} }

// Create is the package's Create for a file that joins b on Commit.
func (b *Batch) Create(target string, overwrite bool) (*File, error) {
	f, err := Create(target, overwrite)
	if err != nil {
		return nil, err
	}
	// The filesystem is opened before the first write so that the flush
	// reports any writeback error since then.
	if err := b.fs.Add(filepath.Dir(f.target)); err != nil {
		f.Abort()
		return nil, err
	}
	f.batch = b
	return f, nil
}

// syncAll is the flush; tests record its calls.
var syncAll = (*Filesystems).Sync

// Len is the number of files queued for the next Flush.
func (b *Batch) Len() int { return len(b.queued) }

func (b *Batch) queue(f *File) error {
	f.done = true // Write, Commit and Abort are over; Flush finishes it
	err := f.name()
	if err := cmp.Or(err, f.close()); err != nil {
		f.finish()
		return err
	}
	b.queued = append(b.queued, f)
	return nil
}

// Flush publishes every queued file and returns the targets it published,
// in queue order. A failed flush publishes nothing and removes the queued
// files. A file whose target appeared meanwhile (without overwrite) is
// removed; Flush publishes the others and returns the first such error.
func (b *Batch) Flush() ([]string, error) {
	q := b.queued
	b.queued = nil
	if len(q) == 0 {
		return nil, nil
	}
	temps := make([]string, len(q))
	for i, f := range q {
		temps[i] = f.tmp
	}
	if err := syncAll(b.fs, temps); err != nil {
		for _, f := range q {
			f.finish()
		}
		return nil, err
	}
	var published []string
	var first error
	for _, f := range q {
		err := f.publish()
		f.finish()
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		published = append(published, f.target)
	}
	if len(published) > 0 {
		if err := syncAll(b.fs, published); err != nil {
			return published, err
		}
	}
	return published, first
}

// Close removes the files still queued and releases the filesystems.
func (b *Batch) Close() {
	for _, f := range b.queued {
		f.finish()
	}
	b.queued = nil
	b.fs.Close()
}
