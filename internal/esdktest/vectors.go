// Package esdktest holds test helpers shared by several packages' tests:
// where the official AWS Encryption SDK vectors are, and a message builder
// written from the format specification alone, independent of envelope's
// writer, for messages keystack never writes itself. Only tests import it.
package esdktest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// VectorSet is the official decrypt-vector set keystack must read.
const VectorSet = "v4-Net-4.0.1"

// VectorsDir returns the directory of the official vector set: under
// $KEYSTACK_ESDK_VECTORS when set, else under testdata/esdk-vectors at the
// module root, where every clone has it. Missing vectors fail the test;
// they never skip it.
func VectorsDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("KEYSTACK_ESDK_VECTORS")
	if base == "" {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(root, "testdata", "esdk-vectors")
	}
	dir := filepath.Join(base, VectorSet)
	for _, f := range []string{"manifest.json", "manifest.offline-raw-only.json", "keys.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("official ESDK vectors missing (%v): they ship in testdata/esdk-vectors; KEYSTACK_ESDK_VECTORS may point at another copy", err)
		}
	}
	return dir
}

// ModuleRoot is the nearest directory at or above the working directory
// that holds go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
