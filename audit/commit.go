package audit

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// commitLoop is the single committer: it takes every queued record, writes
// them with one write(2) and, in Sync mode, one fsync (group commit).
func (l *Log) commitLoop() {
	var tick <-chan time.Time
	if l.opts.Durability == Batch {
		t := time.NewTicker(l.opts.BatchInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case p, ok := <-l.reqs:
			if !ok {
				l.wmu.Lock()
				err := l.finish()
				l.wmu.Unlock()
				l.done <- err
				return
			}
			batch := []*pending{p}
		drain:
			for len(batch) < cap(l.reqs) {
				select {
				case q, ok := <-l.reqs:
					if !ok {
						break drain
					}
					batch = append(batch, q)
				default:
					break drain
				}
			}
			l.wmu.Lock()
			err := l.commit(batch)
			l.wmu.Unlock()
			for _, p := range batch {
				p.done <- p.result(err)
			}
		case <-tick:
			l.batchSync()
		}
	}
}

// commit writes a batch, holding wmu, and returns the batch's error; a
// record that alone could not be encoded has its own in p.err. After any
// write failure the log is failed for good (fail closed).
func (l *Log) commit(batch []*pending) error {
	err := l.err
	switch {
	case err != nil:
	case l.opts.Durability == Batch:
		if err = l.lockLeased(); err == nil {
			err = l.writeBatch(batch)
		}
	default:
		err = l.withLock(func() error {
			if err := l.catchUp(); err != nil {
				return err
			}
			return l.writeBatch(batch)
		})
	}
	if err == nil && l.opts.Durability == Sync {
		err = l.sync() // Batch mode: the committer's ticker syncs
	}
	if err != nil && l.err == nil {
		l.err = err
	}
	return err
}

// writeBatch writes a batch; the caller holds the file's flock and has
// caught up with the file since taking it.
func (l *Log) writeBatch(batch []*pending) error {
	now := l.opts.Now().UTC().Format(time.RFC3339Nano)
	buf, err := l.cutTorn(l.buf[:0], now)
	if err != nil {
		return err
	}
	seq, head, since := l.seq, l.head, l.sinceCheck
	if len(buf) > 0 {
		seq, head = l.seq+1, l.noteHead
	}
	for _, p := range batch {
		p.e.Time, p.e.Seq = now, seq+1
		var h [32]byte
		buf, h, err = p.e.sealTo(l.ch, buf, head, false)
		if err != nil {
			p.err = err // this record only: it is not written
			continue
		}
		seq++
		head = h
		if since++; since >= l.opts.CheckpointEvery {
			seq++
			var line []byte
			line, head = l.checkpoint(seq, head, now, false)
			buf = append(buf, line...)
			since = 0
		}
	}
	if cap(buf) <= 64<<10 {
		l.buf = buf // keep a small buffer for the next batch
	}
	if err := l.write(buf); err != nil {
		return err
	}
	l.seq, l.head, l.sinceCheck = seq, head, since
	l.wrote = true
	return nil
}

// cutTorn removes the bytes an append that failed left after the last
// entry (the caller holds the flock and has verified everything before
// them) and appends to buf a note entry saying so, whose hash it keeps in
// l.noteHead. Without torn bytes it returns buf unchanged.
func (l *Log) cutTorn(buf []byte, now string) ([]byte, error) {
	if l.torn == 0 {
		return buf, nil
	}
	if err := l.f.Truncate(l.size); err != nil {
		return buf, fmt.Errorf("%w: cut torn tail: %w", ErrWrite, err)
	}
	e := Entry{Time: now, Seq: l.seq + 1, Type: TypeNote,
		Reason: fmt.Sprintf("removed %d bytes of an incomplete line at offset %d, left by an append that failed (disk full or crash); the operation it belonged to was refused", l.torn, l.size)}
	l.torn = 0
	buf, l.noteHead, _ = e.sealTo(l.ch, buf, l.head, false) // a short note always fits
	return buf, nil
}

// writeCheckpoint writes a checkpoint for the current head; the caller
// holds wmu and the file's flock.
func (l *Log) writeCheckpoint(final bool) error {
	if err := l.catchUp(); err != nil {
		return err
	}
	now := l.opts.Now().UTC().Format(time.RFC3339Nano)
	buf, err := l.cutTorn(nil, now)
	if err != nil {
		return err
	}
	seq, head := l.seq, l.head
	if len(buf) > 0 {
		seq, head = seq+1, l.noteHead
	}
	line, h := l.checkpoint(seq+1, head, now, final)
	if err := l.write(append(buf, line...)); err != nil {
		return err
	}
	l.seq, l.head, l.sinceCheck = seq+1, h, 0
	return nil
}

// checkpoint returns a checkpoint entry for the chain head, with its MAC.
func (l *Log) checkpoint(seq uint64, head [32]byte, now string, final bool) ([]byte, [32]byte) {
	e := Entry{Time: now, Seq: seq, Type: TypeCheckpoint, Head: hex.EncodeToString(head[:]), Final: final,
		MAC: hex.EncodeToString(checkpointMAC(l.opts.MACKey, checkpointMessage(seq, head, final)))}
	line, h, err := e.seal(l.ch, head)
	if err != nil {
		panic("audit: checkpoint cannot fail to encode: " + err.Error())
	}
	return line, h
}

// write appends b. If the write fails part way (disk full), it cuts the
// partial bytes again so that the file still ends with a whole entry; if
// even that fails, the next writer cuts them (see cutTorn).
func (l *Log) write(b []byte) error {
	n, err := l.f.Write(b)
	if err == nil && n != len(b) {
		err = errShortWrite
	}
	if err != nil {
		if n > 0 && l.f.Truncate(l.size) != nil {
			l.torn += int64(n)
		}
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	l.size += int64(n)
	l.dirty = true
	return nil
}

// batchSync is Batch mode's periodic fsync. It runs without wmu, so that
// appends go on while the disk works: fsync covers every write completed
// before it starts, and a write after it marks the log dirty again. Only
// the committer goroutine closes the file, so it stays open meanwhile.
func (l *Log) batchSync() {
	l.wmu.Lock()
	due := l.dirty && l.err == nil
	l.dirty = false
	seq, head, size := l.seq, l.head, l.size
	l.wmu.Unlock()
	if !due {
		return
	}
	l.syncs.Add(1)
	err := l.syncFile(l.f)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("%w: fsync: %w", ErrWrite, err)
	}
	if err == nil && seq > l.anchor.Seq {
		l.setAnchor(seq, head, size)
	}
}

func (l *Log) sync() error {
	l.syncs.Add(1)
	l.lastSync = l.opts.Now()
	if err := l.syncFile(l.f); err != nil {
		l.err = fmt.Errorf("%w: fsync: %w", ErrWrite, err)
		return l.err
	}
	l.dirty = false
	l.setAnchor(l.seq, l.head, l.size)
	return nil
}

// setAnchor records that the entry seq, whose line ends at size, is on
// stable storage; the caller holds wmu.
func (l *Log) setAnchor(seq uint64, head [32]byte, size int64) {
	if seq == 0 {
		return
	}
	l.anchor = Anchor{Seq: seq, Head: hex.EncodeToString(head[:]), Offset: size,
		Time: l.opts.Now().UTC().Format(time.RFC3339)}
}

// finish fails waiters that raced with Close, writes the closing
// checkpoint (if this Log wrote anything: a Log only read writes nothing),
// syncs and closes the file.
func (l *Log) finish() error {
	err := l.err
	if err == nil && l.wrote {
		if l.leased { // the lock of the last batch is still held: no one else wrote since
			err = l.writeCheckpoint(true)
		} else {
			err = l.withLock(func() error { return l.writeCheckpoint(true) })
		}
	}
	l.endLease() // before the fsync, which other writers need not wait for
	if err == nil && l.wrote {
		err = l.sync()
	}
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: close: %w", ErrWrite, cerr)
	}
	return err
}

// leaseTime is how long a Batch-mode Log keeps the file's flock after
// taking it, so that a run of appends pays one write(2) each rather than
// also a lock, a stat and an unlock; other writers of the file wait at
// most this long. (Sync mode takes the lock per batch: its fsync costs far
// more than the lock.)
const leaseTime = 2 * time.Millisecond

// lockLeased takes the file's flock and refreshes the tail unless this Log
// still holds it from an earlier batch; a timer gives it up after
// leaseTime. The caller holds wmu.
func (l *Log) lockLeased() error {
	if l.leased {
		return nil
	}
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("%w: flock: %w", ErrWrite, err)
	}
	if err := l.catchUp(); err != nil {
		unlockFile(l.f)
		return err
	}
	l.leased = true
	if l.lease == nil {
		l.lease = time.AfterFunc(leaseTime, l.expireLease)
	} else {
		l.lease.Reset(leaseTime)
	}
	return nil
}

func (l *Log) expireLease() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.endLease()
}

// endLease gives up a leased flock; the caller holds wmu.
func (l *Log) endLease() {
	if l.lease != nil {
		l.lease.Stop()
	}
	if l.leased {
		unlockFile(l.f)
		l.leased = false
	}
}

// withLock runs fn holding an exclusive flock(2) on the file, so appends by
// other processes interleave only between whole batches.
func (l *Log) withLock(fn func() error) error {
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("%w: flock: %w", ErrWrite, err)
	}
	defer unlockFile(l.f)
	return fn()
}

// resume checks, at Open, that the file still holds the anchored entry
// where the anchor says, then verifies everything after it.
func (l *Log) resume(a Anchor) error {
	if a.Seq > 0 {
		if err := l.checkAnchored(a); err != nil {
			return err
		}
	}
	return l.catchUp()
}

// checkAnchored verifies the line that ends at a.Offset: it must be the
// entry a.Seq with hash a.Head, authentic under the key.
func (l *Log) checkAnchored(a Anchor) error {
	bad := func(reason string, truncated bool) error {
		return &TamperError{Seq: a.Seq, Reason: reason, Truncated: truncated}
	}
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat: %w", ErrWrite, err)
	}
	if fi.Size() < a.Offset {
		return bad(fmt.Sprintf("the log is %d bytes, but its anchor of %s records entry %d ending at byte %d: entries were cut off or the log was replaced by an older copy",
			fi.Size(), anchorTime(a), a.Seq, a.Offset), true)
	}
	line, ok, err := lineEndingAt(l.f, a.Offset)
	if err != nil {
		return err
	}
	var prev [32]byte
	e, _, err := parseLine(nil, line, prev)
	p, perr := hex.DecodeString(e.Prev)
	if !ok || err != nil || perr != nil || len(p) != len(prev) {
		return bad("no entry ends where the anchor says: the log was rewritten or replaced", false)
	}
	copy(prev[:], p)
	_, h, _ := parseLine(l.ch, line, prev)
	if err := checkEntry(e, h, prev, a.Seq, Key{MAC: l.opts.MACKey}); err != nil || e.Hash != a.Head {
		return bad("the anchored entry is not in the log: the log was rewritten or replaced", false)
	}
	return nil
}

// anchorTailRead is how much of the log lineEndingAt reads first: an
// entry is a few hundred bytes, so one read nearly always finds the line
// whole; only a longer one is read again, up to MaxLineSize.
const anchorTailRead = 4 << 10

// lineEndingAt returns the line (without its newline) that ends at byte
// end of f; ok is false when no line of at most MaxLineSize bytes ends
// there.
func lineEndingAt(f io.ReaderAt, end int64) (line []byte, ok bool, err error) {
	for n := min(end, anchorTailRead); ; n = min(end, MaxLineSize+1) {
		tail := make([]byte, n)
		if _, err := f.ReadAt(tail, end-n); err != nil && err != io.EOF {
			return nil, false, fmt.Errorf("%w: read: %w", ErrWrite, err)
		}
		line, ok = bytes.CutSuffix(tail, []byte("\n"))
		if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
			return line[i+1:], ok, nil
		}
		if n == end || n > MaxLineSize {
			return line, ok && n == end, nil
		}
	}
}

// catchUp verifies the entries appended since this Log last looked (by
// other processes, or all of them at Open), continuing the chain from its
// own position, and notes an incomplete last line for cutTorn. The caller
// holds the flock. A file shorter than what was verified was truncated.
func (l *Log) catchUp() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat: %w", ErrWrite, err)
	}
	switch {
	case fi.Size() == l.size && l.torn == 0:
		return nil // torn bytes are reread: another writer may have cut them and appended as many
	case fi.Size() < l.size:
		return &TamperError{Seq: l.seq + 1, Truncated: true,
			Reason: fmt.Sprintf("the log shrank from %d to %d bytes: entries were cut off", l.size, fi.Size())}
	}
	v := &verifier{ch: l.ch, key: Key{MAC: l.opts.MACKey}, prev: l.head}
	v.rep.LastSeq = l.seq
	if l.size == 0 {
		v.line = 1
	}
	if err := v.scan(io.NewSectionReader(l.f, l.size, fi.Size()-l.size)); err != nil {
		return err
	}
	l.seq, l.size, l.torn = v.rep.LastSeq, l.size+v.rep.Size, v.rep.TornBytes
	l.head = v.prev
	return nil
}
