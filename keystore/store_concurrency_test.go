package keystore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// helperEnv makes the test binary act as a second process writing to a
// store (see TestMain): KEYSTACK_TEST_WRITER=dir,prefix,count.
const helperEnv = "KEYSTACK_TEST_WRITER"

func runWriterHelper() int {
	var dir, prefix string
	var n int
	if _, err := fmt.Sscanf(os.Getenv(helperEnv), "%s %s %d", &dir, &prefix, &n); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	s, err := Open(dir, OpenOptions{Passphrase: func() ([]byte, error) { return []byte(testPass), nil }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	for i := range n {
		if _, err := s.CreateKey(context.Background(), fmt.Sprintf("%s-%d", prefix, i), CreateKeyOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	return 0
}

// checkAllKeys asserts that the store file parses and holds every key
// prefix-i, and that each one still encrypts.
func checkAllKeys(t *testing.T, dir string, prefixes []string, n int) {
	t.Helper()
	s := openTestStore(t, dir, testPass)
	keys, err := s.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(prefixes)*n {
		t.Fatalf("store holds %d keys, want %d", len(keys), len(prefixes)*n)
	}
	for _, p := range prefixes {
		for i := range n {
			if _, err := s.EncryptKeyring(context.Background(), fmt.Sprintf("%s-%d", p, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestConcurrentStoreInstances(t *testing.T) {
	dir := newTestStore(t).Dir()
	const n = 8
	prefixes := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for _, p := range prefixes {
		s := openTestStore(t, dir, testPass) // separate instances, separate lock descriptors
		wg.Go(func() {
			for i := range n {
				if _, err := s.CreateKey(context.Background(), fmt.Sprintf("%s-%d", p, i), CreateKeyOptions{}); err != nil {
					t.Errorf("CreateKey: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkAllKeys(t, dir, prefixes, n)
}

func TestConcurrentProcesses(t *testing.T) {
	dir := newTestStore(t).Dir()
	const n = 6
	prefixes := []string{"p", "q"}
	cmds := make([]*exec.Cmd, len(prefixes))
	for i, p := range prefixes {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", helperEnv, dir, p, n))
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	checkAllKeys(t, dir, prefixes, n)
}
