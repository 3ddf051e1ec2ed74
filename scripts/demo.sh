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

printf '\ndemo: OK\n'
