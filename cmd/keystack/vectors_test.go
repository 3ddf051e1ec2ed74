package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keystack/keystack/internal/esdktest"
)

type vectorManifest struct {
	Tests map[string]struct {
		Ciphertext string `json:"ciphertext"`
		MasterKeys []struct {
			Key string `json:"key"`
		} `json:"master-keys"`
		EncryptionContext map[string]string `json:"encryption-context"`
		Result            struct {
			Output struct {
				Plaintext string `json:"plaintext"`
			} `json:"output"`
		} `json:"result"`
	} `json:"tests"`
}

type vectorKeys struct {
	Keys map[string]struct {
		Material string `json:"material"`
	} `json:"keys"`
}

// TestOfficialVectors decrypts every raw-key vector with the CLI alone, as
// a newcomer would: init a keystore, import the manifest's keys from files,
// then "keystack decrypt" each ciphertext with its -k keys and -c context.
func TestOfficialVectors(t *testing.T) {
	dir := esdktest.VectorsDir(t)
	var man vectorManifest
	var keys vectorKeys
	readJSON(t, filepath.Join(dir, "manifest.offline-raw-only.json"), &man)
	readJSON(t, filepath.Join(dir, "keys.json"), &keys)
	if len(man.Tests) != 99 {
		t.Fatalf("manifest lists %d tests, want 99", len(man.Tests))
	}

	work := t.TempDir()
	t.Setenv("KEYSTACK_HOME", filepath.Join(work, "home"))
	t.Setenv("KEYSTACK_PASSPHRASE", "vector passphrase")
	aesFile := writeFile(t, work, "aes-256.b64", keys.Keys["aes-256"].Material)
	rsaFile := writeFile(t, work, "rsa-4096.pem", keys.Keys["rsa-4096-private"].Material)
	ns := "aws-raw-vectors-persistant"
	keystack(t, "init")
	keystack(t, "key", "import", "aes-256", "--aes-key-file", aesFile, "--namespace", ns, "--key-name", "aes-256")
	keystack(t, "key", "import", "rsa-4096-private", "--rsa-private-key-file", rsaFile,
		"--rsa-padding", "oaep-sha512", "--namespace", ns, "--key-name", "rsa-4096-private")
	keystack(t, "key", "import", "rsa-4096-public", "--rsa-private-key-file", rsaFile,
		"--rsa-padding", "oaep-sha256", "--namespace", ns, "--key-name", "rsa-4096-public")

	names := make([]string, 0, len(man.Tests))
	for name := range man.Tests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tc := man.Tests[name]
		t.Run(name, func(t *testing.T) {
			argv := []string{"decrypt", "--allow-legacy", "-i", fileURL(dir, tc.Ciphertext)}
			for _, mk := range tc.MasterKeys {
				argv = append(argv, "-k", mk.Key)
			}
			for k, v := range tc.EncryptionContext {
				argv = append(argv, "-c", k+"="+v)
			}
			out := filepath.Join(work, name+".out")
			keystack(t, append(argv, "-o", out)...)
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(fileURL(dir, tc.Result.Output.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// keystack runs the CLI in process exactly as main does, and fails the
// test unless it exits 0.
func keystack(t *testing.T, args ...string) {
	t.Helper()
	if code, _, stderr := runKeystack(args...); code != 0 {
		t.Fatalf("keystack %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr)
	}
}

func fileURL(dir, u string) string {
	return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(u, "file://")))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if content == "" {
		t.Fatalf("no key material for %s in keys.json", name)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
