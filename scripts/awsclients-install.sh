#!/usr/bin/env bash
# Makes boto3 and the AWS CLI available for the key server's client tests
# (server/clients_test.go): they are usually installed through pip on the
# machine image; otherwise, as root, Debian's python3-boto3 and awscli.
# Without them the tests skip with a message (and fail under CI=true).
set -u
have_boto3() { python3 -c 'import boto3' >/dev/null 2>&1; }
if have_boto3 && command -v aws >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "awsclients-install: boto3 or the AWS CLI is missing and cannot be installed here; their tests will skip" >&2
  exit 0
fi
echo "awsclients-install: installing python3-boto3 and awscli" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq python3-boto3 awscli >/dev/null || {
  echo "awsclients-install: could not install them; boto3 and AWS CLI tests will skip (and fail under CI=true)" >&2
}
exit 0
