package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// TestPyJSON: records are byte for byte what Python's
// json.dumps(obj, sort_keys=True) writes (the golden line was produced by
// CPython 3 from the same object).
func TestPyJSON(t *testing.T) {
	obj := map[string]any{
		"b":    []any{1, nil, "x"},
		"a":    map[string]any{"z": "\u00fc\U0001F600\n\t\"\\\x7f\x01/<>&", "é": "ä", "A": "", "\u2028": "x"},
		"mode": "encrypt", "n": 0,
	}
	const want = `{"a": {"A": "", "z": "\u00fc\ud83d\ude00\n\t\"\\\u007f\u0001/<>&", "\u00e9": "\u00e4", "\u2028": "x"}, "b": [1, null, "x"], "mode": "encrypt", "n": 0}`
	var b bytes.Buffer
	pyJSON(&b, obj)
	if b.String() != want {
		t.Fatalf("got  %s\nwant %s", b.String(), want)
	}
}

// TestMetadataRecord: a record's header holds what the message's header
// holds, in the AWS Encryption CLI's field names and encodings.
func TestMetadataRecord(t *testing.T) {
	kr1, _ := keyring.NewRawAES("zz", "b", make([]byte, 32))
	kr2, _ := keyring.NewRawAES("aa", "a", make([]byte, 32))
	msg, err := envelope.EncryptBytes(context.Background(), []byte("x"), keyring.NewMulti(kr1, kr2),
		envelope.EncryptOptions{Context: map[string]string{"k": "v"}, FrameLength: 512})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	mw := &metadataWriter{w: f, f: f}
	if err := mw.write("decrypt", "in.ks", "-", h); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	data, _ := os.ReadFile(path)
	var rec struct {
		Mode, Input, Output string
		Header              struct {
			Version       string            `json:"version"`
			Algorithm     string            `json:"algorithm"`
			MessageID     string            `json:"message_id"`
			CommitmentKey string            `json:"commitment_key"`
			ContentType   int               `json:"content_type"`
			FrameLength   int               `json:"frame_length"`
			Context       map[string]string `json:"encryption_context"`
			EDKs          []struct {
				EDK string `json:"encrypted_data_key"`
				KP  struct {
					ProviderID string `json:"provider_id"`
					KeyInfo    string `json:"key_info"`
				} `json:"key_provider"`
			} `json:"encrypted_data_keys"`
			Type  *int `json:"type"`
			IVLen *int `json:"header_iv_length"`
		}
		HeaderAuth struct{ IV, Tag string } `json:"header_auth"`
	}
	if err := json.Unmarshal(data, &rec); err != nil || !bytes.HasSuffix(data, []byte("}\n")) {
		t.Fatalf("%v: %s", err, data)
	}
	abs, _ := filepath.Abs("in.ks")
	b := func(x []byte) string { return base64.StdEncoding.EncodeToString(x) }
	hd := rec.Header
	switch {
	case rec.Mode != "decrypt" || rec.Input != abs || rec.Output != "<stdout>":
		t.Errorf("mode/input/output: %+v", rec)
	case hd.Version != "2.0" || hd.Algorithm != "AES_256_GCM_HKDF_SHA512_COMMIT_KEY" || hd.MessageID != b(h.MessageID):
		t.Errorf("version/algorithm/id: %+v", hd)
	case hd.CommitmentKey != b(h.CommitKey()) || hd.ContentType != 2 || hd.FrameLength != 512 || hd.IVLen != nil || hd.Type != nil:
		t.Errorf("commitment/content/frame: %+v", hd)
	case len(hd.Context) != 1 || hd.Context["k"] != "v":
		t.Errorf("context: %v", hd.Context)
	case rec.HeaderAuth.IV != b(make([]byte, 12)) || rec.HeaderAuth.Tag != b(h.AuthTag()):
		t.Errorf("header_auth: %+v", rec.HeaderAuth)
	case len(hd.EDKs) != 2 || hd.EDKs[0].KP.ProviderID != b([]byte("aa")) || hd.EDKs[1].KP.ProviderID != b([]byte("zz")):
		t.Errorf("EDKs not sorted by provider: %+v", hd.EDKs)
	}
	for _, e := range h.EncryptedDataKeys {
		i := slices.IndexFunc(hd.EDKs, func(x struct {
			EDK string `json:"encrypted_data_key"`
			KP  struct {
				ProviderID string `json:"provider_id"`
				KeyInfo    string `json:"key_info"`
			} `json:"key_provider"`
		}) bool {
			return x.EDK == b(e.Ciphertext) && x.KP.KeyInfo == b(e.ProviderInfo)
		})
		if i < 0 {
			t.Errorf("EDK %s missing from the record", e.ProviderID)
		}
	}
}

// TestShlexSplit: lines split as Python's shlex (posix, whitespace_split,
// escapedquotes "'\"") splits them; the expected words were produced by
// CPython 3 from the same lines.
func TestShlexSplit(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{`-c "x=y z" 'q r' `, []string{"-c", "x=y z", "q r"}},
		{`a#b c`, []string{"a"}},
		{`"a#b" c # d`, []string{"a#b", "c"}},
		{`a\ b`, []string{"a b"}},
		{`"a\"b" 'c\'d' `, []string{`a"b`, "c'd"}},
		{`"a\nb" 'c\xd' `, []string{`a\nb`, `c\xd`}},
		{`"" '' x`, []string{"", "", "x"}},
		{`a"b c"d`, []string{"ab cd"}},
		{"\ta\t", []string{"a"}},
		{`x\#y`, []string{"x#y"}},
		{"", nil},
	}
	for _, tc := range cases {
		got, err := shlexSplit(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("shlexSplit(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	if _, err := shlexSplit(`"abc`); err != errNoClosingQuote {
		t.Errorf("unclosed quote: %v", err)
	}
	if _, err := shlexSplit(`a\`); err != errNoEscaped {
		t.Errorf("trailing backslash: %v", err)
	}
}

// TestExpandVarsUser: $VAR and ${VAR} expand, unset ones stay; only a
// leading ~ expands.
func TestExpandVarsUser(t *testing.T) {
	t.Setenv("KS_T", "v")
	t.Setenv("HOME", "/home/x/")
	for in, want := range map[string]string{
		"$KS_T/${KS_T}": "v/v", "$KS_UNSET_Z": "$KS_UNSET_Z", "a$": "a$", "${KS_UNSET_Z}": "${KS_UNSET_Z}",
	} {
		if got := expandVars(in); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"~": "/home/x", "~/a": "/home/x/a", "a~": "a~", "x=~/a": "x=~/a"} {
		if got := expandUser(in); got != want {
			t.Errorf("expandUser(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClosest: typos within reach are suggested, unrelated words not.
func TestClosest(t *testing.T) {
	names := []string{"encrypt", "decrypt", "inspect", "key"}
	for typed, want := range map[string]string{"encrpyt": "encrypt", "decryp": "decrypt", "kye": "key", "zzzzzz": "", "k": ""} {
		if got := closest(typed, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", typed, got, want)
		}
	}
	if levenshtein("kitten", "sitting") != 3 || levenshtein("", "abc") != 3 || levenshtein("ü", "u") != 1 {
		t.Error("levenshtein")
	}
}
