#!/usr/bin/env bash
# Measures `feedsmith import` of N generated articles (default 100 000) into a
# fresh SQLite store, then a re-import of the same file (all unchanged).
# Usage: bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
url = "sqlite://$work/articles.db"
[feeds]
dir = "$work/feeds"
TOML

size=$(du -h "$work/articles.jsonl" | cut -f1)
echo "articles: $n ($size of JSON Lines)"
for run in first re-import; do
  start=$(date +%s.%N)
  ./target/release/feedsmith --config "$work/feedsmith.toml" import "$work/articles.jsonl" </dev/null
  end=$(date +%s.%N)
  python3 -c "s=$end-$start; print(f'$run: {s:.2f} s, {$n/s:,.0f} articles/s')"
done
