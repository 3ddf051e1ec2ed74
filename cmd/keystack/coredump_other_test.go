//go:build !linux

package main

// dumpableState is -1 where there is no PR_GET_DUMPABLE.
func dumpableState() (int, error) { return -1, nil }
