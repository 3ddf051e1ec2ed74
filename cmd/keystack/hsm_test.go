package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// SoftHSM2 test token PINs. They are test values only.
const (
	testTokenPIN   = "1234"
	testTokenSOPIN = "12345678"
)

// testPKCS11Module is the SoftHSM2 module the scripts load.
func testPKCS11Module() string {
	if m := os.Getenv("KEYSTACK_TEST_PKCS11_MODULE"); m != "" {
		return m
	}
	return defaultPKCS11Module
}

// softhsmMissing says why SoftHSM2 scripts cannot run, or is "".
func softhsmMissing() string {
	if _, err := os.Stat(testPKCS11Module()); err != nil {
		return fmt.Sprintf("SoftHSM2 module %s not found (apt-get install softhsm2)", testPKCS11Module())
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return "softhsm2-util not found in PATH (apt-get install softhsm2)"
	}
	return ""
}

// scriptCondition adds [softhsm]: SoftHSM2 is installed. On CI
// (CI=true) a missing SoftHSM2 fails the script instead of skipping it.
func scriptCondition(cond string) (bool, error) {
	if cond == "tmpfs" {
		return tmpfsCondition()
	}
	if cond != "softhsm" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	why := softhsmMissing()
	if why != "" && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("CI=true but %s", why)
	}
	return why == "", nil
}

// cmdSoftHSM runs "softhsm LABEL": it creates a SoftHSM2 token LABEL
// (newSoftHSMToken) in a token directory of the script's own, and points
// the rest of the script there: SOFTHSM2_CONF, KEYSTACK_PKCS11_MODULE, and
// $PIN_FILE, a file holding the PIN for pin-source=file:$PIN_FILE.
// SoftHSM2 reads SOFTHSM2_CONF once per process, and every "exec keystack"
// is a new process.
func cmdSoftHSM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: softhsm LABEL")
	}
	if why := softhsmMissing(); why != "" {
		ts.Fatalf("softhsm: %s", why)
	}
	conf, pin, err := newSoftHSMToken(ts.MkAbs("softhsm"), args[0])
	ts.Check(err)
	ts.Setenv("SOFTHSM2_CONF", conf)
	ts.Setenv(envPKCS11Module, testPKCS11Module())
	ts.Setenv("PIN_FILE", pin)
}

// newSoftHSMToken creates a SoftHSM2 token label (user PIN 1234) in a
// token directory under dir and returns the SOFTHSM2_CONF that points
// there and a file holding the PIN.
func newSoftHSMToken(dir, label string) (conf, pin string, err error) {
	tokens := filepath.Join(dir, "tokens")
	conf, pin = filepath.Join(dir, "softhsm2.conf"), filepath.Join(dir, "pin")
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	err = errors.Join(os.MkdirAll(tokens, 0o700), os.WriteFile(conf, []byte(cfg), 0o600), os.WriteFile(pin, []byte(testTokenPIN+"\n"), 0o600))
	if err != nil {
		return "", "", err
	}
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label,
		"--so-pin", testTokenSOPIN, "--pin", testTokenPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("softhsm2-util --init-token: %v: %s", err, bytes.TrimSpace(out))
	}
	return conf, pin, nil
}

// TestSoftHSMCondition checks that [softhsm] skips a script locally but
// fails it on CI when SoftHSM2 is missing.
func TestSoftHSMCondition(t *testing.T) {
	t.Setenv("KEYSTACK_TEST_PKCS11_MODULE", filepath.Join(t.TempDir(), "missing.so"))
	t.Setenv("CI", "")
	if ok, err := scriptCondition("softhsm"); ok || err != nil {
		t.Errorf("without the module, off CI: got %v, %v; want false, nil", ok, err)
	}
	t.Setenv("CI", "true")
	if ok, err := scriptCondition("softhsm"); ok || err == nil {
		t.Errorf("without the module, on CI: got %v, %v; want false and an error", ok, err)
	}
	if _, err := scriptCondition("nosuch"); err == nil {
		t.Error("unknown condition: no error")
	}
}
