//go:build keystack_lite

package main

// The lite build's stand-ins for hsm_full.go, so that it links no PKCS#11
// library and needs no cgo. It hands every command that may use PKCS#11
// to keystack-full (handoff_lite.go), so these are reached only by a path
// that was missed, which then fails with errPKCS11NotLinked.

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// No PKCS#11 error occurs in this build: nil matches no error.
var (
	errHSMInvalidURI, errHSMModule, errHSMTokenNotFound, errHSMUnavailable error
	hsmKeyErrors                                                           []error
)

// errPKCS11NotLinked is the pkcs11 backend or keystack hsm of this build
// used after all.
var errPKCS11NotLinked = fmt.Errorf("PKCS#11 (the pkcs11 backend, keystack hsm) is %w", errNotLinked)

func newPKCS11Backend(*cli.Context) keystore.Backend { return notLinkedBackend{errPKCS11NotLinked} }

func checkPKCS11Ref(string) error { return nil } // the backend refuses every reference

func checkTokenURI(string) error { return nil }

func isPKCS11Call(error) bool { return false }

func hsmNotLinked(*cli.Context) error { return errPKCS11NotLinked }

var hsmKeygenAction, hsmListAction, hsmExportAction = hsmNotLinked, hsmNotLinked, hsmNotLinked
