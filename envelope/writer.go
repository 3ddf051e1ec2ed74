package envelope

import (
	"fmt"
	"io"
	"math"
	"runtime"
)

// writer is the encrypting io.WriteCloser. It holds back one full frame so
// that a plaintext that is an exact multiple of the frame length ends with
// a full final frame rather than an empty one.
type writer struct {
	dst        io.Writer
	s          *sealed
	conc       int
	headerDone bool
	cur        *frameTask // frame being filled; its plaintext is cur.pt
	seq        uint32     // sequence number of the last dispatched frame
	queue      []*frameTask
	free       []*frameTask
	pool       *workers
	depth      int
	err        error
	closed     bool
	declared   int64 // the declared plaintext length, or -1
	written    int64
}

func newWriter(dst io.Writer, s *sealed, conc int) *writer {
	return &writer{dst: dst, s: s, conc: concurrency(conc), depth: 1, declared: -1}
}

// Write encrypts p. Errors are sticky.
func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		w.err = fmt.Errorf("%w: more plaintext than the declared %d bytes", ErrInvalidOptions, w.declared)
		return 0, w.err
	}
	w.written += int64(len(p))
	w.writeHeader()
	total := len(p)
	for len(p) > 0 && w.err == nil {
		if w.cur == nil {
			w.cur = w.task()
		}
		if len(w.cur.pt) == w.s.codec.frameLen {
			w.dispatch(kindRegular)
			continue
		}
		n := copy(w.cur.pt[len(w.cur.pt):w.s.codec.frameLen], p)
		w.cur.pt = w.cur.pt[:len(w.cur.pt)+n]
		p = p[n:]
	}
	if w.err != nil {
		return total - len(p), w.err
	}
	return total, nil
}

// Close seals the final frame, writes the footer of a signed message and
// waits for every sealing goroutine. Later calls return ErrClosed.
func (w *writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.err == nil && w.declared >= 0 && w.written != w.declared {
		w.err = fmt.Errorf("%w: %d bytes of plaintext, %d declared", ErrInvalidOptions, w.written, w.declared)
	}
	w.writeHeader()
	if w.cur == nil {
		w.cur = w.task()
	}
	if w.err == nil {
		w.dispatch(kindFinal)
	}
	for len(w.queue) > 0 {
		w.emitHead()
	}
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

func (w *writer) writeHeader() {
	if w.headerDone || w.err != nil {
		return
	}
	w.headerDone = true
	_, w.err = w.dst.Write(w.s.header)
}

// task returns a recycled or new frame with room for prefix, frame and tag.
func (w *writer) task() *frameTask {
	var t *frameTask
	if n := len(w.free); n > 0 {
		t, w.free = w.free[n-1], w.free[:n-1]
	} else {
		t = newTask(finalPrefix + w.s.codec.frameLen + gcmTagLen)
	}
	t.buf = t.buf[:cap(t.buf)]
	t.pt = t.buf[regularPrefix:regularPrefix]
	return t
}

// dispatch seals w.cur as the next frame: inline for the first frame or
// with Concurrency 1, otherwise on the worker pool.
func (w *writer) dispatch(kind frameKind) {
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
		w.pool = startWorkers(w.conc, w.s.codec.seal)
		w.depth = pipelineDepth(w.conc, w.s.codec.frameLen)
		runtime.AddCleanup(w, func(p *workers) { p.close() }, w.pool)
	}
	for len(w.queue) >= w.depth {
		w.emitHead()
	}
	if w.pool == nil || kind == kindFinal {
		w.s.codec.seal(t)
		t.done <- struct{}{}
	} else {
		w.pool.ch <- t
	}
	w.queue = append(w.queue, t)
}

// emitHead waits for the oldest frame, writes and hashes it, and recycles it.
func (w *writer) emitHead() {
	t := w.queue[0]
	w.queue = w.queue[:copy(w.queue, w.queue[1:])] // shift down: no reallocation as the queue cycles
	<-t.done
	if w.err == nil {
		if w.s.sig != nil {
			w.s.sig.h.Write(t.buf)
		}
		_, w.err = w.dst.Write(t.buf)
	}
	w.free = append(w.free, t)
}
