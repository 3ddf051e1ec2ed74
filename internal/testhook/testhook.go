// Package testhook holds switches that only test code sets. Nothing in a
// release binary reads an environment variable, flag or file to set them,
// so they are unreachable outside `go test`.
package testhook

// CheapKDF makes stores created from now on record argon2id (or scrypt)
// with the smallest costs, so that tests which unlock a sealed store
// hundreds of times do not pay 64 MiB of argon2id each time.
var CheapKDF bool
