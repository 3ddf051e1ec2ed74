#!/usr/bin/env bash
# make bench: every figure next to a baseline measured in the same run, as a
# ratio, because these small shared machines are noisy.
#   BENCH_SIZES_MIB  file sizes for file->file runs (default "256 1024")
#   BENCH_TIME       go test -benchtime for the library benchmarks (default 1s)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/keystack}
SIZES=${BENCH_SIZES_MIB:-256 1024}
BT=${BENCH_TIME:-1s}
work=$(mktemp -d "${TMPDIR:-/tmp}/keystack-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

section() { printf '\n== %s\n' "$1"; }

# gobench PKG REGEX: runs benchmarks, prints "name MB/s ns/op allocs/op" rows.
gobench() {
  go test -run '^$' -bench "$2" -benchtime "$BT" -benchmem "$1" 2>&1 | tee -a "$work/raw.txt" |
    awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); mbs=""; ns=""; al="";
           for (i=2;i<=NF;i++) { if ($(i)=="MB/s") mbs=$(i-1); if ($(i)=="ns/op") ns=$(i-1); if ($(i)=="allocs/op") al=$(i-1) }
           print name, (mbs==""?"-":mbs), ns, (al==""?"-":al) }'
}

# ratio TABLE BASE: prints each row's MB/s as a share of the BASE row's.
ratio() {
  awk -v base="$2" '{ rows[NR]=$0; name[NR]=$1; mbs[NR]=$2; if ($1 ~ base) b=$2 }
    END { for (i=1;i<=NR;i++) { r = (b>0 && mbs[i]!="-") ? sprintf("%.2f", mbs[i]/b) : "-";
            printf "  %-60s %10s MB/s  %6s x baseline\n", name[i], mbs[i], r } }' "$1"
}

section "envelope streaming vs raw AES-256-GCM Seal (baseline: raw GCM on all cores)"
gobench ./envelope 'Benchmark(RawGCM|EncryptStream|DecryptStream)' > "$work/env.txt" || true
ratio "$work/env.txt" 'RawGCM.*[Aa]ll|RawGCM.*[Pp]arallel'
echo "  target: streaming to io.Discard >= 0.80 x raw multi-core GCM"

section "file -> file through the CLI vs cp of the same bytes (baseline: cp)"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/keystack
# An unsealed store, so that the figures are the data path's: a sealed store
# adds one argon2id derivation per command (64 MiB, ~0.2 s; see
# BenchmarkUnlockDefaultKDF below).
export KEYSTACK_HOME="$work/home"
"$BIN" init --insecure-no-passphrase >/dev/null 2>&1 && "$BIN" key create bench >/dev/null 2>&1
for mib in $SIZES; do
  f="$work/in.$mib"; head -c "$((mib << 20))" /dev/urandom > "$f"; sync
  t() { /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null; cat "$work/t"; }
  read -r cp_s cp_kb < <(t cp "$f" "$work/copy")
  read -r enc_s enc_kb < <(t "$BIN" encrypt -k bench -i "$f" -o "$work/enc" --force)
  read -r dec_s dec_kb < <(t "$BIN" decrypt -k bench -i "$work/enc" -o "$work/dec" --force)
  cmp -s "$f" "$work/dec" || { echo "bench: round trip mismatch" >&2; exit 1; }
  awk -v m="$mib" -v c="$cp_s" -v e="$enc_s" -v d="$dec_s" -v ek="$enc_kb" -v dk="$dec_kb" 'BEGIN {
    gb = m/1024; if (c<=0) c=0.01;
    printf "  %5d MiB  cp %6.2fs (%5.2f GB/s)  encrypt %6.2fs (%4.2f x cp speed, peak RSS %d MiB)  decrypt %6.2fs (%4.2f x cp speed, peak RSS %d MiB)\n",
      m, c, gb/c, e, c/e, ek/1024, d, c/d, dk/1024 }'
  rm -f "$f" "$work/copy" "$work/enc" "$work/dec"
done
echo "  targets: file->file >= 0.85 x cp speed; peak RSS <= 32 MiB for any size"

for spec in "./keystore/awskms|KMS keyring on the loopback KMS server" \
            "./keystore|data-key cache and raw keyrings" \
            "./hsm|PKCS#11 keyring vs raw C_Encrypt on SoftHSM2 (baseline: raw C_Encrypt)" \
            "./rotation|rewrap" \
            "./policy ./audit|policy decisions and audit"; do
  pkgs=${spec%%|*}; title=${spec#*|}
  section "$title"
  for p in $pkgs; do
    [ -d "$p" ] || continue
    go test -run '^$' -bench . -benchtime "$BT" -benchmem "$p" 2>&1 | grep -E '^(Benchmark|    [a-z])' | sed 's/^/  /' || true
  done
done
