package keystack_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/keystack/keystack/internal/testhook"
	"github.com/keystack/keystack/keystore"
)

// exampleRoot holds the keystores the examples make; TestMain removes it.
var exampleRoot string

func TestMain(m *testing.M) {
	testhook.CheapKDF = true // the example's keystore unlocks with argon2id at its smallest costs
	var err error
	if exampleRoot, err = os.MkdirTemp("", "keystack-example-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(exampleRoot)
	os.Exit(code)
}

// newKeystore makes a passphrase-sealed keystore with one key, payments,
// and returns its directory and its passphrase source.
func newKeystore() (string, func() ([]byte, error)) {
	dir, err := os.MkdirTemp(exampleRoot, "home-")
	if err != nil {
		panic(err)
	}
	const pass = "correct horse battery staple"
	st, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte(pass)})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if _, err := st.CreateKey(context.Background(), "payments", keystore.CreateKeyOptions{}); err != nil {
		panic(err)
	}
	return dir, func() ([]byte, error) { return []byte(pass), nil }
}
