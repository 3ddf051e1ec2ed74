package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/lazybackend"
	"github.com/keystack/keystack/keystore"
	"github.com/urfave/cli/v2"
)

// closingBackend records Close; it is never asked for keyrings here.
type closingBackend struct {
	closed int
	err    error
}

func (b *closingBackend) Keyring(context.Context, string) (envelope.Keyring, error) {
	return nil, errors.New("unused")
}
func (b *closingBackend) Close() error { b.closed++; return b.err }

var _ keystore.Backend = (*closingBackend)(nil)

// A backend the command opened is closed when the command ends, one that
// was never opened is not opened just to be closed, and a failed close is
// a warning rather than a failed command.
func TestAppClosesOpenedBackends(t *testing.T) {
	opened := &closingBackend{err: errors.New("C_Finalize failed")}
	opens := 0
	used := &lazybackend.Backend{Name: "used", Open: func() keystore.Backend { opens++; return opened }}
	unused := &lazybackend.Backend{Name: "unused", Open: func() keystore.Backend { opens++; return &closingBackend{} }}
	var stderr bytes.Buffer
	app := newApp()
	app.ErrWriter = &stderr
	c := cli.NewContext(app, nil, nil)
	closeOnExit(c, used, unused)
	used.UnwrapBackend()
	if err := closeAll(c); err != nil {
		t.Fatalf("closeAll: %v", err)
	}
	if opened.closed != 1 || opens != 1 {
		t.Fatalf("closed %d times, %d backends opened; want 1 and 1", opened.closed, opens)
	}
	if !strings.Contains(stderr.String(), "C_Finalize failed") {
		t.Fatalf("no warning for the failed close: %q", stderr.String())
	}
	if err := closeAll(c); err != nil || opened.closed != 1 {
		t.Fatalf("second closeAll closed again (%d) or failed: %v", opened.closed, err)
	}
}
