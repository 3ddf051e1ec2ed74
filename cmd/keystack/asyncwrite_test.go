package main

import (
	"bytes"
	"errors"
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
