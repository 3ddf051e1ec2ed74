package main

import (
	"errors"
	"io"
)

// asyncWriter gathers writes into whole chunks and writes them to w on its
// own goroutine, so that the write system calls overlap the reading and
// sealing of the next frames instead of taking turns with them. Chunks are
// page-aligned in size: a frame plus its prefix and tag straddles pages,
// which costs the kernel more per byte when written one frame at a time.
// At most depth chunks are held. Errors are sticky; Flush must be called,
// and returns the first error.
//
// Each chunk reaches w in writes of at most asyncPiece bytes, 32 KiB. The
// kernel sizes a new file's page-cache folios by the write (up to the
// write's alignment). Folios larger than 32 KiB (order 4 and up, above
// PAGE_ALLOC_COSTLY_ORDER) are not served from the per-CPU lists of
// recently freed pages but from the buddy allocator's free blocks, which a
// VM with free page reporting has handed back to its host, which must then
// fault them in again as the copy touches them: that is the likely cause
// of what was measured. On this project's CI machines
// 1 GiB written to a new file as aligned 128 KiB writes took 0.35 to 1.5 s
// of system time, 64 KiB ones 1.1 to 2.2 s, 32 KiB ones 0.25 s every time
// (dd from /dev/zero, alternating); keystack's file-to-file encryption
// spent 1.7 to 2.4 s of system time with 128 KiB writes and 0.5 s with
// 32 KiB ones. Smaller writes only add system calls.
//
// Nothing is allocated or started until it is needed: the first chunk
// grows with what is written, and the goroutine starts when a chunk is
// full, so an output smaller than a chunk (an empty file's message is a
// few hundred bytes) is written by Flush itself, in the same pieces.
type asyncWriter struct {
	w       io.Writer
	cur     []byte
	started bool          // the goroutine runs; full, free and done are made
	full    chan []byte   // chunks to write, in order
	free    chan []byte   // written chunks for reuse
	done    chan struct{} // closed when the goroutine has exited
	err     error         // set by the goroutine before it exits, or by Flush
	closed  bool
}

const (
	asyncChunk = 512 << 10
	asyncPiece = 32 << 10
	asyncDepth = 2
	// asyncFirst is the first chunk's first size, before it grows.
	asyncFirst = 4 << 10
)

func newAsyncWriter(w io.Writer) *asyncWriter { return &asyncWriter{w: w} }

// start hands the full first chunk to a new goroutine; the caller takes
// the next chunk from free.
func (a *asyncWriter) start() {
	a.started = true
	a.full, a.free, a.done = make(chan []byte, asyncDepth), make(chan []byte, asyncDepth+1), make(chan struct{})
	for range asyncDepth {
		a.free <- make([]byte, 0, asyncChunk)
	}
	go a.run()
}

func (a *asyncWriter) run() {
	defer close(a.done)
	for b := range a.full {
		if err := writePieces(a.w, b); err != nil {
			a.err = err
			for b := range a.full { // drain, so that senders never block
				a.free <- b[:0]
			}
			return
		}
		a.free <- b[:0]
	}
}

// writePieces writes b to w in writes of at most asyncPiece bytes.
func writePieces(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), asyncPiece)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Write copies p into chunks; a full chunk is handed to the goroutine.
func (a *asyncWriter) Write(p []byte) (int, error) {
	if a.closed {
		return 0, errors.New("write after flush")
	}
	n := 0
	for len(p) > 0 {
		if err := a.failed(); err != nil {
			return n, err
		}
		if len(a.cur) == cap(a.cur) { // the first chunk, not yet full
			a.cur = append(make([]byte, 0, min(asyncChunk, max(asyncFirst, 2*cap(a.cur), len(a.cur)+len(p)))), a.cur...)
		}
		m := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+m]
		p, n = p[m:], n+m
		if len(a.cur) == asyncChunk {
			if !a.started {
				a.start()
			}
			a.full <- a.cur
			a.cur = <-a.free
		}
	}
	return n, nil
}

// failed reports the goroutine's error once it has stopped on one.
func (a *asyncWriter) failed() error {
	if !a.started {
		return nil
	}
	select {
	case <-a.done:
		return a.err
	default:
		return nil
	}
}

// Flush writes what is buffered, waits for every write, and stops the
// goroutine. Later Writes fail.
func (a *asyncWriter) Flush() error {
	if !a.started && !a.closed {
		a.closed = true
		a.err = writePieces(a.w, a.cur)
		a.cur = nil
		return a.err
	}
	if !a.closed && len(a.cur) > 0 {
		a.full <- a.cur
		a.cur = nil
	}
	return a.stop()
}

// stop ends the goroutine after the chunks already handed over, dropping
// the one being filled (for a failed command, whose output is discarded).
func (a *asyncWriter) stop() error {
	if !a.started {
		a.closed, a.cur = true, nil
		return a.err
	}
	if !a.closed {
		a.closed = true
		close(a.full)
	}
	<-a.done
	return a.err
}
