package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// glob is a compiled '*'/'?' pattern. Literal patterns (the common case)
// compare without the matcher.
type glob struct {
	pat     string
	fold    bool // case-insensitive (actions)
	literal bool
}

func newGlob(pat string, fold bool) glob {
	if fold {
		pat = strings.ToLower(pat)
	}
	return glob{pat: pat, fold: fold, literal: !strings.ContainsAny(pat, "*?")}
}

// match reports whether s matches; for a folding glob s must already be
// lower-case (the evaluator lowers the request's action once).
func (g glob) match(s string) bool {
	if g.literal {
		return g.pat == s
	}
	return wildMatch(g.pat, s)
}

// wildMatch reports whether s matches pat, where '*' matches any run of
// characters and '?' exactly one. It runs in O(len(pat)·len(s)) worst case by
// backtracking only to the most recent star.
func wildMatch(pat, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pat) {
			switch c := pat[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[i:])
				p, i = p+1, i+n
				continue
			default:
				if c == s[i] {
					p, i = p+1, i+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starI:])
		starI += n
		p, i = starP+1, starI
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

// normalizeGlob rewrites every run of wildcards into its '?'s followed by at
// most one '*' ("*?*" → "?*"), which denotes the same language and lets
// globSubset decide more cases.
func normalizeGlob(pat string) []rune {
	var out []rune
	rs := []rune(pat)
	for i := 0; i < len(rs); {
		if rs[i] != '*' && rs[i] != '?' {
			out = append(out, rs[i])
			i++
			continue
		}
		q, star := 0, false
		for ; i < len(rs) && (rs[i] == '*' || rs[i] == '?'); i++ {
			if rs[i] == '*' {
				star = true
			} else {
				q++
			}
		}
		for ; q > 0; q-- {
			out = append(out, '?')
		}
		if star {
			out = append(out, '*')
		}
	}
	return out
}

// globSubset reports whether every string matched by p is matched by q. It is
// sound: true means containment holds. It treats p symbolically (q's '*'
// absorbs any of p's symbols, q's '?' absorbs one of p's literals or '?', a
// literal only itself), which may answer false for a few exotic contained
// pairs; callers treat false as "refuse".
func globSubset(p, q string, fold bool) bool {
	if fold {
		p, q = strings.ToLower(p), strings.ToLower(q)
	}
	ps, qs := normalizeGlob(p), normalizeGlob(q)
	memo := make(map[[2]int]bool)
	var sub func(i, j int) bool
	sub = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case j == len(qs):
			r = i == len(ps)
		case qs[j] == '*':
			r = sub(i, j+1) || (i < len(ps) && sub(i+1, j))
		case i == len(ps):
			r = false
		case qs[j] == '?':
			r = ps[i] != '*' && sub(i+1, j+1)
		default:
			r = ps[i] == qs[j] && sub(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return sub(0, 0)
}

// globIntersect reports whether some string matches both p and q. It is exact
// for '*'/'?' patterns over an unbounded alphabet.
func globIntersect(p, q string) bool {
	ps, qs := []rune(p), []rune(q)
	memo := make(map[[2]int]bool)
	var meet func(i, j int) bool
	meet = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case i < len(ps) && ps[i] == '*':
			r = meet(i+1, j) || (j < len(qs) && meet(i, j+1))
		case j < len(qs) && qs[j] == '*':
			r = meet(i, j+1) || (i < len(ps) && meet(i+1, j))
		case i == len(ps) || j == len(qs):
			r = i == len(ps) && j == len(qs)
		default:
			r = (ps[i] == '?' || qs[j] == '?' || ps[i] == qs[j]) && meet(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return meet(0, 0)
}

// validPatternText rejects empty patterns and control or space characters.
func validPatternText(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
