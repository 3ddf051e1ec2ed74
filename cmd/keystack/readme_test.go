package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdReadmeJSON writes "readmejson FILE N": the N-th (from 1) ```json block
// of the repository's README.md, so that scripts test the README's own
// examples rather than copies of them.
func cmdReadmeJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: readmejson FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		ts.Fatalf("readmejson: bad block number %q", args[1])
	}
	readme, err := os.ReadFile("../../README.md") // tests run in the package directory
	ts.Check(err)
	blocks := strings.Split(string(readme), "```json\n")
	if len(blocks) <= n {
		ts.Fatalf("readmejson: README.md has %d json blocks", len(blocks)-1)
	}
	block, _, ok := strings.Cut(blocks[n], "```")
	if !ok {
		ts.Fatalf("readmejson: json block %d is not closed", n)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(block), 0o644))
}
