//go:build keystack_lite

package main

// The lite build's stand-ins for kms_full.go. It hands every command that
// may use AWS KMS to keystack-full (handoff_lite.go), so they are reached
// only by a path that was missed, which then fails with errKMSNotLinked.

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

// defaultKMSTimeout is awskms.DefaultTimeout; TestLiteBuild compares the
// builds' help texts, which show it.
const defaultKMSTimeout = 10 * time.Second

// No AWS KMS error occurs in this build: nil matches no error.
var (
	errKMSAccessDenied, errKMSUnauthenticated, errKMSUnavailable error
	kmsKeyErrors                                                 []error
)

func kmsErrorCode(error) (string, bool) { return "", false }

func checkKMSRef(string) error { return nil } // the backend refuses every reference

// errKMSNotLinked is the aws-kms backend of this build used after all.
var errKMSNotLinked = fmt.Errorf("the aws-kms backend is %w", errNotLinked)

func newKMSBackend(*cli.Context) keystore.Backend { return notLinkedBackend{errKMSNotLinked} }

// notLinkedBackend is a key backend the lite build leaves out: each of its
// keys fails with err.
type notLinkedBackend struct{ err error }

func (b notLinkedBackend) Keyring(context.Context, string) (envelope.Keyring, error) {
	return nil, b.err
}

func discoveryKeyring(c *cli.Context, _ *keystore.Store) (envelope.Keyring, error) {
	if c.Bool("discovery") {
		return nil, errKMSNotLinked
	}
	return nil, nil
}
