package server

import (
	"context"
	"unicode/utf8"

	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/policy"
)

// KMS limits.
const (
	maxPlaintext    = 4096
	maxDataKeyBytes = 1024
	maxContextBytes = 8192 // the encryption context's keys and values together
)

const symmetric = "SYMMETRIC_DEFAULT"

func checkAlgorithm(alg string) error {
	if alg != "" && alg != symmetric {
		return kmswire.Errorf("InvalidKeyUsageException", "only SYMMETRIC_DEFAULT encryption is supported")
	}
	return nil
}

func checkContext(ec map[string]string) error {
	n := 0
	for k, v := range ec {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return kmswire.Errorf("ValidationException", "encryption context keys must be non-empty UTF-8 strings")
		}
		n += len(k) + len(v)
	}
	if n > maxContextBytes {
		return kmswire.Errorf("ValidationException", "the encryption context exceeds %d bytes", maxContextBytes)
	}
	return nil
}

// usable refuses keys whose state forbids cryptography with KMS's error
// names: DisabledException, or KMSInvalidStateException while pending
// deletion. (The store enforces the same; this only names the error.)
func (c *call) usable(name string) error {
	st, err := c.s.kms.ServerKey(c.ctx, name)
	switch {
	case err != nil:
		return err
	case st.State == serverstore.Disabled:
		return kmswire.Errorf("DisabledException", "the key is disabled")
	case st.State == serverstore.PendingDeletion:
		return kmswire.Errorf("KMSInvalidStateException", "the key is pending deletion")
	}
	return nil
}

// seal encrypts plaintext under key name for action and returns the blob.
func (c *call) seal(ctx context.Context, action, name string, plaintext []byte, ec map[string]string) ([]byte, error) {
	if err := checkContext(ec); err != nil {
		return nil, err
	}
	if err := c.usable(name); err != nil {
		return nil, err
	}
	d, err := c.s.kms.SealData(ctx, action, name, plaintext, func(int) []byte { return blobAAD(name, ec) }, ec)
	if err != nil {
		return nil, err
	}
	return (&blob{keyID: name, data: *d}).marshal(), nil
}

// open decrypts a blob for action. expect, when not empty, is the KeyId
// the caller named, which must be the blob's key (IncorrectKeyException).
func (c *call) open(action string, raw []byte, expect string, ec map[string]string) (string, []byte, error) {
	b, err := parseBlob(raw)
	if err != nil {
		return "", nil, err
	}
	if expect != "" {
		want, err := c.resolve(expect, true)
		if err != nil {
			return "", nil, err
		}
		if want != b.keyID {
			return "", nil, kmswire.Errorf("IncorrectKeyException", "The key ID in the request does not identify a KMS key that can perform this operation.")
		}
	}
	ctx, err := c.forKey(b.keyID)
	if err != nil {
		return "", nil, kmswire.Errorf("InvalidCiphertextException", "the ciphertext refers to a key that does not exist")
	}
	if err := c.usable(b.keyID); err != nil {
		return "", nil, err
	}
	pt, err := c.s.kms.OpenData(ctx, action, b.keyID, b.data, blobAAD(b.keyID, ec), ec)
	return b.keyID, pt, err
}

type encryptReq struct {
	KeyId, EncryptionAlgorithm string
	Plaintext                  []byte
	EncryptionContext          map[string]string
}

func encrypt(c *call, r *encryptReq) (any, error) {
	if len(r.Plaintext) < 1 || len(r.Plaintext) > maxPlaintext {
		return nil, kmswire.Errorf("ValidationException", "Plaintext must be 1 to %d bytes", maxPlaintext)
	}
	if err := checkAlgorithm(r.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return nil, err
	}
	blob, err := c.seal(ctx, policy.ActionEncrypt, name, r.Plaintext, r.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return map[string]any{"CiphertextBlob": blob, "KeyId": c.s.keyARN(name), "EncryptionAlgorithm": symmetric}, nil
}

type decryptReq struct {
	KeyId, EncryptionAlgorithm string
	CiphertextBlob             []byte
	EncryptionContext          map[string]string
}

func decrypt(c *call, r *decryptReq) (any, error) {
	if err := checkAlgorithm(r.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	name, pt, err := c.open(policy.ActionDecrypt, r.CiphertextBlob, r.KeyId, r.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": c.s.keyARN(name), "Plaintext": pt, "EncryptionAlgorithm": symmetric}, nil
}

type reEncryptReq struct {
	CiphertextBlob                                            []byte
	SourceEncryptionContext, DestinationEncryptionContext     map[string]string
	SourceKeyId, DestinationKeyId                             string
	SourceEncryptionAlgorithm, DestinationEncryptionAlgorithm string
}

// reEncrypt opens the blob and seals it under the destination key, both
// decided as keystack:ReWrap; the plaintext never leaves the server.
func reEncrypt(c *call, r *reEncryptReq) (any, error) {
	if err := checkAlgorithm(r.SourceEncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(r.DestinationEncryptionAlgorithm); err != nil {
		return nil, err
	}
	dst, dctx, err := c.resolveFor(r.DestinationKeyId)
	if err != nil {
		return nil, err
	}
	src, pt, err := c.open(policy.ActionReWrap, r.CiphertextBlob, r.SourceKeyId, r.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	blob, err := c.seal(dctx, policy.ActionReWrap, dst, pt, r.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	return map[string]any{"CiphertextBlob": blob, "SourceKeyId": c.s.keyARN(src), "KeyId": c.s.keyARN(dst),
		"SourceEncryptionAlgorithm": symmetric, "DestinationEncryptionAlgorithm": symmetric}, nil
}

type dataKeyReq struct {
	KeyId, KeySpec    string
	NumberOfBytes     *int
	EncryptionContext map[string]string
}

// dataKeySize returns the data key length a request asks for: exactly one
// of NumberOfBytes (1..1024) and KeySpec (AES_128, AES_256).
func (r *dataKeyReq) size() (int, error) {
	switch {
	case r.NumberOfBytes != nil && r.KeySpec != "":
		return 0, kmswire.Errorf("ValidationException", "specify either KeySpec or NumberOfBytes, not both")
	case r.NumberOfBytes != nil:
		if n := *r.NumberOfBytes; n >= 1 && n <= maxDataKeyBytes {
			return n, nil
		}
		return 0, kmswire.Errorf("ValidationException", "NumberOfBytes must be 1 to %d", maxDataKeyBytes)
	case r.KeySpec == "AES_256":
		return 32, nil
	case r.KeySpec == "AES_128":
		return 16, nil
	case r.KeySpec == "":
		return 0, kmswire.Errorf("ValidationException", "specify either KeySpec or NumberOfBytes")
	}
	return 0, kmswire.Errorf("ValidationException", "KeySpec must be AES_256 or AES_128")
}

// dataKey generates a data key and its blob (keystack:GenerateDataKey).
func (c *call) dataKey(r *dataKeyReq) (string, []byte, []byte, error) {
	n, err := r.size()
	if err != nil {
		return "", nil, nil, err
	}
	name, ctx, err := c.resolveFor(r.KeyId)
	if err != nil {
		return "", nil, nil, err
	}
	pt, err := randomBytes(n)
	if err != nil {
		return "", nil, nil, err
	}
	blob, err := c.seal(ctx, policy.ActionGenerateDataKey, name, pt, r.EncryptionContext)
	if err != nil {
		clear(pt)
		return "", nil, nil, err
	}
	return name, pt, blob, nil
}

func generateDataKey(c *call, r *dataKeyReq) (any, error) {
	name, pt, blob, err := c.dataKey(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"CiphertextBlob": blob, "Plaintext": pt, "KeyId": c.s.keyARN(name)}, nil
}

func generateDataKeyWithoutPlaintext(c *call, r *dataKeyReq) (any, error) {
	name, pt, blob, err := c.dataKey(r)
	if err != nil {
		return nil, err
	}
	clear(pt)
	return map[string]any{"CiphertextBlob": blob, "KeyId": c.s.keyARN(name)}, nil
}

type randomReq struct{ NumberOfBytes *int }

// generateRandom answers keystack:GenerateRandom on "random".
func generateRandom(c *call, r *randomReq) (any, error) {
	if r.NumberOfBytes == nil || *r.NumberOfBytes < 1 || *r.NumberOfBytes > maxDataKeyBytes {
		return nil, kmswire.Errorf("ValidationException", "NumberOfBytes must be 1 to %d", maxDataKeyBytes)
	}
	b, err := c.s.kms.GenerateRandom(c.plain(), *r.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Plaintext": b}, nil
}
