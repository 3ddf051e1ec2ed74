//go:build !keystack_lite

package main

import (
	"errors"
	"testing"
)

// TestStorageArgPassword: a connection string with a password is refused
// on the command line (URL userinfo, URL query, key=value), accepted from
// $KEYSTACK_STORAGE, and one without a password passes.
func TestStorageArgPassword(t *testing.T) {
	for dsn, refused := range map[string]bool{
		"postgres://app@db.example:5432/keystack":              false,
		"postgresql://app@db.example/keystack?sslmode=require": false,
		"host=db.example user=app dbname=keystack":             false,
		"postgres://app:s3cret@db.example/keystack":            true,
		"postgres://app@db.example/keystack?password=s3cret":   true,
		"host=db.example user=app password=s3cret":             true,
		"password = s3cret host=db.example":                    true,
	} {
		t.Setenv(storageEnv, "")
		err := checkStorageArg(dsn)
		var ue *usageError
		if got := errors.As(err, &ue); got != refused {
			t.Errorf("checkStorageArg(%q) = %v, want refused %v", dsn, err, refused)
		}
		t.Setenv(storageEnv, dsn)
		if err := checkStorageArg(dsn); err != nil {
			t.Errorf("checkStorageArg(%q) from $%s: %v", dsn, storageEnv, err)
		}
	}
}
