package awskms

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keystack/keystack/internal/kmsarn"
)

// keyARN is a parsed KMS ARN: arn:partition:kms:region:account:key/id or
// …:alias/name (AWS General Reference, "Amazon Resource Names").
type keyARN struct {
	partition, region, account string
	resourceType, resourceID   string // "key" or "alias"
	raw                        string
}

// maxARNLen bounds an ARN read from an untrusted EDK; KMS ARNs are far shorter.
const maxARNLen = kmsarn.MaxLen

func parseARN(s string) (keyARN, error) {
	if len(s) > maxARNLen {
		return keyARN{}, fmt.Errorf("%w: %d bytes", ErrInvalidKeyID, len(s))
	}
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[2] != "kms" || f[3] == "" || f[4] == "" {
		return keyARN{}, fmt.Errorf("%w: %q", ErrInvalidKeyID, s)
	}
	typ, id, ok := strings.Cut(f[5], "/")
	if !ok || id == "" || (typ != "key" && typ != "alias") {
		return keyARN{}, fmt.Errorf("%w: %q names no key or alias", ErrInvalidKeyID, s)
	}
	if typ == "alias" {
		id = "alias/" + id
	}
	return keyARN{partition: f[1], region: f[3], account: f[4], resourceType: typ, resourceID: id, raw: s}, nil
}

func (a keyARN) isKey() bool { return a.resourceType == "key" }

// isMRK reports whether a names a multi-Region key, whose ID starts "mrk-".
func (a keyARN) isMRK() bool { return a.isKey() && strings.HasPrefix(a.resourceID, "mrk-") }

// mrkMatch reports whether two key ARNs name the same key, allowing
// multi-Region replicas in different Regions to match (ESDK
// framework/aws-kms/aws-kms-mrk-match-for-decrypt.md).
func mrkMatch(a, b keyARN) bool {
	if a.raw == b.raw {
		return true
	}
	return a.isMRK() && b.isMRK() && a.partition == b.partition && a.account == b.account &&
		a.resourceID == b.resourceID
}

// DiscoveryFilter limits a discovery keyring to keys of one partition and
// a set of accounts (ESDK framework/aws-kms/aws-kms-discovery-keyring.md).
type DiscoveryFilter struct {
	Partition  string
	AccountIDs []string
}

func (f *DiscoveryFilter) allows(a keyARN) bool {
	return f == nil || (a.partition == f.Partition && slices.Contains(f.AccountIDs, a.account))
}
