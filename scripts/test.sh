#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs them.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# jing validates the Atom output against RFC 4287's RELAX NG schema.
if ! command -v jing >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing jing (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jing >/dev/null
  else
    echo "note: jing is not installed; the Atom schema test will say it was skipped (install: apt-get install jing)" >&2
  fi
fi

# promtool (Debian's prometheus package) checks /metrics; headless Chromium
# renders the feed pages (tests/metrics.rs, tests/browser.rs).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed; the metrics and browser tests will say they were skipped (install: apt-get install ${missing[*]})" >&2
  fi
fi

cargo test --locked "$@"
