package envelope_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
	"github.com/keystack/keystack/keyring"
)

type vectorKey struct {
	Type     string `json:"type"`
	KeyID    string `json:"key-id"`
	Encoding string `json:"encoding"`
	Material string `json:"material"`
}

type masterKey struct {
	Type        string `json:"type"`
	Key         string `json:"key"`
	ProviderID  string `json:"provider-id"`
	Algorithm   string `json:"encryption-algorithm"`
	Padding     string `json:"padding-algorithm"`
	PaddingHash string `json:"padding-hash"`
}

type vectorTest struct {
	Ciphertext string            `json:"ciphertext"`
	MasterKeys []masterKey       `json:"master-keys"`
	CMM        string            `json:"cmm"`
	Context    map[string]string `json:"encryption-context"`
	Result     struct {
		Output struct {
			Plaintext string `json:"plaintext"`
		} `json:"output"`
	} `json:"result"`
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readFileURI(t *testing.T, dir, uri string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(uri, "file://")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadVectors(t *testing.T, manifest string) (string, map[string]vectorKey, map[string]vectorTest) {
	dir := esdktest.VectorsDir(t)
	var keys struct {
		Keys map[string]vectorKey `json:"keys"`
	}
	loadJSON(t, filepath.Join(dir, "keys.json"), &keys)
	var m struct {
		Tests map[string]vectorTest `json:"tests"`
	}
	loadJSON(t, filepath.Join(dir, manifest), &m)
	return dir, keys.Keys, m.Tests
}

// vectorKeyring builds the raw keyring a manifest master key describes.
func vectorKeyring(t *testing.T, keys map[string]vectorKey, mk masterKey) envelope.Keyring {
	t.Helper()
	k, ok := keys[mk.Key]
	if !ok {
		t.Fatalf("key %q not in keys.json", mk.Key)
	}
	switch mk.Algorithm {
	case "aes":
		raw, err := base64.StdEncoding.DecodeString(k.Material)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := keyring.NewRawAES(mk.ProviderID, k.KeyID, raw)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	case "rsa":
		pad := map[string]keyring.RSAPadding{"sha1": keyring.RSAOAEPSHA1, "sha256": keyring.RSAOAEPSHA256,
			"sha384": keyring.RSAOAEPSHA384, "sha512": keyring.RSAOAEPSHA512}[mk.PaddingHash]
		if mk.Padding == "pkcs1" {
			pad = keyring.RSAPKCS1
		}
		var kr envelope.Keyring
		var err error
		if k.Type == "private" {
			priv, perr := keyring.ParseRSAPrivateKeyPEM([]byte(k.Material))
			if perr != nil {
				t.Fatal(perr)
			}
			kr, err = keyring.NewRawRSA(mk.ProviderID, k.KeyID, pad, nil, priv)
		} else {
			pub, perr := keyring.ParseRSAPublicKeyPEM([]byte(k.Material))
			if perr != nil {
				t.Fatal(perr)
			}
			kr, err = keyring.NewRawRSA(mk.ProviderID, k.KeyID, pad, pub, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	t.Fatalf("unsupported master key %+v", mk)
	return nil
}

func TestOfficialVectorsRaw(t *testing.T) {
	dir, keys, tests := loadVectors(t, "manifest.offline-raw-only.json")
	if len(tests) != 99 {
		t.Fatalf("manifest has %d tests, want 99", len(tests))
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var krs []envelope.Keyring
			for _, mk := range tc.MasterKeys {
				krs = append(krs, vectorKeyring(t, keys, mk))
			}
			kr := keyring.NewMulti(krs[0], krs[1:]...)
			msg := readFileURI(t, dir, tc.Ciphertext)
			want := readFileURI(t, dir, tc.Result.Output.Plaintext)
			opts := envelope.DecryptOptions{AllowLegacy: true, Context: tc.Context}
			got, hdr, err := envelope.DecryptBytes(context.Background(), msg, kr, opts)
			if err != nil {
				t.Fatalf("DecryptBytes: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
			}
			if hdr.HeaderLength <= 0 || hdr.HeaderLength >= len(msg) {
				t.Errorf("HeaderLength %d out of range", hdr.HeaderLength)
			}
			// The same vector through the streaming reader, one byte at a time.
			r, err := envelope.Decrypt(context.Background(), bytes.NewReader(msg), kr, opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(r); err != nil {
				t.Fatalf("streaming: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatal("streaming plaintext differs")
			}
			// Legacy suites must be refused unless allowed.
			if hdr.Version == 1 {
				if _, _, err := envelope.DecryptBytes(context.Background(), msg, kr, envelope.DecryptOptions{Context: tc.Context}); !errorsIs(err, envelope.ErrUnsupportedSuite) {
					t.Errorf("legacy without AllowLegacy: %v, want ErrUnsupportedSuite", err)
				}
			}
		})
	}
}

func TestOfficialVectorsKMSInspect(t *testing.T) {
	dir, keys, tests := loadVectors(t, "manifest.json")
	n := 0
	for name, tc := range tests {
		if tc.MasterKeys[0].Type != "aws-kms" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := readFileURI(t, dir, tc.Ciphertext)
			hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantARN := keys[tc.MasterKeys[0].Key].KeyID
			found := false
			for _, edk := range hdr.EncryptedDataKeys {
				if edk.ProviderID == "aws-kms" && strings.HasPrefix(string(edk.ProviderInfo), "arn:aws:kms:") {
					found = found || string(edk.ProviderInfo) == wantARN
				}
			}
			if !found {
				t.Fatalf("no aws-kms EDK with ARN %s in %+v", wantARN, hdr.EncryptedDataKeys)
			}
		})
	}
	if n != 33 {
		t.Fatalf("found %d KMS vectors, want 33", n)
	}
}
