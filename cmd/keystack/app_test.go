package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/keystore"
)

func TestPermuteArgs(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"key", "create", "NAME", "--description", "D"},
			[]string{"key", "create", "--description", "D", "--", "NAME"}},
		{[]string{"--home", "h", "inspect", "f.ks", "--json"},
			[]string{"--home", "h", "inspect", "--json", "--", "f.ks"}},
		{[]string{"decrypt", "-i", "-", "-k", "a", "-k=b", "--force"},
			[]string{"decrypt", "-i", "-", "-k", "a", "-k=b", "--force"}},
		{[]string{"inspect", "--", "-weird-name"},
			[]string{"inspect", "--", "-weird-name"}},
		{[]string{"help", "encrypt"}, []string{"help", "encrypt"}},
		{[]string{"key", "show", "key"}, []string{"key", "show", "--", "key"}},
	}
	for _, tc := range tests {
		got := permuteArgs(newApp(), append([]string{"keystack"}, tc.in...))
		if want := append([]string{"keystack"}, tc.want...); !slices.Equal(got, want) {
			t.Errorf("permuteArgs(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("disk on fire"), 1},
		{usagef("bad"), 2},
		{fmt.Errorf("f: %w", envelope.ErrInvalidOptions), 2},
		{fmt.Errorf("f: %w", envelope.ErrAuthentication), 3},
		{&envelope.NoDecryptKeyError{}, 3},
		{fmt.Errorf("f: %w", envelope.ErrTruncated), 3},
		{fmt.Errorf("f: %w", keystore.ErrKeyNotFound), 4},
		{keystore.ErrBadPassphrase, 4},
		{errNoPassphrase, 4},
		{fmt.Errorf("out: %w", fsx.ErrExist), 1},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
