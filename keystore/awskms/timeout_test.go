package awskms_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/internal/kmstest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

// TestTimeoutBoundsEveryCall: a KMS that holds a request without answering
// fails the call after Options.Timeout (retries included) with a
// NoAnswerError matching ErrUnavailable; the Region then fails at once
// without a new request, and another Region is unaffected.
func TestTimeoutBoundsEveryCall(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	other := f.createKey(t, "us-west-2", false)
	opts := f.options(k, other)
	opts.Timeout = 300 * time.Millisecond
	kr := f.keyring(t, opts)
	m := wrap(t, kr, testEC)

	edks := m.EncryptedDataKeys // one per key, in key order

	f.srv.InjectFault("Decrypt", kmstest.Delay(time.Minute))
	start := time.Now()
	_, err := unwrap(kr, testEC, edks[:1])
	var na *awskms.NoAnswerError
	if !errors.Is(err, awskms.ErrUnavailable) || !errors.As(err, &na) || !na.TimedOut || na.Region != "us-east-1" {
		t.Fatalf("held request: %v; want a timed-out NoAnswerError for us-east-1", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("held request failed only after %v with a 300ms timeout", d)
	}
	if n := f.srv.Calls("Decrypt"); n != 1 {
		t.Fatalf("Decrypt calls = %d, want 1: a timed-out call is not retried", n)
	}

	// us-east-1 now fails at once, without a request; us-west-2 still works.
	f.srv.ClearFaults()
	_, err = unwrap(kr, testEC, edks[:1])
	if !errors.As(err, &na) || !na.Earlier {
		t.Fatalf("second call to a Region that did not answer: %v; want an Earlier NoAnswerError", err)
	}
	if n := f.srv.Calls("Decrypt"); n != 1 {
		t.Fatalf("Decrypt calls = %d, want still 1", n)
	}
	if dk, err := unwrap(kr, testEC, edks[1:]); err != nil || dk == nil {
		t.Fatalf("another Region: %v", err)
	}
}

// TestUnreachableEndpoint: nothing listening is ErrUnavailable naming the
// refused connection, well within the timeout.
func TestUnreachableEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	m := wrap(t, f.keyring(t, f.options(k)), testEC)
	opts := f.options(k)
	opts.Endpoint = "http://" + addr
	_, err = unwrap(f.keyring(t, opts), testEC, m.EncryptedDataKeys)
	var na *awskms.NoAnswerError
	if !errors.Is(err, awskms.ErrUnavailable) || !errors.As(err, &na) || na.TimedOut {
		t.Fatalf("refused connection: %v; want a NoAnswerError that did not time out", err)
	}
	var ke *awskms.KMSError
	if !errors.As(err, &ke) || ke.Op != "Decrypt" {
		t.Fatalf("refused connection: %v; want a KMSError naming Decrypt", err)
	}
}

// TestCallerCancelIsNotUnavailable: the caller's own deadline is not the
// backend's fault and marks nothing down.
func TestCallerCancelIsNotUnavailable(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	kr := f.keyring(t, f.options(k))
	m := wrap(t, kr, testEC)
	f.srv.InjectFault("Decrypt", kmstest.Delay(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := unwrapCtx(ctx, kr, testEC, m.EncryptedDataKeys); errors.Is(err, awskms.ErrUnavailable) {
		t.Fatalf("caller's deadline reported as an unavailable KMS: %v", err)
	}
	f.srv.ClearFaults()
	if dk, err := unwrap(kr, testEC, m.EncryptedDataKeys); err != nil || dk == nil {
		t.Fatalf("after the caller's own timeout: %v", err)
	}
}

// TestResolveRefAlias: an alias ARN resolves to its key ARN with one
// DescribeKey; a key ARN is returned without a call.
func TestResolveRefAlias(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	alias := f.createAlias(t, "us-east-1", "alias/resolve-me", k)
	b := awskms.NewBackend(f.options())
	got, err := b.ResolveRef(context.Background(), alias)
	if err != nil || got != k {
		t.Fatalf("ResolveRef(%s) = %q, %v; want %s", alias, got, err, k)
	}
	if got, err := b.ResolveRef(context.Background(), k); err != nil || got != k {
		t.Fatalf("ResolveRef(key ARN) = %q, %v", got, err)
	}
	if n := f.srv.Calls("DescribeKey"); n != 1 {
		t.Fatalf("DescribeKey calls = %d, want 1", n)
	}
	if _, err := b.ResolveRef(context.Background(), alias+"-missing"); err == nil {
		t.Fatal("ResolveRef of an alias that names no key succeeded")
	}

	// A keyring for the alias ARN (a store key recorded by alias before
	// key create resolved aliases) decrypts what it encrypts.
	kr, err := b.Keyring(context.Background(), alias)
	if err != nil {
		t.Fatal(err)
	}
	m := wrap(t, kr, testEC)
	if dk, err := unwrap(kr, testEC, m.EncryptedDataKeys); err != nil || dk == nil {
		t.Fatalf("alias keyring decrypting its own EDK: %v", err)
	}
}

// createAlias names key in region with alias and returns the alias ARN.
func (f *fixture) createAlias(t testing.TB, region, alias, key string) string {
	t.Helper()
	if _, err := f.admin(region).CreateAlias(context.Background(), &kms.CreateAliasInput{
		AliasName: aws.String(alias), TargetKeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	return "arn:aws:kms:" + region + ":" + kmstest.DefaultAccountID + ":" + alias
}

// TestStoreResolvesAliases: a store key created by alias ARN, or moved to
// one with RotateKeyTo, records the key ARN (and the alias), so it
// decrypts the messages it encrypts, which name the key ARN.
func TestStoreResolvesAliases(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(t, "us-east-1", false), f.createKey(t, "us-east-1", false)
	a1 := f.createAlias(t, "us-east-1", "alias/store-one", k1)
	a2 := f.createAlias(t, "us-east-1", "alias/store-two", k2)
	s := f.kmsStore(t)
	ctx := context.Background()
	info, err := s.CreateKey(ctx, "pay", keystore.CreateKeyOptions{Backend: keystore.BackendAWSKMS, Ref: a1})
	if err != nil {
		t.Fatal(err)
	}
	if v := info.Versions[0]; v.Ref != k1 || v.Alias != a1 {
		t.Fatalf("created by alias: ref %q alias %q; want %s and %s", v.Ref, v.Alias, k1, a1)
	}
	old := sealWith(t, s, "pay")
	openWith(t, s, "pay", old)
	if info, err = s.RotateKeyTo(ctx, "pay", a2, "move"); err != nil {
		t.Fatal(err)
	}
	if v := info.Versions[1]; v.Ref != k2 || v.Alias != a2 {
		t.Fatalf("moved to an alias: ref %q alias %q; want %s and %s", v.Ref, v.Alias, k2, a2)
	}
	openWith(t, s, "pay", sealWith(t, s, "pay"))
	openWith(t, s, "pay", old)
}
