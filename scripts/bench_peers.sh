#!/usr/bin/env bash
# keystack against its peers, in one run (issue: performance): age v1.3.2's
# CLI and Tink's streaming AEAD (AES256_GCM_HKDF_1MB, bench/peers/cmd/
# tinkstream, same I/O pattern), built from bench/peers, a module of its own
# so that the main module gains no dependency. Encrypt and decrypt of one
# file to /dev/null, to a pipe and file to file (keystack --sync none, as
# neither peer fsyncs), the tools taking turns for BENCH_RUNS rounds; each
# figure is the median over rounds of the ratio to the peer's time in the
# same round. cat (or cp, file to file) of the same bytes is the floor.
#   BENCH_PEER_MIB  file size (default 1024)     BENCH_RUNS  rounds (default 7)
#   BENCH_PEER_MODES  which of devnull, pipe, file (default all three)
# Each row also gives the median CPU time (user + system) of each tool: on
# a machine whose other load leaves keystack less than its two cores
# (CPU/wall near 1), wall-clock ratios are CPU ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/keystack}
MIB=${BENCH_PEER_MIB:-1024}
RUNS=${BENCH_RUNS:-7}
MODES=${BENCH_PEER_MODES:-devnull pipe file}
work=$(mktemp -d "${TMPDIR:-/tmp}/keystack-peers.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The lite build hands KMS and server-mode commands to keystack-full beside it.
[ -x "$BIN" ] && [ -x "$(dirname "$BIN")/keystack-full" ] || make build BIN="$BIN"
BIN=$(realpath "$BIN")
if ! (cd bench/peers && go build -o "$work/" ./cmd/tinkstream filippo.io/age/cmd/age filippo.io/age/cmd/age-keygen); then
  echo "  peers: could not build age and Tink from bench/peers (module proxy unreachable?); no peer figures" >&2
  exit 1
fi
export KEYSTACK_HOME="$work/home"
"$BIN" init --insecure-no-passphrase >/dev/null 2>&1
"$BIN" key create bench >/dev/null 2>&1
"$work/age-keygen" -o "$work/age.key" 2>/dev/null
agepub=$("$work/age-keygen" -y "$work/age.key")
"$work/tinkstream" keygen "$work/tink.json"

in="$work/in"; head -c "$((MIB << 20))" /dev/urandom > "$in"
"$BIN" encrypt -k bench -i "$in" -o "$work/in.ks" >/dev/null
"$work/age" -r "$agepub" -o "$work/in.age" "$in"
"$work/tinkstream" encrypt "$work/tink.json" "$in" "$work/in.tink"

# cmd TOOL DIR SRC OUT: the command line of TOOL (keystack, age, tink, cat)
# for direction DIR (enc, dec) reading SRC and writing OUT (- is stdout).
cmd() {
  local tool=$1 dir=$2 src=$3 out=$4
  case "$tool.$dir" in
  keystack.enc) echo "$BIN encrypt --sync none -k bench -i $src -o $out" ;;
  keystack.dec) echo "$BIN decrypt --sync none -i $src -o $out" ;;
  age.enc) echo "$work/age -r $agepub -o $out $src" ;;
  age.dec) echo "$work/age -d -i $work/age.key -o $out $src" ;;
  tink.*) echo "$work/tinkstream $([ "$dir" = enc ] && echo encrypt || echo decrypt) $work/tink.json $src $out" ;;
  cat.*) [ "$out" = - ] && echo "cat $src" || echo "cp $src $out" ;;
  esac
}
# timed TOOL DIR MODE: one run, appends "TOOL DIR MODE wall user sys rssKiB".
timed() {
  local tool=$1 dir=$2 mode=$3 src out t0 t1 line
  src=$in; [ "$dir" = dec ] && src="$work/in.$([ "$tool" = keystack ] && echo ks || echo "$tool")"
  [ "$dir" = dec ] && [ "$tool" = cat ] && src="$work/in.ks"
  out=-; [ "$mode" = file ] && out="$work/out"
  rm -f "$work/out"; sync; cat "$src" >/dev/null
  t0=$(date +%s%N)
  case $mode in
  devnull) /usr/bin/time -f "%U %S %M" -o "$work/t" $(cmd "$tool" "$dir" "$src" "$out") >/dev/null ;;
  pipe) /usr/bin/time -f "%U %S %M" -o "$work/t" $(cmd "$tool" "$dir" "$src" "$out") | cat >/dev/null ;;
  file) /usr/bin/time -f "%U %S %M" -o "$work/t" $(cmd "$tool" "$dir" "$src" "$out") ;;
  esac
  t1=$(date +%s%N)
  echo "$tool $dir $mode $(( (t1 - t0) / 1000 ))e-6 $(cat "$work/t")" >> "$work/runs.txt"
}
: > "$work/runs.txt"
for _ in $(seq "$RUNS"); do
  for mode in $MODES; do
    for dir in enc dec; do
      for tool in cat keystack age tink; do timed "$tool" "$dir" "$mode"; done
    done
  done
done
# A decrypt that produced wrong bytes would make every figure meaningless.
"$BIN" decrypt -i "$work/in.ks" -o - | cmp -s - "$in" || { echo "bench peers: keystack round trip mismatch" >&2; exit 1; }

echo "  $MIB MiB, $RUNS rounds; speed-up = peer's time / keystack's time in the same round (median, range)"
awk -v mib="$MIB" '
  function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
  { k = $2 " " $3; n = ++cnt[$1, k]; w[$1, k, n] = $4 + 0; cpu[$1, k, n] = ($5 + $6) / ($4 > 0 ? $4 : 1e-3); cs[$1, k, n] = $5 + $6; if ($7 > rss[$1, k]) rss[$1, k] = $7; keys[k] = 1 }
  END {
    split("enc devnull,enc pipe,enc file,dec devnull,dec pipe,dec file", order, ",")
    for (o = 1; o <= 6; o++) { k = order[o]; if (!(k in keys)) continue; r = cnt["keystack", k]
      for (i = 1; i <= r; i++) { ka[i] = w["keystack", k, i]; a[i] = w["age", k, i] / ka[i]; t[i] = w["tink", k, i] / ka[i]; c[i] = w["cat", k, i] / ka[i]; u[i] = cpu["keystack", k, i] }
      printf "  %-11s keystack %5.2fs (%4.2f GB/s, CPU/wall %4.2f, RSS %3d MiB): %4.2f x age, %4.2f x Tink, %4.2f x %s\n",
        k, median(ka, r), mib / 1024 / median(ka, r), median(u, r), rss["keystack", k] / 1024, median(a, r), median(t, r), median(c, r), (k ~ /file/ ? "cp" : "cat")
      for (i = 1; i <= r; i++) { aa[i] = w["age", k, i]; tt[i] = w["tink", k, i]; cc[i] = w["cat", k, i] }
      printf "  %-11s   age %5.2fs (RSS %3d MiB), Tink %5.2fs (RSS %3d MiB), %s %5.2fs\n", "", median(aa, r), rss["age", k] / 1024, median(tt, r), rss["tink", k] / 1024, (k ~ /file/ ? "cp" : "cat"), median(cc, r)
      for (i = 1; i <= r; i++) { ka[i] = cs["keystack", k, i]; aa[i] = cs["age", k, i]; tt[i] = cs["tink", k, i]; cc[i] = cs["cat", k, i] }
      printf "  %-11s   CPU (user + system): keystack %4.2fs, age %4.2fs, Tink %4.2fs, %s %4.2fs\n", "", median(ka, r), median(aa, r), median(tt, r), (k ~ /file/ ? "cp" : "cat"), median(cc, r)
    }
  }' "$work/runs.txt"
echo "  targets: >= 2.5 x age and >= 1.6 x Tink in every row; keystack RSS <= 32 MiB"
