//go:build !linux

package main

import "testing"

// scriptWorkRoot is where the scripts' work directories go, removed when
// they end: the temporary directory (on Linux, memory where it can).
func scriptWorkRoot(t *testing.T) string { return t.TempDir() }
