package keystack_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// benchCall is a `raw PKG 'REGEX'` or `alternate NAME PKG 'REGEX' ...`
// line of scripts/bench.sh, or a `go test ... -bench 'REGEX' ... ./PKG` one.
var benchCall = regexp.MustCompile(`(?m)^(?:raw (\./\S+) '([^']+)'|alternate \S+ (\./\S+) '([^']+)'|.*-bench '([^']+)'.* (\./[\w/]+)\b)`)

var benchFunc = regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)

// TestBenchScriptNamesExist holds make bench to the benchmarks it names:
// when a package moved (rotation to internal/rewrap, hsm to
// internal/pkcs11token), two of its sections printed nothing for a
// session, and nobody noticed. Each alternative of each -bench pattern must
// match a benchmark function in the package it runs.
func TestBenchScriptNamesExist(t *testing.T) {
	script, err := os.ReadFile("scripts/bench.sh")
	if err != nil {
		t.Fatal(err)
	}
	calls := benchCall.FindAllStringSubmatch(string(script), -1)
	if len(calls) < 10 {
		t.Fatalf("found %d benchmark calls in scripts/bench.sh; the pattern no longer reads it", len(calls))
	}
	for _, c := range calls {
		pkg, pattern := c[1]+c[3]+c[6], c[2]+c[4]+c[5]
		names := benchmarksIn(t, pkg)
		for _, alt := range alternatives(pattern) {
			re := regexp.MustCompile(alt)
			if !anyMatch(re, names) {
				t.Errorf("scripts/bench.sh runs -bench %q in %s, but no benchmark there matches %q (it has %v)", pattern, pkg, alt, names)
			}
		}
	}
}

// benchmarksIn lists the top-level benchmark functions of a package's tests.
func benchmarksIn(t *testing.T, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(pkg, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Errorf("scripts/bench.sh runs benchmarks in %s, which has no test files", pkg)
		return nil
	}
	var names []string
	for _, f := range files {
		names = append(names, funcNamesIn(t, f, benchFunc)...)
	}
	return names
}

// funcNamesIn returns the first submatch of each match of re in file.
func funcNamesIn(t *testing.T, file string, re *regexp.Regexp) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		names = append(names, m[1])
	}
	return names
}

// alternatives splits `Benchmark(A|B)` into `BenchmarkA` and `BenchmarkB`
// (the only alternation the script uses); anything else is one pattern.
// Only the top level, before any '/', names a function.
func alternatives(pattern string) []string {
	pattern, _, _ = strings.Cut(pattern, "/")
	pre, rest, ok := strings.Cut(pattern, "(")
	body, post, ok2 := strings.Cut(rest, ")")
	if !ok || !ok2 {
		return []string{pattern}
	}
	var out []string
	for _, a := range strings.Split(body, "|") {
		out = append(out, pre+a+post)
	}
	return out
}

func anyMatch(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}
