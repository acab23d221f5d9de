#!/usr/bin/env bash
# Regenerates docs/feed-page.png, the README's screenshot of a feed page:
# runs the browser test (headless Chromium against the real service) and
# copies the feed page's screenshot it takes.
# Usage: scripts/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed (apt-get install chromium)" >&2
    exit 1
  fi
fi
FEEDSMITH_SCREENSHOT_TO="$PWD/docs/feed-page.png" \
  cargo test --locked --test browser -- --nocapture
echo "wrote docs/feed-page.png"
