package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/keystore"
)

// operation runs one KMS operation on a decoded body.
type operation func(c *call, body []byte) (any, error)

// op adapts a typed handler: the body is decoded into Req strictly
// enough that a field of the wrong type is a SerializationException.
func op[Req any](f func(*call, *Req) (any, error)) operation {
	return func(c *call, body []byte) (any, error) {
		var req Req
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte("{}")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, kmswire.Errorf("SerializationException", "the request body is not valid JSON for this operation")
		}
		return f(c, &req)
	}
}

// operations maps each X-Amz-Target this server answers to its operation:
// the KMS operations under TrentService., keystack's administration under
// AdminTargetPrefix.
func operations() map[string]operation {
	ops := map[string]operation{}
	for name, o := range kmsOperations() {
		ops[kmswire.TargetPrefix+name] = o
	}
	for name, o := range adminOperations() {
		ops[adminTargetPrefix+name] = o
	}
	return ops
}

func kmsOperations() map[string]operation {
	return map[string]operation{
		"CreateKey": op(createKey), "DescribeKey": op(describeKey), "ListKeys": op(listKeys),
		"EnableKey": op(enableKey), "DisableKey": op(disableKey),
		"ScheduleKeyDeletion": op(scheduleKeyDeletion), "CancelKeyDeletion": op(cancelKeyDeletion),
		"CreateAlias": op(createAlias), "DeleteAlias": op(deleteAlias), "ListAliases": op(listAliases),
		"TagResource": op(tagResource), "UntagResource": op(untagResource), "ListResourceTags": op(listResourceTags),
		"Encrypt": op(encrypt), "Decrypt": op(decrypt), "ReEncrypt": op(reEncrypt),
		"GenerateDataKey": op(generateDataKey), "GenerateDataKeyWithoutPlaintext": op(generateDataKeyWithoutPlaintext),
		"GenerateRandom":    op(generateRandom),
		"EnableKeyRotation": op(enableKeyRotation), "DisableKeyRotation": op(disableKeyRotation),
		"GetKeyRotationStatus": op(getKeyRotationStatus), "RotateKeyOnDemand": op(rotateKeyOnDemand),
		"ListKeyRotations": op(listKeyRotations),
	}
}

// arnPrefix is "arn:aws:kms:REGION:ACCOUNT:".
func (s *Server) arnPrefix() string { return "arn:aws:kms:" + s.cfg.Region + ":" + s.cfg.Account + ":" }

func (s *Server) keyARN(name string) string { return s.arnPrefix() + "key/" + name }

// resolve turns a KeyId parameter (key ID, key ARN, alias name or alias
// ARN) into a store key name. An ARN of another Region or account names
// no key here.
func (c *call) resolve(keyID string, aliasOK bool) (string, error) {
	if keyID == "" {
		return "", kmswire.Errorf("ValidationException", "KeyId is required")
	}
	id := keyID
	if strings.HasPrefix(id, "arn:") {
		rest, ok := strings.CutPrefix(id, c.s.arnPrefix())
		if !ok {
			return "", kmswire.Errorf("NotFoundException", "key not found")
		}
		id, ok = strings.CutPrefix(rest, "key/")
		if !ok {
			id = rest // alias/NAME
		}
	}
	if strings.HasPrefix(id, "alias/") {
		if !aliasOK {
			return "", kmswire.Errorf("ValidationException", "an alias is not accepted here")
		}
		return c.s.kms.ResolveAlias(c.ctx, id)
	}
	return id, nil
}

// forKey returns the call's context for operations on key name: the
// caller with the key's tags (keystack:ResourceTag).
func (c *call) forKey(name string) (context.Context, error) {
	st, err := c.s.kms.ServerKey(c.ctx, name)
	if err != nil {
		return nil, err
	}
	caller := c.caller
	caller.ResourceTags = st.Tags
	return gate.WithCaller(c.ctx, caller), nil
}

// plain is the call's context for operations on no particular key.
func (c *call) plain() context.Context { return gate.WithCaller(c.ctx, c.caller) }

// resolveFor is resolve followed by forKey.
func (c *call) resolveFor(keyID string) (string, context.Context, error) {
	name, err := c.resolve(keyID, true)
	if err != nil {
		return "", nil, err
	}
	ctx, err := c.forKey(name)
	return name, ctx, err
}

// describeFor is resolveFor followed by the key's description.
func (c *call) describeFor(keyID string) (string, context.Context, *keystore.KeyInfo, error) {
	name, ctx, err := c.resolveFor(keyID)
	if err != nil {
		return "", nil, nil, err
	}
	info, err := c.s.cfg.Store.DescribeKey(ctx, name)
	return name, ctx, info, err
}

// epoch encodes a time as the JSON protocol does: seconds since the epoch.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

type keyIDReq struct{ KeyId string }

type tag struct {
	TagKey, TagValue string
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
