package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestAsyncWriterKeepsOrder(t *testing.T) {
	var dst bytes.Buffer
	a := newAsyncWriter(&dst)
	var want []byte
	for i := range 3000 {
		p := bytes.Repeat([]byte{byte(i)}, i*7%5000)
		want = append(want, p...)
		if n, err := a.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want %d in order", dst.Len(), len(want))
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("Write after Flush succeeded")
	}
}

// No write reaches the file bigger than asyncPiece (see asyncWriter).
func TestAsyncWriterWritesInPieces(t *testing.T) {
	var rec pieceRecorder
	a := newAsyncWriter(&rec)
	if _, err := a.Write(make([]byte, 3*asyncChunk+1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if rec.total != 3*asyncChunk+1 || rec.largest != asyncPiece {
		t.Fatalf("wrote %d bytes, largest write %d; want %d bytes in writes of at most %d",
			rec.total, rec.largest, 3*asyncChunk+1, asyncPiece)
	}
}

type pieceRecorder struct{ total, largest int }

func (r *pieceRecorder) Write(p []byte) (int, error) {
	r.total += len(p)
	r.largest = max(r.largest, len(p))
	return len(p), nil
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// A failed write reaches the caller (at a later Write or at Flush) and
// never blocks it, however much it goes on writing.
func TestAsyncWriterReportsErrors(t *testing.T) {
	a := newAsyncWriter(&failAfter{n: asyncChunk})
	chunk := make([]byte, 100_000)
	var werr error
	for range 200 {
		if _, werr = a.Write(chunk); werr != nil {
			break
		}
	}
	if ferr := a.Flush(); !errors.Is(ferr, errDiskFull) {
		t.Fatalf("Flush: %v, want the write error", ferr)
	}
	if werr != nil && !errors.Is(werr, errDiskFull) {
		t.Fatalf("Write: %v", werr)
	}
}

// stop, for a failed command, ends the goroutine without writing the
// chunk being filled.
func TestAsyncWriterStop(t *testing.T) {
	var dst bytes.Buffer
	a := newAsyncWriter(&dst)
	a.Write([]byte("partial"))
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 0 {
		t.Fatalf("stop wrote %d bytes", dst.Len())
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
}

// An output smaller than a chunk starts no goroutine and holds no full
// chunk: Flush writes it, in order and in pieces of at most asyncPiece.
func TestAsyncWriterSmallOutputInline(t *testing.T) {
	for _, size := range []int{0, 219, asyncFirst + 1, 3*asyncPiece + 5, asyncChunk - 1} {
		var dst bytes.Buffer
		var rec pieceRecorder
		a := newAsyncWriter(io.MultiWriter(&dst, &rec))
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i * 7)
		}
		for p := want; len(p) > 0; p = p[min(len(p), 1000):] {
			if _, err := a.Write(p[:min(len(p), 1000)]); err != nil {
				t.Fatal(err)
			}
		}
		if a.started || cap(a.cur) > max(asyncFirst, 2*size) {
			t.Fatalf("%d bytes: goroutine started %v, buffer of %d bytes", size, a.started, cap(a.cur))
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst.Bytes(), want) || rec.largest > asyncPiece {
			t.Fatalf("%d bytes: wrote %d, largest write %d", size, dst.Len(), rec.largest)
		}
		if _, err := a.Write([]byte("x")); err == nil {
			t.Fatalf("%d bytes: Write after Flush succeeded", size)
		}
		if err := a.stop(); err != nil {
			t.Fatalf("%d bytes: stop after Flush: %v", size, err)
		}
	}
}

// A failed write of a small output, made by Flush itself, is its result.
func TestAsyncWriterSmallOutputError(t *testing.T) {
	a := newAsyncWriter(&failAfter{n: 10})
	if _, err := a.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Flush: %v, want the write error", err)
	}
	if err := a.stop(); !errors.Is(err, errDiskFull) {
		t.Fatalf("stop: %v, want the write error", err)
	}
}
