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
	t.Setenv(client.EnvServer, " ")
	if _, err := client.ConfigFromEnv(); !errors.Is(err, client.ErrNoServer) {
		t.Fatalf("blank KEYSTACK_SERVER: %v, want ErrNoServer", err)
	}
	for _, bad := range [][2]string{{client.EnvServer, "http://192.0.2.1:80"}, {client.EnvServerTimeout, "soon"}, {client.EnvServerTimeout, "-1s"}} {
		t.Setenv(client.EnvServer, "unix:///run/ks.sock")
		t.Setenv(client.EnvServerTimeout, "")
		t.Setenv(bad[0], bad[1])
		if _, err := client.ConfigFromEnv(); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%s=%q: %v, want ErrInvalidConfig", bad[0], bad[1], err)
		}
	}
	vals := map[string]string{client.EnvServer: "https://a:8443,https://b:8443", client.EnvServerCA: "ca.pem",
		client.EnvClientCert: "c.pem", client.EnvClientKey: "k.pem", client.EnvServerRegion: "eu-west-1",
		client.EnvServerTimeout: "3s", client.EnvAccessKeyID: "KSX", client.EnvSecretKey: "s"}
	for k, v := range vals {
		t.Setenv(k, v)
	}
	cfg, err := client.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[1].Host != "b:8443" || cfg.CAFile != "ca.pem" || cfg.CertFile != "c.pem" ||
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
