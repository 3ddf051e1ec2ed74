package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/testclock"
	"github.com/keystack/keystack/policy"
)

func newFakeClock() *testclock.Clock { return testclock.New(fixedNow()) }

// newClockStore is an insecure store (no KDF: fast) on a fake clock.
func newClockStore(t *testing.T, opts OpenOptions) (*Store, *testclock.Clock) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := Init(dir, InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	opts.Now = clk.Now
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// threeVersions creates key "k" rotated twice: v1, v2 decrypt-only, v3 primary.
func threeVersions(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	mustCreate(t, s, "k")
	for range 2 {
		if _, err := s.RotateKey(ctx, "k", "setup"); err != nil {
			t.Fatal(err)
		}
	}
}

func versionOf(t *testing.T, ki *KeyInfo, v int) VersionInfo {
	t.Helper()
	for _, vi := range ki.Versions {
		if vi.Version == v {
			return vi
		}
	}
	t.Fatalf("no version %d in %+v", v, ki.Versions)
	return VersionInfo{}
}

func describe(t *testing.T, s *Store, name string) *KeyInfo {
	t.Helper()
	ki, err := s.DescribeKey(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ki
}

const week = 7 * 24 * time.Hour

// enterState puts version v of "k" into state from.
func enterState(t *testing.T, s *Store, clk *testclock.Clock, v int, from VersionState) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch from {
	case StateEnabled:
		_, err = s.EnableVersion(ctx, "k", v, "setup")
	case StateDisabled:
		_, err = s.DisableVersion(ctx, "k", v, "setup")
	case StatePendingDestruction:
		_, err = s.ScheduleVersionDestruction(ctx, "k", v, week, "setup")
	case StateDestroyed:
		if _, err = s.ScheduleVersionDestruction(ctx, "k", v, week, "setup"); err == nil {
			clk.Advance(week)
			_, err = s.DestroyDueVersions(ctx)
		}
	}
	if err != nil {
		t.Fatalf("entering %s: %v", from, err)
	}
	if got := versionOf(t, describe(t, s, "k"), v).State; got != from {
		t.Fatalf("setup: version %d is %s, want %s", v, got, from)
	}
}

type lifecycleOp struct {
	name  string
	event string
	do    func(s *Store, v int) (*KeyInfo, error)
}

var lifecycleOps = []lifecycleOp{
	{"enable", "enable", func(s *Store, v int) (*KeyInfo, error) { return s.EnableVersion(context.Background(), "k", v, "why") }},
	{"disable", "disable", func(s *Store, v int) (*KeyInfo, error) { return s.DisableVersion(context.Background(), "k", v, "why") }},
	{"decrypt-only", "decrypt-only", func(s *Store, v int) (*KeyInfo, error) { return s.SetDecryptOnly(context.Background(), "k", v, "why") }},
	{"schedule", "schedule-destruction", func(s *Store, v int) (*KeyInfo, error) {
		return s.ScheduleVersionDestruction(context.Background(), "k", v, week, "why")
	}},
	{"cancel", "cancel-destruction", func(s *Store, v int) (*KeyInfo, error) {
		return s.CancelVersionDestruction(context.Background(), "k", v, "why")
	}},
	{"set-primary", "set-primary", func(s *Store, v int) (*KeyInfo, error) { return s.SetPrimary(context.Background(), "k", v, "why") }},
}

// TestLifecycleTransitions applies every operation to a non-primary version
// in every state, and to the primary. want is the resulting state, "" for
// ErrIllegalTransition, and "=" for a no-op that records nothing.
func TestLifecycleTransitions(t *testing.T) {
	const illegal, noop = VersionState(""), VersionState("=")
	table := map[VersionState]map[string]VersionState{
		StateEnabled: {"enable": noop, "disable": StateDisabled, "decrypt-only": StateDecryptOnly,
			"schedule": StatePendingDestruction, "cancel": illegal, "set-primary": StateEnabled},
		StateDecryptOnly: {"enable": StateEnabled, "disable": StateDisabled, "decrypt-only": noop,
			"schedule": StatePendingDestruction, "cancel": illegal, "set-primary": illegal},
		StateDisabled: {"enable": StateEnabled, "disable": noop, "decrypt-only": StateDecryptOnly,
			"schedule": StatePendingDestruction, "cancel": illegal, "set-primary": illegal},
		StatePendingDestruction: {"enable": illegal, "disable": illegal, "decrypt-only": illegal,
			"schedule": illegal, "cancel": StateDisabled, "set-primary": illegal},
		StateDestroyed: {"enable": illegal, "disable": illegal, "decrypt-only": illegal,
			"schedule": illegal, "cancel": illegal, "set-primary": illegal},
		"primary": {"enable": noop, "disable": illegal, "decrypt-only": illegal,
			"schedule": illegal, "cancel": illegal, "set-primary": noop},
	}
	for from, row := range table {
		for _, op := range lifecycleOps {
			want := row[op.name]
			t.Run(string(from)+"/"+op.name, func(t *testing.T) {
				s, clk := newClockStore(t, OpenOptions{})
				threeVersions(t, s)
				v := 1
				if from == "primary" {
					v = 3
				} else if from != StateDecryptOnly {
					enterState(t, s, clk, v, from)
				}
				before := versionOf(t, describe(t, s, "k"), v)
				clk.Advance(time.Hour)
				ki, err := op.do(s, v)
				switch want {
				case illegal:
					if !errors.Is(err, ErrIllegalTransition) {
						t.Fatalf("err = %v, want ErrIllegalTransition", err)
					}
					if after := versionOf(t, describe(t, s, "k"), v); after.State != before.State || len(after.History) != len(before.History) {
						t.Fatalf("refused change still changed the version: %+v", after)
					}
					return
				case noop:
					if err != nil {
						t.Fatal(err)
					}
					if after := versionOf(t, ki, v); after.State != before.State || len(after.History) != len(before.History) {
						t.Fatalf("no-op changed the version: %+v", after)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				after := versionOf(t, ki, v)
				if after.State != want {
					t.Fatalf("state %s, want %s", after.State, want)
				}
				last := after.History[len(after.History)-1]
				if last.Action != op.event || !last.Time.Equal(clk.Now()) || !bytes.HasPrefix([]byte(last.Reason), []byte("why")) {
					t.Fatalf("last event %+v, want %s with reason at %v", last, op.event, clk.Now())
				}
				if (want == StatePendingDestruction) != !after.DestroyAt.IsZero() {
					t.Fatalf("DestroyAt %v in state %s", after.DestroyAt, want)
				}
				checkOnePrimary(t, ki)
			})
		}
	}
}

// checkOnePrimary asserts the primary exists and is enabled.
func checkOnePrimary(t *testing.T, ki *KeyInfo) {
	t.Helper()
	if p := versionOf(t, ki, ki.Primary); p.State != StateEnabled {
		t.Fatalf("primary %d is %s", ki.Primary, p.State)
	}
}

func TestLifecycleInvariants(t *testing.T) {
	ctx := context.Background()
	s, _ := newClockStore(t, OpenOptions{})
	threeVersions(t, s)
	if _, err := s.EnableVersion(ctx, "k", 9, ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := s.EnableVersion(ctx, "nope", 1, ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.ScheduleVersionDestruction(ctx, "k", 1, week-time.Second, ""); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("waiting below the minimum: %v", err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "k", 4, ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("min decryption version that does not exist: %v", err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "k", 2, "cut off v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableVersion(ctx, "k", 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPrimary(ctx, "k", 1, ""); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("primary below min decryption version: %v", err)
	}
	if _, err := s.EnableVersion(ctx, "k", 2, ""); err != nil {
		t.Fatal(err)
	}
	ki, err := s.SetPrimary(ctx, "k", 2, "roll back")
	if err != nil {
		t.Fatal(err)
	}
	if ki.Primary != 2 || versionOf(t, ki, 3).State != StateEnabled {
		t.Fatalf("after SetPrimary(2): %+v", ki)
	}
	checkOnePrimary(t, ki)
	if _, err := s.SetMinDecryptionVersion(ctx, "k", 3, ""); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("min decryption above the new primary: %v", err)
	}
	// The old primary is an ordinary enabled version now.
	if _, err := s.DisableVersion(ctx, "k", 3, ""); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleShortWaitOption(t *testing.T) {
	s, _ := newClockStore(t, OpenOptions{MinDestructionWait: time.Minute})
	threeVersions(t, s)
	ki, err := s.ScheduleVersionDestruction(context.Background(), "k", 1, time.Minute, "test")
	if err != nil {
		t.Fatal(err)
	}
	if v := versionOf(t, ki, 1); !v.DestroyAt.Equal(fixedNow().Add(time.Minute)) {
		t.Fatalf("DestroyAt %v", v.DestroyAt)
	}
}

// encryptUnder encrypts a message with the store's current primary of name.
func encryptUnder(t *testing.T, s *Store, name string) []byte {
	t.Helper()
	ctx := context.Background()
	kr, err := s.EncryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("lifecycle plaintext"), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// decryptWith decrypts msg with the store's decrypt keyring for name, or
// for every key when name is "".
func decryptWith(s *Store, name string, msg []byte) error {
	ctx := context.Background()
	var names []string
	if name != "" {
		names = []string{name}
	}
	kr, err := s.DecryptKeyring(ctx, names...)
	if err != nil {
		return err
	}
	pt, _, err := envelope.DecryptBytes(ctx, msg, kr, envelope.DecryptOptions{})
	if err == nil && string(pt) != "lifecycle plaintext" {
		return errors.New("wrong plaintext")
	}
	return err
}

func TestDestroyDueVersions(t *testing.T) {
	ctx := context.Background()
	s, clk := newClockStore(t, OpenOptions{})
	mustCreate(t, s, "k")
	mustCreate(t, s, "other")
	old := encryptUnder(t, s, "k")
	if _, err := s.RotateKey(ctx, "k", "rotate"); err != nil {
		t.Fatal(err)
	}
	fresh := encryptUnder(t, s, "k")
	if err := decryptWith(s, "k", old); err != nil {
		t.Fatalf("decrypt-only v1: %v", err)
	}
	if _, err := s.ScheduleVersionDestruction(ctx, "k", 1, week, "retire"); err != nil {
		t.Fatal(err)
	}
	if err := decryptWith(s, "k", old); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("pending version decrypted: %v", err)
	}
	clk.Advance(week - time.Second)
	if got, err := s.DestroyDueVersions(ctx); err != nil || len(got) != 0 {
		t.Fatalf("before DestroyAt: %v, %v", got, err)
	}
	if materialOf(t, s, "k", 1) == nil {
		t.Fatal("material gone before DestroyAt")
	}
	clk.Advance(time.Second)
	got, err := s.DestroyDueVersions(ctx)
	if err != nil || len(got) != 1 || got[0] != (DestroyedVersion{Key: "k", Version: 1, At: clk.Now()}) {
		t.Fatalf("DestroyDueVersions = %+v, %v", got, err)
	}
	if m := materialOf(t, s, "k", 1); m != nil {
		t.Fatalf("destroyed version still has material in keystore.json: %d bytes", len(m))
	}
	if materialOf(t, s, "k", 2) == nil || materialOf(t, s, "other", 1) == nil {
		t.Fatal("other versions lost their material")
	}
	reopened, err := Open(s.Dir(), OpenOptions{})
	if err != nil {
		t.Fatalf("reopening after destruction: %v", err)
	}
	if err := decryptWith(reopened, "k", old); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("destroyed version decrypted: %v", err)
	}
	if err := decryptWith(reopened, "k", fresh); err != nil {
		t.Fatalf("primary after destruction: %v", err)
	}
	ki := describe(t, reopened, "k")
	if last := versionOf(t, ki, 1).History; last[len(last)-1].Action != "destroy" {
		t.Fatalf("history %+v", last)
	}
	if got, err := s.DestroyDueVersions(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second pass: %v, %v", got, err)
	}
}

// materialOf reads version v's material straight from keystore.json.
func materialOf(t *testing.T, s *Store, name string, v int) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Dir(), metaFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys map[string]struct {
			Versions []struct {
				Version  int    `json:"version"`
				Material []byte `json:"material"`
			} `json:"versions"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, vr := range f.Keys[name].Versions {
		if vr.Version == v {
			return vr.Material
		}
	}
	t.Fatalf("no version %d of %q in keystore.json", v, name)
	return nil
}

func TestMinDecryptionVersion(t *testing.T) {
	ctx := context.Background()
	s, clk := newClockStore(t, OpenOptions{})
	mustCreate(t, s, "k")
	old := encryptUnder(t, s, "k")
	if _, err := s.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	fresh := encryptUnder(t, s, "k")
	clk.Advance(time.Minute)
	ki, err := s.SetMinDecryptionVersion(ctx, "k", 2, "v1 compromised")
	if err != nil {
		t.Fatal(err)
	}
	ev := versionOf(t, ki, 2).History
	if ki.MinDecryptVersion != 2 || ev[len(ev)-1] != (Event{Time: clk.Now(), Action: "min-decryption-version", Reason: "v1 compromised"}) {
		t.Fatalf("after SetMinDecryptionVersion: min %d, history %+v", ki.MinDecryptVersion, ev)
	}
	if err := decryptWith(s, "k", old); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("v1 below the minimum decrypted: %v", err)
	}
	if err := decryptWith(s, "", fresh); err != nil { // every-key form honours it too
		t.Fatal(err)
	}
	if err := decryptWith(s, "", old); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("every-key keyring decrypted v1: %v", err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "k", 1, "lifted"); err != nil {
		t.Fatal(err)
	}
	if err := decryptWith(s, "k", old); err != nil {
		t.Fatalf("after lifting the minimum: %v", err)
	}
}

func TestRotationSettingsPersist(t *testing.T) {
	ctx := context.Background()
	s, clk := newClockStore(t, OpenOptions{})
	mustCreate(t, s, "k")
	rs := &RotationSettings{Every: 30 * 24 * time.Hour, Jitter: time.Hour, RetireAfter: 90 * 24 * time.Hour,
		OnSuccessCommand: []string{"/bin/true", "--ok"}, OnFailureCommand: []string{"/bin/false"},
		WebhookURL: "https://hooks.example/rotate?token=secret"}
	if _, err := s.SetRotationSettings(ctx, "k", rs); err != nil {
		t.Fatal(err)
	}
	rs.OnSuccessCommand[0] = "/changed" // the store keeps its own copy
	reopened, err := Open(s.Dir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ki := describe(t, reopened, "k")
	if got := ki.Rotation; got == nil || got.Every != 30*24*time.Hour || got.OnSuccessCommand[0] != "/bin/true" ||
		got.WebhookURL != "https://hooks.example/rotate?token=secret" || got.RetireAfter != 90*24*time.Hour {
		t.Fatalf("settings after reopen: %+v", got)
	}
	ev := versionOf(t, ki, 1).History
	if last := ev[len(ev)-1]; last.Action != "rotation-settings" || bytes.Contains([]byte(last.Reason), []byte("secret")) {
		t.Fatalf("settings event %+v", last)
	}
	if !ki.LastRotated.IsZero() {
		t.Fatalf("LastRotated %v before any rotation", ki.LastRotated)
	}
	clk.Advance(time.Hour)
	if ki, err = s.RotateKey(ctx, "k", ""); err != nil || !ki.LastRotated.Equal(clk.Now()) || ki.Rotation == nil {
		t.Fatalf("after rotation: %+v, %v", ki, err)
	}
	bad := map[string]struct {
		rs   *RotationSettings
		want error
	}{
		"negative":         {&RotationSettings{Every: -1}, ErrInvalidOptions},
		"jitter >= every":  {&RotationSettings{Every: time.Hour, Jitter: time.Hour}, ErrInvalidOptions},
		"jitter no period": {&RotationSettings{Jitter: time.Hour}, ErrInvalidOptions},
		"bad webhook":      {&RotationSettings{Every: time.Hour, WebhookURL: "ftp://x/secret"}, ErrInvalidOptions},
		"empty command":    {&RotationSettings{Every: time.Hour, OnSuccessCommand: []string{""}}, ErrInvalidOptions},
		"kms short":        {&RotationSettings{Every: 10 * 24 * time.Hour, KMSAutomatic: true}, ErrInvalidOptions},
		"kms on local":     {&RotationSettings{Every: 90 * 24 * time.Hour, KMSAutomatic: true}, ErrNotSupported},
	}
	for name, c := range bad {
		_, err := s.SetRotationSettings(ctx, "k", c.rs)
		if !errors.Is(err, c.want) || bytes.Contains([]byte(err.Error()), []byte("secret")) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if ki, err = s.SetRotationSettings(ctx, "k", nil); err != nil || ki.Rotation != nil {
		t.Fatalf("removing settings: %+v, %v", ki, err)
	}
}

func TestLockedRotate(t *testing.T) {
	ctx := context.Background()
	s, _ := newClockStore(t, OpenOptions{})
	mustCreate(t, s, "k")
	l, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ki, err := l.RotateKey(ctx, "k", "under lock")
	if err != nil || ki.Primary != 2 {
		t.Fatalf("Locked.RotateKey: %+v, %v", ki, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.RotateKey(short, "k", "contender"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a writer got past the held lock: %v", err)
	}
	keys, err := l.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Primary != 2 {
		t.Fatalf("Locked.ListKeys: %+v, %v", keys, err)
	}
	if _, err := l.DisableVersion(ctx, "k", 2, "retire"); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("Locked.DisableVersion of the primary: %v", err)
	}
	ki, err = l.DisableVersion(ctx, "k", 1, "retired")
	if v1 := versionOf(t, ki, 1); err != nil || v1.State != StateDisabled || v1.History[len(v1.History)-1].Reason != "retired" {
		t.Fatalf("Locked.DisableVersion: %+v, %v", ki, err)
	}
	l.Unlock()
	l.Unlock() // idempotent
	if _, err := l.RotateKey(ctx, "k", ""); err == nil {
		t.Fatal("Locked.RotateKey after Unlock succeeded")
	}
	if _, err := s.RotateKey(ctx, "k", "after unlock"); err != nil {
		t.Fatal(err)
	}
}

// denyAll refuses every request, recording what it was asked.
type denyAll struct{ asked []policy.Request }

var errDenied = errors.New("denied")

func (d *denyAll) Authorize(_ context.Context, r policy.Request) error {
	d.asked = append(d.asked, r)
	return errDenied
}

func TestLifecycleAuthorized(t *testing.T) {
	ctx := context.Background()
	s, _ := newClockStore(t, OpenOptions{})
	threeVersions(t, s)
	d := &denyAll{}
	g, enf, err := gatewire.Open[gate.AuditDestination, *gate.Gate](ctx, nil, nil, gatewire.Options{Authorizer: d, Principal: "user:mallory"})
	if err != nil {
		t.Fatal(err)
	}
	defer func(old *gate.Gate, oldEnf gatewire.Enforcer) { s.gate, s.enf = old, oldEnf }(s.gate, s.enf) // closed with s
	s.gate, s.enf, s.principal = g, enf, "user:mallory"
	for _, op := range lifecycleOps {
		if _, err := op.do(s, 1); !errors.Is(err, errDenied) {
			t.Errorf("%s: %v, want the authorizer's refusal", op.name, err)
		}
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "k", 2, ""); !errors.Is(err, errDenied) {
		t.Errorf("SetMinDecryptionVersion: %v", err)
	}
	if _, err := s.RotateKey(ctx, "k", ""); !errors.Is(err, errDenied) {
		t.Errorf("RotateKey: %v", err)
	}
	if _, err := s.SetRotationSettings(ctx, "k", nil); !errors.Is(err, errDenied) {
		t.Errorf("SetRotationSettings: %v", err)
	}
	l, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.DisableVersion(ctx, "k", 1, "retired"); !errors.Is(err, errDenied) {
		t.Errorf("Locked.DisableVersion: %v", err)
	}
	l.Unlock()
	for _, r := range d.asked {
		if r.Principal != "user:mallory" || r.Resource != "key/k" {
			t.Errorf("request %+v", r)
		}
	}
	s.enf = nil // DescribeKey is authorized too; look with the checks off
	if ki := describe(t, s, "k"); ki.Primary != 3 || versionOf(t, ki, 1).State != StateDecryptOnly {
		t.Fatalf("refused operations changed the key: %+v", ki)
	}
}

// TestDestroyNeedsBackendForHSMObjects keeps a pkcs11 version pending when
// its backend cannot destroy token objects, and destroys a local one anyway.
func TestDestroyNeedsBackendForHSMObjects(t *testing.T) {
	ctx := context.Background()
	uri1, uri2 := "pkcs11:token=t;object=h%2Fv1", "pkcs11:token=t;object=h%2Fv2"
	s, clk := newClockStore(t, OpenOptions{})
	s.backends = map[string]Backend{BackendPKCS11: fakeBackend{}}
	if _, err := s.CreateKey(ctx, "h", CreateKeyOptions{Backend: BackendPKCS11, Ref: uri1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKeyTo(ctx, "h", uri2, "new object"); err != nil {
		t.Fatal(err)
	}
	threeVersions(t, s)
	for _, name := range []string{"h", "k"} {
		if _, err := s.ScheduleVersionDestruction(ctx, name, 1, week, ""); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(week)
	got, err := s.DestroyDueVersions(ctx)
	if !errors.Is(err, ErrNotSupported) || len(got) != 1 || got[0].Key != "k" {
		t.Fatalf("DestroyDueVersions = %+v, %v", got, err)
	}
	if st := versionOf(t, describe(t, s, "h"), 1).State; st != StatePendingDestruction {
		t.Fatalf("pkcs11 version without a destroyer is %s", st)
	}
}

// TestSharedExternalVersionCannotBeTurnedOffAlone: versions of one external
// key (a KMS key rotated on demand) decrypt each other's messages, so
// disabling one or cutting it off with a minimum decryption version is
// refused while another decrypts through the same key; local versions and
// versions on their own external keys are unaffected.
func TestSharedExternalVersionCannotBeTurnedOffAlone(t *testing.T) {
	ctx := context.Background()
	arn := "arn:aws:kms:us-east-1:111122223333:key/k1"
	arn2 := "arn:aws:kms:us-east-1:111122223333:key/k2"
	s := newTestStore(t)
	rot := &onDemandFake{fakeBackend: fakeBackend{keys: map[string]envelope.Keyring{
		arn: newTestAES(t, "kms", 32), arn2: newTestAES(t, "kms2", 32)}}}
	s.backends = map[string]Backend{BackendAWSKMS: rot}
	if _, err := s.CreateKey(ctx, "kms", CreateKeyOptions{Backend: BackendAWSKMS, Ref: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, "kms", ""); err != nil { // v2 shares the ARN
		t.Fatal(err)
	}
	if _, err := s.DisableVersion(ctx, "kms", 1, ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("disabling a version sharing its ARN: %v", err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "kms", 2, ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("min version above a version sharing its ARN: %v", err)
	}
	if _, err := s.SetDecryptOnly(ctx, "kms", 1, ""); err != nil {
		t.Fatalf("decrypt-only still decrypts, so it is allowed: %v", err)
	}
	// Retirement would disable a superseded version alone at every pass:
	// refused when set, the settings unchanged.
	if _, err := s.SetRotationSettings(ctx, "kms", &RotationSettings{Every: time.Hour, RetireAfter: time.Hour}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("retire-after on an aws-kms key: %v", err)
	}
	if ki, err := s.DescribeKey(ctx, "kms"); err != nil || ki.Rotation != nil {
		t.Fatalf("settings after the refusal: %+v, %v", ki, err)
	}
	// Moved to another ARN, v3 differs: a minimum version turns off v1 and
	// v2 together, but neither alone.
	if _, err := s.RotateKeyTo(ctx, "kms", arn2, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "kms", 3, ""); err != nil {
		t.Fatalf("min version 3 turns off both versions of the first ARN: %v", err)
	}
	if _, err := s.SetMinDecryptionVersion(ctx, "kms", 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisableVersion(ctx, "kms", 2, ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("disabling v2 while v1 decrypts through its ARN: %v", err)
	}
	if _, err := s.DisableVersion(ctx, "kms", 1, ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("disabling v1 while v2 decrypts through its ARN: %v", err)
	}
}
