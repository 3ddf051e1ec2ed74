package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// TestStoreOpenedBeforeCLIRotationDecrypts is issue 11 item 9: a Go
// service opens the store and takes its decrypt keyring; the CLI then
// rotates the key and encrypts under the new version; the service's
// keyring, made before, decrypts that message.
func TestStoreOpenedBeforeCLIRotationDecrypts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	home, plain, msg := filepath.Join(dir, "home"), filepath.Join(dir, "plain"), filepath.Join(dir, "msg.ks")
	if err := os.WriteFile(plain, []byte("under v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	runOK(t, "--home", home, "init", "--insecure-no-passphrase")
	runOK(t, "--home", home, "key", "create", "k")

	st, err := keystore.Open(home, keystore.OpenOptions{PrincipalFromEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dec, err := st.DecryptKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}

	runOK(t, "--home", home, "key", "rotate", "k")
	runOK(t, "--home", home, "encrypt", "-k", "k", "-i", plain, "-o", msg)
	data, err := os.ReadFile(msg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.Inspect(bytes.NewReader(data), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info := keyring.DescribeEDK(h.EncryptedDataKeys[0]); info.Key != "k" || info.Version != 2 {
		t.Fatalf("the CLI encrypted under %+v, want k v2", info)
	}
	pt, _, err := envelope.DecryptBytes(ctx, data, dec, envelope.DecryptOptions{})
	if err != nil || string(pt) != "under v2" {
		t.Fatalf("keyring made before the rotation: %q, %v", pt, err)
	}
}
