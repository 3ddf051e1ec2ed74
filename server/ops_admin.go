package server

import (
	"strings"
	"time"

	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/keystore"
)

type aliasReq struct{ AliasName, TargetKeyId string }

// createAlias: keystack:CreateAlias on the target key.
func createAlias(c *call, r *aliasReq) (any, error) {
	name, err := c.resolve(r.TargetKeyId, false)
	if err != nil {
		return nil, err
	}
	ctx, err := c.forKey(name)
	if err != nil {
		return nil, err
	}
	return struct{}{}, c.s.kms.CreateAlias(ctx, r.AliasName, name)
}

// deleteAlias: keystack:DeleteAlias on the key the alias names.
func deleteAlias(c *call, r *aliasReq) (any, error) {
	name, err := c.s.kms.ResolveAlias(c.ctx, r.AliasName)
	if err != nil {
		return nil, err
	}
	ctx, err := c.forKey(name)
	if err != nil {
		return nil, err
	}
	return struct{}{}, c.s.kms.DeleteAlias(ctx, r.AliasName)
}

// listAliases: keystack:ListKeys on "key/*".
func listAliases(c *call, r *pageReq) (any, error) {
	var name string
	if r.KeyId != "" {
		var err error
		if name, err = c.resolve(r.KeyId, false); err != nil {
			return nil, err
		}
	}
	as, err := c.s.kms.ListAliases(c.plain(), name)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, 0, len(as))
	for _, a := range as {
		out = append(out, map[string]string{"AliasName": a.Alias, "AliasArn": c.s.arnPrefix() + a.Alias, "TargetKeyId": a.Key})
	}
	return paged("Aliases", out, r)
}

type tagReq struct {
	KeyId   string
	Tags    []tag
	TagKeys []string
}

func tagResource(c *call, r *tagReq) (any, error) {
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	if len(r.Tags) == 0 {
		return nil, kmswire.Errorf("ValidationException", "Tags is required")
	}
	for _, t := range r.Tags {
		if strings.HasPrefix(t.TagKey, "aws:") {
			return nil, kmswire.Errorf("TagException", "tag keys beginning with aws: are reserved")
		}
	}
	return struct{}{}, c.s.kms.TagKey(ctx, name, tagMap(r.Tags))
}

func untagResource(c *call, r *tagReq) (any, error) {
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	return struct{}{}, c.s.kms.UntagKey(ctx, name, r.TagKeys)
}

// listResourceTags: keystack:DescribeKey on the key.
func listResourceTags(c *call, r *pageReq) (any, error) {
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	tags, err := c.s.kms.KeyTags(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []tag{}
	for _, k := range sortedKeys(tags) {
		out = append(out, tag{TagKey: k, TagValue: tags[k]})
	}
	return paged("Tags", out, r)
}

const day = 24 * time.Hour

type rotationReq struct {
	KeyId                string
	RotationPeriodInDays *int
}

// enableKeyRotation sets the key's rotation schedule, which `keystack
// rotate daemon` (or `rotate run`) carries out (keystack:RotateKey).
func enableKeyRotation(c *call, r *rotationReq) (any, error) {
	days := 365
	if r.RotationPeriodInDays != nil {
		days = *r.RotationPeriodInDays
	}
	if days < 90 || days > 2560 {
		return nil, kmswire.Errorf("ValidationException", "RotationPeriodInDays must be 90 to 2560")
	}
	return c.setRotation(r.KeyId, time.Duration(days)*day)
}

func disableKeyRotation(c *call, r *rotationReq) (any, error) { return c.setRotation(r.KeyId, 0) }

// setRotation changes only the period of the key's rotation settings.
func (c *call) setRotation(keyID string, every time.Duration) (any, error) {
	name, ctx, info, err := c.describeFor(keyID)
	if err != nil {
		return nil, err
	}
	rs := info.Rotation
	if rs == nil {
		rs = &keystore.RotationSettings{}
	}
	rs.Every = every
	if every == 0 {
		rs.Jitter = 0
	}
	if _, err := c.s.cfg.Store.SetRotationSettings(ctx, name, rs); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// getKeyRotationStatus: keystack:DescribeKey on the key.
func getKeyRotationStatus(c *call, r *keyIDReq) (any, error) {
	name, _, info, err := c.describeFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"KeyId": c.s.keyARN(name), "KeyRotationEnabled": false}
	if rs := info.Rotation; rs != nil && rs.Every > 0 {
		last := info.LastRotated
		if last.IsZero() {
			last = info.Created
		}
		out["KeyRotationEnabled"] = true
		out["RotationPeriodInDays"] = int(rs.Every / day)
		out["NextRotationDate"] = epoch(last.Add(rs.Every))
	}
	return out, nil
}

// rotateKeyOnDemand adds a key version and makes it primary
// (keystack:RotateKey); blobs under older versions still decrypt.
func rotateKeyOnDemand(c *call, r *keyIDReq) (any, error) {
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	if _, err := c.s.cfg.Store.RotateKey(ctx, name, "RotateKeyOnDemand"); err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": c.s.keyARN(name)}, nil
}

// listKeyRotations lists versions after the first (keystack:DescribeKey).
func listKeyRotations(c *call, r *pageReq) (any, error) {
	name, _, info, err := c.describeFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	rots := []map[string]any{}
	for _, v := range info.Versions {
		if v.Version > 1 {
			rots = append(rots, map[string]any{"KeyId": c.s.keyARN(name), "RotationDate": epoch(v.Created), "RotationType": rotationType(v)})
		}
	}
	return paged("Rotations", rots, r)
}

// rotationType is AUTOMATIC for versions the rotation engine made on
// schedule, ON_DEMAND otherwise.
func rotationType(v keystore.VersionInfo) string {
	for _, e := range v.History {
		if strings.Contains(e.Reason, "scheduled") {
			return "AUTOMATIC"
		}
	}
	return "ON_DEMAND"
}
