package pkcs11token

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// pinEnv is the environment variable a PIN is read from when the URI has no
// pin-source.
const pinEnv = "KEYSTACK_PKCS11_PIN"

// maxPINFile bounds what is read from a pin-source file.
const maxPINFile = 1024

// PINPrompt asks the user for the PIN of the named token, e.g. on a TTY
// without echo. It is the last PIN source tried.
type PINPrompt func(ctx context.Context, token string) (string, error)

// resolvePIN returns the PIN from, in order: the URI's pin-source file, the
// KEYSTACK_PKCS11_PIN environment variable, the prompt. Errors name the
// source, never the PIN.
func resolvePIN(ctx context.Context, u *URI, token string, prompt PINPrompt) (string, error) {
	if u.PINSource != "" {
		return readPINFile(u.PINSource)
	}
	if pin, ok := os.LookupEnv(pinEnv); ok && pin != "" {
		return pin, nil
	}
	if prompt != nil {
		pin, err := prompt(ctx, token)
		if err != nil {
			return "", fmt.Errorf("hsm: PIN prompt: %w", err)
		}
		return pin, nil
	}
	return "", ErrNoPIN
}

// readPINFile reads a pin-source ("file:/path", "file:///path" or an
// absolute path): the first line, without its line ending.
func readPINFile(src string) (string, error) {
	path := src
	switch {
	case strings.HasPrefix(src, "file://"):
		path = strings.TrimPrefix(src, "file://")
	case strings.HasPrefix(src, "file:"):
		path = strings.TrimPrefix(src, "file:")
	case strings.Contains(src, ":"):
		return "", fmt.Errorf("%w: pin-source must be a file: URI or a path", ErrInvalidURI)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hsm: pin-source: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPINFile+1))
	if err != nil {
		return "", fmt.Errorf("hsm: pin-source %s: %w", path, err)
	}
	if len(b) > maxPINFile {
		return "", fmt.Errorf("hsm: pin-source %s: larger than %d bytes", path, maxPINFile)
	}
	pin, _, _ := strings.Cut(string(b), "\n")
	pin = strings.TrimSuffix(pin, "\r")
	if pin == "" {
		return "", fmt.Errorf("hsm: pin-source %s: empty", path)
	}
	return pin, nil
}
