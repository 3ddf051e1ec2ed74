package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// TestDrainOnShutdown: when Serve's context ends (SIGTERM in the CLI), a
// request already being received still completes, new connections are
// refused, and Serve returns nil.
func TestDrainOnShutdown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ks")
	st, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, server.ListenConfig{Unix: sock, Ready: func([]string) { close(ready) }})
	}()
	<-ready
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"NumberOfBytes":8}`
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"+
		"X-Amz-Target: TrentService.GenerateRandom\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	time.Sleep(200 * time.Millisecond) // the server is reading the body
	cancel()
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(sock); err == nil {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			t.Error("a new connection was accepted while draining")
		}
	}
	fmt.Fprint(conn, body[5:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request was cut off: %v", err)
	}
	// The peer is this process's user, whom the owner-only policy of an
	// owner named user:alice denies: an answer, not a dropped request.
	if resp.StatusCode != 400 && resp.StatusCode != 200 {
		t.Errorf("in-flight request answered %d", resp.StatusCode)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}
