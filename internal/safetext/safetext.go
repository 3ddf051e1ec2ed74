// Package safetext makes text that a remote party chose (a KMS or key
// server's error message) safe to repeat in an error on a terminal.
package safetext

import (
	"strings"
	"unicode"
)

// Bounded returns s as an error may repeat it: control characters
// (escape sequences, line breaks) become spaces, invalid UTF-8 becomes
// U+FFFD, and at most n bytes of s are kept (an ellipsis marks a cut).
func Bounded(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
