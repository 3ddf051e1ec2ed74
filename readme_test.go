package keystack_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestREADMEExample: the Go block of README.md's "Go API" section is the
// import block and the body of Example (example_test.go), word for word,
// so the README shows code that compiles, runs and prints its // Output.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := goBlockAfter(string(readme), "\n## Go API\n")
	if !ok {
		t.Fatal("README.md has no ```go block in its Go API section")
	}
	want := exampleText(t, "example_test.go", "Example")
	if got != want {
		t.Errorf("README.md's Go API block and Example differ; make them the same.\nREADME:\n%s\nexample_test.go:\n%s", got, want)
	}
}

// goBlockAfter returns the first ```go block after heading, before the
// next section.
func goBlockAfter(doc, heading string) (string, bool) {
	_, sec, ok := strings.Cut(doc, heading)
	if !ok {
		return "", false
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, block, ok := strings.Cut(sec, "```go\n")
	if !ok {
		return "", false
	}
	block, _, ok = strings.Cut(block, "```")
	return block, ok
}

// exampleText returns the import block of file and the body of its
// function name, one tab of indentation removed, as README shows them.
func exampleText(t *testing.T, file, name string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var imports, body string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				imports = string(src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset])
			}
		case *ast.FuncDecl:
			if d.Name.Name == name {
				body = string(src[fset.Position(d.Body.Lbrace).Offset+2 : fset.Position(d.Body.Rbrace).Offset])
			}
		}
	}
	if imports == "" || body == "" {
		t.Fatalf("%s: no import block or no func %s", file, name)
	}
	lines := strings.SplitAfter(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return imports + "\n\n" + strings.Join(lines, "")
}
