#!/usr/bin/env bash
# The key server's paced GenerateDataKey tail with the server in its own
# process (part of make bench; issue 14's "p99 <= 5 ms at 5,000/s"):
# bin/keystack server (SigV4, the default policy, batch audit) pinned to
# CPU 1, the open-loop generator of server/load_bench_test.go
# (BenchmarkServerLoadExternal) pinned to CPU 0, latency from each
# request's scheduled time; then the same generator against the KMS test
# server (no policy, no audit) in its own process on CPU 1: the baseline
# of the same run.
#   BENCH_PACED_RATE      requests a second (default 5000)
#   BENCH_PACED_REQUESTS  requests per row (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/keystack}
N=${BENCH_PACED_REQUESTS:-20000}
export BENCH_PACED_RATE=${BENCH_PACED_RATE:-5000}
[ -x "$BIN" ] || go build -tags urfave_cli_no_docs -o "$BIN" ./cmd/keystack
work=$(mktemp -d "${TMPDIR:-/tmp}/keystack-paced.XXXXXX")
srvpid=
trap '[ -z "$srvpid" ] || kill "$srvpid" 2>/dev/null || true; rm -rf "$work"' EXIT
pin0=(taskset -c 0) pin1=(taskset -c 1)
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
  echo "  (fewer than 2 CPUs or no taskset: the processes are not pinned)"; pin0=() pin1=()
fi
go test -c -o "$work/server.test" ./server

# row NAME: runs the generator against KEYSTACK_LOAD_* and prints one line.
row() {
  local load0 out
  load0=$(cut -d' ' -f1 /proc/loadavg)
  out=$(cd server && "${pin0[@]}" "$work/server.test" -test.run '^$' -test.bench '^BenchmarkServerLoadExternal$' \
    -test.benchtime "${N}x" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" | awk -v name="$1" -v load0="$load0" -v load1="$(cut -d' ' -f1 /proc/loadavg)" '/^BenchmarkServerLoadExternal/ {
      for (j=2;j<=NF;j++) { if ($(j)=="req/s") r=$(j-1); if ($(j)=="p50-ms") p50=$(j-1); if ($(j)=="p99-ms") p99=$(j-1) }
      printf "  %-48s %6.0f req/s  p50 %5.2f ms  p99 %6.2f ms  (load average %s -> %s)\n", name, r, p50, p99, load0, load1; found=1 }
    END { if (!found) { print "bench: no result from BenchmarkServerLoadExternal" > "/dev/stderr"; exit 1 } }'
}

# keystack server on an unsealed store, the caller's credential for its owner.
export KEYSTACK_HOME="$work/home" KEYSTACK_PRINCIPAL=user:bench
"$BIN" init --trust-principal-env --insecure-no-passphrase >/dev/null 2>&1
"$BIN" key create bench >/dev/null 2>&1
"$BIN" server credentials create --principal user:bench --json > "$work/cred.json"
"${pin1[@]}" "$BIN" server --insecure-http-loopback 127.0.0.1:0 2> "$work/srv.log" &
srvpid=$!
for _ in $(seq 300); do grep -q 'listening' "$work/srv.log" && break; sleep 0.02; done
addr=$(sed -n 's/.*addresses=\[\(127\.0\.0\.1:[0-9]*\)\].*/\1/p' "$work/srv.log" | head -1)
[ -n "$addr" ] || { echo "bench: keystack server did not start:" >&2; cat "$work/srv.log" >&2; exit 1; }
json() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$work/cred.json"; }
KEYSTACK_LOAD_URL="http://$addr" KEYSTACK_LOAD_AKID=$(json access_key_id) KEYSTACK_LOAD_SECRET=$(json secret_access_key) \
  KEYSTACK_LOAD_KEY=bench KEYSTACK_LOAD_REGION=us-east-1 row "keystack server (SigV4, policy, batch audit)"
kill "$srvpid"; wait "$srvpid" 2>/dev/null || true; srvpid=

# The KMS test server, served by the same test binary in its own process.
(cd server && KEYSTACK_KMSTEST_URL_FILE="$work/kmstest.url" exec "${pin1[@]}" "$work/server.test" -test.run '^$' -test.bench '^BenchmarkServeKMSTest$' -test.benchtime 1x) \
  > "$work/kmstest.log" 2>&1 &
srvpid=$!
for _ in $(seq 300); do [ -s "$work/kmstest.url" ] && break; sleep 0.02; done
[ -s "$work/kmstest.url" ] || { echo "bench: KMS test server did not start:" >&2; cat "$work/kmstest.log" >&2; exit 1; }
KEYSTACK_LOAD_URL=$(cat "$work/kmstest.url") KEYSTACK_LOAD_AKID=AKIAKMSTESTEXAMPLE01 \
  KEYSTACK_LOAD_SECRET=kmstest/secret/key/for/loopback/only/0000 KEYSTACK_LOAD_KEY= \
  row "KMS test server (baseline: no policy, no audit)"
kill "$srvpid"; wait "$srvpid" 2>/dev/null || true; srvpid=
