#!/usr/bin/env bash
# Measures `feedsmith import` of N generated articles (default 100 000) into a
# fresh store, then a re-import of the same file (all unchanged).
# Usage: bench/import.sh [N]   (CARGO_TARGET_DIR is honoured)
# With PG_URL=postgres://user@host/db set, the store is PostgreSQL: a fresh
# schema in that database, dropped afterwards. Otherwise a fresh SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
work=$(mktemp -d)
schema=""
cleanup() {
  rm -rf "$work"
  if [[ -n $schema ]]; then psql "$PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null; fi
}
trap cleanup EXIT
if [[ -n ${PG_URL:-} ]]; then
  schema="feedsmith_bench_$$"
  psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null
  sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
  store_url="$PG_URL${sep}options[search_path]=$schema"
  backend="PostgreSQL ($(psql "$PG_URL" -Atc 'SHOW server_version'), schema $schema)"
else
  store_url="sqlite://$work/articles.db"
  backend="SQLite"
fi

cargo build --release --quiet
python3 bench/gen_articles.py "$n" "$work/articles.jsonl"
mkdir -p "$work/feeds"
echo 'title = "Latest"' > "$work/feeds/latest.toml"
cat > "$work/feedsmith.toml" <<TOML
[server]
base_url = "http://127.0.0.1:8080"
[site]
title = "Bench"
timezone = "Europe/Dublin"
[store]
url = "$store_url"
[feeds]
dir = "$work/feeds"
TOML

size=$(du -h "$work/articles.jsonl" | cut -f1)
echo "store: $backend"
echo "articles: $n ($size of JSON Lines)"
for run in first re-import; do
  start=$(date +%s.%N)
  "${CARGO_TARGET_DIR:-target}/release/feedsmith" --config "$work/feedsmith.toml" import "$work/articles.jsonl" </dev/null
  end=$(date +%s.%N)
  python3 -c "s=$end-$start; print(f'$run: {s:.2f} s, {$n/s:,.0f} articles/s')"
done
