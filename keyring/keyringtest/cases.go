package keyringtest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
)

func (s *suite) testRoundTrip(t *testing.T) {
	for _, st := range s.opts.Suites {
		t.Run(st.String(), func(t *testing.T) {
			enc, dec := s.pair(t)
			ec := testContext("round-trip")
			m := encrypt(t, enc, st, ec, nil)
			mustDecrypt(t, dec, st, ec, m.EncryptedDataKeys, m.DataKey)
		})
	}
}

func (s *suite) testGeneratedKey(t *testing.T) {
	kr := s.newKeyring(t)
	for _, st := range s.opts.Suites {
		a := encrypt(t, kr, st, testContext("gen"), nil).DataKey
		b := encrypt(t, kr, st, testContext("gen"), nil).DataKey
		if bytes.Equal(a, b) {
			t.Fatalf("%v: two generated data keys are equal", st)
		}
		if bytes.Equal(a, make([]byte, len(a))) {
			t.Fatalf("%v: generated data key is all zeros", st)
		}
	}
}

func (s *suite) testCallerDataKey(t *testing.T) {
	enc, dec := s.pair(t)
	for _, st := range s.opts.Suites {
		dk := randomBytes(t, st.DataKeyLen())
		ec := testContext("caller-key")
		m := encrypt(t, enc, st, ec, dk)
		if !bytes.Equal(m.DataKey, dk) {
			t.Fatalf("%v: OnEncrypt replaced the caller's data key", st)
		}
		mustDecrypt(t, dec, st, ec, m.EncryptedDataKeys, dk)
		bad := &envelope.EncryptionMaterials{Suite: st, DataKey: randomBytes(t, st.DataKeyLen()+1), PlaintextLength: -1}
		if err := enc.OnEncrypt(context.Background(), bad); err == nil {
			t.Fatalf("%v: OnEncrypt wrapped a data key of the wrong length", st)
		}
	}
}

// testKeepsExistingEDKs plays a child of a multi-keyring: the data key and
// another provider's EDK are already there and must stay.
func (s *suite) testKeepsExistingEDKs(t *testing.T) {
	kr := s.newKeyring(t)
	st := envelope.SuiteCommitted
	first := envelope.EncryptedDataKey{ProviderID: foreignProvider, ProviderInfo: []byte("k"), Ciphertext: []byte{1, 2, 3}}
	dk := randomBytes(t, st.DataKeyLen())
	m := &envelope.EncryptionMaterials{Suite: st, DataKey: bytes.Clone(dk), PlaintextLength: -1,
		EncryptedDataKeys: []envelope.EncryptedDataKey{first}}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(m.EncryptedDataKeys) < 2 || m.EncryptedDataKeys[0].ProviderID != foreignProvider ||
		!bytes.Equal(m.EncryptedDataKeys[0].Ciphertext, first.Ciphertext) {
		t.Fatalf("OnEncrypt did not append to the existing EDKs: %d EDKs", len(m.EncryptedDataKeys))
	}
	if !bytes.Equal(m.DataKey, dk) {
		t.Fatal("OnEncrypt replaced the data key a previous keyring set")
	}
}

func (s *suite) testWrongContext(t *testing.T) {
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	ec := testContext("wrong-context")
	m := encrypt(t, enc, st, ec, nil)
	wrongs := map[string]map[string]string{
		"changed value": {"purpose": "keyringtest", "case": "wrong-context!", "unicode": "ключ-🔑"},
		"extra pair":    {"purpose": "keyringtest", "case": "wrong-context", "unicode": "ключ-🔑", "x": "y"},
		"missing pair":  {"purpose": "keyringtest", "case": "wrong-context"},
		"empty":         nil,
	}
	for name, wrong := range wrongs {
		if s.opts.IgnoresContext {
			mustDecrypt(t, dec, st, wrong, m.EncryptedDataKeys, m.DataKey)
			continue
		}
		expectRefused(t, "context "+name, dec, st, wrong, m.EncryptedDataKeys, m.DataKey, false)
	}
}

// testSuiteMismatch unwraps a 32-byte data key for a suite that needs 16:
// the ESDK requires keyrings to check the unwrapped key's length.
func (s *suite) testSuiteMismatch(t *testing.T) {
	enc, dec := s.pair(t)
	ec := testContext("suite")
	m := encrypt(t, enc, envelope.SuiteCommitted, ec, nil)
	expectRefused(t, "32-byte key for a 16-byte suite", dec, envelope.Suite(0x0014), ec, m.EncryptedDataKeys, m.DataKey, false)
}

func (s *suite) testOtherKey(t *testing.T) {
	if s.opts.OtherKey == nil {
		t.Skip("no Options.OtherKey for this backend")
	}
	enc := s.newKeyring(t)
	other := s.opts.OtherKey(t)
	ec := testContext("other-key")
	m := encrypt(t, enc, envelope.SuiteCommitted, ec, nil)
	expectRefused(t, "other key", other, envelope.SuiteCommitted, ec, m.EncryptedDataKeys, m.DataKey, true)
}

// testCorruptedEDK inverts, in turn, bytes spread over each EDK's ciphertext
// and provider info (at most maxFlips positions each), then truncates it.
func (s *suite) testCorruptedEDK(t *testing.T) {
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	ec := testContext("corrupt")
	m := encrypt(t, enc, st, ec, nil)
	for _, info := range []bool{false, true} {
		n := maxFlips
		for _, e := range m.EncryptedDataKeys {
			field := e.Ciphertext
			if info {
				field = e.ProviderInfo
			}
			n = min(n, max(1, len(field)))
		}
		for i := range n {
			edks := flipAt(m.EncryptedDataKeys, info, i, n)
			expectRefused(t, fmt.Sprintf("flip %d/%d (provider info %v)", i, n, info), dec, st, ec, edks, m.DataKey, false)
		}
	}
	for _, cut := range []int{1, -1} {
		edks := cloneEDKs(m.EncryptedDataKeys)
		for k := range edks {
			if cut > 0 {
				edks[k].Ciphertext = edks[k].Ciphertext[:len(edks[k].Ciphertext)-1]
			} else {
				edks[k].Ciphertext = nil
			}
		}
		expectRefused(t, fmt.Sprintf("truncated ciphertext (%d)", cut), dec, st, ec, edks, m.DataKey, false)
	}
}

func (s *suite) testOversizedEDK(t *testing.T) {
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	ec := testContext("oversized")
	m := encrypt(t, enc, st, ec, nil)
	edks := cloneEDKs(m.EncryptedDataKeys)
	for k := range edks {
		edks[k].Ciphertext = append(edks[k].Ciphertext, make([]byte, oversize)...)
	}
	expectRefused(t, "oversized ciphertext", dec, st, ec, edks, m.DataKey, false)
}

// testForeignEDKs offers EDKs of a provider no backend owns, some of them
// malformed: the keyring must neither try them nor panic, and must still
// find its own EDK behind them.
func (s *suite) testForeignEDKs(t *testing.T) {
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	ec := testContext("foreign")
	m := encrypt(t, enc, st, ec, nil)
	foreign := []envelope.EncryptedDataKey{
		{ProviderID: foreignProvider, ProviderInfo: []byte("some-key"), Ciphertext: randomBytes(t, 48)},
		{ProviderID: foreignProvider},
		{ProviderID: foreignProvider, ProviderInfo: make([]byte, 70000), Ciphertext: make([]byte, 70000)},
		{ProviderID: "", ProviderInfo: []byte("x"), Ciphertext: []byte{0}},
	}
	nerr := expectRefused(t, "foreign EDKs only", dec, st, ec, foreign, nil, false)
	if nerr != nil {
		for _, a := range nerr.Attempts {
			if a.ProviderID == foreignProvider {
				t.Fatalf("keyring attempted an EDK of provider %q: %+v", foreignProvider, a)
			}
		}
	}
	mustDecrypt(t, dec, st, ec, append(cloneEDKs(foreign), m.EncryptedDataKeys...), m.DataKey)
}

// testDataKeyAlreadySet checks the contract that OnDecrypt leaves materials
// alone when an earlier keyring already unwrapped the data key.
func (s *suite) testDataKeyAlreadySet(t *testing.T) {
	kr := s.newKeyring(t)
	st := envelope.SuiteCommitted
	ec := testContext("already-set")
	m := encrypt(t, kr, st, ec, nil)
	preset := randomBytes(t, st.DataKeyLen())
	want := bytes.Clone(preset)
	dm := &envelope.DecryptionMaterials{Suite: st, EncryptionContext: ec, DataKey: preset}
	_ = kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys) // an error is allowed; a change is not
	if &dm.DataKey[0] != &preset[0] || !bytes.Equal(dm.DataKey, want) || dm.Suite != st || len(dm.EncryptionContext) != len(ec) {
		t.Fatal("OnDecrypt changed materials whose data key was already set")
	}
}

func (s *suite) testNoEDKs(t *testing.T) {
	kr := s.newKeyring(t)
	for _, edks := range [][]envelope.EncryptedDataKey{nil, {}} {
		expectRefused(t, "no EDKs", kr, envelope.SuiteCommitted, testContext("none"), edks, nil, false)
	}
}

// testCanceledContext requires only that a canceled context is either
// honored with an error or ignored with a correct result.
func (s *suite) testCanceledContext(t *testing.T) {
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	ec := testContext("canceled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &envelope.EncryptionMaterials{Suite: st, EncryptionContext: ec, PlaintextLength: -1}
	if err := enc.OnEncrypt(ctx, m); err == nil {
		mustDecrypt(t, dec, st, ec, m.EncryptedDataKeys, m.DataKey)
	}
	m = encrypt(t, enc, st, ec, nil)
	got, err := decrypt(ctx, dec, st, ec, m.EncryptedDataKeys)
	if err == nil && !bytes.Equal(got, m.DataKey) {
		t.Fatal("OnDecrypt with a canceled context unwrapped a wrong data key")
	}
}

func (s *suite) testEncryptOnly(t *testing.T) {
	if !s.opts.EncryptOnly {
		t.Skip("backend is not encrypt-only")
	}
	kr := s.newKeyring(t)
	ec := testContext("encrypt-only")
	m := encrypt(t, kr, envelope.SuiteCommitted, ec, nil)
	expectRefused(t, "encrypt-only keyring", kr, envelope.SuiteCommitted, ec, m.EncryptedDataKeys, m.DataKey, false)
}

// testConcurrent shares one keyring among concurrentWorkers goroutines that
// each run concurrentRounds round trips; run it with -race.
func (s *suite) testConcurrent(t *testing.T) {
	if s.opts.SkipConcurrency {
		t.Skip("Options.SkipConcurrency set")
	}
	enc, dec := s.pair(t)
	st := envelope.SuiteCommitted
	var wg sync.WaitGroup
	for w := range concurrentWorkers {
		wg.Go(func() {
			ec := testContext(fmt.Sprintf("worker-%d", w))
			for range concurrentRounds {
				m := &envelope.EncryptionMaterials{Suite: st, EncryptionContext: ec, PlaintextLength: -1}
				if err := enc.OnEncrypt(context.Background(), m); err != nil {
					t.Errorf("worker %d: OnEncrypt: %v", w, err)
					return
				}
				got, err := decrypt(context.Background(), dec, st, ec, m.EncryptedDataKeys)
				if err != nil || !bytes.Equal(got, m.DataKey) {
					t.Errorf("worker %d: round trip failed: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
