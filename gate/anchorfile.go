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
// blocks, written in turn, each the anchor and its epoch as JSON with an
// HMAC-SHA256 under the audit key; a write torn by a crash spoils only
// the slot being written, and the other, one advance older, stands.
const AnchorFile = "audit.anchor"

const (
	anchorSlotSize   = 512  // one sector: drives write it whole
	anchorSlotStride = 4096 // one filesystem block per slot
	anchorSlotDomain = "keystack-audit-anchor-slot-v1\x00"
)

// errNoKeptAnchor is loadAnchor's answer when the file is missing or
// neither slot is authentic under the key.
var errNoKeptAnchor = errors.New("no authentic anchor kept")

// anchorKeeper is an AuditDestination that keeps the anchor's advances
// itself, cheaper than a rewrite of the state document (FileAudit).
type anchorKeeper interface {
	// loadAnchor returns the newest authentic anchor kept, or
	// errNoKeptAnchor.
	loadAnchor(key []byte) (gatewire.AuditAnchor, error)
	// storeAnchor durably keeps a if it is past the anchor kept.
	storeAnchor(key []byte, a gatewire.AuditAnchor) error
}

var _ anchorKeeper = fileAudit{}

func (d fileAudit) anchorPath() string { return filepath.Join(d.dir, AnchorFile) }

func (d fileAudit) loadAnchor(key []byte) (gatewire.AuditAnchor, error) {
	f, err := os.OpenFile(d.anchorPath(), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return gatewire.AuditAnchor{}, fmt.Errorf("%w: %s is missing", errNoKeptAnchor, AnchorFile)
	}
	if err != nil {
		return gatewire.AuditAnchor{}, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	defer f.Close()
	slots, err := readAnchorSlots(f, key)
	if err != nil {
		return gatewire.AuditAnchor{}, err
	}
	i := newestSlot(slots)
	if i < 0 {
		return gatewire.AuditAnchor{}, fmt.Errorf("%w: neither slot of %s is authentic", errNoKeptAnchor, AnchorFile)
	}
	return slots[i].anchor, nil
}

func (d fileAudit) storeAnchor(key []byte, a gatewire.AuditAnchor) error {
	f, created, err := openAnchorFile(d.anchorPath())
	if err != nil {
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	defer f.Close()
	if err := fsx.Lock(f); err != nil { // writers in other processes
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	defer fsx.Unlock(f)
	slots, err := readAnchorSlots(f, key)
	if err != nil {
		return err
	}
	i := newestSlot(slots)
	if i >= 0 && !anchorAhead(a, slots[i].anchor) {
		return nil
	}
	next := 0 // the slot not holding the newest
	if i == 0 {
		next = 1
	}
	slot, err := encodeAnchorSlot(key, a)
	if err == nil {
		_, err = f.WriteAt(slot, int64(next)*anchorSlotStride)
	}
	if err == nil {
		err = fsx.Datasync(f)
	}
	if err == nil && created {
		err = fsx.SyncPath(filepath.Dir(f.Name()))
	}
	if err != nil {
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return nil
}

// openAnchorFile opens path for writing, creating it (mode 0600) when it
// is missing; created says so, as its directory entry must then be made
// durable too.
func openAnchorFile(path string) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		created = err == nil
	}
	return f, created, err
}

type anchorSlot struct {
	anchor gatewire.AuditAnchor
	ok     bool // authentic under the key
}

// readAnchorSlots reads both slots; a short file has an empty second slot.
func readAnchorSlots(f *os.File, key []byte) ([2]anchorSlot, error) {
	var slots [2]anchorSlot
	buf := make([]byte, anchorSlotStride+anchorSlotSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return slots, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	buf = buf[:n]
	for i := range slots {
		start := i * anchorSlotStride
		if start < len(buf) {
			slots[i].anchor, slots[i].ok = decodeAnchorSlot(key, buf[start:min(start+anchorSlotSize, len(buf))])
		}
	}
	return slots, nil
}

// newestSlot returns the index of the authentic slot furthest ahead, or
// -1 when neither is authentic.
func newestSlot(slots [2]anchorSlot) int {
	switch {
	case slots[0].ok && slots[1].ok:
		if anchorAhead(slots[1].anchor, slots[0].anchor) {
			return 1
		}
		return 0
	case slots[0].ok:
		return 0
	case slots[1].ok:
		return 1
	}
	return -1
}

// anchorAhead reports whether a is past b: of a later epoch, or of the
// same epoch and a later entry.
func anchorAhead(a, b gatewire.AuditAnchor) bool {
	return a.Epoch > b.Epoch || (a.Epoch == b.Epoch && a.Seq > b.Seq)
}

// encodeAnchorSlot is a slot: the anchor as one line of JSON, a line with
// the hex HMAC-SHA256 of that line under key, zeros to anchorSlotSize.
func encodeAnchorSlot(key []byte, a gatewire.AuditAnchor) ([]byte, error) {
	a.MAC, a.Detached = "", false
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	slot := make([]byte, 0, anchorSlotSize)
	slot = append(append(slot, body...), '\n')
	slot = append(hex.AppendEncode(slot, anchorSlotMAC(key, body)), '\n')
	if len(slot) > anchorSlotSize {
		return nil, fmt.Errorf("anchor slot of %d bytes", len(slot))
	}
	return slot[:anchorSlotSize], nil
}

func decodeAnchorSlot(key, slot []byte) (gatewire.AuditAnchor, bool) {
	var a gatewire.AuditAnchor
	body, rest, ok := bytes.Cut(slot, []byte{'\n'})
	if !ok {
		return a, false
	}
	sum, _, ok := bytes.Cut(rest, []byte{'\n'})
	if !ok || !hmac.Equal(sum, hex.AppendEncode(nil, anchorSlotMAC(key, body))) {
		return a, false // compared as written: the hex is lower case
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Detached {
		return a, false
	}
	return a, true
}

func anchorSlotMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(anchorSlotDomain))
	m.Write(body)
	return m.Sum(nil)
}
