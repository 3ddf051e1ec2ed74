package client

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// ShowKey describes one key with its aliases, tags, rotation setting and
// on-demand rotations. ref is a key ARN; a key ID (store key name or UUID);
// or an alias name with or without "alias/". Store key names are tried as
// key IDs first, then as aliases.
func (c *Client) ShowKey(ctx context.Context, ref string) (Key, error) {
	arn, err := c.resolveKey(ctx, ref)
	if err != nil {
		return Key{}, err
	}
	m, err := c.describe(ctx, arn)
	if err != nil {
		return Key{}, err
	}
	k := keyOf(m)
	aliases, err := c.aliases(ctx, k.KeyID)
	if err != nil {
		return Key{}, err
	}
	k.Aliases = aliases[k.KeyID]
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	tags, err := c.kms.ListResourceTags(cctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
	if err != nil {
		return Key{}, kmsErr("ListResourceTags", err)
	}
	for _, t := range tags.Tags {
		if k.Tags == nil {
			k.Tags = map[string]string{}
		}
		k.Tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
	}
	rs, err := c.kms.GetKeyRotationStatus(cctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)})
	if err != nil {
		return Key{}, kmsErr("GetKeyRotationStatus", err)
	}
	k.RotationEnabled, k.RotationPeriod, k.NextRotation = rs.KeyRotationEnabled, aws.ToInt32(rs.RotationPeriodInDays), rs.NextRotationDate
	rots, err := c.kms.ListKeyRotations(cctx, &kms.ListKeyRotationsInput{KeyId: aws.String(arn)})
	if err != nil {
		return Key{}, kmsErr("ListKeyRotations", err)
	}
	for _, r := range rots.Rotations {
		k.Rotations = append(k.Rotations, aws.ToTime(r.RotationDate).UTC())
	}
	return k, nil
}

// RotateKey rotates a key on demand (RotateKeyOnDemand): a new key
// version becomes primary; older ciphertexts keep decrypting. It is never
// retried after it reached a server, so it cannot rotate twice.
func (c *Client) RotateKey(ctx context.Context, ref string) (string, error) {
	arn, err := c.resolveKey(ctx, ref)
	if err != nil {
		return "", err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.kms.RotateKeyOnDemand(cctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)}); err != nil {
		return "", kmsErr("RotateKeyOnDemand", err)
	}
	return arn, nil
}
