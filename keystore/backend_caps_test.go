package keystore

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// fullBackend implements every optional capability.
type fullBackend struct{ fakeBackend }

func (fullBackend) GenerateVersion(context.Context, string, int) (string, error) { return "", nil }
func (fullBackend) DestroyVersion(context.Context, string) error                 { return nil }
func (fullBackend) RotateOnDemand(context.Context, string) error                 { return nil }
func (fullBackend) ResolveRef(_ context.Context, ref string) (string, error)     { return ref, nil }
func (fullBackend) EnableRotation(context.Context, string, int) error            { return nil }
func (fullBackend) RawKeyring(context.Context, string) (envelope.Keyring, error) { return nil, nil }

// selfWrapper unwraps to itself, forever.
type selfWrapper struct{ fakeBackend }

func (w selfWrapper) UnwrapBackend() Backend { return w }

// TestBackendCapabilitiesThroughWrappers: every capability is found on the
// backend itself and through any depth of wrappers; a wrapper around
// nothing, or around itself, has none.
func TestBackendCapabilitiesThroughWrappers(t *testing.T) {
	want := []string{"AutoRotator", "DataSealer", "OnDemandRotator", "RefResolver", "VersionDestroyer", "VersionGenerator"}
	var names []string
	for _, c := range capabilities {
		names = append(names, c.name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("capability list %q, this test covers %q", names, want)
	}
	var b Backend = fullBackend{}
	for depth := range 4 {
		if got := BackendCapabilities(b); !slices.Equal(got, want) {
			t.Errorf("behind %d wrappers: %q, want %q", depth, got, want)
		}
		b = wrappingBackend{b}
	}
	for name, b := range map[string]Backend{"nil": nil, "plain": fakeBackend{}, "wrapping nil": wrappingBackend{},
		"self-wrapping": selfWrapper{}} {
		if got := BackendCapabilities(b); len(got) != 0 {
			t.Errorf("%s: %q, want none", name, got)
		}
	}
}

// TestCapabilityLookupsAreListed reads this package's sources: no code
// type-asserts a registered backend directly (which a wrapper would
// defeat), and every capability[T] or backendAs[T] lookup names a T in the
// capabilities list, so BackendCapabilities reports all the store uses.
func TestCapabilityLookupsAreListed(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range capabilities {
		listed[c.name] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	lookups := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "backend_caps.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeAssertExpr:
				if mentionsBackends(n.X) {
					t.Errorf("%s: type assertion on a registered backend; use capability[T]", fset.Position(n.Pos()))
				}
			case *ast.IndexExpr:
				fn, ok := n.X.(*ast.Ident)
				if !ok || (fn.Name != "capability" && fn.Name != "backendAs") {
					return true
				}
				lookups++
				if name := typeName(n.Index); !listed[name] {
					t.Errorf("%s: %s[%v] is not in the capabilities list", fset.Position(n.Pos()), fn.Name, n.Index)
				}
			}
			return true
		})
	}
	if lookups < len(capabilities) {
		t.Errorf("found %d capability lookups in the sources, want at least %d", lookups, len(capabilities))
	}
}

// mentionsBackends reports whether e reads the store's backends map.
func mentionsBackends(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "backends" {
			found = true
		}
		return !found
	})
	return found
}

// typeName is the name of the type e names, without its package.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}
