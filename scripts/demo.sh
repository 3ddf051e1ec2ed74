#!/usr/bin/env bash
# demo.sh BIN: the main keystack job end to end on a throwaway keystore, then
# the key server path: keystack server on loopback, a credential for an
# application, and keystack encrypting and decrypting through the server with
# its AWS KMS keyring. Prints each command before running it and "demo: OK"
# only when every step passed.
set -euo pipefail

bin=${1:?usage: demo.sh path/to/keystack}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/keystack-demo.XXXXXX")
server_pid=
# cleanup stops the server if it still runs, then removes everything.
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
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

# The key server path (README "Key server"): the application holds only an
# access key; the keystore, its passphrase and its keys stay with the server.
# The owner (the OS user) keeps full access; the policy in force names it.
owner=$("$bin" policy get --json | grep -o '"user:[^"]*"' | head -n1 | tr -d '"')
[ -n "$owner" ]
cat > policy.json <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Owner", "Effect": "Allow", "Principal": "$owner", "Action": "keystack:*", "Resource": "*"},
  {"Sid": "DemoApp", "Effect": "Allow", "Principal": "service:demo-app",
   "Action": ["keystack:GenerateDataKey", "keystack:Decrypt", "keystack:DescribeKey"], "Resource": "key/demo"}]}
JSON
printf '\n$ cat policy.json\n'; cat policy.json
step "$bin" policy put -i policy.json
printf '\n$ keystack server credentials create --principal service:demo-app --json > cred.json\n'
"$bin" server credentials create --principal service:demo-app --json > cred.json
json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" cred.json; }
access_key=$(json_field access_key_id)
secret_key=$(json_field secret_access_key)
[ -n "$access_key" ] && [ -n "$secret_key" ]
printf 'access key ID: %s (secret in cred.json, shown only once)\n' "$access_key"

printf '\n$ keystack server --insecure-http-loopback 127.0.0.1:0 --drain-timeout 5s &\n'
: > server.log # exists before the server's redirection opens it
"$bin" server --insecure-http-loopback 127.0.0.1:0 --drain-timeout 5s 2>> server.log &
server_pid=$!
addr=
for _ in $(seq 1 300); do # up to 30 s for the listening line
  addr=$(sed -n 's/.*listening.*addresses=\[\(127\.0\.0\.1:[0-9]*\)\].*/\1/p' server.log | head -n1)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat server.log >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "demo: the server did not start listening" >&2; cat server.log >&2; exit 1; }
printf 'listening on %s\n' "$addr"

# The application: an empty keystore of its own (it holds no keys), the
# server as its KMS endpoint, the access key from credentials create, and no
# AWS configuration of this machine.
arn=arn:aws:kms:us-east-1:111122223333:key/demo
(
  export KEYSTACK_HOME="$work/app-home" AWS_ENDPOINT_URL_KMS="http://$addr" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE="$work/no-aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/no-aws-credentials"
  unset KEYSTACK_PASSPHRASE AWS_SESSION_TOKEN AWS_PROFILE
  printf '\n$ export AWS_ENDPOINT_URL_KMS=http://%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=...\n' "$addr" "$access_key"
  step "$bin" init --insecure-no-passphrase
  step "$bin" encrypt -k "$arn" -c purpose=demo -i report.txt -o report.txt.kms.ks
  step "$bin" inspect report.txt.kms.ks
  "$bin" inspect report.txt.kms.ks | grep -q "$arn"
  step "$bin" decrypt --discovery --discovery-account 111122223333 -c purpose=demo -i report.txt.kms.ks -o report.kms.out
  step cmp report.txt report.kms.out
)

# The same application in keystack's client mode (README "Client mode"):
# no keystore at all; key names resolve on the server, and a message the
# local keystore wrote earlier decrypts through the server too.
(
  export KEYSTACK_HOME="$work/no-keystore" KEYSTACK_SERVER="http://$addr" \
    KEYSTACK_ACCESS_KEY_ID="$access_key" KEYSTACK_SECRET_ACCESS_KEY="$secret_key"
  unset KEYSTACK_PASSPHRASE
  printf '\n$ export KEYSTACK_SERVER=http://%s KEYSTACK_ACCESS_KEY_ID=%s KEYSTACK_SECRET_ACCESS_KEY=...\n' "$addr" "$access_key"
  step "$bin" encrypt -k demo -c purpose=demo -i report.txt -o report.txt.srv.ks
  step "$bin" decrypt -c purpose=demo -i report.txt.srv.ks -o report.srv.out
  step cmp report.txt report.srv.out
  step "$bin" decrypt -c purpose=demo -i report.txt.ks -o report.old.out
  step cmp report.txt report.old.out
  [ ! -e "$work/no-keystore" ]
)

printf '\n$ kill -TERM %s   # drains in-flight requests, exits 0\n' "$server_pid"
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
step "$bin" audit show --principal service:demo-app
step "$bin" audit verify

printf '\ndemo: OK\n'
