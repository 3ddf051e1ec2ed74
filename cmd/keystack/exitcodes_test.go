package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestExitCodesDocumented: every code of the exit-code table is listed in
// the help text, in doc.go and in README.md's "Exit codes" line, and those
// list no code the table lacks.
func TestExitCodesDocumented(t *testing.T) {
	want := map[int]bool{exitOK: true, exitInterrupted: true}
	for _, c := range exitClasses {
		want[c.code] = true
	}
	for _, code := range []int{exitError, exitUsage, exitAuth, exitKey, exitDenied, exitUnavailable} {
		if !want[code] {
			t.Errorf("exit code %d has no class in exitClasses", code)
		}
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, _ := strings.Cut(string(readme), "Exit codes: ")
	para, _, _ = strings.Cut(para, "\n\n")
	listed := map[string]*regexp.Regexp{
		"help":   regexp.MustCompile(`(?m)^   ([0-9]+) `),
		"doc.go": regexp.MustCompile(`(?m)^//\t([0-9]+) `),
		"README": regexp.MustCompile(`(?:^|, )([0-9]+)(?:/[0-9]+)* `),
	}
	texts := map[string]string{"help": exitCodesHelp, "doc.go": string(doc), "README": strings.ReplaceAll(para, "\n", " ")}
	for name, re := range listed {
		got := map[int]bool{}
		for _, m := range re.FindAllStringSubmatch(texts[name], -1) {
			var n int
			fmt.Sscan(m[1], &n)
			got[n] = true
		}
		for code := range want {
			if !got[code] {
				t.Errorf("%s does not list exit code %d", name, code)
			}
		}
		for code := range got {
			if !want[code] {
				t.Errorf("%s lists exit code %d, which the table does not have", name, code)
			}
		}
	}
}
