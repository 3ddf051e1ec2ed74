package policy

import (
	"fmt"
	"strings"
)

// cstatement is a statement compiled for evaluation.
type cstatement struct {
	index                                int
	sid, lbl                             string
	effect                               Effect
	principals, actions, resources       []glob
	notPrincipal, notAction, notResource bool
	conds                                []ccond
	msgs                                 statementReasons
}

func compileStatement(s *Statement, path string) (cstatement, error) {
	cs := cstatement{sid: s.Sid, effect: s.Effect}
	if _, err := fmt.Sscanf(path, "Statement[%d]", &cs.index); err != nil {
		return cs, err
	}
	cs.lbl = s.Sid
	if cs.lbl == "" {
		cs.lbl = path
	}
	cs.msgs = newStatementReasons(cs.lbl, s.Effect)
	if s.Effect != Allow && s.Effect != Deny {
		return cs, &ValidationError{Path: path + ".Effect", Msg: fmt.Sprintf("effect %q is neither Allow nor Deny", s.Effect)}
	}
	var err error
	if cs.principals, cs.notPrincipal, err = compileElem(path, "Principal", s.Principal, s.NotPrincipal, checkPrincipal, false); err != nil {
		return cs, err
	}
	if cs.actions, cs.notAction, err = compileElem(path, "Action", s.Action, s.NotAction, checkAction, true); err != nil {
		return cs, err
	}
	if cs.resources, cs.notResource, err = compileElem(path, "Resource", s.Resource, s.NotResource, checkResource, false); err != nil {
		return cs, err
	}
	cs.conds, err = compileConditions(s.Condition, path, cs.lbl)
	return cs, err
}

// compileConditions compiles a Condition block. Condition keys are
// case-insensitive, so one operator naming a key in two spellings is
// ambiguous and refused.
func compileConditions(cond Condition, path, lbl string) ([]ccond, error) {
	var out []ccond
	for _, op := range sortedKeys(cond) {
		seen := map[string]string{}
		for _, key := range sortedKeys(cond[op]) {
			cpath := path + ".Condition." + op + quoteKey(key)
			c, err := compileCondition(op, key, cond[op][key], cpath)
			if err != nil {
				return nil, err
			}
			if other, dup := seen[c.norm]; dup {
				return nil, &ValidationError{Path: cpath, Msg: fmt.Sprintf("condition key %q repeats %q (condition keys are case-insensitive)", key, other)}
			}
			seen[c.norm] = key
			c.failed.Statement, c.failed.Text = lbl, lbl+": "+c.failed.Text
			out = append(out, c)
		}
	}
	return out, nil
}

// compileElem compiles the one of Name/NotName that is present.
func compileElem(path, name string, pos, neg Values, check func(string) string, fold bool) ([]glob, bool, error) {
	switch {
	case pos != nil && neg != nil:
		return nil, false, &ValidationError{Path: path, Msg: fmt.Sprintf("both %s and Not%s are set", name, name)}
	case pos == nil && neg == nil:
		return nil, false, &ValidationError{Path: path, Msg: fmt.Sprintf("one of %s or Not%s is required", name, name)}
	}
	vals, elem := pos, name
	if neg != nil {
		vals, elem = neg, "Not"+name
	}
	if len(vals) == 0 {
		return nil, false, &ValidationError{Path: path + "." + elem, Msg: "empty list"}
	}
	globs := make([]glob, len(vals))
	for i, v := range vals {
		if msg := check(v); msg != "" {
			return nil, false, &ValidationError{Path: fmt.Sprintf("%s.%s[%d]", path, elem, i), Msg: msg}
		}
		globs[i] = newGlob(v, fold)
	}
	return globs, neg != nil, nil
}

func checkPrincipal(p string) string {
	if !validPatternText(p) {
		return fmt.Sprintf("invalid principal %q", p)
	}
	if p == "*" {
		return ""
	}
	for _, prefix := range []string{"user:", "group:", "service:"} {
		if strings.HasPrefix(p, prefix) && len(p) > len(prefix) {
			return ""
		}
	}
	return fmt.Sprintf("principal %q is not *, user:<name>, group:<name> or service:<name>", p)
}

func checkAction(a string) string {
	if !validPatternText(a) {
		return fmt.Sprintf("invalid action %q", a)
	}
	if !strings.ContainsAny(a, "*?") {
		if canonicalAction(a) == "" {
			return fmt.Sprintf("unknown action %q", a)
		}
		return ""
	}
	g := newGlob(a, true)
	for _, known := range Actions {
		if g.match(strings.ToLower(known)) {
			return ""
		}
	}
	return fmt.Sprintf("action pattern %q matches no action", a)
}

func checkResource(r string) string {
	if !validPatternText(r) {
		return fmt.Sprintf("invalid resource %q", r)
	}
	if strings.HasPrefix(r, "key/") || r == ResourcePolicy || r == ResourceAudit || r == ResourceRandom ||
		strings.HasPrefix(r, ResourceCredentialsPrefix) || strings.ContainsAny(r[:1], "*?") {
		return ""
	}
	return fmt.Sprintf("resource %q is not key/<name>[/v<n>], policy, audit, random, credentials/<principal> or a pattern", r)
}
