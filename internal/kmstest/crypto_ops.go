package kmstest

import (
	"strings"
	"time"
)

func checkAlgorithm(alg string) error {
	if alg != "" && alg != "SYMMETRIC_DEFAULT" {
		return errf("InvalidKeyUsageException", "encryption algorithm %s is not supported by this key", alg)
	}
	return nil
}

func encrypt(s *Server, c *call, r *struct {
	KeyId, EncryptionAlgorithm string
	Plaintext                  []byte
	EncryptionContext          map[string]string
}) (any, error) {
	if len(r.Plaintext) < 1 || len(r.Plaintext) > 4096 {
		return nil, errf("ValidationException", "Plaintext must be 1 to 4096 bytes")
	}
	if err := checkAlgorithm(r.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	k, err := s.usableKey(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"CiphertextBlob": seal(k, r.Plaintext, r.EncryptionContext), "KeyId": k.arn,
		"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

// openBlob finds the key that made blob in the call's Region, checks it
// against the optional expected key, and decrypts.
func (s *Server) openBlob(c *call, blob []byte, expect string, ec map[string]string) (*key, []byte, error) {
	p, err := parseBlob(blob)
	if err != nil {
		return nil, nil, err
	}
	k, ok := s.keys[c.region+"/"+p.keyID]
	if !ok {
		return nil, nil, errf("InvalidCiphertextException", "The ciphertext refers to a key that does not exist in %s.", c.region)
	}
	if expect != "" {
		want, err := s.resolve(c, expect)
		if err != nil {
			return nil, nil, err
		}
		if want != k {
			return nil, nil, errf("IncorrectKeyException", "The key ID in the request does not identify a KMS key that can perform this operation.")
		}
	}
	if err := s.usable(k); err != nil {
		return nil, nil, err
	}
	pt, err := open(k, p, ec)
	if err != nil {
		return nil, nil, err
	}
	return k, pt, nil
}

func decrypt(s *Server, c *call, r *struct {
	KeyId, EncryptionAlgorithm string
	CiphertextBlob             []byte
	EncryptionContext          map[string]string
}) (any, error) {
	if err := checkAlgorithm(r.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	k, pt, err := s.openBlob(c, r.CiphertextBlob, r.KeyId, r.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": k.arn, "Plaintext": pt, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func reEncrypt(s *Server, c *call, r *struct {
	CiphertextBlob                                        []byte
	SourceKeyId, DestinationKeyId                         string
	SourceEncryptionContext, DestinationEncryptionContext map[string]string
}) (any, error) {
	dst, err := s.resolve(c, r.DestinationKeyId)
	if err != nil {
		return nil, err
	}
	if err := s.usable(dst); err != nil {
		return nil, err
	}
	src, pt, err := s.openBlob(c, r.CiphertextBlob, r.SourceKeyId, r.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	return map[string]any{"CiphertextBlob": seal(dst, pt, r.DestinationEncryptionContext),
		"SourceKeyId": src.arn, "KeyId": dst.arn,
		"SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func setState(s *Server, c *call, ref, state string) (any, error) {
	k, err := s.resolveAllowed(c, ref)
	if err != nil {
		return nil, err
	}
	if k.state == "PendingDeletion" {
		return nil, errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	k.state = state
	return struct{}{}, nil
}

func enableKey(s *Server, c *call, r *keyRef) (any, error) { return setState(s, c, r.KeyId, "Enabled") }
func disableKey(s *Server, c *call, r *keyRef) (any, error) {
	return setState(s, c, r.KeyId, "Disabled")
}

func scheduleKeyDeletion(s *Server, c *call, r *struct {
	KeyId               string
	PendingWindowInDays *int
}) (any, error) {
	days := 30
	if r.PendingWindowInDays != nil {
		days = *r.PendingWindowInDays
	}
	if days < 7 || days > 30 {
		return nil, errf("ValidationException", "PendingWindowInDays must be between 7 and 30")
	}
	k, err := s.resolveAllowed(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	k.state = "PendingDeletion"
	return map[string]any{"KeyId": k.arn, "KeyState": k.state, "PendingWindowInDays": days,
		"DeletionDate": epoch(time.Now().AddDate(0, 0, days))}, nil
}

// rotatable resolves a key for a rotation operation: enabled, not denied.
func (s *Server) rotatable(c *call, ref string) (*key, error) {
	k, err := s.resolveKeyOnly(c, ref)
	if err != nil {
		return nil, err
	}
	if k.state != "Enabled" {
		return nil, errf("KMSInvalidStateException", "%s is %s.", k.arn, k.state)
	}
	return k, nil
}

func enableKeyRotation(s *Server, c *call, r *struct {
	KeyId                string
	RotationPeriodInDays *int
}) (any, error) {
	days := 365
	if r.RotationPeriodInDays != nil {
		days = *r.RotationPeriodInDays
	}
	if days < 90 || days > 2560 {
		return nil, errf("ValidationException", "RotationPeriodInDays must be between 90 and 2560")
	}
	k, err := s.rotatable(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	k.rotationDays = days
	return struct{}{}, nil
}

func disableKeyRotation(s *Server, c *call, r *keyRef) (any, error) {
	k, err := s.rotatable(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	k.rotationDays = 0
	return struct{}{}, nil
}

// resolveKeyOnly resolves a key ID or key ARN, never an alias: the
// rotation operations (EnableKeyRotation, DisableKeyRotation,
// GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations) take "the key
// ID or key ARN of the KMS key" only.
func (s *Server) resolveKeyOnly(c *call, ref string) (*key, error) {
	if strings.HasPrefix(ref, "alias/") || strings.Contains(ref, ":alias/") {
		return nil, errf("NotFoundException", "%s takes a key ID or key ARN, not the alias %s", c.op, ref)
	}
	return s.resolveAllowed(c, ref)
}

func getKeyRotationStatus(s *Server, c *call, r *keyRef) (any, error) {
	k, err := s.resolveKeyOnly(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"KeyId": k.arn, "KeyRotationEnabled": k.rotationDays > 0}
	if k.rotationDays > 0 {
		last := k.created
		for _, r := range k.mat.rotations {
			if !r.onDemand {
				last = r.date
			}
		}
		resp["RotationPeriodInDays"] = k.rotationDays
		resp["NextRotationDate"] = epoch(last.AddDate(0, 0, k.rotationDays))
	}
	return resp, nil
}

// rotateKeyOnDemand adds a backing key; older ones still decrypt.
func rotateKeyOnDemand(s *Server, c *call, r *keyRef) (any, error) {
	k, err := s.rotatable(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	k.mat.versions = append(k.mat.versions, randomBytes(32))
	k.mat.rotations = append(k.mat.rotations, rotation{date: time.Now(), onDemand: true})
	return map[string]any{"KeyId": k.arn}, nil
}

func listKeyRotations(s *Server, c *call, r *keyRef) (any, error) {
	k, err := s.resolveKeyOnly(c, r.KeyId)
	if err != nil {
		return nil, err
	}
	rots := make([]map[string]any, 0, len(k.mat.rotations))
	for _, rot := range k.mat.rotations {
		typ := "AUTOMATIC"
		if rot.onDemand {
			typ = "ON_DEMAND"
		}
		rots = append(rots, map[string]any{"KeyId": k.arn, "RotationDate": epoch(rot.date), "RotationType": typ})
	}
	return map[string]any{"Rotations": rots, "Truncated": false}, nil
}
