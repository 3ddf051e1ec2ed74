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
	seen := map[string]int{}
	fset := token.NewFileSet()
	for _, fd := range parseFuncs(t, fset, ".") {
		eachCall(fd, func(call *ast.CallExpr) {
			callee := calleeName(call.Fun)
			if want, ok := allowed[callee]; ok {
				seen[callee]++
				if fd.Name.Name != want {
					t.Errorf("%s: %s calls %s; only %s may (use withStore)", fset.Position(call.Pos()), fd.Name.Name, callee, want)
				}
			}
		})
	}
	for callee := range allowed {
		if seen[callee] != 1 {
			t.Errorf("%s is called %d times, want once", callee, seen[callee])
		}
	}
}

// parseFuncs parses the non-test Go files of dir and returns their
// functions and methods.
func parseFuncs(t *testing.T, fset *token.FileSet, dir string) []*ast.FuncDecl {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var funcs []*ast.FuncDecl
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				funcs = append(funcs, fd)
			}
		}
	}
	return funcs
}

// eachCall calls visit with every call in fd's body.
func eachCall(fd *ast.FuncDecl, visit func(*ast.CallExpr)) {
	if fd.Body == nil {
		return
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			visit(call)
		}
		return true
	})
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
