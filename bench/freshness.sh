#!/usr/bin/env bash
# Freshness: the time from an article write to the new document being served
# by `feedsmith serve` (release build).
#
# Usage: bench/freshness.sh
# Environment (all optional):
#   RUNS      writes per configuration (default 20)
#   PORT      port on 127.0.0.1 for the first configuration; the next ones use
#             PORT+1, PORT+2 (default 18090)
#   POLL_MS   pause between two polls of the feed's ETag (default 20)
#   WATCH     [schedule].watch of the "watch" configuration (default 2s)
#   CRON_SECS the "cron" configuration refreshes every CRON_SECS seconds with
#             the seconds-form cron "*/CRON_SECS * * * * *" (default 10)
#   CONFIGS   which configurations to run, of "watch cron watch-busy notify"
#             (default "watch cron"); see below
#   PG_URL    PostgreSQL database for the "notify" configuration (a fresh
#             schema in it, dropped afterwards), e.g.
#             postgres://postgres@127.0.0.1:5432/test
#   FEED      the document polled (default latest.rss)
#   ARTICLES  also import this many generated articles (bench/gen_articles.py,
#             ~3.7 KB each) before the server starts, so the feeds are full
#             size (latest: 50 items, ~200 KB); default 0: the store holds only
#             the seed articles of examples/articles (12 small articles)
#   OUT       file the output is saved to (default bench/results/freshness-DATE.txt)
#   SKIP_BUILD=1  use the existing release binary instead of running cargo build
#   KEEP=1    keep the temporary folder (configs, stores, server logs)
#   CARGO_TARGET_DIR is honoured.
#
# Configurations:
#   watch  [schedule] watch = WATCH, refresh = "0 3 * * *": only the watch poll
#          can pick up a write. Expected latency: uniform over one poll interval,
#          so about WATCH/2 on median (0.9 x WATCH at p90), plus one refresh.
#   cron   no watch, refresh = "*/CRON_SECS * * * * *": the write waits for the
#          next scheduled refresh, about CRON_SECS/2 on median.
#   watch-busy (optional) as "watch", plus one more feed, busy.toml (Business
#          section only, so never touched by the probe articles) refreshing on
#          its own schedule every 3 s: shows whether another feed's scheduled
#          refresh hides a write from the watch poll.
#   notify (optional, needs PG_URL) the store is PostgreSQL, no watch, refresh
#          = "0 3 * * *": only the store's notification at commit (LISTEN/
#          NOTIFY) can pick up a write. Expected latency: one refresh, no poll.
# The feeds are a copy of feeds/ (business.toml keeps its own "*/10 * * * *").
#
# What it does, per configuration: writes a config into a temporary folder
# (store: SQLite there, or for notify a PostgreSQL schema; seeded from
# examples/articles; output dir and a copy of feeds/ there too), starts
# `feedsmith serve`, waits until /feeds/FEED answers 200, then RUNS times:
# waits a random delay in [0, period) so writes land at a random phase of the
# poll/schedule (back-to-back writes would be phase-locked
# to it), reads the current ETag, writes one new article (published now, so it
# is first in the latest feed) with `feedsmith import FILE --config ...`, takes
# the instant `import` returns as the write time, then polls the ETag of
# /feeds/FEED every POLL_MS ms (each poll is one curl, a few ms) until it
# changes. The latency is from import's return to the first poll that sees the
# new ETag, so it includes up to one poll period of measurement granularity.
# Prints each write, then median, p90, min and max per configuration, with the
# import command's own duration. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=${RUNS:-20}
port=${PORT:-18090}
poll_ms=${POLL_MS:-20}
watch=${WATCH:-2s}
cron_secs=${CRON_SECS:-10}
configs=${CONFIGS:-"watch cron"}
feed=${FEED:-latest.rss}
articles=${ARTICLES:-0}
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=${OUT:-bench/results/freshness-$(date +%F).txt}

die() { printf 'freshness: %s\n' "$*" >&2; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number, not '$runs'"
[[ $articles =~ ^[0-9]+$ ]] || die "ARTICLES must be a whole number, not '$articles'"
[[ $poll_ms =~ ^[0-9]+$ ]] || die "POLL_MS must be a whole number of milliseconds, not '$poll_ms'"
[[ $cron_secs =~ ^[1-9][0-9]*$ ]] && ((60 % cron_secs == 0)) ||
  die "CRON_SECS must divide 60 (it becomes \"*/CRON_SECS * * * * *\"), not '$cron_secs'"
[[ $watch =~ ^([0-9]+)(ms|s)$ ]] || die "WATCH must be like 2s or 500ms, not '$watch'"
if [[ ${BASH_REMATCH[2]} == s ]]; then watch_ms=$((BASH_REMATCH[1] * 1000)); else watch_ms=${BASH_REMATCH[1]}; fi
for c in $configs; do
  [[ $c == watch || $c == cron || $c == watch-busy || $c == notify ]] ||
    die "CONFIGS: unknown configuration '$c' (use watch, cron, watch-busy, notify)"
  if [[ $c == notify ]]; then
    [[ -n ${PG_URL:-} ]] || die "the notify configuration needs PG_URL (a PostgreSQL database URL)"
    command -v psql >/dev/null || die "psql is required for the notify configuration"
  fi
done
for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
# %header{...} in curl's --write-out needs curl 7.84 or later.
curl -s -o /dev/null -w '%header{x}' file:///dev/null 2>/dev/null ||
  die "curl is too old for --write-out '%header{etag}' (7.84+ needed)"
((BASH_VERSINFO[0] >= 5)) || die "bash 5 is needed (EPOCHREALTIME)"

mkdir -p "$(dirname "$out")"
exec > >(tee "$out") 2>&1

work=$(mktemp -d "${TMPDIR:-/tmp}/feedsmith-freshness.XXXXXX")
server_pid=
pg_schema=
cleanup() {
  local rc=$?
  if [[ -n $pg_schema ]]; then
    psql "$PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null || true
  fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release

poll_s=$(printf '%d.%03d' $((poll_ms / 1000)) $((poll_ms % 1000)))

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Current ETag of the polled document ("" if it does not answer 200).
etag() {
  local r
  r=$(curl -s -o /dev/null --max-time 2 -w '%{http_code} %header{etag}' "$base/feeds/$feed" || true)
  if [[ ${r%% *} == 200 ]]; then printf '%s' "${r#* }"; fi
}

stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

echo "freshness: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(
  [[ -z $(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] || echo ' (working tree has uncommitted changes)'
), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary $bin (built $(date -u -r "$bin" +%FT%TZ)$([[ ${SKIP_BUILD:-0} == 1 ]] && echo ', SKIP_BUILD: not rebuilt for this run')); RUNS=$runs POLL_MS=$poll_ms WATCH=$watch CRON_SECS=$cron_secs FEED=$feed ARTICLES=$articles"

summary=()
n_config=0
for config in $configs; do
  p=$((port + n_config))
  n_config=$((n_config + 1))
  base=http://127.0.0.1:$p
  dir=$work/$config
  mkdir -p "$dir/conf" "$dir/feeds" "$dir/articles" "$dir/store" "$dir/out"
  cp "$repo"/feeds/*.toml "$dir/feeds/"
  if [[ $config == watch-busy ]]; then
    printf '%s\n' 'title = "Busy"' 'sections = ["Business"]' 'refresh = "*/3 * * * * *"' >"$dir/feeds/busy.toml"
  fi
  store_url="sqlite://$dir/store/articles.db"
  if [[ $config == notify ]]; then
    pg_schema="feedsmith_fresh_$$"
    psql "$PG_URL" -qc "CREATE SCHEMA $pg_schema" >/dev/null || die "cannot create schema $pg_schema in $PG_URL"
    sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
    store_url="$PG_URL${sep}options[search_path]=$pg_schema"
    schedule='refresh = "0 3 * * *"'
    # No poll or schedule to be in phase with: any delay does.
    period_ms=1000
    expect="no poll: the commit's notification starts one refresh, plus up to one ETag poll period"
  elif [[ $config == watch || $config == watch-busy ]]; then
    schedule="refresh = \"0 3 * * *\"
watch = \"$watch\""
    period_ms=$watch_ms
    expect="uniform over one ${watch} poll: median ~$((watch_ms / 2)) ms, p90 ~$((watch_ms * 9 / 10)) ms, plus one refresh and up to one ETag poll period"
  else
    schedule="refresh = \"*/$cron_secs * * * * *\""
    period_ms=$((cron_secs * 1000))
    expect="uniform over one ${cron_secs} s schedule period: median ~$((period_ms / 2)) ms, p90 ~$((period_ms * 9 / 10)) ms, plus one refresh and up to one ETag poll period"
  fi
  timeout_ms=$((period_ms * 3 + 10000))
  cat >"$dir/conf/feedsmith.toml" <<TOML
[server]
listen = "127.0.0.1:$p"
base_url = "$base"

[site]
title = "Freshness bench"
timezone = "Europe/Dublin"
language = "en-IE"

[store]
url = "$store_url"
seed_dir = "$repo/examples/articles"

[output]
dir = "$dir/out"

[schedule]
$schedule

[feeds]
dir = "$dir/feeds"
TOML

  echo
  echo "== configuration $config (port $p): [schedule] $(echo "$schedule" | tr '\n' ' ')"
  "$bin" --config "$dir/conf/feedsmith.toml" check >"$dir/check.log" 2>&1 ||
    { cat "$dir/check.log"; die "feedsmith check rejected the $config config"; }
  if ((articles > 0)); then
    # The store is then not empty at start-up, so seed_dir would not apply:
    # import the seed articles explicitly alongside the generated ones.
    [[ -s $work/generated.jsonl ]] || python3 "$repo/bench/gen_articles.py" "$articles" "$work/generated.jsonl"
    "$bin" --config "$dir/conf/feedsmith.toml" import "$repo/examples/articles" "$work/generated.jsonl" \
      >"$dir/preload.log" 2>&1 || { tail -n 20 "$dir/preload.log"; die "importing $articles generated articles failed"; }
    echo "preloaded: $(tail -n 1 "$dir/preload.log")"
  fi
  port_busy "$p" && die "port $p on 127.0.0.1 is already in use; set PORT to a free one"
  "$bin" --config "$dir/conf/feedsmith.toml" serve >"$dir/server.log" 2>&1 &
  server_pid=$!
  started=$(now_us)
  until [[ -n $(etag) ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -n 30 "$dir/server.log"
      die "feedsmith serve ($config) exited before serving /feeds/$feed"
    fi
    if (($(now_us) - started > 60000000)); then
      tail -n 30 "$dir/server.log"
      die "feedsmith serve ($config) did not serve /feeds/$feed with 200 within 60 s"
    fi
    sleep 0.1
  done
  echo "server up after $((($(now_us) - started) / 1000)) ms; ETag $(etag)"

  rows=$dir/writes.tsv
  : >"$rows"
  for ((i = 1; i <= runs; i++)); do
    # A random phase relative to the poll / schedule.
    delay_ms=$(((RANDOM * 32768 + RANDOM) % period_ms))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    id=$(printf 'freshness-%s-%03d-%s' "$config" "$i" "$(date -u +%Y%m%d%H%M%S)")
    file=$dir/articles/$id.json
    published=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    cat >"$file" <<JSON
{"id": "$id", "url": "https://news.example.com/world/freshness/$id",
 "headline": "Freshness probe $i ($config)", "standfirst": "Written by bench/freshness.sh.",
 "body_html": "<p>Probe article $i of $runs.</p>", "authors": [{"name": "Bench Writer"}],
 "section": "World", "tags": ["Bench"], "published_at": "$published"}
JSON
    before=$(etag)
    [[ -n $before ]] || die "/feeds/$feed stopped answering 200 before write $i"
    t0=$(now_us)
    "$bin" --config "$dir/conf/feedsmith.toml" import "$file" >"$dir/import.log" 2>&1 ||
      { cat "$dir/import.log"; die "feedsmith import failed on write $i"; }
    t1=$(now_us)
    import_ms=$(((t1 - t0) / 1000))
    polls=0
    while :; do
      now=$(etag)
      t2=$(now_us)
      polls=$((polls + 1))
      [[ -n $now && $now != "$before" ]] && break
      if ((t2 - t1 > timeout_ms * 1000)); then
        now=
        break
      fi
      sleep "$poll_s"
    done
    if [[ -z $now ]]; then
      printf '  write %2d: random delay %5d ms, import %4d ms, NOT SERVED within %d ms (ETag still %s)\n' \
        "$i" "$delay_ms" "$import_ms" "$timeout_ms" "$before"
      printf '%s\t%s\t%s\t%s\t%s\t\t%s\t%s\t\n' "$i" "$delay_ms" "$import_ms" "$t0" "$t1" "$polls" "$before" >>"$rows"
      continue
    fi
    printf '  write %2d: random delay %5d ms, import %4d ms, served after %5d ms, %3d polls  (%s -> %s)\n' \
      "$i" "$delay_ms" "$import_ms" "$(((t2 - t1) / 1000))" "$polls" "$before" "$now"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$delay_ms" "$import_ms" "$t0" "$t1" "$t2" "$polls" "$before" "$now" >>"$rows"
  done
  stop_server

  # Statistics; the server log's "published feed" lines (UTC, microseconds)
  # tell when the scheduler swapped in the new documents, separating the
  # scheduler's delay from the ETag polling's granularity.
  stats=$(python3 - "$config" "$expect" "$rows" "$dir/server.log" "${feed%.*}" "$period_ms" "$([[ $config == cron ]] && echo 1 || echo 0)" <<'PY'
import datetime, math, re, statistics, sys
name, expect, rows_path, log_path, feed_name = sys.argv[1:6]
period_ms, on_schedule = int(sys.argv[6]), sys.argv[7] == "1"
rows = [l.rstrip("\n").split("\t") for l in open(rows_path) if l.strip()]
published = []  # epoch microseconds of each "published feed" of the polled feed
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(log_path, errors="replace"):
    line = ansi.sub("", line)
    if "published feed" not in line or f"feed={feed_name} " not in line + " ":
        continue
    ts = line.split()[0]
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        continue
    published.append(round(t.timestamp() * 1e6))
published.sort()
served, imports, pub, detect, refresh, poll_period = [], [], [], [], [], []
timeouts = 0
for r in rows:
    i, delay, imp, t0, t1, t2, polls = r[0], r[1], int(r[2]), int(r[3]), int(r[4]), r[5], int(r[6])
    imports.append(imp)
    if not t2:
        timeouts += 1
        continue
    t2 = int(t2)
    served.append((t2 - t1) / 1000)
    if polls > 1:
        poll_period.append((t2 - t1) / 1000 / (polls - 1) if polls > 1 else 0)
    after = [p for p in published if p >= t0]
    if after:
        pub.append((after[0] - t1) / 1000)
        detect.append((t2 - after[0]) / 1000)
        if on_schedule:
            # The refresh started on the schedule's tick: a multiple of the period.
            tick = after[0] // (period_ms * 1000) * (period_ms * 1000)
            refresh.append((after[0] - tick) / 1000)
def p(xs, q):  # nearest rank
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]
def line(label, xs):
    if not xs:
        return f"{label}: no samples"
    return (f"{label}: median {statistics.median(xs):.0f} ms, p90 {p(xs, 0.9):.0f} ms, "
            f"min {min(xs):.0f} ms, max {max(xs):.0f} ms (n={len(xs)})")
print(line(f"{name} write -> served (first poll with the new ETag)", served))
print(line(f"{name} write -> published (server log)", pub))
print(line(f"{name} published -> seen by the poller", detect))
if refresh:
    print(line(f"{name} refresh duration (schedule tick -> published)", refresh))
print(line(f"{name} import command", imports))
if poll_period:
    print(f"{name} effective ETag poll period: {statistics.median(poll_period):.0f} ms (sleep + one curl)")
if timeouts:
    print(f"{name}: {timeouts} of {len(rows)} write(s) NOT served within the timeout (excluded above)")
print(f"{name} expected: {expect}")
PY
)
  echo "$stats" | sed 's/^/  /'
  summary+=("$stats")
done

echo
echo "== summary ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"
for s in "${summary[@]}"; do
  echo "$s" | sed 's/^/  /'
done
