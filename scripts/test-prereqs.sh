#!/usr/bin/env bash
# Installs the test prerequisites that are missing: SoftHSM2 (Debian package
# softhsm2) for the PKCS#11 tests; PostgreSQL (postgresql, without its
# default cluster: the tests start their own) for the replica tests; zsh,
# fish and script(1) (util-linux) for the shell completion and terminal tests. Needs root; without it, prints why and
# leaves the HSM tests to skip (or fail under CI=true). The JavaScript ESDK
# for the interop tests: see jsesdk-install.sh.
set -u
"$(dirname "$0")/jsesdk-install.sh"
"$(dirname "$0")/awsclients-install.sh"
missing=""
for pair in softhsm2-util:softhsm2 zsh:zsh fish:fish script:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
# PostgreSQL for the replica tests (internal/pgtest): initdb on PATH, or
# Debian's server binaries in /usr/lib/postgresql/N/bin.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing postgresql"
fi
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-prereqs:$missing missing and this user is not root; their tests will skip" >&2
  exit 0
fi
echo "test-prereqs: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
case "$missing" in *postgresql*)
  # the tests initdb throwaway clusters: no system cluster on port 5432
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
esac
# shellcheck disable=SC2086 # one word per package
apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null || {
  echo "test-prereqs: could not install$missing; their tests will skip (and fail under CI=true)" >&2
}
exit 0
