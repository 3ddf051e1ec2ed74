package gate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/gatewire"
)

func keptAt(epoch, seq uint64) gatewire.AuditAnchor {
	return gatewire.AuditAnchor{Anchor: audit.Anchor{Seq: seq, Head: "ab", Offset: int64(seq) * 100, Time: "2026-12-02T16:00:00Z"}, Epoch: epoch}
}

// storeAnchor keeps only anchors past the one kept, in the slot not
// holding it, so that the newest is never overwritten.
func TestAnchorFileKeepsNewest(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	d := fileAudit{dir: t.TempDir()}
	if _, err := d.loadAnchor(key); !errors.Is(err, errNoKeptAnchor) {
		t.Fatalf("load without a file: %v", err)
	}
	steps := []struct {
		store, want gatewire.AuditAnchor
	}{
		{keptAt(0, 5), keptAt(0, 5)},
		{keptAt(0, 9), keptAt(0, 9)},
		{keptAt(0, 7), keptAt(0, 9)},  // behind: a slower process closing
		{keptAt(1, 2), keptAt(1, 2)},  // a reset's new epoch
		{keptAt(0, 50), keptAt(1, 2)}, // a process from before the reset
		{keptAt(1, 3), keptAt(1, 3)},
	}
	for i, s := range steps {
		if err := d.storeAnchor(key, s.store); err != nil {
			t.Fatal(err)
		}
		got, err := d.loadAnchor(key)
		if err != nil || got != s.want {
			t.Fatalf("step %d: kept %+v, %v; want %+v", i, got, err, s.want)
		}
	}
	if _, err := d.loadAnchor(bytes.Repeat([]byte{8}, 32)); !errors.Is(err, errNoKeptAnchor) {
		t.Fatalf("load under another key: %v", err)
	}
	if fi, err := os.Stat(d.anchorPath()); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != anchorSlotStride+anchorSlotSize {
		t.Fatalf("anchor file %v, %v", fi, err)
	}
}

// A slot spoiled anywhere (a torn write) is not authentic; the other
// slot then stands, and the next store writes over the spoiled one.
func TestAnchorFileTornSlot(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	d := fileAudit{dir: t.TempDir()}
	for _, seq := range []uint64{4, 6} {
		if err := d.storeAnchor(key, keptAt(0, seq)); err != nil {
			t.Fatal(err)
		}
	}
	clean, err := os.ReadFile(d.anchorPath())
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < anchorSlotSize; off++ {
		for slot, survivor := range []uint64{6, 4} { // slot 0 holds 4, slot 1 holds 6
			spoiled := bytes.Clone(clean)
			spoiled[slot*anchorSlotStride+off] ^= 0x20
			body := spoiled[slot*anchorSlotStride : slot*anchorSlotStride+anchorSlotSize]
			if off >= bytes.IndexByte(clean[slot*anchorSlotStride:], 0) {
				continue // the padding after the MAC line is not read
			}
			if _, ok := decodeAnchorSlot(key, body); ok {
				t.Fatalf("slot %d with byte %d flipped is still authentic", slot, off)
			}
			if err := os.WriteFile(d.anchorPath(), spoiled, 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := d.loadAnchor(key); err != nil || got.Seq != survivor {
				t.Fatalf("slot %d byte %d spoiled: kept %+v, %v; want seq %d", slot, off, got, err, survivor)
			}
		}
	}
	if err := d.storeAnchor(key, keptAt(0, 8)); err != nil {
		t.Fatal(err)
	}
	if got, err := d.loadAnchor(key); err != nil || got.Seq != 8 {
		t.Fatalf("after a store over a spoiled slot: %+v, %v", got, err)
	}
}

// A symbolic link in the anchor's place is refused, not followed.
func TestAnchorFileRefusesLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, AnchorFile)); err != nil {
		t.Fatal(err)
	}
	d := fileAudit{dir: dir}
	if err := d.storeAnchor(bytes.Repeat([]byte{7}, 32), keptAt(0, 1)); err == nil {
		t.Fatal("stored through a symbolic link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was written: %v", err)
	}
}
