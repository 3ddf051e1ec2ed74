package inventory_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/keyring"
)

// rawKey is a raw AES keyring named name (NAME/vN names a key version).
func rawKey(t *testing.T, name string) envelope.Keyring {
	t.Helper()
	kr, err := keyring.NewRawAES(keyring.ProviderLocal, name, bytes.Repeat([]byte{byte(len(name))}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestInventory(t *testing.T) {
	ctx := context.Background()
	v1, v2, other := rawKey(t, "app/v1"), rawKey(t, "app/v2"), rawKey(t, "db/v3")
	dir := t.TempDir()
	var bytesV1 int64
	for i := range 3 {
		p := filepath.Join(dir, "v1-"+strconv.Itoa(i))
		writeMessage(t, p, v1, 100*i)
		fi, _ := os.Stat(p)
		bytesV1 += fi.Size()
	}
	writeMessage(t, filepath.Join(dir, "both"), keyring.NewMulti(v2, other), 10)
	os.WriteFile(filepath.Join(dir, "readme"), []byte("plain"), 0o644)
	inv, err := inventory.TakeInventory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Uses("app", 1) != 3 || inv.Uses("app", 2) != 1 || inv.Uses("db", 3) != 1 || inv.Uses("app", 3) != 0 {
		t.Fatalf("inventory %+v", inv.Keys)
	}
	for _, u := range inv.Keys {
		if u.Key == "app" && u.Version == 1 && u.Bytes != bytesV1 {
			t.Fatalf("bytes %d, want %d", u.Bytes, bytesV1)
		}
	}
	if len(inv.Skipped) != 1 || filepath.Base(inv.Skipped[0].Path) != "readme" {
		t.Fatalf("skipped %+v", inv.Skipped)
	}
}
