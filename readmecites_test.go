package keystack_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	citedFunc = regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz)[A-Z]\w*`)
	citedFile = regexp.MustCompile(`[\w.-]+\.txtar\b`)
	testFunc  = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)
)

// TestREADMECitesRealTests holds the README's guarantees to their tests:
// every test, benchmark, fuzz target and script it names as evidence must
// exist, so a renamed or deleted test cannot leave a guarantee citing
// nothing.
func TestREADMECitesRealTests(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	funcs, scripts := map[string]bool{}, map[string]bool{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules"):
			return filepath.SkipDir
		case strings.HasSuffix(path, ".txtar"):
			scripts[d.Name()] = true
		case strings.HasSuffix(path, "_test.go"):
			for _, name := range funcNamesIn(t, path, testFunc) {
				funcs[name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := 0
	for _, name := range citedFunc.FindAllString(string(readme), -1) {
		cited++
		if !funcs[name] {
			t.Errorf("README.md cites %s, but no _test.go file defines it", name)
		}
	}
	for _, name := range citedFile.FindAllString(string(readme), -1) {
		cited++
		if !scripts[name] {
			t.Errorf("README.md cites %s, but no such script exists", name)
		}
	}
	if cited < 50 {
		t.Fatalf("found %d citations in README.md; the patterns no longer read it", cited)
	}
}
