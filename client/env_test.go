package client_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keystack/keystack/client"
)

// TestConfigFromEnv: unset is ErrNoServer, bad values are
// ErrInvalidConfig, and every variable lands in its field.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("KEYSTACK_SERVER", " ")
	if _, err := client.ConfigFromEnv(); !errors.Is(err, client.ErrNoServer) {
		t.Fatalf("blank KEYSTACK_SERVER: %v, want ErrNoServer", err)
	}
	for _, bad := range [][2]string{{"KEYSTACK_SERVER", "http://192.0.2.1:80"}, {"KEYSTACK_SERVER_TIMEOUT", "soon"}, {"KEYSTACK_SERVER_TIMEOUT", "-1s"}} {
		t.Setenv("KEYSTACK_SERVER", "unix:///run/ks.sock")
		t.Setenv("KEYSTACK_SERVER_TIMEOUT", "")
		t.Setenv(bad[0], bad[1])
		if _, err := client.ConfigFromEnv(); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%s=%q: %v, want ErrInvalidConfig", bad[0], bad[1], err)
		}
	}
	vals := map[string]string{"KEYSTACK_SERVER": "https://a:8443,https://b:8443", "KEYSTACK_SERVER_CA": "ca.pem",
		"KEYSTACK_CLIENT_CERT": "c.pem", "KEYSTACK_CLIENT_KEY": "k.pem", "KEYSTACK_SERVER_REGION": "eu-west-1",
		"KEYSTACK_SERVER_TIMEOUT": "3s", "KEYSTACK_ACCESS_KEY_ID": "KSX", "KEYSTACK_SECRET_ACCESS_KEY": "s"}
	for k, v := range vals {
		t.Setenv(k, v)
	}
	cfg, err := client.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[1] != "https://b:8443" || cfg.CAFile != "ca.pem" || cfg.CertFile != "c.pem" ||
		cfg.KeyFile != "k.pem" || cfg.Region != "eu-west-1" || cfg.Timeout.String() != "3s" || cfg.AccessKeyID != "KSX" || cfg.SecretAccessKey != "s" {
		t.Errorf("ConfigFromEnv = %+v", cfg)
	}
}

// TestREADMEFromEnv: README.md shows ExampleFromEnv's body word for word.
func TestREADMEFromEnv(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "func ExampleFromEnv() {\n")
	body, _, _ = strings.Cut(body, "\n}\n")
	lines := strings.Split(body+"\n", "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	if want := "```go\n" + strings.Join(lines, "\n") + "```"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show ExampleFromEnv's body; want the block:\n%s", want)
	}
}
