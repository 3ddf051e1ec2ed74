#!/usr/bin/env bash
# Installs the official AWS Encryption SDK for JavaScript pinned by
# interop/jsesdk/package-lock.json into a cache directory outside the Go
# module, for the interop tests (cmd/keystack/jsesdk_test.go):
#   ${KEYSTACK_JSESDK_DIR:-<user cache dir>/keystack-test/jsesdk/<lock hash>}
# where the user cache dir is Go's os.UserCacheDir ($XDG_CACHE_HOME or
# ~/.cache; ~/Library/Caches on macOS). The install is built beside the
# target and renamed into place, so a failed one is never used. Without
# node and npm, or when the install fails, it says so and exits 0: the
# tests then skip (or fail under CI=true) with the same message.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/interop/jsesdk
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test-prereqs: node/npm not found; the JavaScript ESDK interop tests will skip (and fail under CI=true)" >&2
  exit 0
fi
if [ -n "${KEYSTACK_JSESDK_DIR:-}" ]; then
  dir=$KEYSTACK_JSESDK_DIR
else
  if [ "$(uname -s)" = Darwin ]; then base=$HOME/Library/Caches; else base=${XDG_CACHE_HOME:-$HOME/.cache}; fi
  hash=$( (sha256sum 2>/dev/null || shasum -a 256) <"$src/package-lock.json" | cut -c1-16)
  dir=$base/keystack-test/jsesdk/$hash
fi
if [ -f "$dir/node_modules/@aws-crypto/client-node/package.json" ]; then
  exit 0
fi
echo "test-prereqs: installing the JavaScript ESDK into $dir" >&2
tmp=$dir.tmp.$$
mkdir -p "$tmp" && cp "$src/package.json" "$src/package-lock.json" "$tmp/" || exit 0
trap 'rm -rf "$tmp"' EXIT
# --ignore-scripts: nothing from the registry runs at install time.
if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
  echo "test-prereqs: npm ci failed; the JavaScript ESDK interop tests will skip (and fail under CI=true)" >&2
  exit 0
fi
# rename(2) fails on a non-empty target, so a concurrent install wins cleanly.
node -e 'try { require("fs").renameSync(process.argv[1], process.argv[2]) } catch (e) { if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e }' "$tmp" "$dir"
exit 0
