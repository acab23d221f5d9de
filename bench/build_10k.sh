#!/usr/bin/env bash
# Times `feedsmith build` of one N-item feed end to end (process start, store
# open, query, decode, build, atomic writes with fsync, exit) against the
# builder's own time for the same articles, and prints their ratio (issue 13:
# the whole process should stay within 1.5x of the builder).
#
# Usage: bench/build_10k.sh [N]      (default 10000, the largest feed limit)
# Environment:
#   RUNS     runs of each measurement (default 10; the builder reports its best)
#   PG_URL   also measure a PostgreSQL store: a fresh schema in this database
#            (postgres://postgres@127.0.0.1:5432/test), dropped afterwards
#   SKIP_BUILD=1  use the release binaries already built
#   OUT      results file (default bench/results/build-10k-DATE-COMMIT.txt)
#   CARGO_TARGET_DIR is honoured.
#
# builder-only: `build-timing` (bench/build_timing.rs), best of RUNS of
#   `build` of all three formats from articles already in memory.
# whole process: hyperfine (installed from Debian's packages when missing and
#   run as root; else a plain loop) over `feedsmith build` of a config whose only
#   feed has limit N, the output folder on the same disk as the store; min and
#   median of RUNS, after one warm-up run (the store file in the OS cache, as
#   on a server that just wrote it).
# ratio: whole process / builder-only, for the min and the median.
# The machine's load average is printed with each figure: on a shared machine
# both figures move, and the ratio with them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-10000}
runs=${RUNS:-10}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=$target_dir/release/feedsmith
timing=$target_dir/release/examples/build-timing
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${OUT:-bench/results/build-10k-$(date +%F)-$commit.txt}
work=$(mktemp -d)
schema=""
cleanup() {
  rm -rf "$work"
  if [[ -n $schema ]]; then psql "$PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null; fi
}
trap cleanup EXIT
log() { printf '%s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

if ((n < 1 || n > 10000)); then log "N must be 1..10000 (a feed's limit)"; exit 2; fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building feedsmith and build-timing (release)"
  cargo build --release --quiet --bin feedsmith --example build-timing
fi
if ! command -v hyperfine >/dev/null && [[ $(id -u) == 0 ]]; then
  apt-get install -y -qq hyperfine >/dev/null 2>&1 || log "hyperfine not installed; timing with a plain loop"
fi

python3 bench/gen_articles.py "$n" "$work/articles.jsonl"
mkdir -p "$work/feeds"
printf 'title = "Everything"\nlimit = %d\n' "$n" > "$work/feeds/all.toml"

# Writes the config for store URL $1 to $2.
config() {
  cat > "$2" <<TOML
[server]
base_url = "https://feeds.example.com"
[site]
title = "Example News"
timezone = "Europe/Dublin"
[store]
url = "$1"
[output]
dir = "$work/out"
[feeds]
dir = "$work/feeds"
TOML
}

# Prints "MIN MEDIAN" seconds of RUNS runs of `feedsmith build` with config $1.
whole() {
  local cmd="$bin --config $1 build"
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/h.json" --output null "$cmd" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.4f %.4f" % (r["min"], r["median"]))' "$work/h.json"
  else
    $cmd >/dev/null 2>&1
    for ((i = 0; i < runs; i++)); do
      local s=$EPOCHREALTIME
      $cmd >/dev/null 2>&1
      echo "$EPOCHREALTIME - $s" | bc
    done | sort -n | awk '{ t[NR] = $1 } END { printf "%.4f %.4f\n", t[1], (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2) }'
  fi
}

{
  echo "feedsmith build of one $n-item feed, commit $commit, $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(uname -r); runs: $runs"
  echo "articles: $n ($(du -h "$work/articles.jsonl" | cut -f1) of JSON Lines, bench/gen_articles.py)"
} | tee "$out"

builder_load=$(load)
builder=$("$timing" "$work/articles.jsonl" "$runs" 2>/dev/null | awk '$1 == "all" { print $2 }')
echo "builder-only (build-timing, all three formats, best of $runs): ${builder} s  [load $builder_load]" | tee -a "$out"

stores=("sqlite|sqlite://$work/articles.db|SQLite")
if [[ -n ${PG_URL:-} ]]; then
  schema="feedsmith_build10k_$$"
  psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null
  sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
  stores+=("postgres|$PG_URL${sep}options[search_path]=$schema|PostgreSQL $(psql "$PG_URL" -Atc 'SHOW server_version')")
fi

printf '| store | builder-only s | whole min s | whole median s | ratio (min) | ratio (median) | load |\n| --- | --- | --- | --- | --- | --- | --- |\n' >"$work/table"
for entry in "${stores[@]}"; do
  IFS='|' read -r key url name <<<"$entry"
  config "$url" "$work/$key.toml"
  "$bin" --config "$work/$key.toml" import "$work/articles.jsonl" </dev/null >/dev/null
  built=$("$bin" --config "$work/$key.toml" build 2>/dev/null)
  [[ $built == "all: $n items -> "* ]] || { log "unexpected build output: $built"; exit 1; }
  l=$(load)
  read -r min median < <(whole "$work/$key.toml")
  python3 - "$name" "$builder" "$min" "$median" "$l" >>"$work/table" <<'PY'
import sys
name, b, lo, med, load = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
print(f"| {name} | {b:.3f} | {lo:.3f} | {med:.3f} | {lo / b:.2f}x | {med / b:.2f}x | {load} |")
PY
done
tee -a "$out" <"$work/table"
log "saved to $out"
