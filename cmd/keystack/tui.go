package main

// This file owns how keystack talks to the user on stderr: the
// "keystack: error:" prefix, hints, warnings and the exit code of each
// failure class. Messages are lower case without a final period.

import (
	"errors"
	"fmt"
	"io"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// Exit codes, documented in doc.go, README.md and the help text.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitAuth        = 3
	exitKey         = 4
	exitDenied      = 5
	exitUnavailable = 6
	exitNoFull      = 7
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    success
   1    general or I/O error (including a decision the audit log could not record)
   2    usage error (bad flags, missing or extra arguments)
   3    authentication or decryption failure (wrong or missing key, context
        mismatch or missing required context, tampered, truncated or malformed message;
        a damaged audit log, which refuses every operation until audit reset-anchor;
        credentials a key server refused, or its TLS certificate that did not verify)
   4    key or keystore error (key not found, bad passphrase, invalid key,
        key version disabled or destroyed)
   5    access denied by policy
   6    key backend unavailable (KMS did not answer, PKCS#11 module or token
        could not be opened, the --storage database did not answer);
        nothing was decrypted or written
   7    the command needs keystack-full (AWS KMS, PKCS#11, a key server,
        --storage, keystack server, rotate), which this
        keystack hands it to, and it could not be run; nothing was read or written
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

// exitClass is a failure class: the errors (matched with errors.Is) that
// exit with code.
type exitClass struct {
	code int
	errs []error
}

// exitClasses is the one table of exit codes. exitCode takes the first
// class err matches, so the more specific classes come first: a decision
// the audit log failed to record also matches policy.ErrAccessDenied but
// is an I/O failure, and an unreachable backend is not a wrong key.
var exitClasses = []exitClass{
	{exitNoFull, []error{errNoFull, errNeedsFull, errNotLinked}},
	{exitAuth, []error{gate.ErrAuditDamaged}}, // a tampered audit log, before the audit failure it causes
	{exitError, []error{policy.ErrAuditFailed}},
	{exitUsage, []error{envelope.ErrInvalidOptions, envelope.ErrInvalidContext, keystore.ErrInvalidOptions,
		keyring.ErrInvalidCacheOptions, errHSMInvalidURI}},
	{exitDenied, []error{policy.ErrAccessDenied, errKMSAccessDenied}},
	{exitAuth, []error{errServerTLSTrust}}, // the server failed to authenticate itself: no outage, before unavailable
	{exitUnavailable, unavailableErrors},
	{exitKey, []error{keystore.ErrAutoUnseal}}, // its master key's wrong-key failure is not a bad message
	{exitAuth, []error{errKMSUnauthenticated, envelope.ErrAuthentication, envelope.ErrNoDecryptKey, envelope.ErrContextMismatch,
		errRequiredContext, envelope.ErrTruncated, envelope.ErrTrailingData, envelope.ErrMalformed,
		envelope.ErrUnsupportedSuite, envelope.ErrTooManyEncryptedDataKeys, envelope.ErrFrameTooLarge, envelope.ErrSigned}},
	{exitKey, []error{keyring.ErrInvalidKey, keyring.ErrNoPrivateKey, keystore.ErrKeyNotFound, keystore.ErrKeyExists,
		keystore.ErrInvalidName, keystore.ErrBadPassphrase, keystore.ErrLocked, keystore.ErrNotInitialized,
		keystore.ErrExists, keystore.ErrBackendUnavailable, keystore.ErrCorruptStore, keystore.ErrKeyDisabled,
		keystore.ErrNotSupported, errNoPassphrase, errPassphraseMismatch, errEmptyPassphrase, errPassphraseFileAccess,
		keystore.ErrCredentialLimit, keystore.ErrCredentialNotFound}},
	{exitKey, hsmKeyErrors},
	{exitKey, kmsKeyErrors},
	{exitKey, serverKeyErrors},
}

// unavailableErrors mean the key backend could not be reached or opened:
// the key itself may be fine, so trying again later may work.
var unavailableErrors = []error{errKMSUnavailable, errHSMModule, errHSMTokenNotFound, errHSMUnavailable, keystore.ErrUnavailable}

// exitCode maps err to the documented exit code.
func exitCode(err error) int {
	var ce *codedError
	var ue *usageError
	err = explain(err)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue):
		return exitUsage
	}
	for _, c := range exitClasses {
		if isAny(err, c.errs) {
			return c.code
		}
	}
	return exitError
}

// explain rewords the errors whose library text hides their cause; see
// decrypterr.go.
func explain(err error) error {
	if err == nil {
		return nil
	}
	if e := explainNoDecryptKey(err); e != err {
		return e
	}
	return explainAuditFailure(err)
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
	err = explain(err)
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
	case errors.Is(err, gate.ErrAuditDamaged): // before ErrAuditFailed: it is no disk problem
		return "the audit log failed verification (edited, cut or replaced): \"keystack audit verify\" shows where; " +
			"after investigating, \"keystack audit reset-anchor --accept-loss\" (needs the passphrase) starts a new log"
	case errors.Is(err, policy.ErrAuditFailed):
		return "the audit log could not record the decision, so nothing was done: check free space and permissions of the keystore directory"
	case errors.Is(err, errNoFull):
		return "keystack from \"make install\" runs keystack-full, installed beside it, for AWS KMS, PKCS#11, server mode, PostgreSQL storage, keystack server and rotate: run \"make install\" again, " +
			"or install the one complete build with \"go install github.com/keystack/keystack/cmd/keystack@latest\""
	case errors.Is(err, errNotLinked):
		return "run the command with keystack-full"
	case errors.Is(err, errKMSAccessDenied):
		return "the KMS key policy or IAM (or keystack server's policy) does not allow this caller this operation on this key"
	case errors.Is(err, errServerTLSTrust):
		return "the server's certificate must be signed by a CA in --server-ca ($KEYSTACK_SERVER_CA; default the system roots), " +
			"name the host of the endpoint URL and be valid now"
	case isServerUnavailable(err):
		return "no keystack server endpoint answered: check that the server runs and --server / $KEYSTACK_SERVER names it " +
			"(several endpoints are tried in turn)"
	case errors.Is(err, errKMSUnauthenticated):
		return "the server did not accept the credentials: check $KEYSTACK_ACCESS_KEY_ID and $KEYSTACK_SECRET_ACCESS_KEY " +
			"(or, for AWS KMS, the AWS credential chain), --server-region, this host's clock, and whether the access key was revoked"
	case errors.Is(err, errKMSUnavailable):
		return "check the network and the KMS endpoint (--kms-endpoint, $AWS_ENDPOINT_URL_KMS); --kms-timeout bounds each KMS call"
	case isAny(err, unavailableErrors) && errors.Is(err, keystore.ErrAutoUnseal):
		return "the keystore is auto-unsealed (keystack seal show): check that its token and PKCS#11 module, or AWS KMS, can be reached"
	case errors.Is(err, keystore.ErrAutoUnseal):
		return "the keystore is auto-unsealed (keystack seal show) and its master key did not open it: check the PIN, the key and its permissions"
	case errors.Is(err, keystore.ErrUnavailable):
		return "the keystore's PostgreSQL database (--storage, $KEYSTACK_STORAGE) did not answer: check that it is up and reachable; nothing was done"
	case errors.Is(err, errSchemaOutdated):
		return "run \"keystack server migrate\" (keystack server also migrates at start)"
	case errors.Is(err, errSchemaNewer):
		return "a newer keystack migrated this database: run that version"
	case isAny(err, unavailableErrors):
		return "check the PKCS#11 module path (--module, $KEYSTACK_PKCS11_MODULE or the URI's module-path) and that the token is present"
	case errors.Is(err, keystore.ErrKeyDisabled):
		return "see \"keystack key show NAME\"; a disabled version decrypts again after \"keystack key version enable NAME --version N\", a destroyed one never"
	case errors.Is(err, errRequiredContext):
		return "give every pair the message was encrypted with as -c KEY=VALUE, required ones included; \"keystack inspect\" lists only the stored pairs"
	case errors.Is(err, fsx.ErrExist):
		return "pass --force to overwrite it"
	case errors.Is(err, fsx.ErrNotRegular):
		return "only regular files are replaced, even with --force: name another output, or the file a link points to"
	case errors.Is(err, fsx.ErrNoDir):
		return "create the output directory first"
	case errors.Is(err, policy.ErrLockout):
		return "keep a statement that allows you keystack:PutPolicy, or pass --bypass-lockout-safety-check (\"keystack policy reset\" with the keystore passphrase undoes it)"
	case errors.As(err, new(*policy.DeniedError)):
		return "the keystore's policy does not allow this; \"keystack policy simulate\" shows why (it needs keystack:GetPolicy)"
	case errors.Is(err, envelope.ErrNoDecryptKey):
		return "pass the master key with -k, or check \"keystack key list\""
	case errors.Is(err, envelope.ErrContextMismatch):
		return "check the -c key=value pairs; required context keys must be given again"
	case errors.Is(err, envelope.ErrFrameTooLarge):
		return fmt.Sprintf("its frames are larger than --max-frame-size allows (default %d bytes); raise it only "+
			"for messages from a writer you trust: decrypting holds whole frames in memory", envelope.DefaultMaxFrameLength)
	case errors.Is(err, envelope.ErrSigned):
		return "--decrypt-unsigned refuses signed messages (suites ending in _ECDSA_P256/_P384); drop it to read this one"
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return "it has more encrypted data keys than --max-encrypted-data-keys allows (on encrypt: fewer -k keys or a higher limit)"
	case errors.Is(err, envelope.ErrUnsupportedSuite):
		return "messages with legacy (non-committing) suites need --allow-legacy"
	case errors.Is(err, errPassphraseFileAccess):
		return "make it yours and private: chmod 600 FILE (and chown it to this user)"
	case errors.Is(err, errPassphraseMismatch):
		return "type the same passphrase at both prompts"
	case errors.Is(err, errEmptyPassphrase):
		return "a sealed keystore needs a non-empty passphrase (keystack init --insecure-no-passphrase makes an unsealed one)"
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
