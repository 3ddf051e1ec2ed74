package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryActionOpensTheStoreOneWay: commands reach the keystore only
// through withStore, which alone calls openStore, which alone calls
// keystore.Open; so every command gets the same passphrase, principal,
// backends and cache handling and closes the store.
func TestEveryActionOpensTheStoreOneWay(t *testing.T) {
	allowed := map[string]string{"openStore": "withStore", "keystore.Open": "openStore"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				callee := calleeName(call.Fun)
				if want, ok := allowed[callee]; ok {
					seen[callee]++
					if fd.Name.Name != want {
						t.Errorf("%s: %s calls %s; only %s may (use withStore)", fset.Position(call.Pos()), fd.Name.Name, callee, want)
					}
				}
				return true
			})
		}
	}
	for callee := range allowed {
		if seen[callee] != 1 {
			t.Errorf("%s is called %d times, want once", callee, seen[callee])
		}
	}
}

func calleeName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
	}
	return ""
}

// TestHomeDir: --home (which cli also fills from $KEYSTACK_HOME) wins,
// else the keystore lives in the platform's configuration directory.
func TestHomeDir(t *testing.T) {
	t.Setenv("KEYSTACK_HOME", "/tmp/keystack-home")
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg")
	app := newApp()
	app.Action = func(c *cli.Context) error {
		if d, err := homeDir(c); err != nil || d != "/tmp/keystack-home" {
			t.Errorf("homeDir with KEYSTACK_HOME = %q, %v", d, err)
		}
		return nil
	}
	if err := app.Run([]string{"keystack"}); err != nil {
		t.Fatal(err)
	}
	if d, err := defaultHome(); err != nil || d != "/tmp/xdg/keystack" {
		t.Fatalf("defaultHome() = %q, %v", d, err)
	}
}
