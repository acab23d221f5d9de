#!/usr/bin/env bash
# Builds the same N generated articles (default 10 000; ~3.7 KB each, every field
# filled) into feeds with feedsmith's builder and with Python's feedgen, side by
# side in one run, and prints best-of-RUNS (default 5) wall times and the ratio.
#
# Usage: bench/builder_vs_feedgen.sh [N]
# Environment: RUNS (default 5); FEEDGEN_VENV, a venv to use or create instead
# of a throwaway one (feedgen is installed from PyPI when it is missing);
# PYTHON, the interpreter that creates the venv (default python3);
# CARGO_TARGET_DIR is honoured.
#
# Both sides time the same work from in-memory, already parsed articles to the
# finished document: sort newest first, derive the tag: ids, map every field,
# serialise pretty-printed. See bench/build_timing.rs and bench/feedgen_build.py.
# feedgen has no JSON Feed writer, so feedsmith's JSON time is set against
# feedgen's RSS time, and labelled so.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
runs=${RUNS:-5}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

venv=${FEEDGEN_VENV:-$work/venv}
if ! "$venv/bin/python" -c 'import feedgen' 2>/dev/null; then
  echo "installing feedgen into $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check feedgen
fi
feedgen_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("feedgen"), "lxml", version("lxml"))')

cargo build --release --quiet --example build-timing
"$python" bench/gen_articles.py "$n" "$work/articles.jsonl"
size=$(du -h "$work/articles.jsonl" | cut -f1)

echo "articles: $n ($size of JSON Lines), best of $runs runs; feedgen $feedgen_version" >&2
cargo run --release --quiet --example build-timing -- "$work/articles.jsonl" "$runs" >"$work/feedsmith.txt"
"$venv/bin/python" bench/feedgen_build.py "$work/articles.jsonl" --runs "$runs" >"$work/feedgen.txt"

"$python" - "$work/feedsmith.txt" "$work/feedgen.txt" "$n" <<'PY'
import sys

def read(path):
    with open(path) as f:
        return {k: float(v) for k, v in (line.split() for line in f if line.strip())}

ours, theirs, n = read(sys.argv[1]), read(sys.argv[2]), sys.argv[3]
rows = [
    ("rss", ours["rss"], theirs["rss"]),
    ("atom", ours["atom"], theirs["atom"]),
    ("json (vs feedgen rss)", ours["json"], theirs["rss"]),
    ("all three (vs feedgen rss+atom)", ours["all"], theirs["rss"] + theirs["atom"]),
]
print(f"{n} articles")
print(f"| {'format':<31} | {'feedsmith s':>11} | {'feedgen s':>9} | {'feedgen/feedsmith':>17} | >= 10x |")
print(f"| {'-' * 31} | {'-' * 11} | {'-' * 9} | {'-' * 17} | ------ |")
for name, a, b in rows:
    ratio = b / a if a > 0 else float("inf")
    print(f"| {name:<31} | {a:>11.4f} | {b:>9.4f} | {ratio:>16.1f}x | {'yes' if ratio >= 10 else 'NO':<6} |")
PY
