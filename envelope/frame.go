package envelope

import (
	"crypto/cipher"
	"encoding/binary"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"unsafe"
)

// Body AAD content strings (data-format/message-body-aad.md).
const (
	contentRegular     = "AWSKMSEncryptionClient Frame"
	contentFinal       = "AWSKMSEncryptionClient Final Frame"
	contentSingleBlock = "AWSKMSEncryptionClient Single Block"

	finalMarker = 0xFFFFFFFF
	// Wire bytes before a frame's ciphertext: seq ‖ IV, or marker ‖ seq ‖ IV ‖ len.
	regularPrefix = 4 + gcmIVLen
	finalPrefix   = 4 + 4 + gcmIVLen + 4
	// Non-framed body: IV ‖ len u64 before the ciphertext.
	nonFramedPrefix = gcmIVLen + 8
	// maxNonFramedContent is the format's bound on a non-framed body
	// (data-format/message-body.md, encrypted content length): 2^36-32.
	maxNonFramedContent = 1<<36 - 32
	// maxInFlight bounds the bytes of frames held by a pipeline. With the
	// largest default frames (DefaultMaxFrameLength) that is a few frames,
	// so that a decrypting command stays under 64 MiB whatever its input.
	maxInFlight = 16 << 20
	// taskOverhead is about what a frameTask costs beyond its frame's
	// bytes: tiny frames are counted at least this much, so that a batch
	// of one-byte frames is not 262,144 tasks.
	taskOverhead = 256
)

type frameKind uint8

const (
	kindRegular frameKind = iota
	kindFinal
	kindNonFramed
)

// frameTask is one frame moving through the pipeline. buf holds its wire
// bytes; pt is the plaintext view inside buf. Tasks are recycled.
type frameTask struct {
	kind frameKind
	seq  uint32
	buf  []byte
	pt   []byte
	src  []byte      // when set, plaintext borrowed from the caller, sealed from here
	at   io.ReaderAt // when set, the worker reads the frame from here at off first
	off  int64
	err  error // why ok is false, when not a failed tag or a fault
	ok   bool
	aad  [128]byte
}

// newTask returns a task whose buf has room for capacity bytes, with
// buf[alignAt] on a cache line: the kernel's read(2) copies into a
// destination off a 64-byte boundary up to four times slower (measured:
// 0.46 s against 0.12 s of system time per GiB read at offset 16).
func newTask(capacity, alignAt int) *frameTask {
	const line = 64
	raw := make([]byte, capacity+line)
	skip := int(-(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) + uintptr(alignAt)) & (line - 1))
	return &frameTask{buf: raw[skip : skip : skip+capacity]}
}

// frameBatch is the unit of work a worker takes: consecutive frames of
// about batchBytes together, so that a handoff between goroutines (a few
// microseconds when a thread must wake) is rare next to the sealing or
// opening it buys, also for small frames such as the ESDK's 4 KiB default.
type frameBatch struct {
	tasks []*frameTask
	done  chan struct{}
}

const batchBytes = 256 << 10

// framesPerBatch is how many frames of frameLen make one batch.
func framesPerBatch(frameLen int) int { return max(1, batchBytes/max(frameLen, taskOverhead)) }

// batchPool recycles batches, so that a long stream allocates none.
type batchPool struct{ free []*frameBatch }

func (p *batchPool) get() *frameBatch {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return &frameBatch{done: make(chan struct{}, 1)}
}

func (p *batchPool) put(b *frameBatch) {
	clear(b.tasks)
	b.tasks = b.tasks[:0]
	p.free = append(p.free, b)
}

// frameCodec seals and opens frames of one message. It is safe for
// concurrent use: cipher.AEAD values from crypto/cipher hold no mutable state.
type frameCodec struct {
	aead      cipher.AEAD
	messageID []byte
	frameLen  int
}

func (c *frameCodec) bodyAAD(t *frameTask, n int) []byte {
	content := contentRegular
	switch t.kind {
	case kindFinal:
		content = contentFinal
	case kindNonFramed:
		content = contentSingleBlock
	}
	aad := append(t.aad[:0], c.messageID...)
	aad = append(aad, content...)
	aad = binary.BigEndian.AppendUint32(aad, t.seq)
	return binary.BigEndian.AppendUint64(aad, uint64(n))
}

func frameIV(seq uint32) [gcmIVLen]byte {
	var iv [gcmIVLen]byte
	binary.BigEndian.PutUint32(iv[8:], seq)
	return iv
}

// seal encrypts t.pt, which sits right after room for the frame prefix in
// t.buf, in place (or t.src into t.buf), and fills in the prefix
// (data-format/message-body.md).
func (c *frameCodec) seal(t *frameTask) {
	pt := t.pt
	if t.src != nil {
		pt = t.src
	}
	n := len(pt)
	iv := frameIV(t.seq)
	pre := regularPrefix
	b := t.buf[:0]
	if t.kind == kindFinal {
		pre = finalPrefix
		b = binary.BigEndian.AppendUint32(b, finalMarker)
	}
	b = binary.BigEndian.AppendUint32(b, t.seq)
	b = append(b, iv[:]...)
	// The IV just written into the prefix is passed as a view of t.buf so
	// that it does not escape to the heap on every frame.
	ivOff := len(b) - gcmIVLen
	if t.kind == kindFinal {
		binary.BigEndian.PutUint32(t.buf[len(b):], uint32(n))
	}
	ct := c.aead.Seal(t.buf[pre:pre], t.buf[ivOff:ivOff+gcmIVLen], pt, c.bodyAAD(t, n))
	t.buf = t.buf[:pre+len(ct)]
	t.ok = true
}

// sealFrame seals t, guarding against faults when its plaintext is borrowed.
func (c *frameCodec) sealFrame(t *frameTask) {
	if t.at != nil && !readAt(t) {
		return
	}
	if t.src != nil {
		c.sealBorrowed(t)
		return
	}
	c.seal(t)
}

// sealBorrowed seals a frame whose plaintext t.src is the caller's memory,
// which may be a file mapping that faults when the file shrinks. The fault
// becomes t.ok false instead of killing the process.
func (c *frameCodec) sealBorrowed(t *frameTask) {
	t.ok = false // seal sets it when it completes; a fault leaves it false
	readsFaultFree(t.src, func() { c.seal(t) })
}

// copyFaultSafe is copy(dst, src) for a src that may fault like a
// borrowed frame's; ok is false when it did.
func copyFaultSafe(dst, src []byte) (n int, ok bool) {
	ok = readsFaultFree(src, func() { n = copy(dst, src) })
	return n, ok
}

// readsFaultFree runs fn, which reads src, with memory faults turned into
// panics (debug.SetPanicOnFault), and reports false when fn faulted inside
// src. Any other panic goes on.
func readsFaultFree(src []byte, fn func()) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !faultIn(r, src) {
				panic(r)
			}
			ok = false
		}
	}()
	fn()
	return true
}

// faultIn reports whether the recovered value r is a memory fault at an
// address inside b (debug.SetPanicOnFault's panics carry the address).
func faultIn(r any, b []byte) bool {
	f, ok := r.(interface{ Addr() uintptr })
	if !ok || len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return f.Addr() >= start && f.Addr()-start < uintptr(len(b))
}

// open authenticates and decrypts t.buf (one frame's wire bytes) in place.
// On failure it clears the buffer and sets t.ok false: no unauthenticated
// plaintext ever leaves this function.
//
// The IV is the one stored in the frame, whatever its value, as the
// reference implementation reads it (see SPEC.md, "What we read"): the
// frame's sequence number and kind are authenticated through the body AAD,
// so a frame moved, dropped or replayed still fails its tag.
func (c *frameCodec) open(t *frameTask) {
	pre, _ := framing(t.kind)
	pt, err := c.openTo(t.buf[pre:pre], t, t.buf)
	if err != nil {
		clear(t.buf)
		t.ok, t.pt = false, nil
		return
	}
	t.ok, t.pt = true, pt
}

// framing returns the length of a frame's prefix and the offset of its IV.
func framing(k frameKind) (pre, ivOff int) {
	switch k {
	case kindFinal:
		return finalPrefix, 8
	case kindNonFramed:
		return nonFramedPrefix, 0
	}
	return regularPrefix, 4
}

// openTo authenticates and decrypts one frame's wire bytes, of kind t.kind
// and number t.seq, appending the plaintext to dst: wire[pre:pre] decrypts
// in place. On failure it returns ErrAuthentication and dst, with nothing
// appended (crypto/cipher clears what it wrote).
func (c *frameCodec) openTo(dst []byte, t *frameTask, wire []byte) ([]byte, error) {
	pre, ivOff := framing(t.kind)
	n := len(wire) - pre - gcmTagLen
	pt, err := c.aead.Open(dst, wire[ivOff:ivOff+gcmIVLen], wire[pre:], c.bodyAAD(t, n))
	if err != nil {
		return dst, ErrAuthentication
	}
	return pt, nil
}

// workers runs fn on every frame of a batch, in parallel across batches;
// each finished batch signals done. Workers reference only the codec, so
// an abandoned Reader or writer can be collected and its cleanup can stop
// them.
type workers struct {
	ch   chan *frameBatch
	wg   sync.WaitGroup
	once sync.Once
}

func startWorkers(n int, fn func(*frameTask)) *workers {
	w := &workers{ch: make(chan *frameBatch, n)}
	w.wg.Add(n)
	for range n {
		go func() {
			defer w.wg.Done()
			for b := range w.ch {
				runBatch(b, fn)
				// The goroutine waiting for b now sits in this P's run
				// queue, where it would stay until a worker ran out of
				// work; yield so that it refills the pipeline at once.
				runtime.Gosched()
			}
		}()
	}
	return w
}

// runBatch runs fn on each frame of b and signals b done.
func runBatch(b *frameBatch, fn func(*frameTask)) {
	for _, t := range b.tasks {
		fn(t)
	}
	b.done <- struct{}{}
}

// close stops accepting work; workers exit after their current batch.
func (w *workers) close() { w.once.Do(func() { close(w.ch) }) }

// stop closes and waits for every worker to exit.
func (w *workers) stop() { w.close(); w.wg.Wait() }

// pipelineDepth is how many batches may be in flight: perWorker for each
// of n workers, never more than maxInFlight bytes. The reader keeps more
// in flight than the writer (4 against 2 per worker measured ~9% faster
// decryption), since its feeding goroutine also copies every frame in.
func pipelineDepth(n, perWorker, frameLen int) int {
	d := perWorker * n
	per := framesPerBatch(frameLen) * (max(frameLen, taskOverhead) + finalPrefix + gcmTagLen)
	if lim := maxInFlight / per; d > lim {
		d = lim
	}
	return max(d, 1)
}

// readGrow appends exactly n bytes from r to b, growing b as data arrives
// (at most 1 MiB ahead), so a hostile length cannot force a big allocation.
func readGrow(r io.Reader, b []byte, n int) ([]byte, error) {
	for n > 0 {
		chunk := min(n, 1<<20)
		if cap(b)-len(b) < chunk {
			b = append(b[:cap(b)], make([]byte, chunk-(cap(b)-len(b)))...)[:len(b)]
		}
		m, err := io.ReadFull(r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		if err != nil {
			return b, err
		}
		n -= chunk
	}
	return b, nil
}
