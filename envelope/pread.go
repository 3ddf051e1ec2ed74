package envelope

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Parallel reads. A single goroutine copying a large input from the page
// cache takes more CPU time than sealing or opening it does, so for inputs
// that can be read at an offset (a regular file), the goroutines that seal
// or open frames also read them, each its own frames with ReadAt, and the
// caller's goroutine only hands out frame numbers and writes results in
// order. Inputs that cannot seek (pipes, terminals, sockets) and small ones
// take the sequential path.

// preadMin is the least input for which frames are read in parallel:
// below it the sequential path's smaller buffers win.
const preadMin = 1 << 20

// readerAtSeeker is an input that can be read at an offset without moving
// its position, such as an *os.File of a regular file.
type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

// errShortInput is a frame task's error when its input ended early.
var errShortInput = errors.New("input ended early")

// position returns r's current offset and the bytes after it, or ok false
// when r is not an input that parallel reads can use.
func position(r io.Reader) (ra readerAtSeeker, off, left int64, ok bool) {
	ra, ok = r.(readerAtSeeker)
	if !ok {
		return nil, 0, 0, false
	}
	off, err := ra.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, false
	}
	end, err := ra.Seek(0, io.SeekEnd)
	if _, serr := ra.Seek(off, io.SeekStart); err != nil || serr != nil || end < off {
		return nil, 0, 0, false
	}
	return ra, off, end - off, true
}

// readFromAt is ReadFrom for an input that can be read at an offset and a
// writer whose plaintext length was declared: every frame's place in the
// input is known, so the workers read their frames themselves. A file
// that is shorter than declared, or longer, is an error, as on the
// sequential path.
func (w *Writer) readFromAt(ra readerAtSeeker, start int64) (int64, error) {
	total, fl := w.declared, int64(w.s.codec.frameLen)
	if err := w.accept(total); err != nil {
		return 0, err
	}
	for off := int64(0); w.err == nil; off += fl {
		n := min(fl, total-off)
		kind, pre := kindRegular, regularPrefix
		if off+n == total {
			kind, pre = kindFinal, finalPrefix
		}
		t := w.task()
		t.pt = t.buf[pre : pre+int(n)]
		t.at, t.off = ra, start+off
		w.cur = t
		w.dispatch(kind)
		if kind == kindFinal {
			break
		}
	}
	w.finalSent = true
	w.drain()
	if w.err == nil {
		var b [1]byte
		if m, _ := ra.ReadAt(b[:], start+total); m > 0 {
			w.err = fmt.Errorf("%w: more plaintext than the declared %d bytes", ErrInvalidOptions, total)
		}
	}
	if _, err := ra.Seek(start+total, io.SeekStart); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return 0, w.err
	}
	return total, nil
}

// frameError is the writer's error for a frame task that failed.
func (w *Writer) frameError(t *frameTask) error {
	switch {
	case t.err == errShortInput:
		return fmt.Errorf("%w: the input ended before the declared %d bytes", ErrInvalidOptions, w.declared)
	case t.err != nil:
		return t.err
	}
	return ErrPlaintextFault
}

// readAt fills t.pt from t.at at t.off; on a short read it sets t.err.
func readAt(t *frameTask) bool {
	at := t.at
	t.at = nil
	n, err := at.ReadAt(t.pt, t.off)
	if n == len(t.pt) {
		return true
	}
	if err == nil || err == io.EOF {
		err = errShortInput
	}
	t.err, t.ok = err, false
	return false
}

// atReader is the state of a Reader whose frames its workers read.
type atReader struct {
	ra   readerAtSeeker
	next int64 // offset of the next frame slot to hand out
}

// useReadAt makes r's workers read its frames from ra, the first at
// offset body. Only unsigned framed messages qualify: every frame but the
// last has the same length on the wire, so each worker knows where its
// frames are; the last ends the message wherever it is found.
func (r *Reader) useReadAt(ra readerAtSeeker, body int64) {
	r.at = &atReader{ra: ra, next: body}
	r.open = r.openAt
}

// atTask returns the task for the next frame slot: frame r.seq+1 at
// r.at.next, as far as anything in the input says.
func (r *Reader) atTask() *frameTask {
	t := r.task()
	t.err = nil
	if r.seq == math.MaxUint32 {
		t.ok, t.err = false, &ParseError{Field: "frame", Reason: "more than 2^32-1 frames"}
		r.readDone = true
		return t
	}
	r.seq++
	t.seq, t.kind, t.at, t.off = r.seq, kindRegular, r.at.ra, r.at.next
	r.at.next += int64(regularPrefix + r.codec.frameLen + gcmTagLen)
	return t
}

// openAt reads and opens the frame of t's slot (a worker runs it): it
// reads as much as the longest frame, a final one, takes from it the
// frame the prefix describes, with the checks of the sequential path, and
// opens it in place.
func (r *Reader) openAt(t *frameTask) {
	if t.at == nil {
		return // refused when handed out (atTask)
	}
	at := t.at
	t.at = nil
	// A Reader of an in-memory message may have smaller buffers (frameCap),
	// as long as what is left of it.
	t.buf = t.buf[:min(cap(t.buf), finalPrefix+r.codec.frameLen+gcmTagLen)]
	n, err := at.ReadAt(t.buf, t.off)
	if err != nil && err != io.EOF {
		t.buf, t.ok, t.err = t.buf[:0], false, err
		return
	}
	t.seq--
	wire, err := nextFrame(r.codec, false, t, t.buf[:n], 0)
	if err != nil {
		clear(t.buf)
		t.buf, t.ok, t.err = t.buf[:0], false, err
		return
	}
	t.buf = t.buf[:wire]
	r.codec.open(t)
}

// finishAt runs after the final frame t on the parallel path: nothing may
// follow it, and the input's position moves past the message.
func (r *Reader) finishAt(t *frameTask) error {
	end := t.off + int64(len(t.buf))
	var b [1]byte
	if n, err := r.at.ra.ReadAt(b[:], end); n > 0 {
		return ErrTrailingData
	} else if err != nil && err != io.EOF {
		return err
	}
	r.dropQueue()
	_, err := r.at.ra.Seek(end, io.SeekStart)
	return err
}

// dropQueue waits for the frame slots handed out past the final frame and
// recycles them unread.
func (r *Reader) dropQueue() {
	for _, b := range r.queue {
		<-b.done
		for _, t := range b.tasks {
			clear(t.buf)
		}
		r.free = append(r.free, b.tasks...)
		r.batches.put(b)
	}
	r.queue = r.queue[:0]
	r.readDone = true
}
