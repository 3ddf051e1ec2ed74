package keystack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

// Example is the README's Go API example (TestREADMEExample keeps the two
// the same text).
func Example() {
	ctx := context.Background()
	dir, pass := newKeystore() // as `keystack init` and `keystack key create payments` make it

	store, err := keystore.Open(dir, keystore.OpenOptions{Passphrase: pass}) // pass is called only when a key is needed
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	enc, err := store.EncryptKeyring(ctx, "payments") // or keyring.NewRawAES / awskms.New / hsm
	if err != nil {
		log.Fatal(err)
	}
	var msg bytes.Buffer
	w, err := envelope.Encrypt(ctx, &msg, enc, envelope.EncryptOptions{
		Context: map[string]string{"tenant": "acme"},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = io.Copy(w, strings.NewReader("hello, world\n")) // constant memory; frames sealed in parallel
	if cerr := w.Close(); err == nil {                       // Close writes the final frame (and footer)
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("encrypted under", w.Header().EncryptedDataKeys[0].ProviderID)

	dec, err := store.DecryptKeyring(ctx) // every key in the store
	if err != nil {
		log.Fatal(err)
	}
	r, err := envelope.Decrypt(ctx, &msg, dec, envelope.DecryptOptions{
		Context: map[string]string{"tenant": "acme"}, // must match; supplies required-context keys
	})
	if err != nil {
		log.Fatal(err) // errors.Is: envelope.ErrAuthentication, envelope.ErrNoDecryptKey, ...
	}
	defer r.Close()
	if _, err := io.Copy(os.Stdout, r); err != nil { // never yields a frame before its tag verifies
		log.Fatal(err)
	}
	// Output:
	// encrypted under keystack
	// hello, world
}
