//go:build !keystack_lite

package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

// backendCapabilities is every optional capability each external backend
// has (asserted on the real types below), which the store must see
// through whatever the CLI wraps them in.
var backendCapabilities = map[string][]string{
	keystore.BackendAWSKMS: {"AutoRotator", "OnDemandRotator", "RefResolver"},
	keystore.BackendPKCS11: {"DataSealer", "VersionDestroyer", "VersionGenerator"},
}

// TestBackendCapabilitiesSurviveCLIWrappers is the table test of issue 11
// item 2: every optional capability of every backend survives every
// wrapper the CLI puts around it, as seen by a store opened the way the
// commands open it. A new wrapper in backends() that hides a method
// (as the lazy backend once hid the rotation methods, so "key rotate"
// silently did nothing) fails here.
func TestBackendCapabilitiesSurviveCLIWrappers(t *testing.T) {
	raw := map[string]keystore.Backend{
		keystore.BackendAWSKMS: awskms.NewBackend(awskms.Options{}),
		keystore.BackendPKCS11: hsm.NewBackend(hsm.Options{}),
	}
	for name, b := range raw {
		if got := directCapabilities(b); !slices.Equal(got, backendCapabilities[name]) {
			t.Errorf("%s backend itself: %q, want %q", name, got, backendCapabilities[name])
		}
	}

	c := cli.NewContext(newApp(), nil, nil)
	defer closeAll(c)
	registered := backends(c)
	if len(registered) != len(raw) {
		t.Fatalf("the CLI registers %d backends, this test covers %d", len(registered), len(raw))
	}
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(dir, keystore.OpenOptions{Backends: registered})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name := range raw {
		want := backendCapabilities[name]
		if got := keystore.BackendCapabilities(registered[name]); !slices.Equal(got, want) {
			t.Errorf("%s as the CLI registers it: %q, want %q", name, got, want)
		}
	}
}

// directCapabilities asserts each optional interface on b itself, without
// unwrapping, so the expectations above do not rest on the code under test.
func directCapabilities(b keystore.Backend) []string {
	var out []string
	for _, c := range []struct {
		name string
		has  bool
	}{
		{"AutoRotator", implements[keystore.AutoRotator](b)},
		{"DataSealer", implements[serverstore.DataSealer](b)},
		{"OnDemandRotator", implements[keystore.OnDemandRotator](b)},
		{"RefResolver", implements[keystore.RefResolver](b)},
		{"VersionDestroyer", implements[keystore.VersionDestroyer](b)},
		{"VersionGenerator", implements[keystore.VersionGenerator](b)},
	} {
		if c.has {
			out = append(out, c.name)
		}
	}
	return out
}

// implements reports whether b itself has the methods of I.
func implements[I any](b keystore.Backend) bool {
	_, ok := b.(I)
	return ok
}
