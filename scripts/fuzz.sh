#!/usr/bin/env bash
# Fuzzes every target in fuzz/ for SECONDS each (default 60), starting from the
# committed corpus in fuzz/corpus/<target>/. The run works on a scratch copy of
# the corpus, so the repository is left as it was. Exits 1 if any target finds
# a crash (or a timeout, leak or out-of-memory), printing each reproducer's path;
# replay one with `cargo +nightly fuzz run TARGET PATH`.
# Usage: scripts/fuzz.sh [SECONDS]
# FUZZ_TARGET_DIR, if set, is where the fuzz build goes instead of fuzz/target
# (the sanitizer build of every dependency takes ten minutes or more, so CI
# keeps it across clean clones).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

target_dir=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  target_dir=(--target-dir "$FUZZ_TARGET_DIR")
fi

echo "== building the fuzz targets"
cargo +nightly fuzz build "${target_dir[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# Reproducers land in fuzz/artifacts/<target>/ (ignored by git); only those
# written during this run count.
started="$scratch/started"
touch "$started"

failed=0
for target in $(cargo +nightly fuzz list); do
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  echo "== $target: ${seconds}s from $(find "$corpus" -type f | wc -l) corpus files"
  if cargo +nightly fuzz run "${target_dir[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -print_final_stats=1; then
    echo "== $target: no crash; corpus now $(find "$corpus" -type f | wc -l) files"
  else
    failed=1
    echo "fuzz: $target failed; reproducers:" >&2
    mkdir -p "fuzz/artifacts/$target"
    find "fuzz/artifacts/$target" -type f -newer "$started" -print | sed 's/^/  /' >&2
  fi
done
exit "$failed"
