package envelope_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// keystack's own fixed vectors: messages written once by this package and
// committed, so later versions must keep decrypting them.
const fixedDir = "../testdata/vectors"

type fixedKeys struct {
	AESKeyHex     string `json:"aes-256-key-hex"`
	AESNamespace  string `json:"aes-namespace"`
	AESName       string `json:"aes-key-name"`
	RSAPrivatePEM string `json:"rsa-2048-private-pem"`
	RSANamespace  string `json:"rsa-namespace"`
	RSAName       string `json:"rsa-key-name"`
	RSAPadding    string `json:"rsa-padding"`
}

type fixedVector struct {
	File               string            `json:"file"`
	Suite              string            `json:"suite"`
	FrameLength        int               `json:"frame-length"`
	Keys               []string          `json:"keys"` // "aes", "rsa"
	Context            map[string]string `json:"encryption-context"`
	RequiredKeys       []string          `json:"required-context-keys,omitempty"`
	PlaintextLength    int               `json:"plaintext-length"`
	PlaintextSHA256Hex string            `json:"plaintext-sha256"`
}

type fixedManifest struct {
	Description string                 `json:"description"`
	Keys        fixedKeys              `json:"keys"`
	Vectors     map[string]fixedVector `json:"vectors"`
}

func (k fixedKeys) keyring(t *testing.T, names []string) envelope.Keyring {
	t.Helper()
	var krs []envelope.Keyring
	for _, n := range names {
		switch n {
		case "aes":
			raw, err := hex.DecodeString(k.AESKeyHex)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.NewRawAES(k.AESNamespace, k.AESName, raw)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		case "rsa":
			priv, err := keyring.ParseRSAPrivateKeyPEM([]byte(k.RSAPrivatePEM))
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.NewRawRSA(k.RSANamespace, k.RSAName, keyring.RSAPadding(k.RSAPadding), nil, priv)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		default:
			t.Fatalf("unknown key %q", n)
		}
	}
	return keyring.NewMulti(krs[0], krs[1:]...)
}

func TestFixedVectors(t *testing.T) {
	var m fixedManifest
	loadJSON(t, filepath.Join(fixedDir, "manifest.json"), &m)
	if len(m.Vectors) == 0 {
		t.Fatal("no fixed vectors in the manifest")
	}
	for name, v := range m.Vectors {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg, err := os.ReadFile(filepath.Join(fixedDir, v.File))
			if err != nil {
				t.Fatal(err)
			}
			// Each key alone must decrypt.
			for _, k := range v.Keys {
				pt, hdr, err := envelope.DecryptBytes(bg, msg, m.Keys.keyring(t, []string{k}), envelope.DecryptOptions{Context: v.Context})
				if err != nil {
					t.Fatalf("key %s: %v", k, err)
				}
				sum := sha256.Sum256(pt)
				if len(pt) != v.PlaintextLength || hex.EncodeToString(sum[:]) != v.PlaintextSHA256Hex {
					t.Fatalf("key %s: plaintext differs", k)
				}
				if hdr.Suite.String() != v.Suite || hdr.FrameLength != uint32(v.FrameLength) {
					t.Fatalf("header says %v/%d, manifest %s/%d", hdr.Suite, hdr.FrameLength, v.Suite, v.FrameLength)
				}
			}
		})
	}
}

// TestGenerateFixedVectors rewrites testdata/vectors. It runs only with
// KEYSTACK_GEN_VECTORS=1; the files are meant to be written once.
func TestGenerateFixedVectors(t *testing.T) {
	if os.Getenv("KEYSTACK_GEN_VECTORS") != "1" {
		t.Skip("set KEYSTACK_GEN_VECTORS=1 to regenerate testdata/vectors")
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	m := fixedManifest{
		Description: "keystack fixed vectors (ESDK message format v2). TEST KEYS ONLY. Plaintexts are not stored; see plaintext-sha256.",
		Keys: fixedKeys{AESKeyHex: hex.EncodeToString(testAESKey(42)), AESNamespace: "keystack-vectors", AESName: "aes-256",
			RSAPrivatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			RSANamespace:  "keystack-vectors", RSAName: "rsa-2048", RSAPadding: string(keyring.RSAOAEPSHA256)},
		Vectors: map[string]fixedVector{},
	}
	nonBMP := map[string]string{"\U0001F511 key": "val \U0001F600", "\uFFFF": "bmp", "plain": "ascii"}
	shapes := []struct {
		name     string
		frame, n int
		keys     []string
		ec       map[string]string
		required []string
	}{
		{"empty", 4096, 0, []string{"aes"}, nil, nil},
		{"one-frame", 4096, 1000, []string{"aes"}, map[string]string{"purpose": "fixed vector"}, nil},
		{"exact-multiple", 256, 1024, []string{"aes"}, nil, nil},
		{"many-frames", 256, 10*256 + 3, []string{"aes", "rsa"}, map[string]string{"a": "1", "b": "2"}, nil},
		{"non-bmp-context", 512, 700, []string{"aes"}, nonBMP, nil},
		{"required-context", 512, 700, []string{"rsa", "aes"}, map[string]string{"tenant": "acme", "stored": "yes"}, []string{"tenant"}},
		{"frame-1", 1, 5, []string{"aes"}, nil, nil},
	}
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		for _, s := range shapes {
			name := fmt.Sprintf("%04x-%s", uint16(suite), s.name)
			pt := pattern(s.n)
			msg, err := envelope.EncryptBytes(bg, pt, m.Keys.keyring(t, s.keys), envelope.EncryptOptions{
				Suite: suite, FrameLength: s.frame, Context: s.ec, RequiredContextKeys: s.required})
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(pt)
			m.Vectors[name] = fixedVector{File: name + ".bin", Suite: suite.String(), FrameLength: s.frame, Keys: s.keys,
				Context: s.ec, RequiredKeys: s.required, PlaintextLength: s.n, PlaintextSHA256Hex: hex.EncodeToString(sum[:])}
			if err := os.WriteFile(filepath.Join(fixedDir, name+".bin"), msg, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixedDir, "manifest.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
