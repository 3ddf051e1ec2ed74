#!/usr/bin/env bash
# Installs the test prerequisites that are missing: SoftHSM2 (Debian package
# softhsm2) for the PKCS#11 tests. Needs root; without it, prints why and
# leaves the HSM tests to skip (or fail under CI=true). The JavaScript ESDK
# for the interop tests: see jsesdk-install.sh.
set -u
"$(dirname "$0")/jsesdk-install.sh"
"$(dirname "$0")/awsclients-install.sh"
if command -v softhsm2-util >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-prereqs: softhsm2 is missing and this user is not root; HSM tests will skip" >&2
  exit 0
fi
echo "test-prereqs: installing softhsm2" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq softhsm2 >/dev/null || {
  echo "test-prereqs: could not install softhsm2; HSM tests will skip (and fail under CI=true)" >&2
}
exit 0
