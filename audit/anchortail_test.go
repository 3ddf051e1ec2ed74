package audit

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// lineEndingAtWhole is lineEndingAt as it was written first: one read of
// the MaxLineSize+1 bytes before end.
func lineEndingAtWhole(b []byte, end int64) ([]byte, bool) {
	n := min(end, MaxLineSize+1)
	tail := b[end-n : end]
	line, ok := bytes.CutSuffix(tail, []byte("\n"))
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	} else if n < end {
		ok = false
	}
	return line, ok
}

// TestLineEndingAtAgrees: reading a short tail first finds the same line,
// and refuses the same lines, as reading MaxLineSize+1 bytes at once, for
// lines around the first read's size and around MaxLineSize, at the start
// of the file and after others, ending in a newline or not.
func TestLineEndingAtAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 300, anchorTailRead - 2, anchorTailRead - 1, anchorTailRead, anchorTailRead + 1,
		MaxLineSize - 1, MaxLineSize, MaxLineSize + 1, MaxLineSize + 2, 2 * MaxLineSize}
	for range 20 {
		sizes = append(sizes, rng.IntN(2*MaxLineSize))
	}
	for _, size := range sizes {
		for _, before := range []string{"", "x\n", strings.Repeat("y", 5000) + "\n"} {
			for _, nl := range []string{"\n", ""} {
				b := []byte(before + strings.Repeat("z", size) + nl)
				end := int64(len(b))
				if end == 0 {
					continue
				}
				got, gotOK, err := lineEndingAt(bytes.NewReader(b), end)
				if err != nil {
					t.Fatal(err)
				}
				want, wantOK := lineEndingAtWhole(b, end)
				if gotOK != wantOK || (wantOK && !bytes.Equal(got, want)) {
					t.Errorf("line of %d bytes after %d, newline %q: got %d bytes, ok %v; want %d bytes, ok %v",
						size, len(before), nl, len(got), gotOK, len(want), wantOK)
				}
			}
		}
	}
}

// TestOpenAnchoredLongEntry: a log whose anchored entry is longer than the
// first read of its tail opens at that anchor, and so does one anchored at
// a short entry after long ones.
func TestOpenAnchoredLongEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	key := bytes.Repeat([]byte{7}, MinMACKeySize)
	ctx := context.Background()
	var anchor *Anchor
	for _, reason := range []string{strings.Repeat("r", 3*anchorTailRead), "short"} {
		l, err := Open(path, Options{MACKey: key, Anchor: anchor, Durability: Sync})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := l.Append(ctx, Record{Principal: "user:a", Action: "keystack:Encrypt", Resource: "key/k", Outcome: "ok", Reason: reason}); err != nil {
				t.Fatal(err)
			}
		}
		// In Sync mode the anchor is the last entry appended: the long one
		// in the first round, not a checkpoint.
		l.wmu.Lock()
		a := l.anchor
		l.wmu.Unlock()
		if anchor == nil && a.Seq != 20 {
			t.Fatalf("anchor at entry %d, want the 20th", a.Seq)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		anchor = &a
		l, err = Open(path, Options{MACKey: key, Anchor: anchor})
		if err != nil {
			t.Fatalf("reopening at an anchor after entries with a %d-byte reason: %v", len(reason), err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
