package safetext

import (
	"strings"
	"testing"
)

func TestBounded(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"plain message", 100, "plain message"},
		{"\x1b[2Jcleared\r\nnext", 100, " [2Jcleared  next"},
		{"bad \xff utf8", 100, "bad \uFFFD utf8"},
		{"tab\there\x7f", 100, "tab here "},
		{strings.Repeat("a", 10), 8, strings.Repeat("a", 8) + "…"},
		{strings.Repeat("a", 8), 8, strings.Repeat("a", 8)},
	} {
		if got := Bounded(c.in, c.n); got != c.want {
			t.Errorf("Bounded(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
