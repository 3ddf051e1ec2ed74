package rotation

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/testclock"
	"github.com/keystack/keystack/keystore"
)

// newAdapterStore is an insecure local store on clk.
func newAdapterStore(t *testing.T, clk *testclock.Clock) *keystore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(dir, keystore.OpenOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func createWith(t *testing.T, st *keystore.Store, name string, rs *keystore.RotationSettings) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateKey(ctx, name, keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if rs != nil {
		if _, err := st.SetRotationSettings(ctx, name, rs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreAdapterRunOnce runs the engine over a real store: the due key is
// rotated once, with its command and webhook hooks told; the others are not.
func TestStoreAdapterRunOnce(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	st := newAdapterStore(t, clk)
	var mu sync.Mutex
	var posted []fields
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f fields
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		posted = append(posted, f)
		mu.Unlock()
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "hook.out")
	createWith(t, st, "due", &keystore.RotationSettings{Every: 30 * day, Jitter: day,
		OnSuccessCommand: []string{"/bin/sh", "-c", `echo "$KEYSTACK_EVENT $KEYSTACK_KEY $KEYSTACK_NEW_VERSION" >> "$0"`, out},
		WebhookURL:       srv.URL + "/rotated"})
	createWith(t, st, "later", &keystore.RotationSettings{Every: 90 * day})
	createWith(t, st, "manual", nil)
	clk.Advance(31 * day)

	r := &Runner{Store: st, Now: clk.Now}
	rep, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rotated) != 1 || rep.Rotated[0].Key != "due" || rep.Rotated[0].NewVersion != 2 ||
		len(rep.NotDue) != 1 || rep.NotDue[0].Key != "later" || len(rep.Failed) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	ki, err := st.DescribeKey(ctx, "due")
	if err != nil {
		t.Fatal(err)
	}
	ev := ki.Versions[1].History[0]
	if ki.Primary != 2 || !ki.LastRotated.Equal(clk.Now()) || !strings.HasPrefix(ev.Reason, "scheduled rotation") {
		t.Fatalf("rotated key: %+v", ki)
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != "success due 2\n" {
		t.Fatalf("command hook wrote %q, %v", got, err)
	}
	mu.Lock()
	if len(posted) != 1 || posted[0].Key != "due" || posted[0].NewVersion != 2 || posted[0].Event != "success" {
		t.Fatalf("webhook got %+v", posted)
	}
	mu.Unlock()

	// Idempotent: a second pass at the same time rotates nothing.
	rep, err = r.RunOnce(ctx)
	if err != nil || len(rep.Rotated) != 0 || len(rep.NotDue) != 2 {
		t.Fatalf("second pass: %+v, %v", rep, err)
	}
	for _, name := range []string{"later", "manual"} {
		if ki, err := st.DescribeKey(ctx, name); err != nil || ki.Primary != 1 {
			t.Fatalf("%s was rotated: %+v, %v", name, ki, err)
		}
	}
}

// TestStoreAdapterLockExcludesWriters: while the engine holds the lock,
// other writers wait, and rotating through the lock does not deadlock.
func TestStoreAdapterLockExcludesWriters(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	st := newAdapterStore(t, clk)
	createWith(t, st, "k", &keystore.RotationSettings{Every: day})
	ls, err := storeAdapter{st}.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := st.RotateKey(short, "k", "cli"); err == nil {
		t.Fatal("a writer rotated while the engine held the lock")
	}
	nv, err := ls.RotateKey(ctx, "k", "engine")
	if err != nil || nv != 2 {
		t.Fatalf("lockedKeyStore.RotateKey: %d, %v", nv, err)
	}
	ts, err := ls.RotationTargets(ctx)
	if err != nil || len(ts) != 1 || ts[0].Version != 2 || !ts[0].LastRotated.Equal(clk.Now()) {
		t.Fatalf("targets under lock: %+v, %v", ts, err)
	}
	ls.Unlock()
	if _, err := st.RotateKey(ctx, "k", "cli"); err != nil {
		t.Fatal(err)
	}
}

func TestTargetsOf(t *testing.T) {
	created := runT0
	keys := []keystore.KeyInfo{
		{Name: "never", Created: created, Primary: 1, Rotation: &keystore.RotationSettings{Every: day, RetireAfter: 2 * day}},
		{Name: "rotated", Created: created, LastRotated: created.Add(time.Hour), Primary: 3, Rotation: &keystore.RotationSettings{Every: day}},
		{Name: "kms", Created: created, Primary: 1, Rotation: &keystore.RotationSettings{Every: 90 * day, KMSAutomatic: true}},
		{Name: "kms-retire", Created: created, Primary: 1,
			Rotation: &keystore.RotationSettings{Every: 90 * day, KMSAutomatic: true, RetireAfter: day}},
		{Name: "retire-only", Created: created, Primary: 1, Rotation: &keystore.RotationSettings{RetireAfter: day}},
		{Name: "none", Created: created, Primary: 1},
	}
	ts := targetsOf(keys)
	if len(ts) != 4 || ts[0].Name != "never" || !ts[0].LastRotated.Equal(created) || ts[0].Policy.RetireAfter != 2*day ||
		ts[1].Name != "rotated" || ts[1].Version != 3 || !ts[1].LastRotated.Equal(created.Add(time.Hour)) {
		t.Fatalf("targets: %+v", ts)
	}
	// Keys KMS rotates, or with retirement only, are targets with no period:
	// the engine never rotates them, only retires their versions.
	for _, i := range []int{2, 3} {
		if p := ts[i].Policy; p.Every != 0 || p.Jitter != 0 || p.RetireAfter != day {
			t.Fatalf("%s: policy %+v, want retirement only", ts[i].Name, p)
		}
	}
	if ts[2].Name != "kms-retire" || ts[3].Name != "retire-only" {
		t.Fatalf("targets: %+v", ts)
	}
	if ts[0].Hooks.OnSuccess != nil || ts[0].Hooks.OnFailure != nil {
		t.Fatal("hooks without settings")
	}
	p := hooksOfSettings(&keystore.RotationSettings{Every: day, OnFailureCommand: []string{"/bin/false"}, WebhookURL: "https://h.example/x"})
	if _, ok := p.OnSuccess.(*webhookHook); !ok {
		t.Fatalf("success hook %T, want the webhook alone", p.OnSuccess)
	}
	if m, ok := p.OnFailure.(multiHook); !ok || len(m) != 2 {
		t.Fatalf("failure hook %T, want command and webhook", p.OnFailure)
	}
}
