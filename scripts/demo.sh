#!/usr/bin/env bash
# demo.sh BIN: the main keystack job end to end on a throwaway keystore.
# Prints each command before running it and "demo: OK" when every step passed.
set -euo pipefail

bin=${1:?usage: demo.sh path/to/keystack}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/keystack-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

export KEYSTACK_HOME="$work/home"
# A demo passphrase; real use reads it from a file or the terminal prompt.
export KEYSTACK_PASSPHRASE="demo passphrase, not a secret"

# step shows a command the way a user would type it, then runs it.
step() {
  local shown=keystack arg
  [ "$1" = "$bin" ] || shown=$(printf '%q' "$1")
  for arg in "${@:2}"; do shown+=" $(printf '%q' "$arg")"; done
  printf '\n$ %s\n' "$shown"
  "$@"
}

printf 'the quick brown fox jumps over the lazy dog\n%.0s' $(seq 1 2000) > report.txt

step "$bin" init
step "$bin" key create demo --description "demo key"
step "$bin" key list
step "$bin" encrypt -k demo -c purpose=demo -i report.txt -o report.txt.ks
step "$bin" inspect report.txt.ks
step "$bin" decrypt -k demo -c purpose=demo -i report.txt.ks -o report.out
step cmp report.txt report.out

printf '\n$ echo "hello, pipe" | keystack encrypt -k demo --signed | keystack decrypt\n'
got=$(echo "hello, pipe" | "$bin" encrypt -k demo --signed | "$bin" decrypt)
printf '%s\n' "$got"
[ "$got" = "hello, pipe" ]

# The key server: the same keystore served over the AWS KMS API; a client
# with its own empty keystore encrypts through it with the KMS keyring.
if command -v curl >/dev/null 2>&1; then
  owner="user:$(id -un)"
  step "$bin" server credentials create --principal "$owner" > cred.txt
  sed 's/^secret access key: .*/secret access key: (shown once; hidden in this demo)/' cred.txt
  akid=$(awk '/^access key ID:/ {print $4}' cred.txt)
  secret=$(awk '/^secret access key:/ {print $4}' cred.txt)
  port=$((20000 + RANDOM % 20000))
  printf '\n$ keystack server --insecure-http-loopback 127.0.0.1:%s &\n' "$port"
  "$bin" server --insecure-http-loopback "127.0.0.1:$port" 2> server.log &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  (
    export KEYSTACK_HOME="$work/client" AWS_ENDPOINT_URL_KMS="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
      AWS_ACCESS_KEY_ID="$akid" AWS_SECRET_ACCESS_KEY="$secret" AWS_EC2_METADATA_DISABLED=true \
      AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    unset KEYSTACK_PASSPHRASE
    arn=arn:aws:kms:us-east-1:111122223333:key/demo
    step "$bin" init --insecure-no-passphrase
    step "$bin" encrypt -k "$arn" -c purpose=demo -i report.txt -o report.kms.ks
    step "$bin" inspect report.kms.ks
    step "$bin" decrypt --discovery -c purpose=demo -i report.kms.ks -o report.kms.out
    step cmp report.txt report.kms.out
  )
  kill -TERM "$server"
  wait "$server"
  grep -c 'msg=request' server.log | sed 's/^/key server: requests served: /'
else
  printf '\n(key server part skipped: curl is needed to wait for it)\n'
fi

printf '\ndemo: OK\n'
