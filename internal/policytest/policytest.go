// Package policytest generates random policies and requests for the
// property tests of package policy and of the engine that enforces it.
package policytest

import (
	"fmt"
	"math/rand"
	"strings"
)

var (
	propPrincipals = []string{"user:w", "user:x", "group:g", "*", "user:?", "service:s"}
	propActions    = []string{"keystack:Encrypt", "keystack:Decrypt", "keystack:*crypt", "keystack:*", "keystack:ReWrap", "keystack:PutPolicy"}
	propResources  = []string{"key/a", "key/b", "key/*", "key/a/v1", "key/?", "*", "key/a*", "policy"}
	// Conditions, with condition keys in several spellings (keys are
	// case-insensitive), IfExists and the set qualifiers.
	propConds = []string{"", "", "", `"StringEquals":{"keystack:EncryptionContext/d":"x"}`, `"NumericLessThan":{"keystack:KeyVersion":2}`,
		`"StringEquals":{"keystack:PrincipalTag/t":"1"}`, `"StringEquals":{"keystack:EncryptionContext/D":"x"}`,
		`"StringEquals":{"KEYSTACK:encryptioncontext/d":"x"}`, `"StringEquals":{"keystack:principaltag/T":"1"}`,
		`"StringEqualsIfExists":{"keystack:EncryptionContext/d":"x"}`, `"StringNotEqualsIfExists":{"keystack:ENCRYPTIONCONTEXT/D":"y"}`,
		`"ForAnyValue:StringEquals":{"keystack:EncryptionContextKeys":["d","e"]}`, `"ForAllValues:StringLike":{"KeyStack:EncryptionContextKeys":"d*"}`,
		`"ForAnyValue:StringEquals":{"keystack:EncryptionContext/d":"x"}`, `"ForAllValues:StringEquals":{"keystack:EncryptionContext/D":"x"}`}
	// Contexts spell the context key d in several ways, twice in one
	// context, with the same or different values.
	Contexts = []map[string]string{nil, {"d": "x"}, {"D": "x"}, {"d": "y"}, {"d": "x", "D": "y"}, {"D": "x", "d": "x"}, {"e": "x"}, {"d": "x", "e": "y"}}
)

func pick(rng *rand.Rand, xs []string, n int) string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%q", xs[rng.Intn(len(xs))]))
	}
	return "[" + strings.Join(out, ",") + "]"
}

// RandomStatement returns a random statement, a Deny with probability
// denyRate percent, over a few principals, actions, resources and
// conditions that overlap in every way the matchers must get right.
func RandomStatement(rng *rand.Rand, denyRate int) string {
	effect := "Allow"
	if rng.Intn(100) < denyRate {
		effect = "Deny"
	}
	pe, ae, re := "Principal", "Action", "Resource"
	if rng.Intn(8) == 0 {
		pe = "NotPrincipal"
	}
	if rng.Intn(6) == 0 {
		ae = "NotAction"
	}
	if rng.Intn(8) == 0 {
		re = "NotResource"
	}
	s := fmt.Sprintf(`{"Effect":%q,%q:%s,%q:%s,%q:%s`, effect, pe, pick(rng, propPrincipals, 1+rng.Intn(2)),
		ae, pick(rng, propActions, 1+rng.Intn(2)), re, pick(rng, propResources, 1+rng.Intn(2)))
	if c := propConds[rng.Intn(len(propConds))]; c != "" {
		if c2 := propConds[rng.Intn(len(propConds))]; c2 != "" && !strings.HasPrefix(c2, strings.SplitN(c, ":{", 2)[0]+":{") {
			c += "," + c2
		}
		s += `,"Condition":{` + c + `}`
	}
	return s + "}"
}

// RandomPolicy returns a random policy document of n statements.
func RandomPolicy(rng *rand.Rand, n, denyRate int) string {
	var ss []string
	for i := 0; i < n; i++ {
		ss = append(ss, RandomStatement(rng, denyRate))
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(ss, ",") + `]}`
}
