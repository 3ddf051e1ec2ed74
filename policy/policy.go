package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Version is the only policy language version this package accepts.
const Version = "2012-10-17"

// MaxPolicySize bounds the JSON document Parse accepts.
const MaxPolicySize = 1 << 20

// Effect is Allow or Deny.
type Effect string

// Effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Values is a policy element that JSON may spell as one string or a list.
// Numbers and booleans in condition values are kept as their JSON text.
type Values []string

// UnmarshalJSON accepts a string, number, boolean or a list of those.
func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		out := make(Values, 0, len(raw))
		for _, r := range raw {
			s, err := scalar(r)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*v = out
		return nil
	}
	s, err := scalar(b)
	if err != nil {
		return err
	}
	*v = Values{s}
	return nil
}

func scalar(b json.RawMessage) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", errors.New("empty value")
	}
	switch b[0] {
	case '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return "", err
		}
		return string(b), nil
	}
	return "", fmt.Errorf("expected a string, number or boolean, got %.20s", b)
}

// Condition maps operator → condition key → values, as in IAM.
type Condition map[string]map[string]Values

// Statement is one policy statement.
type Statement struct {
	Sid          string    `json:"Sid,omitempty"`
	Effect       Effect    `json:"Effect"`
	Principal    Values    `json:"Principal,omitempty"`
	NotPrincipal Values    `json:"NotPrincipal,omitempty"`
	Action       Values    `json:"Action,omitempty"`
	NotAction    Values    `json:"NotAction,omitempty"`
	Resource     Values    `json:"Resource,omitempty"`
	NotResource  Values    `json:"NotResource,omitempty"`
	Condition    Condition `json:"Condition,omitempty"`
}

// Policy is a parsed and validated policy document. Build one with [Parse] or
// [New]; the zero Policy is the empty policy, which denies everything, and so
// is a Policy literal, whose statements are not compiled (fail safe).
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`

	compiled []cstatement
	index    principalIndex
}

// Parse decodes, validates and compiles a JSON policy of at most
// MaxPolicySize bytes. Errors match ErrInvalidPolicy; validation problems are
// a *ValidationError naming the JSON path.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, &ValidationError{Msg: fmt.Sprintf("policy is %d bytes, at most %d", len(data), MaxPolicySize)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, &ValidationError{Msg: "malformed JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{Msg: "trailing data after the policy document"}
	}
	return New(p.Version, p.Statement)
}

// New validates and compiles a policy built in Go.
func New(version string, statements []Statement) (*Policy, error) {
	p := &Policy{Version: version, Statement: statements}
	if version != Version {
		return nil, &ValidationError{Path: "Version", Msg: fmt.Sprintf("unsupported version %q, want %q", version, Version)}
	}
	p.compiled = make([]cstatement, len(statements))
	for i := range statements {
		cs, err := compileStatement(&statements[i], fmt.Sprintf("Statement[%d]", i))
		if err != nil {
			return nil, err
		}
		p.compiled[i] = cs
	}
	p.index = newPrincipalIndex(p.compiled)
	return p, nil
}

// MarshalJSON encodes the policy document.
func (p *Policy) MarshalJSON() ([]byte, error) {
	type doc Policy
	d := doc{Version: p.Version, Statement: p.Statement}
	if d.Statement == nil {
		d.Statement = []Statement{}
	}
	return json.Marshal(d)
}

// DefaultPolicy is the policy of a keystore that has none: owner (a principal
// such as "user:alice") may perform every action on every resource; every
// other principal is implicitly denied.
func DefaultPolicy(owner string) (*Policy, error) {
	return New(Version, []Statement{{
		Sid:       "DefaultOwnerFullAccess",
		Effect:    Allow,
		Principal: Values{owner},
		Action:    Values{"keystack:*"},
		Resource:  Values{"*"},
	}})
}

// sortedKeys returns m's keys in order, for deterministic paths and output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// quoteKey renders a map key in a JSON path: Condition.StringEquals["k"].
func quoteKey(k string) string { return `["` + strings.ReplaceAll(k, `"`, `\"`) + `"]` }
