package kmstest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

type handler func(s *Server, c *call, body []byte) (any, error)

// operations maps X-Amz-Target operation names to their handlers.
var operations = map[string]handler{
	"CreateKey":                       op(createKey),
	"DescribeKey":                     op(describeKey),
	"CreateAlias":                     op(createAlias),
	"ReplicateKey":                    op(replicateKey),
	"GenerateDataKey":                 op(generateDataKey),
	"GenerateDataKeyWithoutPlaintext": op(generateDataKeyWithoutPlaintext),
	"Encrypt":                         op(encrypt),
	"Decrypt":                         op(decrypt),
	"ReEncrypt":                       op(reEncrypt),
	"EnableKey":                       op(enableKey),
	"DisableKey":                      op(disableKey),
	"ScheduleKeyDeletion":             op(scheduleKeyDeletion),
	"EnableKeyRotation":               op(enableKeyRotation),
	"DisableKeyRotation":              op(disableKeyRotation),
	"GetKeyRotationStatus":            op(getKeyRotationStatus),
	"RotateKeyOnDemand":               op(rotateKeyOnDemand),
	"ListKeyRotations":                op(listKeyRotations),
}

// op decodes the JSON body into Req, records the request and runs f under s.mu.
func op[Req any](f func(*Server, *call, *Req) (any, error)) handler {
	return func(s *Server, c *call, body []byte) (any, error) {
		var req Req
		var rec struct {
			KeyId, DestinationKeyId                         string
			GrantTokens                                     []string
			EncryptionContext, DestinationEncryptionContext map[string]string
		}
		if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &rec) != nil {
			return nil, errf("SerializationException", "request body is not valid JSON for %s", c.op)
		}
		r := Request{KeyID: rec.KeyId, GrantTokens: rec.GrantTokens, EncryptionContext: rec.EncryptionContext, Region: c.region}
		if rec.DestinationKeyId != "" {
			r.KeyID, r.EncryptionContext = rec.DestinationKeyId, rec.DestinationEncryptionContext
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests[c.op] = append(s.requests[c.op], r)
		return f(s, c, &req)
	}
}

// epoch encodes a time as the JSON protocol does: seconds since the epoch.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

type keyRef struct{ KeyId string }

func (s *Server) metadata(k *key) map[string]any {
	return map[string]any{
		"AWSAccountId": s.accountID, "KeyId": k.id, "Arn": k.arn,
		"CreationDate": epoch(k.created), "Enabled": k.state == "Enabled",
		"Description": k.description, "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": k.state,
		"Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "KeySpec": "SYMMETRIC_DEFAULT",
		"CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"},
		"MultiRegion": k.multiRegion,
	}
}

func createKey(s *Server, c *call, r *struct {
	Description, KeySpec, KeyUsage string
	MultiRegion                    bool
}) (any, error) {
	if (r.KeySpec != "" && r.KeySpec != "SYMMETRIC_DEFAULT") || (r.KeyUsage != "" && r.KeyUsage != "ENCRYPT_DECRYPT") {
		return nil, errf("UnsupportedOperationException", "kmstest supports only SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys")
	}
	id := uuid()
	if r.MultiRegion {
		id = "mrk-" + fmt.Sprintf("%x", randomBytes(16))
	}
	k := &key{id: id, arn: s.keyARN(c.region, id), region: c.region, description: r.Description,
		created: time.Now(), state: "Enabled", multiRegion: r.MultiRegion, mat: newMaterial()}
	s.keys[c.region+"/"+id] = k
	return map[string]any{"KeyMetadata": s.metadata(k)}, nil
}

func uuid() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func describeKey(s *Server, c *call, r *keyRef) (any, error) {
	k, err := s.resolveAllowed(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": s.metadata(k)}, nil
}

// resolveAllowed resolves ref and refuses denied keys.
func (s *Server) resolveAllowed(c *call, ref string) (*key, error) {
	k, err := s.resolve(c, ref)
	if err != nil {
		return nil, err
	}
	if s.denied[k.arn] {
		return nil, errf("AccessDeniedException", "User is not authorized to use key %s", k.arn)
	}
	return k, nil
}

var aliasName = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

func createAlias(s *Server, c *call, r *struct{ AliasName, TargetKeyId string }) (any, error) {
	if !aliasName.MatchString(r.AliasName) || strings.HasPrefix(r.AliasName, "alias/aws/") {
		return nil, errf("ValidationException", "invalid alias name %q", r.AliasName)
	}
	if _, dup := s.aliases[c.region+"/"+r.AliasName]; dup {
		return nil, errf("AlreadyExistsException", "An alias with the name %s already exists", r.AliasName)
	}
	k, err := s.resolveAllowed(c, r.TargetKeyId)
	if err != nil {
		return nil, err
	}
	s.aliases[c.region+"/"+r.AliasName] = k.id
	return struct{}{}, nil
}

// replicateKey copies a multi-Region primary key into another Region; the
// replica shares the primary's key material and ID.
func replicateKey(s *Server, c *call, r *struct{ KeyId, ReplicaRegion, Description string }) (any, error) {
	k, err := s.resolveAllowed(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	if !k.multiRegion {
		return nil, errf("UnsupportedOperationException", "%s is not a multi-Region key", k.arn)
	}
	if r.ReplicaRegion == "" || r.ReplicaRegion == c.region {
		return nil, errf("ValidationException", "ReplicaRegion must name another Region")
	}
	if _, dup := s.keys[r.ReplicaRegion+"/"+k.id]; dup {
		return nil, errf("AlreadyExistsException", "%s already has a replica in %s", k.id, r.ReplicaRegion)
	}
	rep := &key{id: k.id, arn: s.keyARN(r.ReplicaRegion, k.id), region: r.ReplicaRegion, description: r.Description,
		created: time.Now(), state: "Enabled", multiRegion: true, mat: k.mat}
	s.keys[r.ReplicaRegion+"/"+k.id] = rep
	return map[string]any{"ReplicaKeyMetadata": s.metadata(rep)}, nil
}

type dataKeyReq struct {
	KeyId, KeySpec    string
	NumberOfBytes     *int
	EncryptionContext map[string]string
}

func dataKeyLen(r *dataKeyReq) (int, error) {
	switch {
	case r.NumberOfBytes != nil && r.KeySpec != "":
		return 0, errf("ValidationException", "specify either NumberOfBytes or KeySpec, not both")
	case r.NumberOfBytes != nil:
		if n := *r.NumberOfBytes; n >= 1 && n <= 1024 {
			return n, nil
		}
		return 0, errf("ValidationException", "NumberOfBytes must be between 1 and 1024")
	case r.KeySpec == "AES_256":
		return 32, nil
	case r.KeySpec == "AES_128":
		return 16, nil
	}
	return 0, errf("ValidationException", "NumberOfBytes or a KeySpec of AES_256 or AES_128 is required")
}

func generateDataKey(s *Server, c *call, r *dataKeyReq) (any, error) {
	n, err := dataKeyLen(r)
	if err != nil {
		return nil, err
	}
	k, err := s.usableKey(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	pt := randomBytes(n)
	return map[string]any{"CiphertextBlob": seal(k, pt, r.EncryptionContext), "Plaintext": pt, "KeyId": k.arn}, nil
}

func generateDataKeyWithoutPlaintext(s *Server, c *call, r *dataKeyReq) (any, error) {
	resp, err := generateDataKey(s, c, r)
	if err != nil {
		return nil, err
	}
	m := resp.(map[string]any)
	delete(m, "Plaintext")
	return m, nil
}
