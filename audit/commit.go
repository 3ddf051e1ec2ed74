package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
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
			if err := l.refreshTail(); err != nil {
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
// refreshed the tail since taking it.
func (l *Log) writeBatch(batch []*pending) error {
	seq, head, since := l.seq, l.head, l.sinceCheck
	buf := l.buf[:0]
	now := l.opts.Now().UTC().Format(time.RFC3339Nano)
	for _, p := range batch {
		p.e.Time, p.e.Seq = now, seq+1
		var h [32]byte
		var err error
		buf, h, err = p.e.sealTo(buf, head, false)
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
	return nil
}

// checkpoint returns a signed checkpoint entry for the chain head.
func (l *Log) checkpoint(seq uint64, head [32]byte, now string, final bool) ([]byte, [32]byte) {
	e := Entry{Time: now, Seq: seq, Type: TypeCheckpoint, Head: hex.EncodeToString(head[:]), Final: final}
	msg := checkpointMessage(seq, head, final)
	if l.opts.SigningKey != nil {
		e.Sig = hex.EncodeToString(ed25519.Sign(l.opts.SigningKey, msg))
	} else {
		e.MAC = hex.EncodeToString(checkpointMAC(l.opts.MACKey, msg))
	}
	line, h, err := e.seal(head)
	if err != nil {
		panic("audit: checkpoint cannot fail to encode: " + err.Error())
	}
	return line, h
}

func (l *Log) write(b []byte) error {
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err == nil && n != len(b) {
		err = errShortWrite
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
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
	l.wmu.Unlock()
	if !due {
		return
	}
	l.syncs.Add(1)
	if err := l.syncFile(l.f); err != nil {
		l.wmu.Lock()
		if l.err == nil {
			l.err = fmt.Errorf("%w: fsync: %w", ErrWrite, err)
		}
		l.wmu.Unlock()
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
	return nil
}

// finish fails waiters that raced with Close, writes the closing
// checkpoint, syncs and closes the file.
func (l *Log) finish() error {
	l.endLease()
	err := l.err
	if err == nil {
		err = l.withLock(func() error {
			if err := l.refreshTail(); err != nil {
				return err
			}
			now := l.opts.Now().UTC().Format(time.RFC3339Nano)
			line, head := l.checkpoint(l.seq+1, l.head, now, true)
			if err := l.write(line); err != nil {
				return err
			}
			l.seq, l.head = l.seq+1, head
			return nil
		})
	}
	if err == nil {
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
	fd := int(l.f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("%w: flock: %w", ErrWrite, err)
	}
	if err := l.refreshTail(); err != nil {
		unix.Flock(fd, unix.LOCK_UN)
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
		unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.leased = false
	}
}

// withLock runs fn holding an exclusive flock(2) on the file, so appends by
// other processes interleave only between whole batches.
func (l *Log) withLock(fn func() error) error {
	fd := int(l.f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("%w: flock: %w", ErrWrite, err)
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	return fn()
}

// refreshTail reloads seq and head from the file's last line when the file
// is not the size this Log left it (another process appended, or first use).
func (l *Log) refreshTail() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: stat: %w", ErrWrite, err)
	}
	if fi.Size() == l.size {
		return nil
	}
	if fi.Size() < l.size {
		return &TamperError{Seq: l.seq + 1, Reason: fmt.Sprintf("log file shrank from %d to %d bytes while open", l.size, fi.Size()), Truncated: true}
	}
	l.size = fi.Size()
	if l.size == 0 {
		l.seq, l.head = 0, [32]byte{}
		return nil
	}
	n := min(l.size, MaxLineSize+1)
	tail := make([]byte, n)
	if _, err := l.f.ReadAt(tail, l.size-n); err != nil && err != io.EOF {
		return fmt.Errorf("%w: read tail: %w", ErrWrite, err)
	}
	if tail[len(tail)-1] != '\n' {
		return &TamperError{Seq: l.seq + 1, Reason: "last line is incomplete; run verify", Truncated: true}
	}
	line := tail[:len(tail)-1]
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	} else if n < l.size {
		return &TamperError{Seq: l.seq + 1, Reason: "last line too long"}
	}
	var prev [32]byte
	e, _, err := parseLine(line, prev)
	p, perr := hex.DecodeString(e.Prev)
	if err == nil && perr == nil && len(p) == len(prev) {
		copy(prev[:], p)
		_, want, _ := parseLine(line, prev)
		err = checkEntry(e, want, prev, e.Seq, Key{}, false)
	}
	h, herr := hex.DecodeString(e.Hash)
	if err != nil || perr != nil || herr != nil || len(h) != 32 {
		return &TamperError{Seq: l.seq + 1, Reason: "last entry is unreadable or does not match its hash; run verify"}
	}
	if e.Seq < l.seq {
		return &TamperError{Seq: l.seq + 1, Reason: fmt.Sprintf("last entry has seq %d, this log already wrote %d", e.Seq, l.seq)}
	}
	l.seq = e.Seq
	copy(l.head[:], h)
	return nil
}
