package main

// "Did you mean": the closest command or flag name to a mistyped one, by
// Levenshtein distance, offered only when it is close enough to be a typo.

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// levenshtein is the edit distance between a and b (insertions, deletions
// and substitutions of runes).
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// closest returns the candidate nearest to typed, or "" when none is
// within a typo's distance: at most 2 edits, or a third of the name, and
// never for names shorter than 3.
func closest(typed string, candidates []string) string {
	if len([]rune(typed)) < 3 {
		return "" // any one-letter flag is one edit from another
	}
	best, bestD := "", 0
	for _, c := range candidates {
		d := levenshtein(typed, c)
		if strings.HasPrefix(c, typed) && len(typed) >= 3 {
			d = min(d, 1) // an abbreviation
		}
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len([]rune(typed))/3) {
		return ""
	}
	return best
}

// commandNames lists the names and aliases of cmds, hidden ones excluded.
func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	return names
}

// suggestCommand is the "did you mean" suffix for an unknown command.
func suggestCommand(cmds []*cli.Command, typed string) string {
	if s := closest(typed, commandNames(cmds)); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

var undefinedFlag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^flag provided but not defined: -+(.+)$`) })

// suggestFlag adds the closest flag of the command to cli's unknown-flag
// error, if one is close.
func suggestFlag(c *cli.Context, err error) string {
	m := undefinedFlag().FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	flags := c.App.Flags
	if c.Command != nil && c.Command.Name != "" {
		flags = c.Command.Flags
	}
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	msg := err.Error()
	if s := closest(m[1], names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", dashed(s))
	}
	return msg
}

// dashed writes a flag name as typed on the command line.
func dashed(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}
