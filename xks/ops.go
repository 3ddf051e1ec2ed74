package xks

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

const (
	tagLen = 16
	// maxData bounds plaintext and ciphertext (the specification requires
	// 4,300 bytes); larger is UnsupportedOperationException.
	maxData = 16 << 10
	// maxAAD is the largest additionalAuthenticatedData (8,192 bytes).
	maxAAD = 8192
	// metaFormat starts keystack's ciphertextMetadata: format 1 is this
	// byte and the sealing key version as 4 bytes big-endian.
	metaFormat = 1
	metaLen    = 5
	healthTTL  = 30 * time.Second // the specification allows one minute
)

type metadataRequest struct {
	RequestMetadata *metadataFields `json:"requestMetadata"`
}

func (in *metadataRequest) check() error              { return in.RequestMetadata.check(false) }
func (in *metadataRequest) metadata() *metadataFields { return in.RequestMetadata }
func (in *encryptRequest) metadata() *metadataFields  { return in.RequestMetadata }
func (in *decryptRequest) metadata() *metadataFields  { return in.RequestMetadata }

type metadataResponse struct {
	KeySpec   string   `json:"keySpec"`
	KeyUsage  []string `json:"keyUsage"`
	KeyStatus string   `json:"keyStatus"`
}

func (h *Handler) metadata(ctx context.Context, req *request) (any, error) {
	var in metadataRequest
	kctx, err := h.open(ctx, req, &in)
	if err != nil {
		return nil, err
	}
	info, err := backendCall(kctx, h, func(ctx context.Context) (*serverstore.DataKeyInfo, error) {
		return h.store.DataKeyInfo(ctx, req.keyID)
	})
	if err != nil {
		return nil, err
	}
	if info.Bits == 0 {
		return nil, errorf("InvalidKeyUsageException", "the external key is not an AES key")
	}
	out := metadataResponse{KeySpec: fmt.Sprintf("AES_%d", info.Bits), KeyUsage: []string{}, KeyStatus: "DISABLED"}
	if info.CanEncrypt {
		out.KeyUsage = append(out.KeyUsage, "ENCRYPT")
	}
	if info.CanDecrypt {
		out.KeyUsage = append(out.KeyUsage, "DECRYPT")
	}
	if info.Enabled {
		out.KeyStatus = "ENABLED"
	}
	return out, nil
}

type encryptRequest struct {
	RequestMetadata *metadataFields `json:"requestMetadata"`
	Plaintext       []byte          `json:"plaintext"`
	Algorithm       string          `json:"encryptionAlgorithm"`
	AAD             []byte          `json:"additionalAuthenticatedData"`
	CDIVAlgorithm   *string         `json:"ciphertextDataIntegrityValueAlgorithm"`
}

type encryptResponse struct {
	Ciphertext []byte `json:"ciphertext"`
	Metadata   []byte `json:"ciphertextMetadata,omitempty"`
	IV         []byte `json:"initializationVector"`
	Tag        []byte `json:"authenticationTag"`
	CDIV       []byte `json:"ciphertextDataIntegrityValue,omitempty"`
}

func (in *encryptRequest) check() error {
	if err := in.RequestMetadata.check(true); err != nil {
		return err
	}
	switch {
	case in.Plaintext == nil:
		return errorf("ValidationException", "plaintext is required")
	case in.Algorithm != "AES_GCM":
		return errorf("ValidationException", "encryptionAlgorithm must be AES_GCM")
	case in.CDIVAlgorithm != nil && *in.CDIVAlgorithm != "SHA_256":
		return errorf("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
	case len(in.Plaintext) > maxData:
		return errorf("UnsupportedOperationException", "plaintext is limited to %d bytes", maxData)
	case len(in.AAD) > maxAAD:
		return errorf("UnsupportedOperationException", "additionalAuthenticatedData is limited to %d bytes", maxAAD)
	}
	return nil
}

// gcmAAD is the AAD the specification gives AES-GCM: the AAD's 2-byte
// big-endian length, the AAD, the metadata's 1-byte length, the metadata.
func gcmAAD(aad, meta []byte) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 3+len(aad)+len(meta)), uint16(len(aad)))
	b = append(b, aad...)
	b = append(b, byte(len(meta)))
	return append(b, meta...)
}

func ciphertextMetadata(version int) []byte {
	return binary.BigEndian.AppendUint32([]byte{metaFormat}, uint32(version))
}

// encrypt seals under the key's primary version, computes the CDIV over
// the output before decrypting it back (Appendix C), and answers only when
// the decryption returned the plaintext.
func (h *Handler) encrypt(ctx context.Context, req *request) (any, error) {
	var in encryptRequest
	kctx, err := h.open(ctx, req, &in)
	if err != nil {
		return nil, err
	}
	d, err := backendCall(kctx, h, func(ctx context.Context) (*serverstore.SealedData, error) {
		return h.store.SealData(ctx, policy.ActionEncrypt, req.keyID, in.Plaintext,
			func(v int) []byte { return gcmAAD(in.AAD, ciphertextMetadata(v)) }, nil)
	})
	if err != nil {
		return nil, err
	}
	n := len(d.Ciphertext) - tagLen
	out := encryptResponse{Ciphertext: d.Ciphertext[:n], Tag: d.Ciphertext[n:], IV: d.Nonce, Metadata: ciphertextMetadata(d.Version)}
	if in.CDIVAlgorithm == nil {
		return out, nil
	}
	out.CDIV = cdiv(in.AAD, out.Metadata, out.IV, out.Ciphertext, out.Tag)
	if err := h.verifySealed(kctx, req.keyID, *d, in.AAD, out.Metadata, in.Plaintext); err != nil {
		return nil, err
	}
	return out, nil
}

// verifySealed decrypts freshly sealed data (audited as keystack:Decrypt)
// and checks it gives the plaintext back. A key the token does not let
// decrypt (an encrypt-only PKCS#11 key) cannot be checked: its
// ciphertext is returned unverified.
func (h *Handler) verifySealed(ctx context.Context, name string, d serverstore.SealedData, aad, meta, plaintext []byte) error {
	pt, err := backendCall(ctx, h, func(ctx context.Context) ([]byte, error) {
		return h.store.OpenData(ctx, policy.ActionDecrypt, name, d, gcmAAD(aad, meta), nil)
	})
	if errors.Is(err, keyring.ErrNotSupported) {
		return nil
	}
	if errors.Is(err, errDependencyTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err != nil {
		return fmt.Errorf("xks: checking the new ciphertext: %w", errorf("InternalException", "the new ciphertext did not decrypt"))
	}
	if string(pt) != string(plaintext) {
		return errorf("InternalException", "the new ciphertext did not decrypt to the plaintext")
	}
	return nil
}

// cdiv is SHA-256(aad ‖ metadata ‖ iv ‖ ciphertext ‖ tag).
func cdiv(parts ...[]byte) []byte {
	hash := sha256.New()
	for _, p := range parts {
		hash.Write(p)
	}
	return hash.Sum(nil)
}

type decryptRequest struct {
	RequestMetadata *metadataFields `json:"requestMetadata"`
	Ciphertext      []byte          `json:"ciphertext"`
	Metadata        []byte          `json:"ciphertextMetadata"`
	Algorithm       string          `json:"encryptionAlgorithm"`
	AAD             []byte          `json:"additionalAuthenticatedData"`
	Tag             []byte          `json:"authenticationTag"`
	IV              []byte          `json:"initializationVector"`
}

func (in *decryptRequest) check() error {
	if err := in.RequestMetadata.check(true); err != nil {
		return err
	}
	switch {
	case in.Ciphertext == nil || in.Tag == nil || in.IV == nil:
		return errorf("ValidationException", "ciphertext, authenticationTag and initializationVector are required")
	case in.Algorithm != "AES_GCM":
		return errorf("ValidationException", "encryptionAlgorithm must be AES_GCM")
	case len(in.Ciphertext) > maxData:
		return errorf("UnsupportedOperationException", "ciphertext is limited to %d bytes", maxData)
	case len(in.AAD) > maxAAD:
		return errorf("UnsupportedOperationException", "additionalAuthenticatedData is limited to %d bytes", maxAAD)
	case len(in.IV) != 12 && len(in.IV) != 16, len(in.Tag) != tagLen, len(in.Metadata) > 20:
		return errorf("InvalidCiphertextException", "the initialization vector, authentication tag or ciphertext metadata has the wrong length")
	case len(in.Metadata) != metaLen || in.Metadata[0] != metaFormat:
		return errorf("InvalidCiphertextException", "the ciphertext metadata is not keystack's")
	}
	return nil
}

type decryptResponse struct {
	Plaintext []byte `json:"plaintext"`
}

func (h *Handler) decrypt(ctx context.Context, req *request) (any, error) {
	var in decryptRequest
	kctx, err := h.open(ctx, req, &in)
	if err != nil {
		return nil, err
	}
	d := serverstore.SealedData{Version: int(binary.BigEndian.Uint32(in.Metadata[1:])), Nonce: in.IV,
		Ciphertext: append(append([]byte{}, in.Ciphertext...), in.Tag...)}
	pt, err := backendCall(kctx, h, func(ctx context.Context) ([]byte, error) {
		return h.store.OpenData(ctx, policy.ActionDecrypt, req.keyID, d, gcmAAD(in.AAD, in.Metadata), nil)
	})
	if err != nil {
		return nil, err
	}
	return decryptResponse{Plaintext: pt}, nil
}
