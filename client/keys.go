package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// Key is a server key as DescribeKey and its companions describe it.
type Key struct {
	KeyID       string            `json:"key_id"`
	ARN         string            `json:"arn"`
	Aliases     []string          `json:"aliases,omitempty"`
	Description string            `json:"description,omitempty"`
	State       string            `json:"state,omitempty"`
	Created     time.Time         `json:"created,omitzero"`
	Tags        map[string]string `json:"tags,omitempty"`
	// DescribeDenied is set, by ListKeys, for a key the policy lets the
	// caller list but not describe: only KeyID, ARN and Aliases are known.
	DescribeDenied bool `json:"describe_denied,omitempty"`
	// Rotation details, filled by ShowKey only.
	RotationEnabled bool        `json:"rotation_enabled"`
	RotationPeriod  int32       `json:"rotation_period_days,omitempty"`
	NextRotation    *time.Time  `json:"next_rotation,omitempty"`
	Rotations       []time.Time `json:"rotations,omitempty"`
}

// kmsErr turns an SDK error of op into an APIError or an UnavailableError.
func kmsErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if f := endpointsFailure(err); f != nil {
		return f
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		status := 400
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return &APIError{Op: op, Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Status: status}
	}
	return fmt.Errorf("keystack server: %s: %w", op, err)
}

func (c *Client) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// resolveKey returns the key ARN of ref: a key ARN as is; a key ID
// (store key name or UUID); an alias name with or without "alias/".
// Store key names are tried as key IDs first, then as aliases.
func (c *Client) resolveKey(ctx context.Context, ref string) (string, error) {
	if strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":key/") {
		return ref, nil
	}
	k, err := c.describe(ctx, ref)
	if errors.Is(err, ErrNotFound) && !strings.HasPrefix(ref, "alias/") && !strings.HasPrefix(ref, "arn:") {
		k, err = c.describe(ctx, "alias/"+ref)
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("%w: no key or alias %q on the server", ErrNotFound, ref)
		}
	}
	if err != nil {
		return "", err
	}
	return aws.ToString(k.Arn), nil
}

func (c *Client) describe(ctx context.Context, id string) (*types.KeyMetadata, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	out, err := c.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		return nil, kmsErr("DescribeKey", err)
	}
	return out.KeyMetadata, nil
}

// CreateKey creates a server key (an AES-256 key named by a UUID) and,
// when name is not empty, the alias alias/NAME for it. An alias already
// taken is refused before the key is made.
func (c *Client) CreateKey(ctx context.Context, name, description string) (Key, error) {
	if name != "" {
		if _, err := c.describe(ctx, "alias/"+name); err == nil {
			return Key{}, fmt.Errorf("%w: alias/%s names a key already", ErrExists, name)
		} else if !errors.Is(err, ErrNotFound) {
			return Key{}, err
		}
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	in := &kms.CreateKeyInput{}
	if description != "" {
		in.Description = aws.String(description)
	}
	out, err := c.kms.CreateKey(cctx, in)
	if err != nil {
		return Key{}, kmsErr("CreateKey", err)
	}
	k := keyOf(out.KeyMetadata)
	if name == "" {
		return k, nil
	}
	_, err = c.kms.CreateAlias(cctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + name), TargetKeyId: out.KeyMetadata.KeyId})
	if err != nil {
		return k, fmt.Errorf("key %s was created, but its alias was not: %w", k.KeyID, kmsErr("CreateAlias", err))
	}
	k.Aliases = []string{"alias/" + name}
	return k, nil
}

func keyOf(m *types.KeyMetadata) Key {
	return Key{KeyID: aws.ToString(m.KeyId), ARN: aws.ToString(m.Arn), Description: aws.ToString(m.Description),
		State: string(m.KeyState), Created: aws.ToTime(m.CreationDate).UTC()}
}

// ListKeys lists every key the server holds, with its aliases and
// description, oldest first as the server lists them. It needs ListKeys
// and ListAliases; a key the caller may not DescribeKey is listed with
// DescribeDenied set (as `aws kms list-keys` lists bare IDs), not
// failing the call.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	aliases, err := c.aliases(ctx, "")
	if err != nil {
		return nil, err
	}
	var keys []Key
	var marker *string
	for {
		cctx, cancel := c.ctx(ctx)
		out, err := c.kms.ListKeys(cctx, &kms.ListKeysInput{Marker: marker})
		cancel()
		if err != nil {
			return nil, kmsErr("ListKeys", err)
		}
		for _, e := range out.Keys {
			m, err := c.describe(ctx, aws.ToString(e.KeyId))
			if errors.Is(err, ErrAccessDenied) {
				keys = append(keys, Key{KeyID: aws.ToString(e.KeyId), ARN: aws.ToString(e.KeyArn),
					Aliases: aliases[aws.ToString(e.KeyId)], DescribeDenied: true})
				continue
			}
			if err != nil {
				return nil, err
			}
			k := keyOf(m)
			k.Aliases = aliases[k.KeyID]
			keys = append(keys, k)
		}
		if !out.Truncated {
			return keys, nil
		}
		marker = out.NextMarker
	}
}

// aliases maps key IDs to their alias names (of keyID only, if set).
func (c *Client) aliases(ctx context.Context, keyID string) (map[string][]string, error) {
	m := map[string][]string{}
	var marker *string
	for {
		in := &kms.ListAliasesInput{Marker: marker}
		if keyID != "" {
			in.KeyId = aws.String(keyID)
		}
		cctx, cancel := c.ctx(ctx)
		out, err := c.kms.ListAliases(cctx, in)
		cancel()
		if err != nil {
			return nil, kmsErr("ListAliases", err)
		}
		for _, a := range out.Aliases {
			id := aws.ToString(a.TargetKeyId)
			m[id] = append(m[id], aws.ToString(a.AliasName))
		}
		if !out.Truncated {
			return m, nil
		}
		marker = out.NextMarker
	}
}
