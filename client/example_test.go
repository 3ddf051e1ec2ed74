package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/keystack/keystack/client"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// An application uses a key server in a few lines: FromEnv reads
// KEYSTACK_SERVER and the other variables the CLI reads; bodies are
// encrypted in the application, and only data keys come from the server.
func ExampleFromEnv() {
	stop := startExampleServer() // sets KEYSTACK_SERVER and an access key
	defer stop()

	ctx := context.Background()
	c, err := client.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	enc, err := c.EncryptKeyring(ctx, []string{"payments"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	tenant := map[string]string{"tenant": "acme"}
	msg, err := envelope.EncryptBytes(ctx, []byte("hello"), enc, envelope.EncryptOptions{Context: tenant})
	if err != nil {
		log.Fatal(err)
	}
	dec, err := c.DecryptKeyring(ctx, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	plain, _, err := envelope.DecryptBytes(ctx, msg, dec, envelope.DecryptOptions{Context: tenant})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plain))
	// Output: hello
}

// startExampleServer serves a fresh keystore with one key, "payments",
// over loopback HTTP, and points the KEYSTACK_* variables at it.
func startExampleServer() (stop func()) {
	dir, err := os.MkdirTemp("", "keystack-example")
	if err != nil {
		log.Fatal(err)
	}
	ks := filepath.Join(dir, "ks")
	s, err := keystore.Init(ks, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner})
	if err == nil {
		_ = s.Close()
		s, err = keystore.Open(ks, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	}
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.CreateKey(ctx, "payments", keystore.CreateKeyOptions{}); err != nil {
		log.Fatal(err)
	}
	cred, err := s.CreateCredential(ctx, owner)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	vars := map[string]string{"KEYSTACK_SERVER": hs.URL, "KEYSTACK_ACCESS_KEY_ID": cred.AccessKeyID, "KEYSTACK_SECRET_ACCESS_KEY": cred.Secret}
	for k, v := range vars {
		os.Setenv(k, v)
	}
	return func() {
		for k := range vars {
			os.Unsetenv(k)
		}
		hs.Close()
		_ = s.Close()
		os.RemoveAll(dir)
	}
}
