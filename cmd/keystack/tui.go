package main

// This file owns how keystack talks to the user on stderr: the
// "keystack: error:" prefix, hints, warnings and the exit code of each
// failure class. Messages are lower case without a final period.

import (
	"errors"
	"fmt"
	"io"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/atomicfile"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// Exit codes, documented in doc.go and in the help text.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitAuth        = 3
	exitKey         = 4
	exitDenied      = 5
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    success
   1    general or I/O error
   2    usage error (bad flags, missing or extra arguments)
   3    authentication or decryption failure (wrong or missing key, context
        mismatch, tampered, truncated or malformed message)
   4    key or keystore error (key not found, bad passphrase, invalid key)
   5    access denied by policy
   130  interrupted (143 for SIGTERM, 129 for SIGHUP)
`

// usageError is a problem with the command line itself.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// codedError carries an explicit exit code; exitCode prefers it.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// authErrors are the failure classes of an input that is not an authentic
// message we can decrypt.
var authErrors = []error{
	envelope.ErrAuthentication, envelope.ErrNoDecryptKey, envelope.ErrContextMismatch,
	envelope.ErrTruncated, envelope.ErrTrailingData, envelope.ErrMalformed,
	envelope.ErrUnsupportedSuite, envelope.ErrTooManyEncryptedDataKeys, envelope.ErrFrameTooLarge,
}

// keyErrors are the failure classes of keys and the keystore.
var keyErrors = []error{
	keystore.ErrInvalidKey, keystore.ErrNoPrivateKey, keystore.ErrKeyNotFound, keystore.ErrKeyExists,
	keystore.ErrInvalidName, keystore.ErrBadPassphrase, keystore.ErrLocked, keystore.ErrNotInitialized,
	keystore.ErrExists, keystore.ErrBackendUnavailable, keystore.ErrCorruptStore, keystore.ErrKeyDisabled,
	keystore.ErrNotSupported, errNoPassphrase,
}

// usageErrors are library errors caused by the flags given.
var usageErrors = []error{envelope.ErrInvalidOptions, envelope.ErrInvalidContext, keystore.ErrInvalidOptions}

// deniedErrors are the policy failure classes.
var deniedErrors = []error{policy.ErrAccessDenied}

// exitCode maps err to the documented exit code.
func exitCode(err error) int {
	var ce *codedError
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue) || isAny(err, usageErrors):
		return exitUsage
	case isAny(err, deniedErrors):
		return exitDenied
	case isAny(err, authErrors):
		return exitAuth
	case isAny(err, keyErrors):
		return exitKey
	}
	return exitError
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// printError writes err, and a hint when one helps, to w.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "keystack: error: %v\n", err)
	if h := hint(err); h != "" {
		fmt.Fprintf(w, "keystack: hint: %s\n", h)
	}
}

func hint(err error) string {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return "run \"keystack help\" or \"keystack COMMAND --help\" for usage"
	case errors.Is(err, atomicfile.ErrExist):
		return "pass --force to overwrite it"
	case errors.Is(err, atomicfile.ErrNotRegular):
		return "only regular files are replaced, even with --force: name another output, or the file a link points to"
	case errors.Is(err, atomicfile.ErrNoDir):
		return "create the output directory first"
	case errors.Is(err, envelope.ErrNoDecryptKey):
		return "pass the master key with -k, or check \"keystack key list\""
	case errors.Is(err, envelope.ErrContextMismatch):
		return "check the -c key=value pairs; required context keys must be given again"
	case errors.Is(err, envelope.ErrFrameTooLarge):
		return fmt.Sprintf("its frames are larger than --max-frame-size allows (default %d bytes); raise it only "+
			"for messages from a writer you trust: decrypting holds whole frames in memory", envelope.DefaultMaxFrameLength)
	case errors.Is(err, envelope.ErrUnsupportedSuite):
		return "messages with legacy (non-committing) suites need --allow-legacy"
	case errors.Is(err, errNoPassphrase):
		return "set KEYSTACK_PASSPHRASE, pass --passphrase-file, or run in a terminal"
	}
	return ""
}

// warnf writes a warning to w.
func warnf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "keystack: warning: "+format+"\n", a...)
}

var errInterrupted = errors.New("interrupted")
