#!/usr/bin/env bash
# Soak: a release `feedsmith serve`, as shipped, under a steady read load for
# DURATION seconds while articles are written every second, the configuration
# is reloaded every 10 s and a slowloris holds SLOWLORIS connections; checks
# that nothing fails, the tail latency holds and memory and fds stay flat.
#
# Usage: bench/soak.sh
# Environment (all optional):
#   DURATION  seconds of soak (default 600), run as wrk slices of SLICE
#             seconds (default 60) back to back, so figures come per minute
#   BASELINE  seconds of the unloaded baseline before the soak (default 30)
#   ARTICLES  generated articles in the store (default 2000, bench/gen_articles.py)
#   FEEDS     feeds configured (default 20): the repo's feeds/ plus generated
#             ones with a mix of section, tag and author filters and limits
#   SLOWLORIS slowloris connections (default 1000)
#   SLOW_BYTE_MS  each slowloris connection sends one byte of its never-ending
#             request head every this many ms (default 1000)
#   SLOWLORIS_FROM  the address the slowloris connects from (default
#             127.0.0.2: an attacker is not the readers' address; any
#             127.0.0.0/8 address works on loopback). 127.0.0.1 puts it behind
#             the same per-address limit as wrk's readers.
#   SLOW_REOPEN_MS  a closed slowloris connection is reopened after this many
#             ms (default 1000, a slowloris tool's tick; 0 reopens at once)
#   CONNS / THREADS / PACE_MS  wrk connections (default 32), threads (default
#             2), and the pause of each connection after every response
#             (default 2 ms, serve.sh's Lua delay): a fixed offered load
#   RELOAD_EVERY  seconds between configuration reloads (default 10)
#   INVALID_EVERY every this many reloads, from the 3rd on, one is an invalid
#             edit (then fixed at the next) (default 30)
#   RSS_FLAT_PCT / RSS_FLAT_MB  VmRSS counts as flat after the first minute
#             (the warm-up) if the last minute's median is above minute 2's by
#             at most this % or this many MB, whichever is larger (default 5 %
#             / 4 MB); with fewer than 3 minutes flatness is not judged
#   FD_FLAT_PCT / FD_FLAT_N  the same for open fds (default 5 % / 20)
#   NOISE_PCT a minute where processes outside this benchmark used more than
#             this % of one core is flagged (default 20)
#   QUIET_LIMIT / QUIET_TIMEOUT  before the baseline and the soak, wait up to
#             QUIET_TIMEOUT s (default 300) until the machine is below
#             QUIET_LIMIT % of one core busy (default 10), as serve.sh does
#   PORT      port on 127.0.0.1 (default 18095)
#   SERVER_CPUS / TOOLS_CPUS  optional taskset CPU lists: pin the server to
#             SERVER_CPUS and everything else (wrk, slowloris, imports, checks)
#             to TOOLS_CPUS, baseline and soak alike, so the load tools do not
#             take the server's core (unset: no pinning, the default)
#   OUT       file to save the output to (default
#             bench/results/soak-DATE-COMMIT[-DURATIONs].txt, the suffix when
#             DURATION is not 600)
#   SKIP_BUILD=1  use the existing release binary
#   KEEP=1    keep the temporary folder (config, store, server log, raw data)
#   CARGO_TARGET_DIR is honoured.
#
# What it does: builds feedsmith (release); in a temporary folder writes a
# config (SQLite store, `[schedule] watch = "1s"`, every other key at its
# shipped default, so `max_connections` is 10 000 and `header_timeout` 10 s),
# copies feeds/ and generates feed files up to FEEDS, imports ARTICLES
# generated articles, and starts `feedsmith serve` without RUST_LOG, its
# stderr in a file as a service manager would keep it. The read load is wrk
# with a Lua script rotating over every feed and format: a third plain, a
# third with `Accept-Encoding: gzip, br`, a third the same plus
# `If-None-Match` with the current ETag (a helper HEADs those paths every
# second, as a reader that polls would know them), paced by PACE_MS; its
# done() hook writes the latency histogram, the status counts and socket
# errors.
#  1. Baseline: after a 5 s warm-up, the paced load alone for BASELINE s.
#  2. Soak, DURATION s, all at once:
#     - the same paced load, in SLICE-second wrk runs;
#     - one `feedsmith import` a second into the live store: alternately a
#       new article (published now, so first in latest) and an update of the
#       last new one; at the end, the last write's headline must be served in
#       /feeds/latest.rss within 10 s;
#     - every RELOAD_EVERY s a reload, alternately a valid edit of one feed
#       file's title and description (picked up by the file watcher; the new
#       title must be served) and a SIGHUP; both must raise /healthz's
#       config_generation within 10 s. Every INVALID_EVERY reloads (from the
#       3rd) the edit is invalid (limit = 0 and an unknown key): /healthz must
#       report a config error, the generation must not move and the feed must
#       still be served under its previous title; the next reload fixes it;
#     - a slowloris (bench/soak_helper.py) of SLOWLORIS connections sending a
#       request head byte by byte that never ends, each reopened as soon as the
#       server closes it; it logs every close with the time it took;
#     - every 5 s the server's VmRSS (/proc/PID/status) and open fds
#       (/proc/PID/fd); after every slice also VmHWM, threads and CPU time
#       (/proc/PID/stat), and the machine's (/proc/stat) to flag others' load.
#  3. Report: a per-minute table and a summary against the targets (0 errors;
#     p99 of the whole soak within 2x of the baseline p99; VmRSS and fds flat
#     after the warm-up minute, comparing minute medians of the 5 s samples,
#     so a rebuild's passing buffers do not decide it; every write and reload
#     as expected; the last write served; the server alive and healthy at the
#     end and stopping cleanly on SIGTERM; no panic in its log), plus the
#     server log's ERROR and WARN lines counted by message, and the CPU that
#     other processes used (the machine is shared; noisy minutes are flagged).
# Exits 1 if a target is missed (everything is still printed), 2 on a setup
# failure. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# The tools run pinned by running this whole script pinned; the server gets
# its own CPUs when it starts.
if [[ -n ${TOOLS_CPUS:-} && -z ${SOAK_PINNED:-} ]]; then
  SOAK_PINNED=1 exec taskset -c "$TOOLS_CPUS" "$0" "$@"
fi
server_pin=()
[[ -n ${SERVER_CPUS:-} ]] && server_pin=(taskset -c "$SERVER_CPUS")

duration=${DURATION:-600}
baseline=${BASELINE:-30}
slice=${SLICE:-60}
articles=${ARTICLES:-2000}
n_feeds=${FEEDS:-20}
slowloris=${SLOWLORIS:-1000}
slowloris_from=${SLOWLORIS_FROM:-127.0.0.2}
slow_reopen_ms=${SLOW_REOPEN_MS:-1000}
slow_byte_ms=${SLOW_BYTE_MS:-1000}
conns=${CONNS:-32}
threads=${THREADS:-2}
pace_ms=${PACE_MS:-2}
reload_every=${RELOAD_EVERY:-10}
invalid_every=${INVALID_EVERY:-30}
rss_flat_pct=${RSS_FLAT_PCT:-5}
rss_flat_mb=${RSS_FLAT_MB:-4}
fd_flat_pct=${FD_FLAT_PCT:-5}
fd_flat_n=${FD_FLAT_N:-20}
noise_pct=${NOISE_PCT:-20}
port=${PORT:-18095}
# shellcheck source=bench/lib.sh
. bench/lib.sh

die() { printf 'soak: %s\n' "$*" >&2; exit 2; }

for v in duration baseline slice articles n_feeds slowloris slow_byte_ms conns threads pace_ms reload_every \
  invalid_every rss_flat_pct rss_flat_mb fd_flat_pct fd_flat_n noise_pct quiet_limit quiet_timeout port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((duration >= 1 && baseline >= 1 && slice >= 1 && conns >= 1 && threads >= 1 && reload_every >= 1 &&
  invalid_every >= 1 && slow_byte_ms >= 1)) || die "DURATION, BASELINE, SLICE, CONNS, THREADS, RELOAD_EVERY, INVALID_EVERY and SLOW_BYTE_MS must be at least 1"
((conns >= threads)) || die "CONNS must be at least THREADS"
((BASH_VERSINFO[0] >= 5)) || die "bash 5 is needed (EPOCHREALTIME)"

rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=
git -C "$repo" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || dirty=" + uncommitted changes to src/"
suffix=
((duration == 600)) || suffix="-${duration}s"
out=${OUT:-"bench/results/soak-$(date +%F)-$rev$suffix.txt"}
mkdir -p "$(dirname "$out")"

# --- packages -------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "installing ${need[*]} from Debian packages"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v python3 >/dev/null || die "python3 is required"

# 1000 slowloris sockets plus the server's own need more than the usual 1024.
want_fds=$((slowloris + conns + 1000))
if (($(ulimit -n) < want_fds)); then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  (($(ulimit -n) >= slowloris + 100)) || die "open files limit $(ulimit -n) is too low for SLOWLORIS=$slowloris"
fi

exec > >(tee "$out") 2>&1

# --- work dir and cleanup --------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/feedsmith-soak.XXXXXX")
server_pid= slow_pid= etags_pid= writer_pid= reloader_pid= monitor_pid=
stop_bg() { # pid...: ends background jobs this script started
  local p
  for p in "$@"; do
    [[ -n $p ]] && kill "$p" 2>/dev/null || true
  done
  for p in "$@"; do
    [[ -n $p ]] && wait "$p" 2>/dev/null || true
  done
}
cleanup() {
  local rc=$?
  touch "$work/stop"
  stop_bg "$writer_pid" "$reloader_pid" "$monitor_pid" "$slow_pid" "$etags_pid" "$server_pid"
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------
build_release

# --- site ----------------------------------------------------------------------
base=http://127.0.0.1:$port
conf=$work/feedsmith.toml
mkdir -p "$work/feeds" "$work/out" "$work/writes"
cp "$repo"/feeds/*.toml "$work/feeds/"
sections=(World Business Sport Culture Science Politics)
tags=(UN Russia Climate Energy Housing Elections Markets Health Transport Technology Ireland Europe Trade Weather Courts)
names=("Aoife Brennan" "Ciarán Walsh" "Maeve Doherty" "Paul Lenz" "Sofia Marques" "Ingrid Halvorsen")
limits=(10 20 30 50)
have=$(ls "$work/feeds" | wc -l)
for ((i = 1; have < n_feeds; i++, have++)); do
  f=$(printf '%s/feeds/mix-%02d.toml' "$work" "$i")
  s=${sections[i % 6]} t1=${tags[i % 15]} t2=${tags[(i * 7 + 3) % 15]} a=${names[i % 6]}
  {
    printf 'limit = %d\n' "${limits[i % 4]}"
    case $((i % 4)) in
      0) printf 'title = "%s"\ndescription = "Section %s"\nsections = ["%s"]\n' "$s" "$s" "$s" ;;
      1) printf 'title = "%s and %s"\ndescription = "Tagged %s or %s"\ntags = ["%s", "%s"]\n' "$t1" "$t2" "$t1" "$t2" "$t1" "$t2" ;;
      2) printf 'title = "By %s"\ndescription = "Stories by %s"\nauthors = ["%s"]\n' "$a" "$a" "$a" ;;
      3) printf 'title = "%s: %s"\ndescription = "%s stories tagged %s"\nsections = ["%s"]\ntags = ["%s"]\n' "$s" "$t1" "$s" "$t1" "$s" "$t1" ;;
    esac
  } >"$f"
done
feed_names=()
for f in "$work"/feeds/*.toml; do feed_names+=("$(basename "$f" .toml)"); done
# The feed whose file the reloads edit.
edit_feed=world
[[ -e $work/feeds/$edit_feed.toml ]] || edit_feed=${feed_names[0]}
cp "$work/feeds/$edit_feed.toml" "$work/edit-original.toml"

cat >"$conf" <<TOML
[server]
listen = "127.0.0.1:$port"
base_url = "$base"

[site]
title = "Soak News"
timezone = "Europe/Dublin"
language = "en-IE"

[store]
url = "sqlite://$work/articles.db"

[output]
dir = "$work/out"

[schedule]
watch = "1s"

[feeds]
dir = "$work/feeds"
TOML
"$bin" --config "$conf" check >"$work/check.log" 2>&1 || { cat "$work/check.log"; die "feedsmith check rejected the config"; }
log "generating and importing $articles articles"
python3 bench/gen_articles.py "$articles" "$work/articles.jsonl"
"$bin" --config "$conf" import "$work/articles.jsonl" </dev/null >"$work/preload.log" 2>&1 ||
  { tail -n 20 "$work/preload.log"; die "importing the generated articles failed"; }

(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port on 127.0.0.1 is already in use; set PORT to a free one"
env -u RUST_LOG "${server_pin[@]}" "$bin" --config "$conf" serve </dev/null >"$work/server.log" 2>&1 &
server_pid=$!
started=$SECONDS
for name in "${feed_names[@]}"; do
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/feeds/$name.rss") == 200 ]]; do
    kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$work/server.log"; die "feedsmith serve exited"; }
    ((SECONDS - started < 120)) || { tail -n 30 "$work/server.log"; die "/feeds/$name.rss not served within 120 s"; }
    sleep 0.2
  done
done
log "server up after $((SECONDS - started)) s with ${#feed_names[@]} feeds"

# --- the read load -----------------------------------------------------------
# Entries feed-major, format-minor; the variant rotates with (feed + format) so
# every format gets every variant.
formats=(rss atom json)
: >"$work/paths.txt"
lua_entries=
idx=0
declare -A variant_count=()
for ((f = 0; f < ${#feed_names[@]}; f++)); do
  for ((k = 0; k < 3; k++)); do
    idx=$((idx + 1))
    path=/feeds/${feed_names[f]}.${formats[k]}
    case $(((f + k) % 3)) in
      0) v=plain lua="{path = \"$path\"}" ;;
      1) v=gzip lua="{path = \"$path\", ae = \"gzip, br\"}" ;;
      2) v=conditional lua="{path = \"$path\", ae = \"gzip, br\", cond = true}"
         echo "$idx $path" >>"$work/paths.txt" ;;
    esac
    variant_count[$v]=$((${variant_count[$v]:-0} + 1))
    lua_entries+="  $lua,"$'\n'
  done
done
cat >"$work/load.lua" <<LUA
-- Generated by bench/soak.sh: rotates over every feed and format, paced.
local entries = {
$lua_entries}
local etag_file = "$work/etags.txt"
local pace = $pace_ms
local i = 0
local etags, loaded_at = {}, -1
statuses = {}

local function load_etags()
  local f = io.open(etag_file, "r")
  if not f then return end
  local fresh = {}
  for line in f:lines() do
    local n, tag = line:match("^(%d+) (.+)$")
    if n then fresh[tonumber(n)] = tag end
  end
  f:close()
  etags = fresh
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  -- Threads start at different places in the rotation.
  i = math.random(#entries) - 1
end

function request()
  local now = os.time()
  if now ~= loaded_at then
    loaded_at = now
    load_etags()
  end
  i = i % #entries + 1
  local e = entries[i]
  local h = {}
  if e.ae then h["Accept-Encoding"] = e.ae end
  if e.cond and etags[i] then h["If-None-Match"] = etags[i] end
  return wrk.format("GET", e.path, h)
end

function delay()
  return pace
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("SOAK_WRK_OUT"), "w"))
  f:write(string.format("requests %d\nduration_us %d\nbytes %d\n", summary.requests, summary.duration, summary.bytes))
  local e = summary.errors
  f:write(string.format("errors %d %d %d %d %d\n", e.connect, e.read, e.write, e.status, e.timeout))
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses") or {}) do
      total[code] = (total[code] or 0) + n
    end
  end
  for code, n in pairs(total) do
    f:write(string.format("status %d %d\n", code, n))
  end
  for k = 1, #latency do
    local v, c = latency(k)
    f:write(string.format("lat %d %d\n", v, c))
  end
  f:close()
end
LUA
python3 bench/soak_helper.py etags --port "$port" --paths "$work/paths.txt" --out "$work/etags.txt" >"$work/etags.summary" 2>&1 &
etags_pid=$!

run_wrk() { # seconds result-file
  SOAK_WRK_OUT=$2 wrk -t"$threads" -c"$conns" -d"$1s" --timeout 2s -s "$work/load.lua" "$base/" >"$2.txt" 2>&1 ||
    { cat "$2.txt"; die "wrk failed"; }
  [[ -s $2 ]] || { cat "$2.txt"; die "wrk wrote no results (its Lua done() failed?)"; }
}

# --- measurement helpers -------------------------------------------------------
# utime+stime (+ cutime+cstime, their reaped children) of processes, in ticks.
proc_ticks() {
  local total=0 pid f
  for pid in "$@"; do
    [[ -n $pid && -r /proc/$pid/stat ]] || continue
    f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    set -- $f
    total=$((total + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$total"
}
sample() { # index: the server's memory, fds, threads and CPU, plus the machine's CPU
  local st=/proc/$server_pid/status rss hwm thr fds cpu ours
  [[ -r $st ]] || { log "the server is gone"; return 0; }
  rss=$(awk '/^VmRSS:/ {print $2}' "$st")
  hwm=$(awk '/^VmHWM:/ {print $2}' "$st")
  thr=$(awk '/^Threads:/ {print $2}' "$st")
  fds=$(ls "/proc/$server_pid/fd" | wc -l)
  cpu=$(proc_ticks "$server_pid")
  children_ticks >"$work/children-ticks" # not in $(...): `times` must run in this shell
  ours=$(($(proc_ticks "$server_pid" "$slow_pid" "$etags_pid" "$writer_pid" "$reloader_pid" "$monitor_pid") + $(<"$work/children-ticks")))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(date +%s.%N)" "$rss" "$hwm" "$fds" "$thr" "$cpu" \
    "$(machine_ticks)" "$ours" >>"$work/samples.tsv"
}
cpu_mark() { # file: time, machine, ours and server CPU ticks, to tell the baseline's noise
  children_ticks >"$work/children-ticks"
  printf '%s\t%s\t%s\t%s\n' "$(date +%s.%N)" "$(machine_ticks)" \
    "$(($(proc_ticks "$server_pid" "$etags_pid") + $(<"$work/children-ticks")))" "$(proc_ticks "$server_pid")" >>"$1"
}
healthz() { curl -s --max-time 2 "$base/healthz" || true; }
generation() { healthz | sed -n 's/.*"config_generation":\([0-9]*\).*/\1/p'; }
sleep_until_us() { # epoch microseconds
  local d=$(($1 - $(now_us)))
  ((d > 0)) && sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
  return 0
}
served_title() { # feed: its RSS <title> (the first one is the channel's)
  curl -s --max-time 2 "$base/feeds/$1.rss" | grep -o '<title>[^<]*</title>' | head -1 | sed 's:<title>\(.*\)</title>:\1:'
}
nap_until_us() { # epoch microseconds; returns 1 early if the soak is stopping
  while (($(now_us) < $1)); do
    [[ -e $work/stop ]] && return 1
    sleep 0.2
  done
  [[ ! -e $work/stop ]]
}

# --- the soak's background activities -------------------------------------
monitor() { # VmRSS and open fds every 5 s
  set +e
  local rss fds
  while [[ ! -e $work/stop ]]; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null)
    fds=$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)
    [[ -n $rss ]] && printf '%s\t%s\t%s\n' "$(date +%s.%N)" "$rss" "$fds" >>"$work/monitor.tsv"
    sleep 5
  done
}
writer() {
  set +e
  local n=0 tick id file headline published last_id= last_pub= kind section tag now t0 t1 rc
  tick=$(($(now_us) / 1000000 * 1000000 + 1000000))
  while [[ ! -e $work/stop ]]; do
    sleep_until_us "$tick"
    n=$((n + 1))
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    section=${sections[n % 6]} tag=${tags[n % 15]}
    if ((n % 2)) || [[ -z $last_id ]]; then
      kind=new id=$(printf 'soak-%s-%05d' "$$" "$n") published=$now
      headline="Soak write $n, a new $section story"
    else
      kind=update id=$last_id published=$last_pub
      headline="Soak write $n, an update of $id"
    fi
    file=$work/writes/$n.json
    cat >"$file" <<JSON
{"id": "$id", "url": "https://news.example.com/soak/$id", "headline": "$headline",
 "standfirst": "Written by bench/soak.sh while the server is under load.",
 "body_html": "<p>Soak write $n.</p>", "authors": [{"name": "${names[n % 6]}"}],
 "section": "$section", "tags": ["$tag", "Soak"], "published_at": "$published", "updated_at": "$now"}
JSON
    t0=$(now_us)
    "$bin" --config "$conf" import "$file" >>"$work/import.log" 2>&1
    rc=$?
    t1=$(now_us)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$(date +%s.%N)" "$kind" "$id" "$rc" "$(((t1 - t0) / 1000))" >>"$work/writes.tsv"
    if ((rc == 0)); then
      printf '%s\n' "$headline" >"$work/last-write"
      [[ $kind == new ]] && last_id=$id last_pub=$published
    fi
    tick=$((tick + 1000000))
    # An import that ran over its second: skip the ticks it missed rather than bunch up.
    while ((tick < $(now_us))); do tick=$((tick + 1000000)); echo >>"$work/missed-ticks"; done
  done
}

write_edit() { # title description [invalid]: the edited feed file, replaced atomically
  if [[ ${3:-} == invalid ]]; then
    # Two problems: a limit out of range and an unknown key.
    grep -vE '^(title|description|limit) *=' "$work/edit-original.toml"
    printf 'title = "%s"\ndescription = "%s"\nlimit = 0\ncolour = "red"\n' "$1" "$2"
  else
    grep -vE '^(title|description) *=' "$work/edit-original.toml"
    printf 'title = "%s"\ndescription = "%s"\n' "$1" "$2"
  fi >"$work/edit.tmp"
  mv "$work/edit.tmp" "$work/feeds/$edit_feed.toml"
}
wait_generation() { # previous generation, timeout s -> prints the new one
  local g start=$SECONDS
  while ((SECONDS - start < $2)); do
    g=$(generation)
    [[ -n $g ]] && ((g > $1)) && { echo "$g"; return 0; }
    sleep 0.1
  done
  return 1
}
reloader() {
  set +e
  local n=0 g0 g1 t0 kind ok detail invalid_pending=0 stopping=0 title title_now code next
  next=$(($(now_us) + reload_every * 1000000))
  while :; do
    # At the end, an invalid edit still in place is fixed before leaving.
    nap_until_us "$next" || ((invalid_pending)) || break
    next=$((next + reload_every * 1000000))
    n=$((n + 1))
    g0=$(generation)
    t0=$(now_us)
    title="$edit_feed edited by the soak, reload $n"
    if ((invalid_pending)); then
      kind=fix
    elif ((n % invalid_every == 3 % invalid_every)) && ((n >= 3)); then
      kind=invalid
    elif ((n % 2)); then
      kind=edit
    else
      kind=sighup
    fi
    case $kind in
      invalid)
        title_now=$(served_title "$edit_feed")
        write_edit "$title (invalid)" "an invalid edit" invalid
        # Refused means /healthz reports it (after the 300 ms debounce and a
        # reload) while the generation stays put.
        until healthz | grep -q '"component":"config"' || (($(now_us) - t0 > 10000000)); do sleep 0.1; done
        g1=$(generation)
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/feeds/$edit_feed.rss")
        if [[ $g1 == "$g0" ]] && healthz | grep -q '"component":"config"' && [[ $code == 200 ]] &&
          [[ $(served_title "$edit_feed") == "$title_now" ]]; then
          ok=ok detail="refused: /healthz reported the config error after $((($(now_us) - t0) / 1000)) ms, generation stayed $g0, /feeds/$edit_feed.rss still 200 with its previous title"
        else
          ok=FAIL detail="generation $g0 -> ${g1:-?}, config error in /healthz: $(healthz | grep -q '"component":"config"' && echo yes || echo no), /feeds/$edit_feed.rss: $code, title '$(served_title "$edit_feed")' (was '$title_now')"
        fi
        grep -o '"reason":"[^"]*"' <<<"$(healthz)" | head -2 | tr '\n' ' ' >"$work/invalid-reason.$n"
        invalid_pending=1
        ;;
      fix | edit)
        write_edit "$title" "Edited at reload $n of the soak"
        if g1=$(wait_generation "${g0:-0}" 10); then
          ok=ok detail="generation $g0 -> $g1 after $((($(now_us) - t0) / 1000)) ms"
          # The new title is served once the feed is rebuilt.
          until [[ $(served_title "$edit_feed") == "$title" ]] || (($(now_us) - t0 > 10000000)); do sleep 0.1; done
          if [[ $(served_title "$edit_feed") == "$title" ]]; then
            detail+=", new title served after $((($(now_us) - t0) / 1000)) ms"
          else
            ok=FAIL detail+=", but the new title was not served within 10 s"
          fi
          if [[ $kind == fix ]] && healthz | grep -q '"component":"config"'; then
            ok=FAIL detail+=", /healthz still reports a config error"
          fi
        else
          ok=FAIL detail="generation stayed ${g0:-?} for 10 s after the edit"
        fi
        invalid_pending=0
        [[ -e $work/stop ]] && stopping=1
        ;;
      sighup)
        kill -HUP "$server_pid"
        if g1=$(wait_generation "${g0:-0}" 10); then
          ok=ok detail="generation $g0 -> $g1 after $((($(now_us) - t0) / 1000)) ms"
        else
          ok=FAIL detail="generation stayed ${g0:-?} for 10 s after SIGHUP"
        fi
        ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$(date +%s.%N)" "$kind" "$ok" "$detail" >>"$work/reloads.tsv"
    ((stopping)) && break
  done
}

# --- setup summary --------------------------------------------------------------
echo "soak: $(date -u '+%F %T UTC'), commit $rev$dirty, $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "feedsmith: $bin (release, built $(date -u -r "$bin" '+%F %T UTC')), serve without RUST_LOG (shipped default: info, access log on), stderr to a file"
[[ -n ${SERVER_CPUS:-}${TOOLS_CPUS:-} ]] &&
  echo "pinned:    server on CPUs ${SERVER_CPUS:-any}, load tools on CPUs ${TOOLS_CPUS:-any} (taskset)"
echo "site:      SQLite store, $articles generated articles, ${#feed_names[@]} feeds (${feed_names[*]}), [schedule] watch = \"1s\", other keys at their defaults"
echo "load:      wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') -t$threads -c$conns, each connection pausing $pace_ms ms after every response; $idx paths rotated" \
  "(${variant_count[plain]:-0} plain, ${variant_count[gzip]:-0} 'Accept-Encoding: gzip, br', ${variant_count[conditional]:-0} the same with If-None-Match of the current ETag)"
echo "soak:      ${duration} s in ${slice} s wrk slices; a write every 1 s; a reload every ${reload_every} s (edit / SIGHUP alternately, an invalid edit every ${invalid_every} from the 3rd);" \
  "slowloris $slowloris connections from $slowloris_from, one byte every ${slow_byte_ms} ms, reopened ${slow_reopen_ms} ms after a close"
echo

# --- 1. baseline --------------------------------------------------------------
log "warm-up (5 s)"
run_wrk 5 "$work/warmup.wrk"
wait_quiet
log "baseline ($baseline s)"
cpu_mark "$work/baseline.cpu"
run_wrk "$baseline" "$work/baseline.wrk"
cpu_mark "$work/baseline.cpu"

# --- 2. soak ----------------------------------------------------------------------
wait_quiet
log "soak ($duration s)"
: >"$work/samples.tsv"
sample 0
: >"$work/writes.tsv"
: >"$work/reloads.tsv"
: >"$work/slowloris.events"
python3 bench/soak_helper.py slowloris --port "$port" --conns "$slowloris" --byte-ms "$slow_byte_ms" \
  --from "$slowloris_from" --reopen-ms "$slow_reopen_ms" \
  --events "$work/slowloris.events" >"$work/slowloris.log" 2>&1 &
slow_pid=$!
monitor &
monitor_pid=$!
writer &
writer_pid=$!
reloader &
reloader_pid=$!
: >"$work/slices.tsv"
left=$duration
i=0
while ((left > 0)); do
  i=$((i + 1))
  secs=$((left < slice ? left : slice))
  t0=$(date +%s.%N)
  run_wrk "$secs" "$work/slice-$i.wrk"
  t1=$(date +%s.%N)
  sample "$i"
  printf '%s\t%s\t%s\t%s\n' "$i" "$t0" "$t1" "$work/slice-$i.wrk" >>"$work/slices.tsv"
  log "  minute $i: $(awk '/^requests/ {r=$2} /^duration_us/ {d=$2} END {printf "%.0f req/s", r / d * 1e6}' "$work/slice-$i.wrk"), $(tail -1 "$work/samples.tsv" | awk '{printf "VmRSS %.1f MB, %d fds", $3 / 1024, $5}')"
  left=$((left - secs))
done
touch "$work/stop"
stop_bg "$slow_pid"
wait "$writer_pid" "$monitor_pid" 2>/dev/null || true
monitor_pid=
writer_pid=
log "waiting for the reloader to finish (it fixes an invalid edit still in place)"
wait "$reloader_pid" 2>/dev/null || true
reloader_pid=
stop_bg "$etags_pid"
etags_pid=

# --- 3. checks and report ---------------------------------------------------------
: >"$work/checks.tsv"
check() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$work/checks.tsv"; }
if kill -0 "$server_pid" 2>/dev/null; then
  check "server alive at the end" ok "pid $server_pid still running"
else
  check "server alive at the end" FAIL "the server exited during the soak"
fi
if [[ -s $work/last-write ]]; then
  want=$(<"$work/last-write")
  t0=$(now_us)
  # The body is read whole before grep looks at it: under pipefail, `curl | grep -q`
  # fails whenever grep stops reading early.
  served() { local body; body=$(curl -s --max-time 2 "$base/feeds/latest.rss"); grep -qF "<title>$want</title>" <<<"$body"; }
  until served || (($(now_us) - t0 > 10000000)); do sleep 0.1; done
  if served; then
    check "last write served" ok "'$want' in /feeds/latest.rss $((($(now_us) - t0) / 1000)) ms after the check began"
  else
    check "last write served" FAIL "'$want' not in /feeds/latest.rss 10 s after the writes stopped"
  fi
else
  check "last write served" FAIL "no write succeeded"
fi
final=$(healthz)
if grep -q '"status":"ok"' <<<"$final"; then
  check "healthy at the end" ok "/healthz status ok"
else
  check "healthy at the end" FAIL "/healthz: ${final:-no answer}"
fi
# A graceful stop: SIGTERM, then the exit status.
kill "$server_pid" 2>/dev/null || true
rc=0
wait "$server_pid" 2>/dev/null || rc=$?
server_pid=
if ((rc == 0)); then
  check "clean shutdown on SIGTERM" ok "exit status 0"
else
  check "clean shutdown on SIGTERM" FAIL "exit status $rc"
fi

log_lines=$(wc -l <"$work/server.log")
grep -aE 'ERROR|WARN|panicked' "$work/server.log" >"$work/log-warn-error.txt" || true
panics=$(grep -ac 'panicked' "$work/server.log" || true)
cat >"$work/report-env.json" <<JSON
{"clk_tck": $clk_tck, "baseline": $baseline, "slice": $slice, "reload_every": $reload_every,
 "slowloris": $slowloris, "slow_byte_ms": $slow_byte_ms, "noise_pct": $noise_pct,
 "rss_flat_pct": $rss_flat_pct, "rss_flat_mb": $rss_flat_mb, "fd_flat_pct": $fd_flat_pct, "fd_flat_n": $fd_flat_n,
 "missed_write_ticks": $(cat "$work/missed-ticks" 2>/dev/null | wc -l), "log_lines": $log_lines, "log_panics": ${panics:-0}}
JSON
echo
rc=0
python3 bench/soak_helper.py report "$work" || rc=$?
echo
echo "saved to $out"
exit "$rc"
