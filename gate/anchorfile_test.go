package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/gatewire"
)

var testAnchorKey = bytes.Repeat([]byte{7}, 32)

func keptAt(epoch, seq uint64) gatewire.AuditAnchor {
	return gatewire.AuditAnchor{Anchor: audit.Anchor{Seq: seq, Head: "ab", Offset: int64(seq) * 100, Time: "2026-12-02T16:00:00Z"}, Epoch: epoch}
}

// storeAll stores the anchors of seqs (epoch 0) in turn.
func storeAll(t *testing.T, d fileAudit, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		if err := d.storeAnchor(testAnchorKey, keptAt(0, seq), false); err != nil {
			t.Fatal(err)
		}
	}
}

// slotsOf reads d's file as its slots.
func slotsOf(t *testing.T, d fileAudit) [2]anchorSlot {
	t.Helper()
	f, err := os.Open(d.anchorPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	slots, err := readAnchorSlots(f, testAnchorKey)
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

// wantDamaged checks that loading d's file fails as damage naming what.
func wantDamaged(t *testing.T, d fileAudit, what string) {
	t.Helper()
	got, err := d.loadAnchor(testAnchorKey)
	if !errors.Is(err, errNoKeptAnchor) || !strings.Contains(err.Error(), what) {
		t.Fatalf("loaded %+v, %v; want damage: %q", got, err, what)
	}
}

func writeAnchorBytes(t *testing.T, d fileAudit, b []byte) {
	t.Helper()
	if err := os.WriteFile(d.anchorPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// storeAnchor keeps only anchors past the one kept, one generation past
// the newest, so that the newest is never overwritten.
func TestAnchorFileKeepsNewest(t *testing.T) {
	d := fileAudit{dir: t.TempDir()}
	if _, err := d.loadAnchor(testAnchorKey); !errors.Is(err, errNoKeptAnchor) {
		t.Fatalf("load without a file: %v", err)
	}
	steps := []struct {
		store, want gatewire.AuditAnchor
		gen         uint64 // of the newest slot after the step
	}{
		{keptAt(0, 5), keptAt(0, 5), 1}, // created whole: generations 0 and 1
		{keptAt(0, 9), keptAt(0, 9), 2},
		{keptAt(0, 7), keptAt(0, 9), 2},  // behind: a slower process closing
		{keptAt(1, 2), keptAt(1, 2), 3},  // a reset's new epoch
		{keptAt(0, 50), keptAt(1, 2), 3}, // a process from before the reset
		{keptAt(1, 3), keptAt(1, 3), 4},
	}
	for i, s := range steps {
		if err := d.storeAnchor(testAnchorKey, s.store, false); err != nil {
			t.Fatal(err)
		}
		got, err := d.loadAnchor(testAnchorKey)
		if err != nil || got != s.want {
			t.Fatalf("step %d: kept %+v, %v; want %+v", i, got, err, s.want)
		}
		slots := slotsOf(t, d)
		if g := max(slots[0].gen, slots[1].gen); g != s.gen || slots[g%2].anchor != s.want {
			t.Fatalf("step %d: slots %+v; want generation %d in slot %d", i, slots, s.gen, s.gen%2)
		}
	}
	if _, err := d.loadAnchor(bytes.Repeat([]byte{8}, 32)); !errors.Is(err, errNoKeptAnchor) {
		t.Fatalf("load under another key: %v", err)
	}
	if fi, err := os.Stat(d.anchorPath()); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != anchorFileSize {
		t.Fatalf("anchor file %v, %v", fi, err)
	}
}

// A slot spoiled anywhere, either one, is damage: the load fails rather
// than fall back to the other slot, and a store leaves the evidence as it
// is unless told nothing relies on it (overDamage), when it rewrites the
// file whole.
func TestAnchorFileSpoiledSlot(t *testing.T) {
	d := fileAudit{dir: t.TempDir()}
	storeAll(t, d, 4, 6) // slot 0: generation 2, seq 6; slot 1: generation 1, seq 4
	clean, err := os.ReadFile(d.anchorPath())
	if err != nil {
		t.Fatal(err)
	}
	for slot := range 2 {
		body := clean[slot*anchorSlotStride:]
		for off := range bytes.IndexByte(body, 0) { // the padding after the MAC line is not read
			spoiled := bytes.Clone(clean)
			spoiled[slot*anchorSlotStride+off] ^= 0x20
			writeAnchorBytes(t, d, spoiled)
			wantDamaged(t, d, fmt.Sprintf("slot %d is not authentic", slot))
		}
		spoiled := bytes.Clone(clean)
		spoiled[slot*anchorSlotStride+10] ^= 0x20
		writeAnchorBytes(t, d, spoiled)
		err := d.storeAnchor(testAnchorKey, keptAt(0, 8), false)
		if after, _ := os.ReadFile(d.anchorPath()); !errors.Is(err, errNoKeptAnchor) || !bytes.Equal(after, spoiled) {
			t.Fatalf("store over spoiled slot %d: %v; file changed: %v", slot, err, !bytes.Equal(after, spoiled))
		}
		if err := d.storeAnchor(testAnchorKey, keptAt(1, 1), true); err != nil {
			t.Fatal(err)
		}
		if got, err := d.loadAnchor(testAnchorKey); err != nil || got != keptAt(1, 1) {
			t.Fatalf("after a store over damage: %+v, %v", got, err)
		}
		if slots := slotsOf(t, d); slots[0].gen != 0 || slots[1].gen != 1 || slots[0].form != slotV2 || slots[1].form != slotV2 {
			t.Fatalf("rewritten file's slots %+v", slots)
		}
	}
}

// A file cut short, slots swapped, or a slot put back from an older
// state of the file, is damage; only a slot one generation older in its
// own place (an older copy of the file, as README says) is not seen.
func TestAnchorFileRearranged(t *testing.T) {
	d := fileAudit{dir: t.TempDir()}
	var states [][]byte // states[i]: the file after generation i+1
	for _, seq := range []uint64{3, 4, 5, 6} {
		storeAll(t, d, seq)
		b, err := os.ReadFile(d.anchorPath())
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, b)
	}
	cur := states[3] // generation 4 (seq 6) in slot 0, 3 (seq 5) in slot 1
	slot := func(b []byte, i int) []byte { return b[i*anchorSlotStride : i*anchorSlotStride+anchorSlotSize] }
	with := func(s0, s1 []byte) []byte {
		b := bytes.Clone(cur)
		copy(b, s0)
		copy(b[anchorSlotStride:], s1)
		return b
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "neither slot"},
		{"one slot", cur[:anchorSlotSize], "slot 1 is cut off"},
		{"half the second", cur[:anchorSlotStride+anchorSlotSize/2], "slot 1 is cut off"},
		{"swapped", with(slot(cur, 1), slot(cur, 0)), "slot 0 holds generation 3"},
		{"newest copied over the other", with(slot(cur, 0), slot(cur, 0)), "slot 1 holds generation 4"},
		{"older slot 1 put back", with(slot(cur, 0), slot(states[0], 1)), "generations 4 and 1 are not consecutive"},
		{"older slot 0 put back", with(slot(states[0], 0), slot(cur, 1)), "generations 0 and 3 are not consecutive"},
	} {
		writeAnchorBytes(t, d, tc.file)
		wantDamaged(t, d, tc.want)
	}
	writeAnchorBytes(t, d, states[2]) // the whole file one store older: not detectable
	if got, err := d.loadAnchor(testAnchorKey); err != nil || got.Seq != 5 {
		t.Fatalf("an older copy of the file: %+v, %v", got, err)
	}
}

// encodeV1Slot is a slot as builds of 2026-12-02 wrote it.
func encodeV1Slot(t *testing.T, a gatewire.AuditAnchor) []byte {
	body, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := sealAnchorSlot(testAnchorKey, anchorSlotDomainV1, body)
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

// v1File is a file of the v1 form with the given slots (nil: zeros).
func v1File(t *testing.T, s0, s1 *gatewire.AuditAnchor) []byte {
	b := make([]byte, anchorFileSize)
	if s0 != nil {
		copy(b, encodeV1Slot(t, *s0))
	}
	if s1 != nil {
		copy(b[anchorSlotStride:], encodeV1Slot(t, *s1))
	}
	return b
}

// A file of the v1 form loads by the v1 rule (the authentic slot furthest
// ahead) and the next store rewrites it whole in the current form; a v1
// slot beside a current one is damage.
func TestAnchorFileV1(t *testing.T) {
	d := fileAudit{dir: t.TempDir()}
	a4, a6 := keptAt(0, 4), keptAt(0, 6)
	for _, tc := range []struct {
		name  string
		file  []byte
		want  gatewire.AuditAnchor
		store uint64 // then stored; the file must keep the newer of the two
	}{
		{"both", v1File(t, &a4, &a6), a6, 5},
		{"both, newest first", v1File(t, &a6, &a4), a6, 7},
		{"one slot, as first written", v1File(t, &a4, nil)[:anchorSlotSize], a4, 3},
		{"one slot authentic", v1File(t, &a4, nil), a4, 9},
	} {
		writeAnchorBytes(t, d, tc.file)
		if got, err := d.loadAnchor(testAnchorKey); err != nil || got != tc.want {
			t.Fatalf("%s: loaded %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		storeAll(t, d, tc.store)
		want := keptAt(0, max(tc.want.Seq, tc.store))
		if got, err := d.loadAnchor(testAnchorKey); err != nil || got != want {
			t.Fatalf("%s: after a store %+v, %v; want %+v", tc.name, got, err, want)
		}
		if s := slotsOf(t, d); s[0].form != slotV2 || s[1].form != slotV2 || s[0].gen != 0 || s[1].gen != 1 {
			t.Fatalf("%s: not rewritten whole in the current form: %+v", tc.name, s)
		}
	}
	mixed, err := os.ReadFile(d.anchorPath())
	if err != nil {
		t.Fatal(err)
	}
	copy(mixed[anchorSlotStride:], encodeV1Slot(t, keptAt(0, 20)))
	writeAnchorBytes(t, d, mixed)
	wantDamaged(t, d, "slot 1 is not authentic")
}

// Writers in many goroutines, each with its own open file (flock excludes
// them as it does processes), creating the file, upgrading one of the v1
// form, or moving it: every load meanwhile succeeds, and the file ends at
// the furthest anchor, intact.
func TestAnchorFileConcurrent(t *testing.T) {
	for _, start := range []string{"missing", "v1"} {
		d := fileAudit{dir: t.TempDir()}
		if start == "v1" {
			a := keptAt(0, 1)
			writeAnchorBytes(t, d, v1File(t, &a, nil))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for w := range 8 {
			wg.Go(func() {
				for i := range 20 {
					if err := d.storeAnchor(testAnchorKey, keptAt(0, uint64(2+i*8+w)), false); err != nil {
						errs <- err
					}
					if _, err := d.loadAnchor(testAnchorKey); err != nil && !(start == "missing" && errors.Is(err, errNoKeptAnchor) && strings.Contains(err.Error(), "missing")) {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", start, err)
		}
		if got, err := d.loadAnchor(testAnchorKey); err != nil || got != keptAt(0, 2+19*8+7) {
			t.Fatalf("%s: kept %+v, %v", start, got, err)
		}
		if ents, _ := os.ReadDir(d.dir); len(ents) != 1 {
			t.Fatalf("%s: files left beside the anchor: %v", start, ents)
		}
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
	for _, overDamage := range []bool{false, true} {
		if err := d.storeAnchor(testAnchorKey, keptAt(0, 1), overDamage); err == nil {
			t.Fatal("stored through a symbolic link")
		}
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was written: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, AnchorFile)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v, %v", fi, err)
	}
}
