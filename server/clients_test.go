package server_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireClient skips when an AWS client is missing, or fails under
// CI=true, where every prerequisite must be present
// (scripts/awsclients-install.sh installs them).
func requireClient(t *testing.T, what string, check *exec.Cmd) {
	t.Helper()
	if err := check.Run(); err != nil {
		msg := what + " is not available (" + err.Error() + "); scripts/awsclients-install.sh installs it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// clientEnv is the environment of an external client: no AWS
// configuration of the machine, no metadata service.
func clientEnv(f *fixture, akid, secret string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID=" + akid, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_DEFAULT_REGION=eu-west-1",
		"KS_URL=" + f.url, "KS_REGION=eu-west-1"}
	if p := os.Getenv("PYENV_ROOT"); p != "" {
		env = append(env, "PYENV_ROOT="+p)
	}
	for p, prefix := range map[string]string{owner: "KS_OWNER", "service:billing": "KS_BILLING"} {
		env = append(env, prefix+"_ID="+f.creds[p].AccessKeyID, prefix+"_SECRET="+f.creds[p].Secret)
	}
	return env
}

// TestBoto3 runs testdata/boto3_client.py with unmodified boto3: keys,
// aliases, data keys, contexts, denials and rotation.
func TestBoto3(t *testing.T) {
	t.Parallel() // a Python process: waits mostly
	requireClient(t, "python3 with boto3", exec.Command("python3", "-c", "import boto3"))
	f := newFixture(t)
	cmd := exec.Command("python3", filepath.Join("testdata", "boto3_client.py"))
	cmd.Env = clientEnv(f, "", "")
	out, err := cmd.CombinedOutput()
	t.Logf("boto3:\n%s", out)
	if err != nil || !strings.Contains(string(out), "boto3 checks passed") {
		t.Fatalf("boto3 client: %v", err)
	}
}

// awsCLI runs the AWS CLI as principal against the fixture.
func awsCLI(t *testing.T, f *fixture, principal string, args ...string) (string, string, error) {
	t.Helper()
	c := f.creds[principal]
	cmd := exec.Command("aws", append([]string{"kms", "--endpoint-url", f.url, "--output", "json"}, args...)...)
	cmd.Env = clientEnv(f, c.AccessKeyID, c.Secret)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestAWSCLI drives the server with the unmodified AWS CLI. Each call is
// a Python start of a second or so: the calls that do not depend on each
// other run at once, in parallel subtests.
func TestAWSCLI(t *testing.T) {
	t.Parallel() // AWS CLI processes: waits mostly
	requireClient(t, "the AWS CLI", exec.Command("aws", "--version"))
	f := newFixture(t)
	mustCLI := func(t *testing.T, principal string, args ...string) string {
		t.Helper()
		out, errOut, err := awsCLI(t, f, principal, args...)
		if err != nil {
			t.Fatalf("aws kms %s: %v\n%s", args[0], err, errOut)
		}
		return out
	}
	var ck struct{ KeyMetadata struct{ KeyId, Arn string } }
	out := mustCLI(t, owner, "create-key", "--description", "cli", "--tags", "TagKey=team,TagValue=billing")
	if err := json.Unmarshal([]byte(out), &ck); err != nil || ck.KeyMetadata.KeyId == "" {
		t.Fatalf("create-key output %q: %v", out, err)
	}
	id := ck.KeyMetadata.KeyId
	mustCLI(t, owner, "create-alias", "--alias-name", "alias/cli", "--target-key-id", id)
	denied := func(t *testing.T, principal, code string, args ...string) {
		t.Helper()
		if _, errOut, err := awsCLI(t, f, principal, args...); err == nil || !strings.Contains(errOut, code) {
			t.Errorf("aws kms %s: %v, stderr %q, want %s", args[0], err, errOut, code)
		}
	}
	t.Run("list-aliases", func(t *testing.T) {
		t.Parallel()
		if out := mustCLI(t, owner, "list-aliases"); !strings.Contains(out, `"alias/cli"`) {
			t.Errorf("list-aliases: %s", out)
		}
	})
	t.Run("encrypt-decrypt", func(t *testing.T) {
		t.Parallel()
		pt := filepath.Join(t.TempDir(), "pt")
		if err := os.WriteFile(pt, []byte("cli secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		var enc struct{ CiphertextBlob string }
		out := mustCLI(t, "service:billing", "encrypt", "--key-id", "alias/cli", "--plaintext", "fileb://"+pt, "--encryption-context", "tenant=acme")
		if err := json.Unmarshal([]byte(out), &enc); err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(t.TempDir(), "blob")
		raw, _ := base64.StdEncoding.DecodeString(enc.CiphertextBlob)
		if err := os.WriteFile(blob, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ ec, code string }{{"tenant=evil", "InvalidCiphertextException"}, {"tenant=locked", "AccessDeniedException"}} {
			t.Run(tc.ec, func(t *testing.T) {
				t.Parallel()
				denied(t, "service:billing", tc.code, "decrypt", "--ciphertext-blob", "fileb://"+blob, "--encryption-context", tc.ec)
			})
		}
		var dec struct{ Plaintext string }
		out = mustCLI(t, "service:billing", "decrypt", "--ciphertext-blob", "fileb://"+blob, "--encryption-context", "tenant=acme")
		if err := json.Unmarshal([]byte(out), &dec); err != nil {
			t.Fatal(err)
		}
		if got, _ := base64.StdEncoding.DecodeString(dec.Plaintext); string(got) != "cli secret" {
			t.Errorf("decrypt: %q", got)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		t.Parallel()
		denied(t, "service:billing", "AccessDeniedException", "rotate-key-on-demand", "--key-id", id)
		mustCLI(t, owner, "rotate-key-on-demand", "--key-id", id)
		if out := mustCLI(t, owner, "list-key-rotations", "--key-id", id); !strings.Contains(out, "ON_DEMAND") {
			t.Errorf("list-key-rotations: %s", out)
		}
	})
	t.Run("generate-data-key", func(t *testing.T) {
		t.Parallel()
		dk := mustCLI(t, "service:billing", "generate-data-key", "--key-id", id, "--key-spec", "AES_256")
		if !strings.Contains(dk, `"Plaintext"`) || !strings.Contains(dk, `"CiphertextBlob"`) {
			t.Errorf("generate-data-key: %s", dk)
		}
	})
}
