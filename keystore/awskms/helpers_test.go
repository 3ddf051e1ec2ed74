package awskms_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/kmstest"
	"github.com/keystack/keystack/keystore/awskms"
)

func TestMain(m *testing.M) {
	// Never reach for EC2 instance metadata, whatever the machine.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// fixture is a kmstest server plus an admin client per Region.
type fixture struct {
	srv *kmstest.Server
}

func newFixture(t testing.TB, opts ...kmstest.Option) *fixture {
	s := kmstest.NewServer(opts...)
	t.Cleanup(s.Close)
	return &fixture{srv: s}
}

func testConfig() *aws.Config {
	return &aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(kmstest.AccessKeyID, kmstest.SecretAccessKey, ""),
	}
}

func (f *fixture) admin(region string) *kms.Client {
	cfg := testConfig()
	return kms.NewFromConfig(*cfg, func(o *kms.Options) {
		o.Region = region
		o.BaseEndpoint = aws.String(f.srv.URL())
	})
}

// rotationStatus reads key's automatic rotation setting from the test
// server with GetKeyRotationStatus (in the key ARN's Region, us-east-1).
func (f *fixture) rotationStatus(t testing.TB, key string) (enabled bool, periodDays int32, next time.Time) {
	t.Helper()
	out, err := f.admin("us-east-1").GetKeyRotationStatus(context.Background(), &kms.GetKeyRotationStatusInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyRotationEnabled, aws.ToInt32(out.RotationPeriodInDays), aws.ToTime(out.NextRotationDate)
}

// createKey makes a key in region and returns its ARN.
func (f *fixture) createKey(t testing.TB, region string, mrk bool) string {
	t.Helper()
	out, err := f.admin(region).CreateKey(context.Background(), &kms.CreateKeyInput{MultiRegion: aws.Bool(mrk)})
	if err != nil {
		t.Fatal(err)
	}
	return *out.KeyMetadata.Arn
}

// options returns keyring options pointed at the server, with fast retries.
func (f *fixture) options(keys ...string) awskms.Options {
	return awskms.Options{KeyIDs: keys, Endpoint: f.srv.URL(), Config: testConfig(),
		MaxAttempts: 5, MaxBackoff: 50 * time.Millisecond}
}

func (f *fixture) keyring(t testing.TB, opts awskms.Options) *awskms.Keyring {
	t.Helper()
	kr, err := awskms.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var testEC = map[string]string{"purpose": "awskms-test", "tenant": "acme"}

// wrap runs OnEncrypt with a fresh materials for the committing suite.
func wrap(t testing.TB, kr envelope.Keyring, ec map[string]string) *envelope.EncryptionMaterials {
	t.Helper()
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ec, PlaintextLength: -1}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// unwrap runs OnDecrypt and returns the data key or the error.
func unwrap(kr envelope.Keyring, ec map[string]string, edks []envelope.EncryptedDataKey) ([]byte, error) {
	return unwrapCtx(context.Background(), kr, ec, edks)
}

func unwrapCtx(ctx context.Context, kr envelope.Keyring, ec map[string]string, edks []envelope.EncryptedDataKey) ([]byte, error) {
	m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ec}
	err := kr.OnDecrypt(ctx, m, edks)
	return m.DataKey, err
}
