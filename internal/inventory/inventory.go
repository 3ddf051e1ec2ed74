// Package inventory counts the messages that depend on each master key
// version under a set of paths (TakeInventory: headers only, no key), and
// retires a key version once no message there depends on it (Retire):
// `keystack inventory` and `keystack key retire`.
package inventory

import (
	"context"
	"errors"
	"io/fs"
	"sort"
	"strconv"

	"github.com/keystack/keystack/internal/msgtree"
	"github.com/keystack/keystack/keyring"
)

// KeyUsage counts the messages, and their bytes on disk, that depend on one
// master key version.
type KeyUsage struct {
	Key      string `json:"key"`
	Provider string `json:"provider"`
	Version  int    `json:"version"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
}

// SkippedPath is a path that was not counted, and why.
type SkippedPath struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Inventory is the result of scanning paths for messages.
type Inventory struct {
	Keys    []KeyUsage    `json:"keys"`
	Skipped []SkippedPath `json:"skipped"`
}

// Uses reports how many scanned messages depend on version v of key.
func (inv *Inventory) Uses(key string, v int) int {
	for _, u := range inv.Keys {
		if u.Key == key && u.Version == v {
			return u.Messages
		}
	}
	return 0
}

// TakeInventory walks paths (files and directory trees) and counts, per
// master key and version, the messages that name it in an encrypted data
// key. It parses headers only and needs no key. Files that are not keystack
// or ESDK messages are listed in Skipped, never modified.
func TakeInventory(ctx context.Context, paths ...string) (*Inventory, error) {
	counts := map[[3]string]*KeyUsage{}
	inv := &Inventory{Keys: []KeyUsage{}, Skipped: []SkippedPath{}}
	err := msgtree.Walk(ctx, paths, nil, func(path string, d fs.DirEntry) error {
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since the directory was read
		}
		if err != nil {
			return err
		}
		size := info.Size()
		h, err := msgtree.InspectFile(path)
		if err != nil {
			inv.Skipped = append(inv.Skipped, SkippedPath{Path: path, Reason: err.Error()})
			return nil
		}
		seen := map[[3]string]bool{}
		for _, edk := range h.EncryptedDataKeys {
			d := keyring.DescribeEDK(edk)
			id := [3]string{d.ProviderID, d.Key, strconv.Itoa(d.Version)}
			if seen[id] {
				continue // one message counts once per key version
			}
			seen[id] = true
			u := counts[id]
			if u == nil {
				u = &KeyUsage{Key: d.Key, Provider: d.ProviderID, Version: d.Version}
				counts[id] = u
			}
			u.Messages++
			u.Bytes += size
		}
		return nil
	})
	for _, u := range counts {
		inv.Keys = append(inv.Keys, *u)
	}
	sort.Slice(inv.Keys, func(i, j int) bool {
		a, b := inv.Keys[i], inv.Keys[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Version < b.Version
	})
	return inv, err
}
