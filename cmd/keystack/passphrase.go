package main

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/term"
)

// Passphrase sources, in order: --passphrase-file, $KEYSTACK_PASSPHRASE, a
// prompt on the controlling terminal. A passphrase is never taken from argv,
// where other users could read it, and never appears in any message.
const (
	envPassphrase     = "KEYSTACK_PASSPHRASE"
	maxPassphraseFile = 64 << 10
)

// ttyPath is the terminal to prompt on; tests point it elsewhere so that a
// developer's terminal is never prompted.
var ttyPath = "/dev/tty"

var errNoPassphrase = errors.New("no passphrase given and no terminal to ask for one")

// passphraseSource returns a function that obtains the passphrase when the
// keystore needs it. With confirm set (keystore creation) a prompted
// passphrase is asked twice. When the keystore calls it again after a
// wrong passphrase (see passphraseTries), the prompt says so.
func passphraseSource(file string, confirm bool) func() ([]byte, error) {
	calls := 0
	return func() ([]byte, error) {
		if file != "" {
			return readPassphraseFile(file)
		}
		if p := os.Getenv(envPassphrase); p != "" {
			return []byte(p), nil
		}
		calls++
		return promptPassphrase(passphrasePrompt{confirm: confirm, attempt: calls})
	}
}

// promptTries is how often a prompted passphrase is asked while wrong.
const promptTries = 3

// passphraseTries is the keystore's PassphraseTries for a source: a
// prompt asks again after a wrong passphrase, a file or variable would
// give the same one.
func passphraseTries(file string) int {
	if file == "" && os.Getenv(envPassphrase) == "" {
		return promptTries
	}
	return 1
}

// errPassphraseFileAccess is a passphrase file that others could read or
// write: refused, as ssh refuses such private keys.
var errPassphraseFileAccess = errors.New("passphrase file is not private")

// readPassphraseFile reads the first line of file, without its line ending,
// once checkPrivate accepted it.
func readPassphraseFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	if err := checkPrivate(f); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if len(data) > maxPassphraseFile {
		return nil, fmt.Errorf("passphrase file %s is larger than %d bytes", file, maxPassphraseFile)
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		data = data[:i]
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: passphrase file %s is empty", errNoPassphrase, file)
	}
	return data, nil
}

// checkPrivate refuses a file that the group or others may access, or
// that another user owns (who could change it at will). It checks the open
// file, so the checked file is the one read.
func checkPrivate(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("passphrase file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, readable or writable by group or others", errPassphraseFileAccess, f.Name(), perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by this user (uid %d)", errPassphraseFileAccess, f.Name(), st.Uid, os.Geteuid())
	}
	return nil
}

// passphrasePrompt says what promptPassphrase asks for.
type passphrasePrompt struct {
	label   string // "passphrase" unless set ("new passphrase")
	confirm bool   // ask twice
	attempt int    // 2 and 3 say that the previous one was wrong
}

var (
	errPassphraseMismatch = errors.New("the passphrases do not match")
	errEmptyPassphrase    = errors.New("empty passphrase")
)

// promptPassphrase asks on the terminal (/dev/tty), so that it works while stdin and stdout
// carry data, and does not echo what is typed.
func promptPassphrase(pp passphrasePrompt) ([]byte, error) {
	tty, err := os.OpenFile(ttyPath, os.O_RDWR, 0)
	if err != nil {
		return nil, errNoPassphrase
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, errNoPassphrase
	}
	label := cmp.Or(pp.label, "passphrase")
	if pp.attempt > 1 {
		fmt.Fprintf(tty, "keystack: wrong passphrase, try again (%d of %d)\n", pp.attempt, promptTries)
	}
	p, err := readTTY(tty, "keystack: "+label+": ")
	if err != nil || !pp.confirm {
		return p, err
	}
	again, err := readTTY(tty, "keystack: confirm "+label+": ")
	if err != nil {
		clear(p)
		return nil, err
	}
	defer clear(again)
	if subtle.ConstantTimeCompare(p, again) != 1 {
		clear(p)
		return nil, errPassphraseMismatch
	}
	return p, nil
}

func readTTY(tty *os.File, prompt string) ([]byte, error) {
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errEmptyPassphrase
	}
	return p, nil
}
