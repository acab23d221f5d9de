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

cargo test --locked "$@"
