// Package awskms implements envelope keyrings whose master keys live in AWS
// KMS, producing the AWS Encryption SDK's "aws-kms" encrypted data keys
// (aws-encryption-sdk-specification, framework/aws-kms/aws-kms-keyring.md and
// aws-kms-mrk-keyring.md): provider ID "aws-kms", provider info the key ARN,
// ciphertext the KMS CiphertextBlob, with the message's encryption context
// passed to KMS as its EncryptionContext.
//
// A strict keyring ([Options].KeyIDs) only ever sends KMS the EDKs of the
// keys it lists; multi-Region keys match their replicas in other Regions.
// A discovery keyring ([Options].Discovery) decrypts any aws-kms EDK its
// [DiscoveryFilter] admits.
package awskms

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keystack/keystack/envelope"
)

// maxBlobLen bounds an EDK ciphertext before it is sent to KMS: KMS accepts
// CiphertextBlobs of at most 6144 bytes.
const maxBlobLen = 6144

// Options configures a Keyring.
type Options struct {
	// KeyIDs are key ARNs or alias ARNs. The first generates the data key,
	// every one wraps it. On decrypt only key ARNs match EDKs.
	KeyIDs []string
	// Discovery lets OnDecrypt try any aws-kms EDK that DiscoveryFilter admits,
	// not only those of KeyIDs.
	Discovery       bool
	DiscoveryFilter *DiscoveryFilter
	// GrantTokens are sent with every KMS call.
	GrantTokens []string
	// Endpoint overrides the KMS endpoint URL for every Region.
	Endpoint string
	// Region is the default Region when loading the AWS configuration.
	Region string
	// Config, when set, is used instead of config.LoadDefaultConfig.
	Config *aws.Config
	// MaxAttempts and MaxBackoff bound the SDK's retries (default: the
	// AWS configuration's max attempts, AWS_MAX_ATTEMPTS or a profile's
	// max_attempts, else 5; and 2s).
	MaxAttempts int
	MaxBackoff  time.Duration
	// Timeout bounds each KMS call, its retries included (default
	// DefaultTimeout). A call that gets no answer fails with a KMSError
	// matching ErrUnavailable that says so, and calls to the same Region
	// then fail at once for a minute, so an unreachable KMS costs a
	// command one Timeout per Region.
	Timeout time.Duration
}

// Keyring is an envelope.Keyring backed by AWS KMS. It is safe for concurrent use.
type Keyring struct {
	keys        []keyARN
	discovery   bool
	filter      *DiscoveryFilter
	grantTokens []string
	clients     *clients
}

var _ envelope.Keyring = (*Keyring)(nil)

// New returns a keyring configured by opts, loading AWS configuration and
// credentials once. It fails with ErrInvalidKeyID or ErrInvalidOptions for a
// bad configuration; it makes no KMS call.
func New(ctx context.Context, opts Options) (*Keyring, error) {
	keys, err := checkOptions(&opts)
	if err != nil {
		return nil, err
	}
	c, err := loadClients(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return newKeyring(keys, &opts, c), nil
}

func newKeyring(keys []keyARN, opts *Options, c *clients) *Keyring {
	return &Keyring{keys: keys, discovery: opts.Discovery, filter: opts.DiscoveryFilter,
		grantTokens: append([]string(nil), opts.GrantTokens...), clients: c}
}

func checkOptions(opts *Options) ([]keyARN, error) {
	if len(opts.KeyIDs) == 0 && !opts.Discovery {
		return nil, fmt.Errorf("%w: need KeyIDs or Discovery", ErrInvalidOptions)
	}
	if f := opts.DiscoveryFilter; f != nil && (f.Partition == "" || len(f.AccountIDs) == 0) {
		return nil, fmt.Errorf("%w: a discovery filter needs a partition and at least one account ID", ErrInvalidOptions)
	}
	if opts.DiscoveryFilter != nil && !opts.Discovery {
		return nil, fmt.Errorf("%w: DiscoveryFilter without Discovery", ErrInvalidOptions)
	}
	keys := make([]keyARN, 0, len(opts.KeyIDs))
	for _, id := range opts.KeyIDs {
		a, err := parseARN(id)
		if err != nil {
			return nil, err
		}
		keys = append(keys, a)
	}
	return keys, nil
}
