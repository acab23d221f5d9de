#!/usr/bin/env bash
# Runs the W3C Feed Validation Service's own code (rubys/feedvalidator, the
# code behind validator.w3.org/feed) over built feeds, offline, at the
# service's "AA" level, and prints every error and warning.
#
# Usage: scripts/w3c-feedvalidator.sh [FILE...]
#   With no FILE, builds the shipped example site (`feedsmith build`) into a
#   temporary folder and checks every .rss and .atom in it.
# Environment:
#   FEEDVALIDATOR  a checkout of github.com/rubys/feedvalidator (default: the
#                  snapshot at /work/.mirror/rubys+feedvalidator/repo, exported)
#   PYTHON2        a Python 2.7 interpreter (the validator predates Python 3;
#                  default: pyenv's 2.7, else python2)
#   BASE           URL the documents claim to live at (default
#                  http://127.0.0.1:8080/feeds/, the shipped base_url), so
#                  self links match
# Exits 1 when any message is printed, 2 when the validator is unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

src=${FEEDVALIDATOR:-}
if [[ -z $src ]]; then
  mirror=/work/.mirror/rubys+feedvalidator/repo
  if [[ -d $mirror ]]; then
    git -C "$mirror" archive HEAD src | tar -x -C "$work"
    src=$work/src
  fi
elif [[ -d $src/src ]]; then
  src=$src/src
fi
if [[ -z $src || ! -d $src/feedvalidator ]]; then
  echo "feedvalidator not found: set FEEDVALIDATOR to a checkout of rubys/feedvalidator" >&2
  exit 2
fi
python2=${PYTHON2:-}
if [[ -z $python2 ]]; then
  py27=""
  command -v pyenv >/dev/null && py27=$(pyenv versions --bare | grep '^2\.7' | tail -n 1 || true)
  if [[ -n $py27 ]]; then
    python2="env PYENV_VERSION=$py27 python2"
  elif command -v python2 >/dev/null; then
    python2=python2
  else
    echo "no Python 2.7 found (set PYTHON2)" >&2
    exit 2
  fi
fi

files=("$@")
if ((${#files[@]} == 0)); then
  cargo run --quiet --locked -- build --out "$work/out" >/dev/null
  files=("$work"/out/*.rss "$work"/out/*.atom)
fi

cat >"$work/check.py" <<'PY'
import sys, os
sys.path.insert(0, os.environ['FV_SRC'])
import feedvalidator
from feedvalidator import compatibility
from feedvalidator.formatter.text_plain import Formatter
status = 0
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    base = os.environ['FV_BASE'] + os.path.basename(path)
    try:
        events = feedvalidator.validateString(data, firstOccurrenceOnly=0, base=base)['loggedEvents']
    except feedvalidator.logging.ValidationFailure as vf:
        events = [vf.event]
    out = Formatter(compatibility.AA(events))
    print('%s: %d messages' % (os.path.basename(path), len(out)))
    for line in out:
        print('  ' + line)
    if out:
        status = 1
sys.exit(status)
PY
FV_SRC=$src FV_BASE=${BASE:-http://127.0.0.1:8080/feeds/} $python2 "$work/check.py" "${files[@]}"
