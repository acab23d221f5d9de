#!/usr/bin/env bash
# Scale: a large site laid out as a newsroom would have it, served by a
# release `feedsmith serve` as shipped: how long a cold start and a restart
# take until every feed is served, the memory and CPU that costs, the output
# folder it leaves, and how soon a write is served on a site that size.
#
# Usage: bench/scale.sh
# Environment (all optional):
#   ARTICLES  generated articles in the store (default 50000; bench/gen_articles.py
#             with --tags TAGS --sections SECTIONS, ~3.7 KB each, one
#             `feedsmith import` of one JSON Lines file)
#   FEEDS     feed files (default 1000), every one the newest 50 in rss, atom
#             and json (bench/scale_helper.py layout): a feed per tag (up to
#             TAGS, about 30 % of FEEDS: 300 of 1000), a feed per section (up
#             to SECTIONS), tag x section pairs for the rest (every tag with
#             World, then with Business, ...; TAGS x SECTIONS of them at most),
#             and beyond those (FEEDS above 2708 with the defaults, e.g. 10000)
#             pairs of tags, an article with either of them
#   TAGS      the articles' tag vocabulary, tag-001 .. tag-TAGS (default 300);
#             each article has 3
#   SECTIONS  sections used, 2 to 12 (default 8: World, Business, Sport,
#             Culture, Science, Politics, Opinion, Travel)
#   STORE     sqlite (default: a fresh file) or postgres (a fresh schema in
#             PG_URL, dropped afterwards)
#   PG_URL    PostgreSQL database for STORE=postgres, e.g.
#             postgres://postgres@127.0.0.1:5432/test
#   PORT      port on 127.0.0.1 (default 18097)
#   RUNS      writes timed in step 6 (default 20)
#   POLL_MS   pause between two polls of the probe feed's ETag (default 20)
#   REFRESH   [schedule] refresh (default "0 * * * *": hourly, so only the
#             watch poll picks writes up); WATCH: [schedule] watch (default 1s)
#   COLD_TIMEOUT / IDLE_TIMEOUT / WRITE_TIMEOUT  seconds to wait for every
#             document to answer 200 (default 600, for the cold start and the
#             restart alike), for the server to go idle (default 600) and for
#             one write to be served (default 60); an expired wait is reported
#             as such and the script exits 1
#   IDLE_PCT  the server counts as idle once it used less than this % of one
#             core in each of 5 consecutive seconds (default 3)
#   QUIET_LIMIT / QUIET_TIMEOUT  before each start, wait up to QUIET_TIMEOUT s
#             (default 300) for the machine to be below QUIET_LIMIT % of one
#             core busy (default 10), as the other scripts do
#   OUT       file the output is saved to (default
#             bench/results/scale-DATE-STORE-FEEDS.txt)
#   FEEDSMITH_BIN  the binary to measure (default: the release build in
#             CARGO_TARGET_DIR or target/, built first unless SKIP_BUILD=1)
#   SKIP_BUILD=1  use the existing release binary instead of running cargo build
#   KEEP=1    keep the temporary folder (config, feeds, store, output folder,
#             server and access logs)
#   CARGO_TARGET_DIR is honoured.
#
# Run the full size only on a machine nobody else is using: a cold start of
# 1000 feeds builds 3000 documents and compresses each twice. It needs about
# 1.5 GB in TMPDIR (the store, and an output folder of ~270 KB per full
# document with its .gz and .br; ten times that for FEEDS=10000). Validate
# changes to this script with e.g. ARTICLES=3000 FEEDS=60 (3 to 4 minutes).
#
# Set-up: in a temporary folder, generates the articles and the feed files,
# writes a config (`[server] listen` on PORT, `[schedule] watch = WATCH` and
# `refresh = REFRESH`, everything else as shipped: access log to stdout,
# which goes to a file, as a service manager would keep it), imports the
# articles with one `feedsmith import`, and checks the config with
# `feedsmith check`. The server runs without RUST_LOG (its log as shipped).
#
# Figures (the report at the end; times from the moment `serve` is started):
#  1. cold start, empty output folder: seconds until every document (every
#     feed, every format) answers 200. bench/scale_helper.py polls over one
#     keep-alive connection: the first document still pending every 50 ms
#     until it answers 200, then the rest in one sweep, and again until none
#     is pending. The figure is the last document's first 200; the last
#     non-200 answer seen is given too (the real moment lies between the
#     two). (/healthz counts feeds but does not say which are served, hence
#     the polling.) Once figures 2-4 are taken, every document is fetched
#     once more with a GET (gzip, br) and must answer 200 with its whole body.
#  2. VmRSS of the server (/proc/PID/status) at that moment and again once it
#     is idle (under IDLE_PCT % of a core for 5 s: it may still be writing the
#     output folder after every feed is served); VmHWM once idle.
#  3. CPU seconds (utime + stime, /proc/PID/stat) until every document was
#     served, and until idle; then CPU % of one core while idle, over 10 s.
#     The machine's busy CPU meanwhile (/proc/stat) is given as well, since
#     the poller and anyone else share the cores.
#  4. output folder once idle: size (du) and files (documents, .gz, .br, other).
#  5. restart with the full output folder: SIGTERM, wait for the exit (the
#     time it took is given), start again, seconds until every document
#     answers 200 (as in 1), and until idle again (every feed is rebuilt
#     after the folder's copies are served). Every document's ETag must be
#     what it was before the restart.
#  6. write -> served, on the restarted server once idle: RUNS times, after a
#     random delay in [0, 1 s) (so writes do not phase-lock to the watch poll),
#     reads the ETag of /feeds/PROBE.rss (PROBE: the tag-007 feed, tag-001 if
#     there are fewer than 7 tag feeds), writes one new article (published now,
#     section World, tagged with PROBE's tag, so it is first in that feed)
#     with `feedsmith import FILE --config ...`, then HEADs the feed every
#     POLL_MS ms until its ETag changes. Latency from import's return to the
#     first poll seeing the new ETag: median, p90, min, max; also import ->
#     published (the server log's "published feed" line for PROBE), the
#     import command's own time, and the server's CPU per write (its CPU over
#     the writes / RUNS: the refresh a write costs, plus the polls).
#     Expected: SQLite, uniform over one WATCH poll plus one refresh;
#     PostgreSQL, its commit notification starts the refresh at once, so one
#     refresh.
# Exits 1 if a wait expired or a check failed (everything measured is still
# reported), 2 on a set-up failure. Only 127.0.0.1 (and PG_URL) is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

articles=${ARTICLES:-50000}
n_feeds=${FEEDS:-1000}
n_tags=${TAGS:-300}
n_sections=${SECTIONS:-8}
store=${STORE:-sqlite}
port=${PORT:-18097}
runs=${RUNS:-20}
poll_ms=${POLL_MS:-20}
refresh=${REFRESH:-"0 * * * *"}
watch=${WATCH:-1s}
cold_timeout=${COLD_TIMEOUT:-600}
idle_timeout=${IDLE_TIMEOUT:-600}
write_timeout=${WRITE_TIMEOUT:-60}
idle_pct=${IDLE_PCT:-3}
# shellcheck source=bench/lib.sh
. bench/lib.sh
if [[ -n ${FEEDSMITH_BIN:-} ]]; then
  bin=$FEEDSMITH_BIN
  SKIP_BUILD=1
fi

die() { printf 'scale: %s\n' "$*" >&2; exit 2; }

for v in articles n_feeds n_tags n_sections port runs poll_ms cold_timeout idle_timeout write_timeout idle_pct; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((articles >= 1 && n_feeds >= 1 && runs >= 1 && cold_timeout >= 1 && idle_timeout >= 1 && write_timeout >= 1)) ||
  die "ARTICLES, FEEDS, RUNS and the timeouts must be at least 1"
((n_tags >= 3)) || die "TAGS must be at least 3 (each article has 3 tags)"
((n_sections >= 2 && n_sections <= 12)) || die "SECTIONS must be 2 to 12"
[[ $store == sqlite || $store == postgres ]] || die "STORE must be sqlite or postgres, not '$store'"
if [[ $store == postgres ]]; then
  [[ -n ${PG_URL:-} ]] || die "STORE=postgres needs PG_URL (a PostgreSQL database URL)"
  command -v psql >/dev/null || die "psql is required for STORE=postgres"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
# %header{...} in curl's --write-out needs curl 7.84 or later.
curl -s -o /dev/null -w '%header{x}' file:///dev/null 2>/dev/null ||
  die "curl is too old for --write-out '%header{etag}' (7.84+ needed)"
((BASH_VERSINFO[0] >= 5)) || die "bash 5 is needed (EPOCHREALTIME)"

out=${OUT:-bench/results/scale-$(date +%F)-$store-$n_feeds.txt}
mkdir -p "$(dirname "$out")"
exec > >(tee "$out") 2>&1

work=$(mktemp -d "${TMPDIR:-/tmp}/feedsmith-scale.XXXXXX")
server_pid=
poller_pid=
pg_schema=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  ((rc != 130)) || echo "interrupted; cleaning up"
  if [[ -n $poller_pid ]]; then
    kill "$poller_pid" 2>/dev/null || true
    wait "$poller_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_schema ]]; then
    psql "$PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null || true
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

base=http://127.0.0.1:$port
conf=$work/feedsmith.toml
outdir=$work/out
mkdir -p "$work/feeds" "$work/writes"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
secs() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1e6 }'; }
# What the poller saw before the last document answered 200.
bound() { if [[ $1 == none ]]; then echo "no other answer since the start"; else echo "last non-200 answer at $1 s"; fi; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

# utime + stime of the server, in clock ticks.
server_ticks() {
  local s f
  s=$(<"/proc/$server_pid/stat")
  s=${s##*) }
  read -ra f <<<"$s"
  echo $((f[11] + f[12]))
}
server_status() { # FIELD: VmRSS, VmHWM (kB)
  awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server_pid/status"
}

# Starts `feedsmith serve`; its stderr (the service log) and stdout (the
# access log) go to files named after $1. Sets server_pid and started_us.
start_server() {
  port_busy "$port" && die "port $port on 127.0.0.1 is already in use; set PORT to a free one"
  started_us=$(now_us)
  env -u RUST_LOG "$bin" --config "$conf" serve </dev/null >"$work/access-$1.log" 2>"$work/server-$1.log" &
  server_pid=$!
}

# SIGTERM, and waits up to 60 s for the exit (then SIGKILL). Sets stop_ms
# and stop_note.
stop_server() {
  local t0 rc=0
  t0=$(now_us)
  kill -TERM "$server_pid" 2>/dev/null || true
  stop_note=
  while kill -0 "$server_pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$server_pid/stat" 2>/dev/null) != Z ]]; do
    if (($(now_us) - t0 > 60000000)); then
      stop_note="did not exit within 60 s of SIGTERM; killed"
      kill -KILL "$server_pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$server_pid" 2>/dev/null || rc=$?
  stop_ms=$((($(now_us) - t0) / 1000))
  ((rc == 0)) || stop_note="${stop_note:+$stop_note; }exit status $rc"
  server_pid=
}

# Reads the "key value" lines of FILE into the associative array NAME.
load_kv() {
  local -n _into=$1
  local _k _v
  # shellcheck disable=SC2034 # a nameref: fills the caller's array
  while read -r _k _v; do _into["$_k"]=$_v; done <"$2"
}

# Starts the poller (bench/scale_helper.py served), then once it polls the
# server (start_server $1), and waits until every document answers 200,
# keeping the machine's busy ticks meanwhile. Fills the array named $2;
# returns 1 if the wait expired or the server exited.
start_and_wait_served() {
  local -n r=$2
  local m0 m1 rc=0
  rm -f "$work/poller-ready" "$work/server-pid"
  python3 bench/scale_helper.py served --base "$base" --paths "$work/paths.txt" --ready "$work/poller-ready" \
    --pid-file "$work/server-pid" --timeout "$cold_timeout" >"$work/$2.kv" &
  poller_pid=$!
  until [[ -e $work/poller-ready ]]; do
    kill -0 "$poller_pid" 2>/dev/null || die "bench/scale_helper.py served failed to start"
    sleep 0.01
  done
  m0=$(machine_ticks)
  start_server "$1"
  echo "$server_pid $started_us" >"$work/server-pid.tmp"
  mv "$work/server-pid.tmp" "$work/server-pid"
  wait "$poller_pid" || rc=$?
  poller_pid=
  m1=$(machine_ticks)
  load_kv "$2" "$work/$2.kv"
  r["machine_cpu_s"]=$(awk -v t=$((m1 - m0)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
  return "$rc"
}

# A GET of every document (bench/scale_helper.py verify), after the figures
# so it does not count in them. $1 names the occasion.
verify_all() {
  local -A verified=()
  python3 bench/scale_helper.py verify --base "$base" --paths "$work/paths.txt" >"$work/verify.kv" || true
  load_kv verified "$work/verify.kv"
  echo "  a GET of every document: ${verified[verify_failed]:-?} failed, $((${verified[verify_bytes]:-0} / 1024)) KiB sent (gzip/br)"
  [[ ${verified[verify_failed]:-} == 0 ]] ||
    fail "$1: ${verified[verify_failed]:-?} document(s) did not answer a GET with 200 and a whole body (first: ${verified[verify_first_failed]:-?})"
  etags_digest=${verified[etags_digest]:-}
}

# Waits until the server used under IDLE_PCT % of one core in each of 5
# consecutive seconds. Sets idle_us (when that quiet streak began, since
# started_us); returns 1 if IDLE_TIMEOUT s pass first or the server exits.
wait_idle() {
  local t0 a b ta tb streak=0 pct10
  t0=$(now_us)
  a=$(server_ticks) ta=$t0
  idle_us=$((t0 - started_us))
  while ((streak < 5)); do
    sleep 1
    kill -0 "$server_pid" 2>/dev/null || return 1
    b=$(server_ticks) tb=$(now_us)
    # tenths of a percent of one core
    pct10=$(((b - a) * 1000000000 / clk_tck / (tb - ta)))
    if ((pct10 < idle_pct * 10)); then
      ((streak > 0)) || idle_us=$((ta - started_us))
      streak=$((streak + 1))
    else
      streak=0
    fi
    a=$b ta=$tb
    ((tb - t0 <= idle_timeout * 1000000)) || return 1
  done
}

# Ends the run (with the report so far) if the server has exited.
server_alive() {
  kill -0 "$server_pid" 2>/dev/null && return 0
  tail -n 30 "$work/server-$1.log"
  fail "the server exited unexpectedly (log above)"
  server_pid=
  finish
}

# CPU % of one core the server uses over 10 s.
idle_cpu_pct() {
  local a b ta tb
  a=$(server_ticks) ta=$(now_us)
  sleep 10
  b=$(server_ticks) tb=$(now_us)
  awk -v t=$((b - a)) -v hz="$clk_tck" -v us=$((tb - ta)) 'BEGIN { printf "%.2f", t / hz / (us / 1e6) * 100 }'
}

# Current ETag of the probe feed ("" if it does not answer 200).
etag() {
  local r
  r=$(curl -s -I -o /dev/null --max-time 2 -w '%{http_code} %header{etag}' "$base/feeds/$probe_feed.rss" || true)
  if [[ ${r%% *} == 200 ]]; then printf '%s' "${r#* }"; fi
}

report=()
failures=()
add() { report+=("$*"); }
fail() { failures+=("$*"); echo "  EXPIRED/FAILED: $*"; }
finish() {
  echo
  echo "== report: $store_label, $articles articles, $n_feeds feeds ($documents documents) ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  local l f
  for l in "${report[@]}"; do echo "  $l"; done
  for f in "${failures[@]}"; do echo "  EXPIRED/FAILED: $f"; done
  if ((${#failures[@]})); then exit 1; fi
  exit 0
}

# --- header ---------------------------------------------------------------------
echo "scale: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(
  [[ -z $(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] || echo ' (working tree has uncommitted changes)'
), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary $bin (built $(date -u -r "$bin" +%FT%TZ)$([[ ${SKIP_BUILD:-0} == 1 ]] && echo ', not rebuilt for this run')); STORE=$store ARTICLES=$articles FEEDS=$n_feeds TAGS=$n_tags SECTIONS=$n_sections RUNS=$runs REFRESH=\"$refresh\" WATCH=$watch"

# --- the site ---------------------------------------------------------------------
declare -A lay=()
python3 bench/scale_helper.py layout --feeds "$n_feeds" --tags "$n_tags" --sections "$n_sections" \
  --dir "$work/feeds" --paths "$work/paths.txt" >"$work/layout.kv" || die "cannot lay out $n_feeds feeds"
load_kv lay "$work/layout.kv"
documents=${lay[documents]}
probe_feed=${lay[probe_feed]}
probe_tag=${lay[probe_tag]}
echo "feeds: ${lay[tag_feeds]} tag, ${lay[section_feeds]} section, ${lay[pair_feeds]} tag x section, ${lay[tagpair_feeds]} tag-or-tag; $documents documents; writes go to /feeds/$probe_feed.rss (tag $probe_tag)"

if [[ $store == postgres ]]; then
  pg_schema="feedsmith_scale_$$"
  psql "$PG_URL" -qc "CREATE SCHEMA $pg_schema" >/dev/null || die "cannot create schema $pg_schema in $PG_URL"
  sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
  store_url="$PG_URL${sep}options[search_path]=$pg_schema"
  store_label="PostgreSQL $(psql "$PG_URL" -Atc 'SHOW server_version' | cut -d' ' -f1) (schema $pg_schema)"
else
  store_url="sqlite://$work/store/articles.db"
  mkdir -p "$work/store"
  store_label="SQLite"
fi
cat >"$conf" <<TOML
[server]
listen = "127.0.0.1:$port"
base_url = "$base"

[site]
title = "Scale News"
timezone = "Europe/Dublin"
language = "en-IE"

[store]
url = "$store_url"

[output]
dir = "$outdir"

[schedule]
refresh = "$refresh"
watch = "$watch"

[feeds]
dir = "$work/feeds"
TOML

t0=$(now_us)
python3 bench/gen_articles.py "$articles" "$work/articles.jsonl" --tags "$n_tags" --sections "$n_sections" ||
  die "generating $articles articles failed"
t1=$(now_us)
"$bin" --config "$conf" import "$work/articles.jsonl" </dev/null >"$work/import.log" 2>&1 ||
  { tail -n 20 "$work/import.log"; die "importing the generated articles failed"; }
t2=$(now_us)
echo "articles: $articles generated in $(secs $((t1 - t0))) s ($(du -h "$work/articles.jsonl" | cut -f1) of JSON Lines), imported into $store_label in $(secs $((t2 - t1))) s: $(tail -n 1 "$work/import.log")"
rm -f "$work/articles.jsonl"
"$bin" --config "$conf" check >"$work/check.log" 2>&1 || { tail -n 30 "$work/check.log"; die "feedsmith check rejected the config"; }

# --- 1-4. cold start ----------------------------------------------------------------
echo
echo "== cold start, empty output folder"
wait_quiet
declare -A cold=()
if ! start_and_wait_served cold cold; then
  if [[ ${cold[exited]:-0} == 1 ]]; then
    tail -n 30 "$work/server-cold.log"
    fail "cold start: the server exited before every document answered 200 (${cold[pending]} of $documents still pending)"
  else
    fail "cold start: not every document answered 200 within COLD_TIMEOUT=${cold_timeout} s (${cold[pending]} of $documents still pending, e.g. ${cold[first_pending]}: last answer ${cold[last_status]})"
    [[ -z ${cold[rss_kb]:-} ]] || add "1. cold start: over ${cold_timeout} s (timeout); VmRSS then $(mib "${cold[rss_kb]}"), CPU ${cold[cpu_s]} s"
  fi
  finish
fi
echo "  every document answers 200 after ${cold[served_s]} s ($(bound "${cold[last_not_ok_s]}"); ${cold[requests]} requests); server CPU ${cold[cpu_s]} s, VmRSS $(mib "${cold[rss_kb]}"), ${cold[threads]} threads"
echo "  machine busy meanwhile: ${cold[machine_cpu_s]} CPU-s (the server's ${cold[cpu_s]}, the rest the poller and anyone else)"
add "1. cold start (empty output folder): every document answers 200 after ${cold[served_s]} s ($(bound "${cold[last_not_ok_s]}"))"
idle_ok=1
wait_idle || idle_ok=0
server_alive cold
cold_idle_s=$(secs "$idle_us")
cold_idle_cpu=$(awk -v t="$(server_ticks)" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
rss_idle=$(server_status VmRSS)
hwm_idle=$(server_status VmHWM)
if ((idle_ok)); then
  idle_pct_now=$(idle_cpu_pct)
  echo "  idle (under ${idle_pct} % of a core for 5 s) from $cold_idle_s s: CPU ${cold_idle_cpu} s, VmRSS $(mib "$rss_idle"), VmHWM $(mib "$hwm_idle"); then ${idle_pct_now} % of a core over 10 s"
  add "2. VmRSS: $(mib "${cold[rss_kb]}") when every document is served, $(mib "$rss_idle") once idle (from $cold_idle_s s); VmHWM $(mib "$hwm_idle")"
  add "3. CPU: ${cold[cpu_s]} s until every document is served, $cold_idle_cpu s until idle; ${idle_pct_now} % of one core while idle (over 10 s)"
else
  fail "cold start: the server was not idle (under ${idle_pct} % of a core for 5 s) within IDLE_TIMEOUT=${idle_timeout} s after serving everything"
  add "2. VmRSS: $(mib "${cold[rss_kb]}") when every document is served, $(mib "$rss_idle") when the idle wait expired; VmHWM $(mib "$hwm_idle")"
  add "3. CPU: ${cold[cpu_s]} s until every document is served, $cold_idle_cpu s when the idle wait expired"
fi
out_bytes=$(du -sb "$outdir" | cut -f1)
out_files=$(find "$outdir" -type f | wc -l)
out_gz=$(find "$outdir" -type f -name '*.gz' | wc -l)
out_br=$(find "$outdir" -type f -name '*.br' | wc -l)
out_docs=$(find "$outdir" -type f \( -name '*.rss' -o -name '*.atom' -o -name '*.json' \) ! -name '.*' | wc -l)
out_line="$(awk -v b="$out_bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }') (du), $out_files files: $out_docs documents, $out_gz .gz, $out_br .br, $((out_files - out_docs - out_gz - out_br)) other"
echo "  output folder: $out_line"
add "4. output folder once idle: $out_line"
health=$(curl -s --max-time 5 "$base/healthz" || true)
[[ $health == *'"status":"ok"'* ]] || fail "cold start: /healthz does not say ok: ${health:0:300}"
verify_all "cold start"
cold_etags=$etags_digest

# --- 5. restart with the full output folder --------------------------------------------
echo
echo "== restart with the full output folder"
stop_server
echo "  stopped by SIGTERM in $stop_ms ms${stop_note:+ ($stop_note)}"
[[ -z $stop_note ]] || fail "restart: the server $stop_note"
wait_quiet
declare -A warm=()
if ! start_and_wait_served restart warm; then
  if [[ ${warm[exited]:-0} == 1 ]]; then
    tail -n 30 "$work/server-restart.log"
    fail "restart: the server exited before every document answered 200"
  else
    fail "restart: not every document answered 200 within COLD_TIMEOUT=${cold_timeout} s (${warm[pending]} of $documents still pending, e.g. ${warm[first_pending]}: last answer ${warm[last_status]})"
  fi
  finish
fi
echo "  every document answers 200 after ${warm[served_s]} s ($(bound "${warm[last_not_ok_s]}"); ${warm[requests]} requests); server CPU ${warm[cpu_s]} s, VmRSS $(mib "${warm[rss_kb]}")"
if [ "${warm[first_sweep_clean]:-0}" = 1 ]; then
  echo "  the first 200 came at ${warm[first_ok_s]} s and the sweep it began found every document served: all were from then on (the sweep, one request at a time, took the rest)"
fi
echo "  machine busy meanwhile: ${warm[machine_cpu_s]} CPU-s (the server's ${warm[cpu_s]})"
warm_idle="not idle within ${idle_timeout} s"
if wait_idle; then
  warm_idle="idle from $(secs "$idle_us") s, CPU $(awk -v t="$(server_ticks)" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }') s by then, VmRSS $(mib "$(server_status VmRSS)")"
else
  server_alive restart
  fail "restart: the server was not idle within IDLE_TIMEOUT=${idle_timeout} s; the writes below may be slowed by its rebuilds"
fi
echo "  $warm_idle"
verify_all restart
# The same store builds the same bytes: a restart must not change an ETag.
[[ $etags_digest == "$cold_etags" ]] || fail "restart: the documents' ETags differ from the cold start's (same store, same config)"
warm_first=""
if [ "${warm[first_sweep_clean]:-0}" = 1 ]; then
  warm_first=" (every one already at the first 200, ${warm[first_ok_s]} s: the first sweep found none unserved)"
fi
add "5. restart (full output folder; SIGTERM took $stop_ms ms): every document answers 200 after ${warm[served_s]} s$warm_first ($(bound "${warm[last_not_ok_s]}")), server CPU ${warm[cpu_s]} s; $warm_idle"

# --- 6. write -> served ---------------------------------------------------------------
echo
echo "== write -> served: $runs writes tagged $probe_tag, polling /feeds/$probe_feed.rss"
rows=$work/writes.tsv
: >"$rows"
writes_ticks0=$(server_ticks) writes_us0=$(now_us)
timeout_us=$((write_timeout * 1000000))
poll_s=$(printf '%d.%03d' $((poll_ms / 1000)) $((poll_ms % 1000)))
for ((i = 1; i <= runs; i++)); do
  # A random phase relative to the watch poll.
  delay_ms=$(((RANDOM * 32768 + RANDOM) % 1000))
  sleep "$(printf '0.%03d' "$delay_ms")"
  id=$(printf 'scale-probe-%03d-%s' "$i" "$(date -u +%Y%m%d%H%M%S)")
  file=$work/writes/$id.json
  cat >"$file" <<JSON
{"id": "$id", "url": "https://news.example.com/world/scale/$id",
 "headline": "Scale probe $i", "standfirst": "Written by bench/scale.sh.",
 "body_html": "<p>Probe article $i of $runs.</p>", "authors": [{"name": "Bench Writer"}],
 "section": "World", "tags": ["$probe_tag"], "published_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
  before=$(etag)
  [[ -n $before ]] || { fail "write $i: /feeds/$probe_feed.rss stopped answering 200"; break; }
  t0=$(now_us)
  "$bin" --config "$conf" import "$file" >"$work/import-write.log" 2>&1 ||
    { cat "$work/import-write.log"; die "feedsmith import failed on write $i"; }
  t1=$(now_us)
  polls=0
  while :; do
    now=$(etag)
    t2=$(now_us)
    polls=$((polls + 1))
    [[ -n $now && $now != "$before" ]] && break
    if ((t2 - t1 > timeout_us)); then
      now=
      break
    fi
    sleep "$poll_s"
  done
  if [[ -z $now ]]; then
    printf '  write %2d: delay %3d ms, import %4d ms, NOT SERVED within %d s\n' "$i" "$delay_ms" $(((t1 - t0) / 1000)) "$write_timeout"
    fail "write $i was not served within WRITE_TIMEOUT=${write_timeout} s"
    printf '%s\t%s\t%s\t%s\t\t%s\n' "$i" "$((t1 - t0))" "$t0" "$t1" "$polls" >>"$rows"
    continue
  fi
  printf '  write %2d: delay %3d ms, import %4d ms, served after %5d ms, %3d polls\n' \
    "$i" "$delay_ms" $(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) "$polls"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$((t1 - t0))" "$t0" "$t1" "$t2" "$polls" >>"$rows"
done
writes_cpu=$(awk -v t=$(($(server_ticks) - writes_ticks0)) -v hz="$clk_tck" -v n="$runs" -v us=$(($(now_us) - writes_us0)) \
  'BEGIN { printf "%.0f ms of server CPU per write (%.1f %% of one core over the %.0f s of writes)", t / hz / n * 1000, t / hz / (us / 1e6) * 100, us / 1e6 }')
echo "  $writes_cpu"
if [[ $store == postgres ]]; then
  expect="PostgreSQL notifies at commit: about one refresh, plus up to one ETag poll"
else
  expect="uniform over one $watch watch poll (median about half of it) plus one refresh and up to one ETag poll"
fi
# The server log's "published feed" lines (UTC, microseconds) for the probe
# feed separate the scheduler's delay from the ETag polling's granularity.
stats=$(python3 - "$rows" "$work/server-restart.log" "$probe_feed" "$expect" <<'PY'
import datetime, math, re, statistics, sys
rows_path, log_path, feed, expect = sys.argv[1:5]
rows = [l.rstrip("\n").split("\t") for l in open(rows_path) if l.strip()]
ansi = re.compile(r"\x1b\[[0-9;]*m")
published = []
for line in open(log_path, errors="replace"):
    line = ansi.sub("", line)
    if "published feed" not in line or f"feed={feed} " not in line + " ":
        continue
    try:
        t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        continue
    published.append(round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6))
published.sort()
served, pub, imports = [], [], []
for r in rows:
    imports.append(int(r[1]) / 1000)
    t0, t1 = int(r[2]), int(r[3])
    if r[4]:
        served.append((int(r[4]) - t1) / 1000)
    after = [p for p in published if p >= t0]
    if after:
        pub.append((after[0] - t1) / 1000)
def p(xs, q):  # nearest rank
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]
def line(label, xs):
    if not xs:
        return f"{label}: no samples"
    return (f"{label}: median {statistics.median(xs):.0f} ms, p90 {p(xs, 0.9):.0f} ms, "
            f"min {min(xs):.0f} ms, max {max(xs):.0f} ms (n={len(xs)})")
print(line("6. write -> served (import's return to the first poll with the new ETag)", served))
print(line("   write -> published (server log)", pub))
print(line("   import command", imports))
print(f"   expected: {expect}")
PY
)
while IFS= read -r l; do echo "  $l"; done <<<"$stats"
while IFS= read -r l; do add "$l"; done <<<"$stats"
add "   $writes_cpu"
finish
