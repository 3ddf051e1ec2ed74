package keystore

import (
	"fmt"
	"slices"

	"github.com/keystack/keystack/internal/serverstore"
)

// backendUnwrapper is implemented by a Backend that wraps another one, such
// as the CLI's lazy backend, which constructs the real backend on first
// use. UnwrapBackend returns the wrapped backend (constructing it if need
// be), or nil when there is none. The store looks for a backend's optional
// capabilities (VersionGenerator, VersionDestroyer, OnDemandRotator,
// AutoRotator, RefResolver) along this chain, so a wrapper never hides them and need
// not forward their methods.
type backendUnwrapper interface {
	UnwrapBackend() Backend
}

// maxUnwrap bounds the wrapper chain, so a wrapper that returns itself
// cannot loop forever.
const maxUnwrap = 16

// backendAs returns b, or the first backend b wraps (see backendUnwrapper),
// that implements T, and whether there is one.
func backendAs[T any](b Backend) (T, bool) {
	for range maxUnwrap {
		if b == nil {
			break
		}
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(backendUnwrapper)
		if !ok {
			break
		}
		b = u.UnwrapBackend()
	}
	var zero T
	return zero, false
}

// capabilities names every optional backend interface the store uses, with
// the lookup the store makes for it. Every store lookup of an optional
// interface goes through capability, so this list and the store's
// behaviour cannot disagree (TestCapabilityLookupsAreListed checks the
// sources).
var capabilities = []struct {
	name string
	has  func(Backend) bool
}{
	{"AutoRotator", has[AutoRotator]},
	{"DataSealer", has[serverstore.DataSealer]},
	{"OnDemandRotator", has[OnDemandRotator]},
	{"RefResolver", has[RefResolver]},
	{"VersionDestroyer", has[VersionDestroyer]},
	{"VersionGenerator", has[VersionGenerator]},
}

func has[T any](b Backend) bool {
	_, ok := backendAs[T](b)
	return ok
}

// BackendCapabilities returns the sorted names of the optional interfaces
// ("AutoRotator", "DataSealer", "OnDemandRotator", "RefResolver", "VersionDestroyer",
// "VersionGenerator") that b offers the store, through any wrappers.
func BackendCapabilities(b Backend) []string {
	var out []string
	for _, c := range capabilities {
		if c.has(b) {
			out = append(out, c.name)
		}
	}
	slices.Sort(out)
	return out
}

// capability returns the registered backend's implementation of T, or
// ErrBackendUnavailable saying what the backend cannot do.
func capability[T any](s *Store, backend, what string) (T, error) {
	b := s.backends[backend]
	if b == nil {
		var zero T
		return zero, fmt.Errorf("%w: %q is not registered", ErrBackendUnavailable, backend)
	}
	t, ok := backendAs[T](b)
	if !ok {
		return t, fmt.Errorf("%w: the %s backend cannot %s", ErrNotSupported, backend, what)
	}
	return t, nil
}
