package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func createKey(t *testing.T, c *kms.Client, team string) *types.KeyMetadata {
	t.Helper()
	in := &kms.CreateKeyInput{Description: aws.String("test key")}
	if team != "" {
		in.Tags = []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String(team)}}
	}
	return must(c.CreateKey(context.Background(), in)).KeyMetadata
}

// TestSDKKeysAliasesTags drives the key, alias and tag operations through
// the unmodified aws-sdk-go-v2 client.
func TestSDKKeysAliasesTags(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(owner)
	md := createKey(t, c, "billing")
	if !uuidRE.MatchString(*md.KeyId) || *md.Arn != "arn:aws:kms:eu-west-1:444455556666:key/"+*md.KeyId {
		t.Fatalf("key %s arn %s", *md.KeyId, *md.Arn)
	}
	if md.KeyState != types.KeyStateEnabled || !md.Enabled || md.KeySpec != types.KeySpecSymmetricDefault || *md.Description != "test key" {
		t.Errorf("metadata %+v", md)
	}
	other := createKey(t, c, "")
	must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/pay"), TargetKeyId: md.KeyId}))
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/pay"), TargetKeyId: other.KeyId})
	wantCode(t, "duplicate alias", err, "AlreadyExistsException")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/x"), TargetKeyId: other.KeyId})
	wantCode(t, "reserved alias", err, "ValidationException")
	for _, id := range []string{*md.KeyId, *md.Arn, "alias/pay", "arn:aws:kms:eu-west-1:444455556666:alias/pay"} {
		d := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}))
		if *d.KeyMetadata.KeyId != *md.KeyId {
			t.Errorf("DescribeKey %s: %s", id, *d.KeyMetadata.KeyId)
		}
	}
	for _, id := range []string{"arn:aws:kms:us-east-1:444455556666:key/" + *md.KeyId, "no-such-key", "alias/none", "../x"} {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if code := apiCode(err); code != "NotFoundException" && code != "ValidationException" {
			t.Errorf("DescribeKey %s: %v", id, err)
		}
	}
	keys := must(c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)}))
	if len(keys.Keys) != 1 || !keys.Truncated || keys.NextMarker == nil {
		t.Fatalf("ListKeys page 1: %+v", keys)
	}
	keys2 := must(c.ListKeys(ctx, &kms.ListKeysInput{Marker: keys.NextMarker}))
	if len(keys2.Keys) != 1 || keys2.Truncated || *keys2.Keys[0].KeyId == *keys.Keys[0].KeyId {
		t.Errorf("ListKeys page 2: %+v", keys2)
	}
	as := must(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: md.KeyId}))
	if len(as.Aliases) != 1 || *as.Aliases[0].AliasName != "alias/pay" || *as.Aliases[0].TargetKeyId != *md.KeyId {
		t.Errorf("ListAliases %+v", as.Aliases)
	}
	must(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/pay")}))
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/pay")})
	wantCode(t, "deleted alias", err, "NotFoundException")
	_, err = c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/pay")})
	wantCode(t, "delete missing alias", err, "NotFoundException")

	must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: other.KeyId, Tags: []types.Tag{
		{TagKey: aws.String("env"), TagValue: aws.String("prod")}, {TagKey: aws.String("x"), TagValue: aws.String("y")}}}))
	must(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: other.KeyId, TagKeys: []string{"x"}}))
	tags := must(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: other.KeyId}))
	if len(tags.Tags) != 1 || *tags.Tags[0].TagKey != "env" || *tags.Tags[0].TagValue != "prod" {
		t.Errorf("tags %+v", tags.Tags)
	}
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: other.KeyId, Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("")}}})
	wantCode(t, "reserved tag", err, "TagException")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})
	wantCode(t, "RSA key", err, "UnsupportedOperationException")
}

// TestSDKCrypto: Encrypt, Decrypt, ReEncrypt, data keys and random bytes,
// with KMS's limits and its error for every misuse.
func TestSDKCrypto(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(owner)
	k1, k2 := createKey(t, c, ""), createKey(t, c, "")
	ec := map[string]string{"tenant": "acme", "purpose": "test"}
	enc := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("hello"), EncryptionContext: ec}))
	if *enc.KeyId != *k1.Arn || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Errorf("Encrypt answered %s %s", *enc.KeyId, enc.EncryptionAlgorithm)
	}
	dec := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	if string(dec.Plaintext) != "hello" || *dec.KeyId != *k1.Arn {
		t.Errorf("Decrypt: %q %s", dec.Plaintext, *dec.KeyId)
	}
	for what, wrong := range map[string]map[string]string{
		"no context": nil, "other value": {"tenant": "evil", "purpose": "test"},
		"extra pair": {"tenant": "acme", "purpose": "test", "x": "y"}, "missing pair": {"tenant": "acme"},
		"case": {"Tenant": "acme", "purpose": "test"},
	} {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: wrong})
		wantCode(t, "decrypt with "+what, err, "InvalidCiphertextException")
	}
	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: k2.KeyId})
	wantCode(t, "decrypt naming another key", err, "IncorrectKeyException")
	for i := range enc.CiphertextBlob {
		bad := bytes.Clone(enc.CiphertextBlob)
		bad[i] ^= 0x01
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: bad, EncryptionContext: ec})
		if code := apiCode(err); code != "InvalidCiphertextException" && code != "NotFoundException" {
			t.Fatalf("blob with byte %d flipped: %v", i, err)
		}
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: make([]byte, 4097)})
	wantCode(t, "4097-byte plaintext", err, "ValidationException")
	must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: make([]byte, 4096)}))
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	wantCode(t, "RSA algorithm", err, "InvalidKeyUsageException")

	re := must(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyId: k2.KeyId, DestinationEncryptionContext: map[string]string{"new": "ctx"}}))
	if *re.SourceKeyId != *k1.Arn || *re.KeyId != *k2.Arn {
		t.Errorf("ReEncrypt keys %s → %s", *re.SourceKeyId, *re.KeyId)
	}
	dec = must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"new": "ctx"}}))
	if string(dec.Plaintext) != "hello" || *dec.KeyId != *k2.Arn {
		t.Errorf("after ReEncrypt: %q under %s", dec.Plaintext, *dec.KeyId)
	}

	sdkDataKeys(ctx, t, c, k1.KeyId, ec)
}

// sdkDataKeys: data keys of every size, without plaintext, and random
// bytes, with KMS's limits.
func sdkDataKeys(ctx context.Context, t *testing.T, c *kms.Client, keyID *string, ec map[string]string) {
	dk := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: keyID, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
	if len(dk.Plaintext) != 32 {
		t.Fatalf("AES_256 data key of %d bytes", len(dk.Plaintext))
	}
	dec := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))
	if !bytes.Equal(dec.Plaintext, dk.Plaintext) {
		t.Error("the data key's blob decrypts to another key")
	}
	for _, n := range []int32{1, 16, 1024} {
		dk := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: keyID, NumberOfBytes: aws.Int32(n)}))
		if len(dk.Plaintext) != int(n) {
			t.Errorf("NumberOfBytes %d gave %d", n, len(dk.Plaintext))
		}
	}
	for what, in := range map[string]*kms.GenerateDataKeyInput{
		"both":    {KeyId: keyID, KeySpec: types.DataKeySpecAes128, NumberOfBytes: aws.Int32(16)},
		"neither": {KeyId: keyID}, "1025": {KeyId: keyID, NumberOfBytes: aws.Int32(1025)},
		"0": {KeyId: keyID, NumberOfBytes: aws.Int32(0)},
	} {
		_, err := c.GenerateDataKey(ctx, in)
		wantCode(t, "GenerateDataKey "+what, err, "ValidationException")
	}
	np := must(c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: keyID, KeySpec: types.DataKeySpecAes128}))
	dec = must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: np.CiphertextBlob}))
	if len(dec.Plaintext) != 16 {
		t.Errorf("GenerateDataKeyWithoutPlaintext AES_128: %d bytes", len(dec.Plaintext))
	}
	rnd := must(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(48)}))
	if len(rnd.Plaintext) != 48 {
		t.Errorf("GenerateRandom: %d bytes", len(rnd.Plaintext))
	}
	_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
	wantCode(t, "GenerateRandom 1025", err, "ValidationException")
}

// TestSDKStatesAndRotation: enable/disable, deletion scheduling and
// rotation, and that old ciphertexts survive rotation.
func TestSDKStatesAndRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(owner)
	k := createKey(t, c, "")
	old := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("v1")}))

	must(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k.KeyId}))
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
	wantCode(t, "encrypt under a disabled key", err, "DisabledException")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	wantCode(t, "decrypt under a disabled key", err, "DisabledException")
	must(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: k.KeyId}))

	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(6)})
	wantCode(t, "6-day window", err, "ValidationException")
	sd := must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)}))
	if sd.KeyState != types.KeyStatePendingDeletion || sd.DeletionDate == nil || *sd.PendingWindowInDays != 7 {
		t.Errorf("ScheduleKeyDeletion: %+v", sd)
	}
	d := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId}))
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.Enabled {
		t.Errorf("pending deletion described as %s", d.KeyMetadata.KeyState)
	}
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
	wantCode(t, "data key under a key pending deletion", err, "KMSInvalidStateException")
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: k.KeyId})
	wantCode(t, "enable a key pending deletion", err, "KMSInvalidStateException")
	must(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: k.KeyId}))
	d = must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId}))
	if d.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Errorf("after CancelKeyDeletion: %s, want Disabled", d.KeyMetadata.KeyState)
	}
	must(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: k.KeyId}))

	st := must(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: k.KeyId}))
	if st.KeyRotationEnabled {
		t.Error("rotation enabled on a new key")
	}
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: k.KeyId, RotationPeriodInDays: aws.Int32(89)})
	wantCode(t, "89-day rotation", err, "ValidationException")
	must(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: k.KeyId, RotationPeriodInDays: aws.Int32(90)}))
	st = must(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: k.KeyId}))
	if !st.KeyRotationEnabled || *st.RotationPeriodInDays != 90 || st.NextRotationDate == nil {
		t.Errorf("rotation status %+v", st)
	}
	must(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: k.KeyId}))
	if st := must(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: k.KeyId})); st.KeyRotationEnabled {
		t.Error("rotation still enabled after DisableKeyRotation")
	}
	must(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k.KeyId}))
	rots := must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: k.KeyId}))
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand {
		t.Errorf("rotations %+v", rots.Rotations)
	}
	fresh := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("v2")}))
	if v := fresh.CiphertextBlob[41:45]; !bytes.Equal(v, []byte{0, 0, 0, 2}) || !bytes.Equal(old.CiphertextBlob[41:45], []byte{0, 0, 0, 1}) {
		t.Errorf("blob versions: new %x, old %x", v, old.CiphertextBlob[41:45])
	}
	for want, blob := range map[string][]byte{"v1": old.CiphertextBlob, "v2": fresh.CiphertextBlob} {
		if got := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})); string(got.Plaintext) != want {
			t.Errorf("after rotation: %q, want %q", got.Plaintext, want)
		}
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(strings.Repeat("a", 300))})
	if apiCode(err) == "" {
		t.Errorf("300-char key ID: %v", err)
	}
}

// TestDeletionSweep: a key pending deletion is erased by the server once
// its date has passed (the store's clock is moved past it).
func TestDeletionSweep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(owner)
	k := createKey(t, c, "")
	must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: k.KeyId}))
	must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)}))
	later := time.Now().Add(8 * 24 * time.Hour)
	st, err := keystore.Open(f.dir, keystore.OpenOptions{Principal: owner, Now: func() time.Time { return later },
		Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv := must(server.New(server.Config{Store: st, Region: "eu-west-1", Account: "444455556666", DeletionSweep: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	serveWith(t, srv, server.ListenConfig{HTTPAddr: "127.0.0.1:0"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
		if apiCode(err) == "NotFoundException" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key due for deletion is still there: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/doomed")})
	wantCode(t, "the deleted key's alias", err, "NotFoundException")
}
