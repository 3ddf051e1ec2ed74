package envelope

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"runtime"
	"slices"
)

// byteSource is what the Reader reads a message from: buffered, since
// frame prefixes are read a few bytes at a time.
type byteSource interface {
	io.Reader
	io.ByteReader
}

// buffered returns src itself when it is an in-memory reader, and
// otherwise src behind a buffer.
//
// The buffer is small on purpose: bufio reads straight into the caller's
// slice once its buffer is empty and the slice is at least as long, so a
// frame's content goes from the kernel into the frame buffer in one copy,
// and only a frame's first few KiB pass through the buffer. A buffer as
// long as a frame held every byte, to be copied again (13% of a 1 GiB
// decryption's CPU time in runtime.memmove, measured with perf).
func buffered(src io.Reader) byteSource {
	if br, ok := src.(*bytes.Reader); ok {
		return br
	}
	return bufio.NewReaderSize(src, 4<<10)
}

// Reader is the decrypting reader returned by Decrypt. It is not safe for
// concurrent use.
type Reader struct {
	hdr          *Header
	src          byteSource
	frameCap     int // initial capacity of frame buffers
	maxNonFramed int // bound on a non-framed body's length
	codec        *frameCodec
	pub          *ecdsa.PublicKey // nil unless signed
	h            hash.Hash        // hashes header ‖ body for the signature
	conc         int
	seq          uint32        // last sequence number read from src
	readDone     bool          // the final frame has been read
	queue        []*frameBatch // batches read, oldest first
	batches      batchPool
	free         []*frameTask
	pool         *workers
	depth        int
	head         *frameBatch // opened batch whose frames are being released
	next         int         // index in head of the next frame to release
	out          []byte      // released plaintext not yet returned
	err          error
	open         func(*frameTask) // what workers run on a frame: codec.open, or openAt
	at           *atReader        // set when workers read the frames (useReadAt)
}

// Header returns the message's authenticated header.
func (r *Reader) Header() *Header { return r.hdr }

// Read implements io.Reader. It returns io.EOF only after the final frame,
// the signature (if any) and the end of input have all been checked.
func (r *Reader) Read(p []byte) (int, error) {
	if err := r.fill(); err != nil {
		return 0, err
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// WriteTo writes the plaintext to w frame by frame, without the copy that
// Read makes (io.Copy uses it). Like Read, it releases only authenticated
// plaintext, and returns nil only once the whole message has verified.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := r.fill(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(r.out)
		total += int64(n)
		r.out = r.out[n:]
		if err != nil {
			return total, err
		}
	}
}

// fill makes r.out hold released plaintext, or returns the sticky error.
func (r *Reader) fill() error {
	for len(r.out) == 0 {
		if r.err != nil {
			return r.err
		}
		if r.head != nil && r.next < len(r.head.tasks) {
			if err := r.release(); err != nil {
				r.fail(err)
			}
			continue
		}
		r.recycleHead()
		if r.readDone && len(r.queue) == 0 {
			r.err = io.EOF
			continue
		}
		if err := r.advance(); err != nil {
			r.fail(err)
		}
	}
	return nil
}

// Close stops the worker goroutines and makes later Reads fail. It is
// safe to call more than once and does not close the source.
func (r *Reader) Close() error {
	if r.pool != nil {
		r.pool.stop()
	}
	if r.err == nil || r.err == io.EOF {
		r.err = ErrClosed
	}
	r.out = nil
	return nil
}

func (r *Reader) fail(err error) {
	r.err = err
	clear(r.out)
	r.out = nil
	if r.pool != nil {
		r.pool.stop()
	}
}

func (r *Reader) recycleHead() {
	if r.head != nil {
		r.free = append(r.free, r.head.tasks...)
		r.batches.put(r.head)
		r.head, r.next = nil, 0
	}
}

// advance reads batches until the pipeline is full, then waits for the
// oldest one to be opened.
func (r *Reader) advance() error {
	if r.pool == nil && r.conc > 1 && r.seq >= 2 && !r.readDone {
		r.pool = startWorkers(r.conc, r.open)
		r.depth = pipelineDepth(r.conc, 4, r.codec.frameLen)
		runtime.AddCleanup(r, func(p *workers) { p.close() }, r.pool)
	}
	for !r.readDone && len(r.queue) < r.depth {
		if err := r.readBatch(); err != nil {
			return err
		}
	}
	b := r.queue[0]
	r.queue = r.queue[:copy(r.queue, r.queue[1:])]
	<-b.done
	r.head, r.next = b, 0
	return nil
}

// readBatch reads the next frames into a batch and hands it to the
// workers; before there are workers, it opens one frame inline.
func (r *Reader) readBatch() error {
	b := r.batches.get()
	n := 1
	if r.pool != nil {
		n = framesPerBatch(r.codec.frameLen)
	}
	for len(b.tasks) < n && !r.readDone {
		if r.at != nil {
			b.tasks = append(b.tasks, r.atTask())
			continue
		}
		t, err := r.readFrame()
		if err != nil {
			return err
		}
		b.tasks = append(b.tasks, t)
	}
	if r.pool == nil {
		runBatch(b, r.open)
	} else {
		r.pool.ch <- b
	}
	r.queue = append(r.queue, b)
	return nil
}

// release makes the next frame of the head batch the output, once it has
// authenticated and, after the final frame, the message has been checked
// to its end.
func (r *Reader) release() error {
	t := r.head.tasks[r.next]
	r.next++
	if !t.ok && t.err != nil {
		return t.err
	}
	if !t.ok {
		return ErrAuthentication
	}
	if t.kind != kindRegular && r.at != nil {
		r.next = len(r.head.tasks) // the slots after the final frame hold nothing
		if err := r.finishAt(t); err != nil {
			clear(t.pt)
			return err
		}
	} else if t.kind != kindRegular {
		if err := r.finish(); err != nil {
			clear(t.pt)
			return err
		}
	}
	r.out = t.pt
	return nil
}

// finish runs after the last frame: it verifies the footer signature and
// checks that nothing follows the message.
func (r *Reader) finish() error {
	if r.pub != nil {
		sig, err := readFooter(r.src)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(r.pub, r.h.Sum(nil), sig) {
			return ErrAuthentication
		}
	}
	if _, err := r.src.ReadByte(); err != io.EOF {
		if err == nil {
			return ErrTrailingData
		}
		return err
	}
	return nil
}

func readFooter(src io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(src, l[:]); err != nil {
		return nil, truncated("footer", err)
	}
	sig := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(src, sig); err != nil {
		return nil, truncated("footer", err)
	}
	return sig, nil
}

func truncated(where string, err error) error {
	if isEOF(err) {
		return fmt.Errorf("%w: in %s: %w", ErrTruncated, where, io.ErrUnexpectedEOF)
	}
	return err
}

func (r *Reader) task() *frameTask {
	if n := len(r.free); n > 0 {
		t := r.free[n-1]
		r.free = r.free[:n-1]
		return t
	}
	return newTask(min(finalPrefix+r.codec.frameLen+gcmTagLen, r.frameCap), 0)
}

// readFrame reads the next frame's wire bytes (data-format/message-body.md),
// checking its sequence number and hashing it for the signature.
func (r *Reader) readFrame() (*frameTask, error) {
	t := r.task()
	n, err := r.readPrefix(t)
	if err != nil {
		return nil, err
	}
	if t.kind == kindNonFramed {
		if n > int64(r.maxNonFramed) {
			return nil, fmt.Errorf("%w: non-framed body of %d bytes, above the limit of %d (MaxFrameLength raises it)", ErrFrameTooLarge, n, r.maxNonFramed)
		}
		t.buf = slices.Grow(t.buf, int(n)+gcmTagLen) // at once: growing leaves garbage
	}
	if t.buf, err = readGrow(r.src, t.buf, int(n)+gcmTagLen); err != nil {
		return nil, truncated("frame", err)
	}
	if r.h != nil {
		r.h.Write(t.buf)
	}
	return t, nil
}

// copyFrame copies the next frame's wire bytes unchanged to w, checking
// its sequence number as readFrame does, but streaming its content through
// a small buffer instead of holding it: whatever length a frame declares,
// copying it takes constant memory. It returns the task holding the
// prefix, for reuse.
func (r *Reader) copyFrame(w io.Writer) (*frameTask, error) {
	t := r.task()
	n, err := r.readPrefix(t)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(t.buf); err != nil {
		return nil, err
	}
	if _, err := io.CopyN(w, r.src, n+gcmTagLen); err != nil {
		return nil, truncated("frame", err)
	}
	return t, nil
}

// readPrefix reads the wire bytes of the next frame (or non-framed body)
// before its content into t.buf, checks its sequence number and returns
// its content length. It marks the frame read (r.seq, r.readDone): errors
// are sticky, so a failure after it leaves nothing to resume.
func (r *Reader) readPrefix(t *frameTask) (int64, error) {
	if r.hdr.ContentType == contentNonFramed {
		return r.readNonFramedPrefix(t)
	}
	if r.seq == math.MaxUint32 {
		return 0, &ParseError{Field: "frame", Reason: "more than 2^32-1 frames"}
	}
	t.seq, t.kind = r.seq+1, kindRegular
	var err error
	if t.buf, err = readGrow(r.src, t.buf[:0], 4); err != nil {
		return 0, truncated("body", err)
	}
	n := r.codec.frameLen
	seqOff := 0
	if binary.BigEndian.Uint32(t.buf) == finalMarker {
		t.kind, seqOff = kindFinal, 4
		if t.buf, err = readGrow(r.src, t.buf, finalPrefix-4); err != nil {
			return 0, truncated("final frame", err)
		}
		n = int(binary.BigEndian.Uint32(t.buf[finalPrefix-4:]))
		if n > r.codec.frameLen {
			return 0, &ParseError{Field: "final frame", Reason: fmt.Sprintf("content length %d exceeds frame length %d", n, r.codec.frameLen)}
		}
	} else if t.buf, err = readGrow(r.src, t.buf, regularPrefix-4); err != nil {
		return 0, truncated("frame", err)
	}
	if binary.BigEndian.Uint32(t.buf[seqOff:]) != t.seq {
		return 0, ErrAuthentication // reordered, duplicated or dropped frame
	}
	r.seq = t.seq
	r.readDone = t.kind == kindFinal
	return int64(n), nil
}

// readNonFramedPrefix reads the start of a single-block body (content
// type 1, v1 or v2): IV ‖ len u64, before ct ‖ tag.
func (r *Reader) readNonFramedPrefix(t *frameTask) (int64, error) {
	t.seq, t.kind = 1, kindNonFramed
	var err error
	if t.buf, err = readGrow(r.src, t.buf[:0], nonFramedPrefix); err != nil {
		return 0, truncated("body", err)
	}
	n := binary.BigEndian.Uint64(t.buf[gcmIVLen:])
	if n > maxNonFramedContent {
		return 0, &ParseError{Field: "body", Reason: fmt.Sprintf("non-framed content length %d exceeds 2^36-32", n)}
	}
	r.readDone = true
	return int64(n), nil
}
