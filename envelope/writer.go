package envelope

import (
	"fmt"
	"io"
	"math"
	"runtime"
)

// Writer is the encrypting io.WriteCloser that Encrypt returns. It holds
// back one full frame so that a plaintext that is an exact multiple of the
// frame length ends with a full final frame rather than an empty one.
type Writer struct {
	dst        io.Writer
	s          *sealed
	conc       int
	headerDone bool
	cur        *frameTask    // frame being filled; its plaintext is cur.pt
	seq        uint32        // sequence number of the last dispatched frame
	batch      *frameBatch   // frames dispatched but not yet handed over
	queue      []*frameBatch // batches handed over, oldest first
	batches    batchPool
	free       []*frameTask
	pool       *workers
	depth      int
	err        error
	closed     bool
	finalSent  bool  // the final frame is dispatched (readFromAt)
	declared   int64 // the declared plaintext length, or -1
	written    int64
}

func newWriter(dst io.Writer, s *sealed, conc int) *Writer {
	return &Writer{dst: dst, s: s, conc: concurrency(conc), depth: 1, declared: -1}
}

// Write encrypts p. Errors are sticky. Whole frames of a large p, all but
// its last batchBytes, are sealed straight from p without a copy, and
// Write returns only after they are written out, since an io.Writer must
// not retain p; the rest is copied and may still be in flight.
//
// p may be a memory-mapped file: if reading it faults (the file was
// truncated), Write returns ErrPlaintextFault instead of the process
// dying of SIGBUS.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.accept(int64(len(p))); err != nil {
		return 0, err
	}
	total, lastBorrowed := len(p), uint32(0)
	fl, room := w.s.codec.frameLen, w.frameRoom()
	for len(p) > 0 && w.err == nil {
		if w.cur == nil {
			w.cur = w.task()
		}
		switch {
		case len(w.cur.pt) == fl:
			w.dispatch(kindRegular)
		case len(w.cur.pt) == 0 && len(p) > fl+batchBytes:
			// More bytes follow, so this frame is a regular one. The last
			// batch's worth of p is copied instead: the workers seal the
			// borrowed frames meanwhile, and the copied ones may stay in
			// flight after Write returns, so the pipeline never empties.
			w.cur.src, p = p[:fl], p[fl:]
			w.dispatch(kindRegular)
			lastBorrowed = w.seq
			if len(p) <= fl+batchBytes && w.batch != nil {
				w.submit() // no copied frame joins a borrowed batch
			}
		default:
			n, ok := copyFaultSafe(w.cur.pt[len(w.cur.pt):room], p)
			if !ok {
				w.err = ErrPlaintextFault
				break
			}
			w.cur.pt = w.cur.pt[:len(w.cur.pt)+n]
			p = p[n:]
		}
	}
	if lastBorrowed > 0 {
		w.release(lastBorrowed)
	}
	if w.err != nil {
		return total - len(p), w.err
	}
	return total, nil
}

// accept checks the writer's state before n more bytes of plaintext and
// writes the header if it is not written yet.
func (w *Writer) accept(n int64) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if w.declared >= 0 && w.written+n > w.declared || w.finalSent && n > 0 {
		w.err = fmt.Errorf("%w: more plaintext than the declared %d bytes", ErrInvalidOptions, w.declared)
		return w.err
	}
	w.written += n
	w.writeHeader()
	return w.err
}

// ReadFrom encrypts everything read from r until io.EOF, reading straight
// into frame buffers (io.Copy uses it). Errors from r are returned but do
// not break the writer; its own errors are sticky.
//
// When r can be read at an offset (an *os.File of a regular file: an
// io.ReaderAt that is also an io.Seeker) and the plaintext length was
// declared, the sealing goroutines read the frames themselves, in
// parallel, from r's current position; r's position is then moved past
// the declared length.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.declared >= preadMin && w.seq == 0 && w.cur == nil && w.written == 0 && !w.closed && w.err == nil {
		if ra, off, _, ok := position(r); ok {
			return w.readFromAt(ra, off)
		}
	}
	var total int64
	room := w.frameRoom()
	for {
		if err := w.accept(0); err != nil {
			return total, err
		}
		if w.cur == nil {
			w.cur = w.task()
		}
		t := w.cur
		if len(t.pt) == room {
			// A full frame is regular only if more bytes follow: read
			// them into the next frame before dispatching this one.
			t = w.task()
		}
		m, err := r.Read(t.pt[len(t.pt):room])
		if m > 0 {
			if aerr := w.accept(int64(m)); aerr != nil {
				return total, aerr
			}
			total += int64(m)
			if t != w.cur {
				w.dispatch(kindRegular)
				w.cur = t
			}
			t.pt = t.pt[:len(t.pt)+m]
		} else if t != w.cur {
			w.free = append(w.free, t)
		}
		if err == io.EOF {
			return total, w.err
		}
		if err != nil {
			return total, err
		}
	}
}

// Close seals the final frame, writes the footer of a signed message and
// waits for every sealing goroutine. Later calls return ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.err == nil && w.declared >= 0 && w.written != w.declared {
		w.err = fmt.Errorf("%w: %d bytes of plaintext, %d declared", ErrInvalidOptions, w.written, w.declared)
	}
	w.writeHeader()
	if w.cur == nil && !w.finalSent {
		w.cur = w.task()
	}
	if w.err == nil && !w.finalSent {
		w.dispatch(kindFinal)
	}
	w.drain()
	if w.pool != nil {
		w.pool.stop()
	}
	if w.err == nil && w.s.sig != nil {
		f, err := w.s.sig.footer()
		if err == nil {
			_, err = w.dst.Write(f)
		}
		w.err = err
	}
	return w.err
}

// Header is the header of the message being written, as Inspect would
// parse it from the output: it is fixed when Encrypt returns, before any
// byte is written, so callers can report what they wrote without reading
// it back. The caller must not modify it.
func (w *Writer) Header() *Header { return w.s.hdr }

// MessageLength returns the exact length in bytes of the message w will
// write when its plaintext length was declared (EncryptOptions.
// PlaintextLength) and its suite is unsigned, else -1 (a signature's DER
// encoding varies in length). A file that will hold the message can be
// given its space up front.
func (w *Writer) MessageLength() int64 {
	if w.declared < 0 || w.s.sig != nil {
		return -1
	}
	n, fl := w.declared, int64(w.s.codec.frameLen)
	// Every frame but the last is full; the final frame holds the rest,
	// all of a full frame when the length is a multiple, or nothing.
	regular := int64(0)
	if n > 0 {
		regular = (n - 1) / fl
	}
	final := n - regular*fl
	return int64(len(w.s.header)) + regular*(regularPrefix+fl+gcmTagLen) + finalPrefix + final + gcmTagLen
}

func (w *Writer) writeHeader() {
	if w.headerDone || w.err != nil {
		return
	}
	w.headerDone = true
	_, w.err = w.dst.Write(w.s.header)
}

// task returns a recycled or new frame with room for prefix, frame and tag.
func (w *Writer) task() *frameTask {
	var t *frameTask
	if n := len(w.free); n > 0 {
		t, w.free = w.free[n-1], w.free[:n-1]
	} else {
		// The plaintext is read in at regularPrefix: that is the offset to align.
		t = newTask(finalPrefix+w.frameRoom()+gcmTagLen, regularPrefix)
	}
	t.buf = t.buf[:cap(t.buf)]
	t.pt = t.buf[regularPrefix:regularPrefix]
	t.src, t.at, t.err = nil, nil, nil
	return t
}

// frameRoom is the plaintext room a frame buffer needs: the frame length,
// or less when the declared length is smaller (a 1 KiB message must not
// allocate a 64 KiB frame).
func (w *Writer) frameRoom() int {
	if w.declared >= 0 && w.declared < int64(w.s.codec.frameLen) {
		return int(w.declared)
	}
	return w.s.codec.frameLen
}

// dispatch seals w.cur as the next frame: inline for the first frame or
// with Concurrency 1, otherwise on the worker pool.
func (w *Writer) dispatch(kind frameKind) {
	t := w.cur
	w.cur = nil
	if w.seq == math.MaxUint32 {
		w.err = fmt.Errorf("%w: message needs more than 2^32-1 frames; use a larger frame length", ErrInvalidOptions)
		return
	}
	w.seq++
	t.seq, t.kind = w.seq, kind
	if kind == kindFinal && len(t.pt) > 0 {
		// Move the plaintext behind the longer final-frame prefix.
		t.pt = t.buf[finalPrefix : finalPrefix+copy(t.buf[finalPrefix:], t.pt)]
	} else if kind == kindFinal {
		t.pt = t.buf[finalPrefix:finalPrefix]
	}
	if w.pool == nil && w.conc > 1 && w.seq >= 2 && kind == kindRegular {
		w.pool = startWorkers(w.conc, w.s.codec.sealFrame)
		w.depth = pipelineDepth(w.conc, 2, w.s.codec.frameLen)
		runtime.AddCleanup(w, func(p *workers) { p.close() }, w.pool)
	}
	if w.batch == nil {
		w.batch = w.batches.get()
	}
	w.batch.tasks = append(w.batch.tasks, t)
	if w.pool == nil || kind == kindFinal || len(w.batch.tasks) == framesPerBatch(w.s.codec.frameLen) {
		w.submit()
	}
}

// submit hands the pending batch to the workers, or seals it inline
// before there are workers and for a lone final frame.
func (w *Writer) submit() {
	b := w.batch
	w.batch = nil
	for len(w.queue) >= w.depth {
		w.emitHead()
	}
	if w.pool == nil || len(b.tasks) == 1 && b.tasks[0].kind == kindFinal {
		runBatch(b, w.s.codec.sealFrame)
	} else {
		w.pool.ch <- b
	}
	w.queue = append(w.queue, b)
}

// emitHead waits for the oldest batch, writes and hashes its frames, and
// recycles them.
func (w *Writer) emitHead() {
	b := w.queue[0]
	w.queue = w.queue[:copy(w.queue, w.queue[1:])] // shift down: no reallocation as the queue cycles
	<-b.done
	for _, t := range b.tasks {
		if w.err == nil && !t.ok {
			w.err = w.frameError(t)
		}
		if w.err == nil {
			if w.s.sig != nil {
				w.s.sig.h.Write(t.buf)
			}
			_, w.err = w.dst.Write(t.buf)
		}
		t.src = nil
		w.free = append(w.free, t)
	}
	w.batches.put(b)
}

// release writes out queued batches until frame seq has been written, so
// that no frame up to it still refers to the caller's buffer.
func (w *Writer) release(seq uint32) {
	if b := w.batch; b != nil && b.tasks[0].seq <= seq {
		w.submit()
	}
	for len(w.queue) > 0 && w.queue[0].tasks[0].seq <= seq {
		w.emitHead()
	}
}

// drain writes out every frame dispatched so far.
func (w *Writer) drain() { w.release(math.MaxUint32) }
