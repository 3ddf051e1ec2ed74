package main

// This file turns envelope's "no master key could decrypt the data key",
// which lists every key tried and why, into the most specific cause: a
// policy refusal, an unreachable backend, a key version's state, or a
// data key that did not authenticate under a key the store holds.

import (
	"errors"
	"slices"
	"strings"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// errRequiredContext classifies a data key that a matching key could not
// unwrap with the context given: most often the message has required
// context pairs (authenticated but never stored in it) that -c did not
// supply. The format does not record their names, so no tool can list them.
var errRequiredContext = errors.New("the data key did not authenticate with this encryption context")

// decryptCause is one reason a key could not decrypt, with the message
// that explains it.
type decryptCause struct {
	match   func(error) bool
	explain func(a envelope.KeyAttempt) string
	class   error // the failure class it adds, if the cause has none of its own
}

// decryptCauses rank the reasons, most specific first: a refusal, an
// outage or a version's state says more than a key that did not fit.
var decryptCauses = []decryptCause{
	{isErr(policy.ErrAuditFailed), func(a envelope.KeyAttempt) string { return explainAuditFailure(a.Err).Error() }, nil},
	{isErr(policy.ErrAccessDenied), plainAttempt, nil},
	{func(err error) bool { return isAny(err, unavailableErrors) }, func(a envelope.KeyAttempt) string {
		return "key backend unavailable: " + a.Err.Error()
	}, nil},
	{isErr(keystore.ErrKeyDisabled), func(a envelope.KeyAttempt) string {
		return "the message's data key is under a key version that may not decrypt: " + a.Err.Error()
	}, nil},
	{unwrapFailed, func(a envelope.KeyAttempt) string {
		return "the data key under " + a.KeyName + " did not authenticate with this encryption context: " +
			"the message needs required context pairs (authenticated but not stored in it) that -c did not give, " +
			"or gave with other values, or its data key was altered"
	}, errRequiredContext},
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func plainAttempt(a envelope.KeyAttempt) string { return a.Err.Error() }

// unwrapFailed reports a data key that its own key refused to unwrap:
// keystack and PKCS#11 keys say keyring.ErrUnwrapFailed, KMS says
// InvalidCiphertextException (it binds the context to the ciphertext).
func unwrapFailed(err error) bool {
	code, _ := kmsErrorCode(err)
	return errors.Is(err, keyring.ErrUnwrapFailed) || code == "InvalidCiphertextException"
}

// decryptFailure is a *envelope.NoDecryptKeyError explained by its most
// specific cause. It matches the cause (and errRequiredContext for a
// data key that did not authenticate), not ErrNoDecryptKey, so that the
// exit code and the hint follow the cause.
type decryptFailure struct {
	msg   string
	cause error
	class error // nil, or errRequiredContext
}

func (e *decryptFailure) Error() string { return e.msg }

func (e *decryptFailure) Unwrap() []error {
	if e.class != nil {
		return []error{e.class, e.cause}
	}
	return []error{e.cause}
}

// explainNoDecryptKey returns err with its *envelope.NoDecryptKeyError
// replaced by the most specific cause among the keys tried, keeping the
// text around it (the file name). Without such a cause err is returned.
func explainNoDecryptKey(err error) error {
	var nerr *envelope.NoDecryptKeyError
	if err == nil || !errors.As(err, &nerr) {
		return err
	}
	for _, c := range decryptCauses {
		for _, a := range nerr.Attempts {
			if a.Err == nil || !c.match(a.Err) {
				continue
			}
			prefix := strings.TrimSuffix(err.Error(), nerr.Error())
			return &decryptFailure{msg: prefix + c.explain(a), cause: a.Err, class: c.class}
		}
	}
	return err
}

// explainAuditFailure rewords a refusal caused by a decision the audit log
// could not record: the policy allowed or denied nothing the user did, so
// the text says the write failed and why, not "access denied".
func explainAuditFailure(err error) error {
	node := findJoin(err, policy.ErrAuditFailed)
	if node == nil {
		return err
	}
	errs := node.(interface{ Unwrap() []error }).Unwrap()
	cause := errs[len(errs)-1]
	prefix := strings.TrimSuffix(err.Error(), node.Error())
	return &decryptFailure{msg: prefix + "refused: the audit log could not record the decision: " + cause.Error(), cause: err}
}

// findJoin returns the error in err's tree that joins target with other
// errors (fmt.Errorf with several %w), or nil.
func findJoin(err, target error) error {
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		errs := u.Unwrap()
		if slices.Contains(errs, target) && errs[len(errs)-1] != target {
			return err
		}
		for _, e := range errs {
			if n := findJoin(e, target); n != nil {
				return n
			}
		}
	case interface{ Unwrap() error }:
		if next := u.Unwrap(); next != nil {
			return findJoin(next, target)
		}
	}
	return nil
}
