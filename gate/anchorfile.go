package gate

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/internal/gatewire"
)

// AnchorFile is the name of the file log's anchor in the store directory.
//
// Moving the anchor used to rewrite keystore.json at the end of every
// command: a new inode, two fsyncs, a rename, and a new state revision
// that every other process holding the store then read again; about a
// sixth of an empty-file encrypt's CPU. audit.anchor is overwritten in
// place instead, with one fdatasync. It holds two slots in separate disk
// blocks, each the anchor, its epoch and a write generation as JSON with
// an HMAC-SHA256 under the audit key. Generation g is written to slot
// g%2, each write one generation past the newest, and the file is created
// whole (both slots) by a rename, so an intact file always has two
// authentic slots of consecutive generations. A 512-byte, sector-aligned
// write made durable with fdatasync is not torn by kill -9 (the kernel
// copies it whole) nor by power loss on media that write sectors
// atomically; anything else in the file is tampering or media damage, and
// is refused rather than answered with the older slot (which would let
// someone who can write the file, but not read keystore.json, cut the
// last command's records from the log unnoticed).
const AnchorFile = "audit.anchor"

const (
	anchorSlotSize   = 512  // one sector: drives write it whole
	anchorSlotStride = 4096 // one filesystem block per slot
	anchorFileSize   = anchorSlotStride + anchorSlotSize
	// anchorSlotDomain is v2 for slots with a generation. The domain, not
	// the presence of a "gen" field, decides which rules a file is read
	// by: a v1 slot (builds of 2026-12-02, which kept the newest authentic
	// slot) cannot pass for a v2 one, so a file of the current form never
	// falls back to the old, lenient rule, and the reverse.
	anchorSlotDomain   = "keystack-audit-anchor-slot-v2\x00"
	anchorSlotDomainV1 = "keystack-audit-anchor-slot-v1\x00"
)

// errNoKeptAnchor is loadAnchor's answer when the file is missing or
// damaged: no slot authentic, or (in the current form) not exactly two
// authentic slots of consecutive generations, each in its place.
var errNoKeptAnchor = errors.New("no authentic anchor kept")

// anchorKeeper is an AuditDestination that keeps the anchor's advances
// itself, cheaper than a rewrite of the state document (FileAudit).
type anchorKeeper interface {
	// loadAnchor returns the newest anchor kept, or errNoKeptAnchor.
	loadAnchor(key []byte) (gatewire.AuditAnchor, error)
	// storeAnchor durably keeps a if it is past the anchor kept. What it
	// keeps when damaged (errNoKeptAnchor) is evidence and is left as it
	// is, with the error, unless overDamage: then nothing relies on it
	// (the state's anchor is not detached) and it is replaced.
	storeAnchor(key []byte, a gatewire.AuditAnchor, overDamage bool) error
}

var _ anchorKeeper = fileAudit{}

func (d fileAudit) anchorPath() string { return filepath.Join(d.dir, AnchorFile) }

func (d fileAudit) loadAnchor(key []byte) (gatewire.AuditAnchor, error) {
	f, err := openAnchorLocked(d.anchorPath(), os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return gatewire.AuditAnchor{}, fmt.Errorf("%w: %s is missing", errNoKeptAnchor, AnchorFile)
	}
	if err != nil {
		return gatewire.AuditAnchor{}, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	defer f.Close() // and so unlocked
	slots, err := readAnchorSlots(f, key)
	if err != nil {
		return gatewire.AuditAnchor{}, err
	}
	kept, err := keptSlot(slots)
	return kept.anchor, err
}

func (d fileAudit) storeAnchor(key []byte, a gatewire.AuditAnchor, overDamage bool) error {
	a.MAC, a.Detached = "", false
	err := fsx.ErrExist
	for try := 0; try < 100 && errors.Is(err, fsx.ErrExist); try++ {
		err = d.tryStoreAnchor(key, a, overDamage)
	}
	if err != nil && !errors.Is(err, errNoKeptAnchor) {
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return err
}

// tryStoreAnchor is one attempt of storeAnchor; fsx.ErrExist says that
// another process created the file first, and the caller tries again.
func (d fileAudit) tryStoreAnchor(key []byte, a gatewire.AuditAnchor, overDamage bool) error {
	path := d.anchorPath()
	f, err := openAnchorLocked(path, os.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) {
		return writeAnchorFile(path, key, a, false)
	}
	if err != nil {
		return err
	}
	defer f.Close() // after any rename: waiting writers then see the new file
	slots, err := readAnchorSlots(f, key)
	if err != nil {
		return err
	}
	kept, err := keptSlot(slots)
	switch {
	case errors.Is(err, errNoKeptAnchor) && overDamage:
		return writeAnchorFile(path, key, a, true)
	case err != nil:
		return err
	case kept.form == slotV1: // rewritten whole in the current form
		if !anchorAhead(a, kept.anchor) {
			a = kept.anchor
		}
		return writeAnchorFile(path, key, a, true)
	case !anchorAhead(a, kept.anchor):
		return nil
	}
	return writeAnchorSlot(f, key, a, kept.gen+1)
}

// openAnchorLocked opens path, never through a symbolic link, and locks
// it against the other processes' writers (and a reader against a write
// in progress, which it could see half copied). When the name was given
// to a new file while it waited (a creation, an upgrade, a replacement),
// it opens that one instead: the file it returns is the one named path.
func openAnchorLocked(path string, flag int) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		if err := fsx.Lock(f); err != nil {
			f.Close()
			return nil, err
		}
		fi, ferr := f.Stat()
		pi, perr := os.Lstat(path)
		if ferr == nil && perr == nil && os.SameFile(fi, pi) {
			return f, nil
		}
		f.Close() // releases the lock
	}
	return nil, fmt.Errorf("%s keeps being replaced", path)
}

// writeAnchorFile gives path a complete file, both slots holding a
// (generations 0 and 1): written to a temporary file, synced, then linked
// in place (fsx.ErrExist if path exists by then) or, with replace, renamed
// over it, and the directory synced (fsx.Create). A path that is not a
// regular file, such as a symbolic link, is refused.
func writeAnchorFile(path string, key []byte, a gatewire.AuditAnchor, replace bool) error {
	buf := make([]byte, anchorFileSize)
	for gen := range uint64(2) {
		slot, err := encodeAnchorSlot(key, a, gen)
		if err != nil {
			return err
		}
		copy(buf[gen*anchorSlotStride:], slot)
	}
	f, err := fsx.Create(path, replace)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Commit()
}

// writeAnchorSlot durably writes a as generation gen, over slot gen%2.
func writeAnchorSlot(f *os.File, key []byte, a gatewire.AuditAnchor, gen uint64) error {
	slot, err := encodeAnchorSlot(key, a, gen)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(slot, int64(gen%2)*anchorSlotStride); err != nil {
		return err
	}
	return fsx.Datasync(f)
}

// slotForm says which MAC a slot carries.
type slotForm int

const (
	slotBad slotForm = iota // missing, or not authentic under the key
	slotV1                  // anchorSlotDomainV1: no generation
	slotV2                  // anchorSlotDomain
)

type anchorSlot struct {
	anchor gatewire.AuditAnchor
	gen    uint64
	form   slotForm
	cut    bool // the file ends before the slot does
}

// anchorSlotBody is a slot's JSON line.
type anchorSlotBody struct {
	gatewire.AuditAnchor
	Gen uint64 `json:"gen"`
}

// readAnchorSlots reads both slots; a slot past the file's end is cut.
func readAnchorSlots(f *os.File, key []byte) ([2]anchorSlot, error) {
	var slots [2]anchorSlot
	buf := make([]byte, anchorFileSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return slots, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	buf = buf[:n]
	for i := range slots {
		start := i * anchorSlotStride
		if start < len(buf) {
			slots[i] = decodeAnchorSlot(key, buf[start:min(start+anchorSlotSize, len(buf))])
		}
		slots[i].cut = start+anchorSlotSize > len(buf)
	}
	return slots, nil
}

// keptSlot returns the slot holding the newest anchor. In the current form
// both slots must be authentic, each generation in its slot and the two
// consecutive; the newer generation wins. A file of the v1 form (no
// authentic v2 slot) is read as v1 builds read it: the authentic slot
// furthest ahead. Anything else is damage, errNoKeptAnchor saying what.
func keptSlot(slots [2]anchorSlot) (anchorSlot, error) {
	if slots[0].form != slotV2 && slots[1].form != slotV2 {
		return keptSlotV1(slots)
	}
	for i, s := range slots {
		switch {
		case s.cut:
			return damagedAnchor("slot %d is cut off", i)
		case s.form != slotV2:
			return damagedAnchor("slot %d is not authentic", i)
		case s.gen%2 != uint64(i):
			return damagedAnchor("slot %d holds generation %d, which belongs in slot %d", i, s.gen, s.gen%2)
		}
	}
	g0, g1 := slots[0].gen, slots[1].gen
	switch {
	case g1 == g0+1:
		return slots[1], nil
	case g0 == g1+1:
		return slots[0], nil
	}
	return damagedAnchor("its generations %d and %d are not consecutive", g0, g1)
}

func damagedAnchor(format string, args ...any) (anchorSlot, error) {
	return anchorSlot{}, fmt.Errorf("%w: %s is damaged (tampering or media failure): %s", errNoKeptAnchor, AnchorFile, fmt.Sprintf(format, args...))
}

// keptSlotV1 is keptSlot for a file of the v1 form, which the next store
// rewrites in the current one.
func keptSlotV1(slots [2]anchorSlot) (anchorSlot, error) {
	ok0, ok1 := slots[0].form == slotV1, slots[1].form == slotV1
	switch {
	case ok1 && (!ok0 || anchorAhead(slots[1].anchor, slots[0].anchor)):
		return slots[1], nil
	case ok0:
		return slots[0], nil
	}
	return anchorSlot{}, fmt.Errorf("%w: neither slot of %s is authentic", errNoKeptAnchor, AnchorFile)
}

// anchorAhead reports whether a is past b: of a later epoch, or of the
// same epoch and a later entry.
func anchorAhead(a, b gatewire.AuditAnchor) bool {
	return a.Epoch > b.Epoch || (a.Epoch == b.Epoch && a.Seq > b.Seq)
}

// encodeAnchorSlot is a slot: a and gen as one line of JSON, a line with
// the hex HMAC-SHA256 of that line under key, zeros to anchorSlotSize.
func encodeAnchorSlot(key []byte, a gatewire.AuditAnchor, gen uint64) ([]byte, error) {
	a.MAC, a.Detached = "", false
	body, err := json.Marshal(anchorSlotBody{AuditAnchor: a, Gen: gen})
	if err != nil {
		return nil, err
	}
	return sealAnchorSlot(key, anchorSlotDomain, body)
}

// sealAnchorSlot appends body's MAC under domain and pads to a slot.
func sealAnchorSlot(key []byte, domain string, body []byte) ([]byte, error) {
	slot := make([]byte, 0, anchorSlotSize)
	slot = append(append(slot, body...), '\n')
	slot = append(hex.AppendEncode(slot, anchorSlotMAC(key, domain, body)), '\n')
	if len(slot) > anchorSlotSize {
		return nil, fmt.Errorf("anchor slot of %d bytes", len(slot))
	}
	return slot[:anchorSlotSize], nil
}

// decodeAnchorSlot reads a slot; its form is slotBad unless its MAC is
// authentic under key, in either domain.
func decodeAnchorSlot(key, slot []byte) anchorSlot {
	body, rest, ok := bytes.Cut(slot, []byte{'\n'})
	if !ok {
		return anchorSlot{}
	}
	sum, _, ok := bytes.Cut(rest, []byte{'\n'})
	if !ok {
		return anchorSlot{}
	}
	form := slotBad
	for _, f := range []struct {
		domain string
		form   slotForm
	}{{anchorSlotDomain, slotV2}, {anchorSlotDomainV1, slotV1}} {
		if hmac.Equal(sum, hex.AppendEncode(nil, anchorSlotMAC(key, f.domain, body))) {
			form = f.form // compared as written: the hex is lower case
			break
		}
	}
	var b anchorSlotBody
	if form == slotBad || json.Unmarshal(body, &b) != nil || b.Detached {
		return anchorSlot{}
	}
	if form == slotV1 {
		b.Gen = 0 // v1 has none
	}
	return anchorSlot{anchor: b.AuditAnchor, gen: b.Gen, form: form}
}

func anchorSlotMAC(key []byte, domain string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write(body)
	return m.Sum(nil)
}
