"""Drives the keystack key server with unmodified boto3 (server/clients_test.go).

Environment: KS_URL, KS_REGION, and access keys for the owner (KS_OWNER_ID,
KS_OWNER_SECRET) and for service:billing (KS_BILLING_ID, KS_BILLING_SECRET).
Prints one line per check; exits non-zero on the first failure.
"""
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(prefix):
    return boto3.client(
        "kms",
        endpoint_url=os.environ["KS_URL"],
        region_name=os.environ["KS_REGION"],
        aws_access_key_id=os.environ[prefix + "_ID"],
        aws_secret_access_key=os.environ[prefix + "_SECRET"],
        config=Config(retries={"max_attempts": 1}),
    )


def expect_error(name, fn):
    try:
        fn()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code != name:
            sys.exit("want %s, got %s" % (name, code))
        print("ok error", name)
        return
    sys.exit("want %s, got success" % name)


def main():
    owner, billing = client("KS_OWNER"), client("KS_BILLING")
    key = owner.create_key(Description="boto3", Tags=[{"TagKey": "team", "TagValue": "billing"}])["KeyMetadata"]
    assert key["KeyState"] == "Enabled", key
    print("ok create_key", key["KeyId"])
    owner.create_alias(AliasName="alias/boto3", TargetKeyId=key["KeyId"])
    aliases = owner.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/boto3"], aliases
    print("ok alias")

    ctx = {"tenant": "acme"}
    dk = billing.generate_data_key(KeyId="alias/boto3", KeySpec="AES_256", EncryptionContext=ctx)
    assert len(dk["Plaintext"]) == 32
    back = billing.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)
    assert back["Plaintext"] == dk["Plaintext"] and back["KeyId"] == key["Arn"]
    print("ok generate_data_key")

    enc = billing.encrypt(KeyId=key["KeyId"], Plaintext=b"boto3 secret", EncryptionContext=ctx)
    assert billing.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"boto3 secret"
    print("ok encrypt/decrypt")
    expect_error("InvalidCiphertextException", lambda: billing.decrypt(
        CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"tenant": "evil"}))
    locked = owner.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "locked"})
    expect_error("AccessDeniedException", lambda: billing.decrypt(
        CiphertextBlob=locked["CiphertextBlob"], EncryptionContext={"tenant": "locked"}))
    expect_error("AccessDeniedException", lambda: billing.create_key())

    owner.rotate_key_on_demand(KeyId=key["KeyId"])
    rots = owner.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert len(rots) == 1 and rots[0]["RotationType"] == "ON_DEMAND", rots
    assert billing.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"boto3 secret"
    owner.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=180)
    status = owner.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 180, status
    print("ok rotation")


if __name__ == "__main__":
    main()
    print("boto3 checks passed")
