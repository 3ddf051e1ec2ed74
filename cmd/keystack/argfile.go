package main

// Argument files: "keystack @FILE" reads arguments from FILE the way the
// AWS Encryption CLI does (Python argparse with fromfile_prefix_chars="@"
// and its convert_arg_line_to_args): each line is split like a POSIX shell
// by Python's shlex (quotes; backslash escapes, inside double and single
// quotes too; "#" starts a comment to the end of the line), each argument
// is stripped of surrounding white space and has "~" and $VAR or ${VAR}
// expanded (unknown variables are left as written). An argument file may
// name further argument files.

import (
	"errors"
	"os"
	"os/user"
	"regexp"
	"strings"
	"sync"
	"unicode"
)

// maxArgfileDepth bounds argument files naming argument files, so a file
// naming itself is an error rather than a hang.
const maxArgfileDepth = 16

// expandArgfiles replaces each argument @FILE after argv[0] with the
// arguments FILE holds.
func expandArgfiles(argv []string) ([]string, error) {
	if len(argv) == 0 {
		return argv, nil
	}
	rest, err := expandArgs(argv[1:], 0)
	if err == nil {
		err = checkContextArgs(rest)
	}
	if err != nil {
		return nil, err
	}
	return append([]string{argv[0]}, rest...), nil
}

func expandArgs(args []string, depth int) ([]string, error) {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "@") {
			out = append(out, a)
			continue
		}
		if depth >= maxArgfileDepth {
			return nil, usagef("%s: argument files nested more than %d deep", a, maxArgfileDepth)
		}
		more, err := readArgfile(a[1:])
		if err == nil {
			more, err = expandArgs(more, depth+1)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// readArgfile reads the arguments of one file, line by line.
func readArgfile(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("argument file: %v", err)
	}
	var out []string
	for i, line := range splitLines(string(data)) {
		words, err := shlexSplit(line)
		if err != nil {
			return nil, usagef("argument file %s, line %d: %v", name, i+1, err)
		}
		for _, w := range words {
			out = append(out, expandVars(expandUser(strings.TrimFunc(w, unicode.IsSpace))))
		}
	}
	return out, nil
}

// splitLines splits at the line boundaries of Python's str.splitlines.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i, r := range s {
		if start > i {
			continue // the \n of a \r\n
		}
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			lines = append(lines, s[start:i])
			start = i + len(string(r))
			if r == '\r' && strings.HasPrefix(s[start:], "\n") {
				start++
			}
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

var (
	errNoClosingQuote = errors.New("no closing quotation")
	errNoEscaped      = errors.New("no escaped character")
)

// shlexSplit splits one line as Python's shlex.shlex(posix=True) with
// whitespace_split=True and escapedquotes="'\"" does.
func shlexSplit(line string) ([]string, error) {
	var words []string
	var tok strings.Builder
	inWord, quoted := false, false
	state, escFrom := ' ', ' '
	emit := func() {
		if inWord || quoted {
			words = append(words, tok.String())
		}
		tok.Reset()
		inWord, quoted = false, false
	}
	for _, c := range line {
		switch state {
		case '\\':
			if (escFrom == '"' || escFrom == '\'') && c != escFrom && c != '\\' {
				tok.WriteRune('\\')
			}
			tok.WriteRune(c)
			state, inWord = escFrom, true
		case '"', '\'':
			switch {
			case c == state:
				state = 'a'
			case c == '\\':
				escFrom, state = state, '\\'
			default:
				tok.WriteRune(c)
			}
		default: // ' ' between words, 'a' in a word
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
				emit()
				state = ' '
			case c == '#':
				emit()
				return words, nil
			case c == '\\':
				escFrom, state = 'a', '\\'
			case c == '"' || c == '\'':
				state, quoted = c, true
			default:
				tok.WriteRune(c)
				state, inWord = 'a', true
			}
		}
	}
	switch state {
	case '"', '\'':
		return nil, errNoClosingQuote
	case '\\':
		return nil, errNoEscaped
	}
	emit()
	return words, nil
}

// expandUser expands a leading ~ or ~USER as Python's os.path.expanduser.
func expandUser(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	i := strings.IndexByte(p, '/')
	if i < 0 {
		i = len(p)
	}
	var home string
	if i == 1 {
		home = os.Getenv("HOME")
		if home == "" {
			if u, err := user.Current(); err == nil {
				home = u.HomeDir
			}
		}
	} else if u, err := user.Lookup(p[1:i]); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		return p
	}
	if r := strings.TrimRight(home, "/") + p[i:]; r != "" {
		return r
	}
	return "/"
}

// varPattern is compiled on first use: a package-level regexp costs every
// command its compilation at start-up.
var varPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$([\p{L}\p{N}_]+|\{[^}]*\})`) })

// expandVars expands $NAME and ${NAME} as Python's os.path.expandvars:
// variables that are not set are left as written.
func expandVars(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return varPattern().ReplaceAllStringFunc(s, func(m string) string {
		name := strings.TrimPrefix(m, "$")
		if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") {
			name = name[1 : len(name)-1]
		}
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return m
	})
}
