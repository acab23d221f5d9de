#!/usr/bin/env bash
# Serving throughput and CPU cost of `feedsmith serve` against nginx serving
# the very same published bytes from disk, both as shipped (access logs on)
# and with their access logs off, for small and large documents.
#
# Usage: bench/serve.sh
# Environment (all optional):
#   DURATION  seconds per wrk run (default 5)
#   REPEATS   runs per server per cell, servers alternating (default 5)
#   SIZES     documents to test, of "4k 20k 200k 2m" (default all four): RSS
#             feeds of 1, 4, 45 and 450 generated articles, about 5 KB, 18 KB,
#             200 KB and 2 MB
#   LOGS      logging settings, of "on off" (default both): "on" is each
#             server's shipped default — feedsmith with no RUST_LOG and no
#             [server.access_log] (combined access log to stdout) with stdout
#             and stderr appended to a file as a service manager keeps them;
#             nginx with `access_log FILE combined` (its default, one write(2)
#             per request). "off": feedsmith with `[server.access_log] format
#             = "off"`, nginx with `access_log off`
#   CONNS     connection counts to test (default "32 256")
#   CASES     cases to run, of "plain gzip br 304" (default all four): no
#             Accept-Encoding; `Accept-Encoding: gzip`; `Accept-Encoding: gzip,
#             br` (answered with brotli); If-None-Match with the server's ETag
#   THREADS   wrk threads (default 2)
#   WARMUP    seconds of unmeasured load per server before each cell (default 1)
#   PACE_MS   if set, each connection waits this many ms after every response
#             before its next request (a wrk Lua delay), so both servers get the
#             same offered load and their p99 compares like for like; without
#             it wrk saturates whichever server is faster
#   ARTICLES  generated articles in the store (default 2000)
#   FS_PORT / FS_OFF_PORT / NGX_PORT / NGX_OFF_PORT  ports on 127.0.0.1
#             (default 18080 / 18082 / 18081 / 18083)
#   PROFILE   1: afterwards, perf-record each server during one plain-200 run
#             of the first size, log setting and CONNS value and print its top
#             symbols (REPEATS=0 with PROFILE=1 profiles only)
#   OUT       file to save the output to (default bench/results/serve-DATE.txt)
#   QUIET_LIMIT / QUIET_TIMEOUT  before each run, wait up to QUIET_TIMEOUT s
#             (default 300) until the machine is below QUIET_LIMIT % of one
#             core busy (default 10); each run reports what others used
#   SKIP_BUILD=1  use the existing release binary; CARGO_TARGET_DIR is honoured.
#   SCRAPE=1  while wrk loads feedsmith, fetch its /metrics once a second, as
#             Prometheus would (issue 18: the cost of being scraped)
#
# What it does: builds feedsmith (release), imports ARTICLES generated articles
# (bench/gen_articles.py), starts two `feedsmith serve` on that store (logs on
# and off), which write the published documents to their output dirs; fetches
# feedsmith's own gzip and brotli variants and stores them beside the originals
# as .gz and .br (verified to decompress to the identity file), so both servers
# send byte-identical bodies; starts nginx (installed from Debian packages if
# missing, with the brotli_static module) on that folder with etag,
# gzip_static and brotli_static on, one port logging and one not; then for
# each log setting, size, case and connection count runs wrk REPEATS times per
# server, alternating which server goes first. Log files are emptied before
# each cell so a long run does not fill the disk. For every run it records
# req/s, p99 latency and the server's CPU time (utime+stime of all its
# processes from /proc, before and after) divided by the requests wrk counted.
# Prints a table of medians per log setting and the targets of the serving
# issue, and saves everything to OUT.
#
# wrk shares the machine's cores with the server under test, so one run's req/s
# is noisy; CPU per request is the steadier figure. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

duration=${DURATION:-5}
repeats=${REPEATS:-5}
sizes=${SIZES:-"4k 20k 200k 2m"}
logs=${LOGS:-"on off"}
conns_list=${CONNS:-"32 256"}
cases=${CASES:-"plain gzip br 304"}
threads=${THREADS:-2}
warmup=${WARMUP:-1}
articles=${ARTICLES:-2000}
fs_port=${FS_PORT:-18080}
fs_off_port=${FS_OFF_PORT:-18082}
ngx_port=${NGX_PORT:-18081}
ngx_off_port=${NGX_OFF_PORT:-18083}
profile=${PROFILE:-0}
pace_ms=${PACE_MS:-}
scrape=${SCRAPE:-}

die() { printf 'serve: %s\n' "$*" >&2; exit 2; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

for v in duration repeats threads warmup articles fs_port fs_off_port ngx_port ngx_off_port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
declare -A limit_of=([4k]=1 [20k]=4 [200k]=45 [2m]=450)
for s in $sizes; do [[ -n ${limit_of[$s]:-} ]] || die "SIZES: unknown size '$s' (4k 20k 200k 2m)"; done
for l in $logs; do [[ $l == on || $l == off ]] || die "LOGS: unknown setting '$l' (on off)"; done
for c in $cases; do [[ $c =~ ^(plain|gzip|br|304)$ ]] || die "CASES: unknown case '$c' (plain gzip br 304)"; done
((articles >= 450)) || die "ARTICLES must be at least 450 (the 2m feed takes 450)"

out=${OUT:-"bench/results/serve-$(date +%F)$( ((repeats > 0)) || echo -profile).txt"}
mkdir -p "$(dirname "$out")"
exec > >(tee "$out") 2>&1

# --- packages -------------------------------------------------------------
brotli_module=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v brotli >/dev/null || need+=(brotli)
command -v curl >/dev/null || need+=(curl)
[[ -e $brotli_module ]] || need+=(libnginx-mod-http-brotli-static)
[[ $profile != 1 ]] || command -v perf >/dev/null || need+=(linux-perf)
if ((${#need[@]})); then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "installing ${need[*]} from Debian packages"
  "${sudo[@]}" apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null; then
    # The brotli module is optional: without it nginx answers `gzip, br` with gzip.
    rest=()
    for p in "${need[@]}"; do [[ $p == libnginx-mod-http-brotli-static ]] || rest+=("$p"); done
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${rest[@]}" >/dev/null
  fi
fi
nginx_bin=$(command -v nginx)

# --- work dir and cleanup --------------------------------------------------
work=$(mktemp -d /tmp/feedsmith-serve-bench.XXXXXX)
chmod 755 "$work" # nginx workers run as an unprivileged user when started by root
declare -A fs_pid=()
cleanup() {
  local rc=$? p
  for p in "${fs_pid[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if [[ -s $work/nginx.pid ]]; then
    kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [[ -e $work/nginx.pid ]] || break; sleep 0.1; done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- feedsmith: build, store, serve ----------------------------------------
build_release
feedsmith=$bin

mkdir -p "$work/feeds"
for s in $sizes; do printf 'title = "Bench %s"\nlimit = %d\n' "$s" "${limit_of[$s]}" >"$work/feeds/bench-$s.toml"; done
site_config() { # port output-dir; both instances are replicas of one site, one base_url
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
base_url = "http://127.0.0.1:$fs_port"
[site]
title = "Bench News"
timezone = "Europe/Dublin"
[store]
url = "sqlite://$work/articles.db"
[output]
dir = "$2"
[feeds]
dir = "$work/feeds"
TOML
}
mkdir -p "$work/published-on" "$work/published-off"
chmod 755 "$work/published-on" "$work/published-off"
site_config "$fs_port" "$work/published-on" >"$work/on.toml"
{ site_config "$fs_off_port" "$work/published-off"; printf '[server.access_log]\nformat = "off"\n'; } >"$work/off.toml"
# A revision from before the access log had no such key: there, the log off
# means the service log at warn (which drops its per-request lines).
declare -A fs_env=([on]="" [off]="")
if ! "$feedsmith" --config "$work/off.toml" check >"$work/check.log" 2>&1; then
  grep -q access_log "$work/check.log" || { cat "$work/check.log"; die "feedsmith check rejected the config"; }
  site_config "$fs_off_port" "$work/published-off" >"$work/off.toml"
  fs_env[off]="RUST_LOG=warn"
  off_note="RUST_LOG=warn (this revision has no [server.access_log])"
else
  off_note='[server.access_log] format = "off", no RUST_LOG'
fi
python3 bench/gen_articles.py "$articles" "$work/articles.jsonl"
RUST_LOG=warn "$feedsmith" --config "$work/on.toml" import "$work/articles.jsonl" </dev/null >/dev/null

declare -A fs_base=()
for l in on off; do
  port=$fs_port
  [[ $l == off ]] && port=$fs_off_port
  # As a service manager runs it: no RUST_LOG unless set above, output appended to a file.
  env -u RUST_LOG ${fs_env[$l]} "$feedsmith" --config "$work/$l.toml" serve </dev/null >>"$work/feedsmith-$l.log" 2>&1 &
  fs_pid[$l]=$!
  fs_base[$l]=http://127.0.0.1:$port
done
for l in on off; do
  for i in $(seq 300); do
    curl -fsS -o /dev/null "${fs_base[$l]}/healthz" 2>/dev/null && break
    kill -0 "${fs_pid[$l]}" 2>/dev/null || { cat "$work/feedsmith-$l.log"; die "feedsmith ($l) exited"; }
    ((i < 300)) || die "feedsmith ($l) did not come up"
    sleep 0.1
  done
done

pub=$work/published-on
declare -A doc_bytes=()
for s in $sizes; do
  feed=bench-$s.rss
  for i in $(seq 100); do
    [[ -s $pub/$feed && -s $work/published-off/$feed ]] && break
    ((i < 100)) || die "feedsmith did not publish $feed"
    sleep 0.1
  done
  cmp -s "$pub/$feed" "$work/published-off/$feed" || die "the two feedsmith instances published different $feed"
  # The bytes feedsmith serves are the bytes it published.
  curl -fsS "${fs_base[on]}/feeds/$feed" -o "$work/check.identity"
  cmp -s "$work/check.identity" "$pub/$feed" || die "served identity differs from $pub/$feed"
  # Its precompressed variants go beside the originals for nginx's *_static modules.
  # A rebuilt document is served at once and its compressed variants follow
  # (issue 13), so right after publication a request may still get identity:
  # wait until each variant is served with its own Content-Encoding.
  for coding in gzip br; do
    ext=$coding; [[ $coding == gzip ]] && ext=gz
    for i in $(seq 100); do
      curl -fsS -D "$work/check.headers" -H "Accept-Encoding: $coding" "${fs_base[on]}/feeds/$feed" -o "$pub/$feed.$ext"
      grep -qi "^content-encoding: $coding" "$work/check.headers" && break
      ((i < 100)) || die "feedsmith did not serve a $coding variant of $feed within 10 s"
      sleep 0.1
    done
  done
  gzip -dc "$pub/$feed.gz" | cmp -s - "$pub/$feed" || die "feedsmith's gzip variant of $feed does not decompress to the document"
  brotli -dc "$pub/$feed.br" | cmp -s - "$pub/$feed" || die "feedsmith's brotli variant of $feed does not decompress to the document"
  # Same bytes, same mtime for the three files.
  touch -r "$pub/$feed" "$pub/$feed.gz" "$pub/$feed.br"
  doc_bytes[$s]="$(stat -c %s "$pub/$feed") identity, $(stat -c %s "$pub/$feed.gz") gzip, $(stat -c %s "$pub/$feed.br") brotli"
done
chmod 644 "$pub"/*

# --- nginx -----------------------------------------------------------------
# nginx adds the headers feedsmith sends that it would not send by itself.
first_feed=bench-${sizes%% *}.rss
cache_control=$(curl -fsS -o /dev/null -D - "${fs_base[on]}/feeds/$first_feed" | tr -d '\r' | sed -n 's/^cache-control: *//Ip')
have_brotli=0
[[ -e $brotli_module ]] && have_brotli=1
mkdir -p "$work/nginx-tmp"
nginx_server() { # port access_log-directive
  cat <<NGINX
  server {
    listen 127.0.0.1:$1;
    $2
    location /feeds/ {
      alias $pub/;
      add_header Cache-Control "${cache_control:-public, max-age=300}";
      add_header X-Content-Type-Options nosniff;
    }
  }
NGINX
}
{
  ((have_brotli)) && echo "load_module $brotli_module;"
  cat <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  etag on;
  gzip_static on;
  gzip_vary on;
  $( ((have_brotli)) && echo "brotli_static on;")
  server_tokens off;
  client_body_temp_path $work/nginx-tmp;
  types {
    application/rss+xml rss;
    application/atom+xml atom;
    application/feed+json json;
  }
  default_type application/octet-stream;
  charset utf-8;
  charset_types application/rss+xml application/atom+xml application/feed+json;
$(nginx_server "$ngx_port" "access_log $work/nginx-access.log combined;")
$(nginx_server "$ngx_off_port" "access_log off;")
}
NGINX
} >"$work/nginx.conf"
"$nginx_bin" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" -t -q
"$nginx_bin" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf"
declare -A ngx_base=([on]=http://127.0.0.1:$ngx_port [off]=http://127.0.0.1:$ngx_off_port)
for i in $(seq 100); do
  curl -fsS -o /dev/null "${ngx_base[off]}/feeds/$first_feed" 2>/dev/null && break
  ((i < 100)) || { cat "$work/nginx-error.log"; die "nginx did not come up"; }
  sleep 0.1
done
ngx_master=$(cat "$work/nginx.pid")

# --- what each server answers ---------------------------------------------
headers() { curl -fsS -o "$work/body" -D - "$@" | tr -d '\r'; }
header() { sed -n "s/^$1: *//Ip"; }
base_of() { # server log
  if [[ $1 == feedsmith ]]; then echo "${fs_base[$2]}"; else echo "${ngx_base[$2]}"; fi
}
declare -A etag=() enc=()
for s in $sizes; do
  feed=bench-$s.rss
  for server in feedsmith nginx; do
    for l in $logs; do
      base=$(base_of "$server" "$l")
      plain=$(headers "$base/feeds/$feed")
      cmp -s "$work/body" "$pub/$feed" || die "$server ($l): plain body of $feed differs"
      etag[$server.$l.$s]=$(header etag <<<"$plain")
      [[ -n ${etag[$server.$l.$s]} ]] || die "$server ($l): no ETag for $feed"
      for ae in gzip 'gzip, br'; do
        comp=$(headers -H "Accept-Encoding: $ae" "$base/feeds/$feed")
        got=$(header content-encoding <<<"$comp")
        enc[$server.$ae]=$got
        case $got in
          br) cmp -s "$work/body" "$pub/$feed.br" ;;
          gzip) cmp -s "$work/body" "$pub/$feed.gz" ;;
          *) false ;;
        esac || die "$server ($l): 'Accept-Encoding: $ae' body of $feed is not the published .${got:-?} file"
      done
      status304=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: ${etag[$server.$l.$s]}" "$base/feeds/$feed")
      [[ $status304 == 304 ]] || die "$server ($l): If-None-Match gave $status304 for $feed, not 304"
    done
  done
done
for server in feedsmith nginx; do
  echo "== $server: 200 headers (logs ${logs%% *})"
  sed -n '1p;/^[A-Za-z-]*:/p' <<<"$(headers "$(base_of "$server" "${logs%% *}")/feeds/$first_feed")"
done

echo
echo "== setup"
echo "date:        $(date -u '+%F %T UTC')"
echo "machine:     $(nproc) cores, $(uname -sr)"
if rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null); then
  git -C "$repo" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || rev="$rev + uncommitted changes"
else
  rev="${FEEDSMITH_REV:-unknown revision (not a git checkout)}"
fi
echo "feedsmith:   $rev, release build, $(grep -c '^processor' /proc/cpuinfo) tokio workers (default)"
echo "             logs on:  shipped defaults (no RUST_LOG, no [server.access_log]), stdout and stderr appended to a file"
echo "             logs off: $off_note"
echo "nginx:       $("$nginx_bin" -v 2>&1 | sed 's/.*: //'), worker_processes 2, sendfile, etag, gzip_static$( ((have_brotli)) && echo ', brotli_static')"
echo "             logs on:  access_log FILE combined (nginx's default, unbuffered); logs off: access_log off"
echo "wrk:         $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), -t$threads, ${duration}s per run, $repeats runs per server per cell, ${warmup}s warm-up"
[[ -n $pace_ms ]] && echo "pacing:      each connection waits ${pace_ms} ms after every response (equal offered load)"
for s in $sizes; do
  echo "document $s: /feeds/bench-$s.rss (${limit_of[$s]} articles): ${doc_bytes[$s]} bytes"
done
echo "cases:       plain: no Accept-Encoding; gzip: 'Accept-Encoding: gzip'; br: 'Accept-Encoding: gzip, br' (feedsmith sends ${enc[feedsmith.gzip, br]}, nginx ${enc[nginx.gzip, br]}); 304: If-None-Match of the server's ETag"
echo

# --- measurement -----------------------------------------------------------
server_pids() { # server log
  if [[ $1 == feedsmith ]]; then
    echo "${fs_pid[$2]}"
  else
    echo "$ngx_master" $(pgrep -P "$ngx_master")
  fi
}
# utime+stime, in clock ticks, summed over the processes of a server.
cpu_ticks() { # server log
  local total=0 pid f
  for pid in $(server_pids "$1" "$2"); do
    # Fields after the ")" that ends the command name: utime and stime are 12th and 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat")
    set -- $f
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

results=$work/results.tsv
if [[ -n $pace_ms ]]; then
  [[ $pace_ms =~ ^[0-9]+$ ]] || die "PACE_MS must be a whole number of milliseconds"
  printf 'function delay()\n  return %d\nend\n' "$pace_ms" >"$work/pace.lua"
fi
printf 'log\tsize\tcase\tconns\tserver\trun\treqs\trps\tp99_us\tcpu_ticks\terrors\twrk_ticks\tother_pct\n' >"$results"

run_wrk() { # server log size case conns seconds -> wrk output on stdout
  local server=$1 l=$2 s=$3 case=$4 conns=$5 secs=$6 hdr=() script=()
  case $case in
    plain) ;;
    gzip) hdr=(-H 'Accept-Encoding: gzip') ;;
    br) hdr=(-H 'Accept-Encoding: gzip, br') ;;
    304) hdr=(-H "If-None-Match: ${etag[$server.$l.$s]}") ;;
  esac
  [[ -n $pace_ms ]] && script=(-s "$work/pace.lua")
  local scraper='' rc=0
  if [[ $server == feedsmith && -n $scrape ]]; then
    # Prometheus's side of a 1 s scrape interval; its curl counts as "other".
    (while sleep 1; do curl -s -o /dev/null "$(base_of "$server" "$l")/metrics" || true; done) &
    scraper=$!
  fi
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${script[@]}" "${hdr[@]}" "$(base_of "$server" "$l")/feeds/bench-$s.rss" || rc=$?
  if [[ -n $scraper ]]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
  fi
  return "$rc"
}

measure() { # server log size case conns run
  local server=$1 l=$2 s=$3 case=$4 conns=$5 run=$6 before after m0 m1 c0 c1 text reqs rps p99 errors other
  wait_quiet
  m0=$(machine_ticks); children_ticks >"$work/c0"; before=$(cpu_ticks "$server" "$l")
  run_wrk "$server" "$l" "$s" "$case" "$conns" "$duration" >"$work/wrk.out"
  after=$(cpu_ticks "$server" "$l"); children_ticks >"$work/c1"; m1=$(machine_ticks)
  c0=$(<"$work/c0") c1=$(<"$work/c1")
  text=$(<"$work/wrk.out")
  # CPU of everything but this server and wrk, as percent of one core.
  other=$(( ((m1 - m0) - (after - before) - (c1 - c0)) * 100 / clk_tck / duration ))
  ((other < 0)) && other=0
  reqs=$(awk '/requests in/ {print $1}' <<<"$text")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$text")
  p99=$(awk '$1 == "99%" {v=$2; u=v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
            m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : -1;
            printf "%.0f", v * m}' <<<"$text")
  errors=$(awk '/Socket errors:/ {gsub(/[^0-9 ]/, ""); n=0; for (i=1;i<=NF;i++) n+=$i; print n} /Non-2xx or 3xx/ {print $NF}' <<<"$text" | awk '{s+=$1} END {print s+0}')
  [[ -n $reqs && -n $rps && -n $p99 ]] || { log "could not parse wrk output:"; log "$text"; exit 1; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$l" "$s" "$case" "$conns" "$server" "$run" "$reqs" "$rps" "$p99" \
    "$((after - before))" "$errors" "$((c1 - c0))" "$other" >>"$results"
  printf '  %-9s run %d: %9.0f req/s  p99 %8.2f ms  cpu %6.2f us/req  wrk %3d%%  other %3d%%%s\n' "$server" "$run" "$rps" \
    "$(awk -v p="$p99" 'BEGIN {print p / 1000}')" \
    "$(awk -v t="$((after - before))" -v n="$reqs" -v hz="$clk_tck" 'BEGIN {print t / hz * 1e6 / n}')" \
    "$(((c1 - c0) * 100 / clk_tck / duration))" "$other" \
    "$( ((errors)) && echo "  ($errors errors)")"
}

# Empties the log files so hours of runs do not fill the disk (both servers
# append, so they go on at the new end).
truncate_logs() {
  : >"$work/feedsmith-on.log"
  : >"$work/feedsmith-off.log"
  [[ -e $work/nginx-access.log ]] && : >"$work/nginx-access.log"
  return 0
}

if ((repeats > 0)); then
echo "== runs"
for l in $logs; do
  for s in $sizes; do
    for case in $cases; do
      for conns in $conns_list; do
        echo "-- logs $l, $s, $case, $conns connections"
        truncate_logs
        if ((warmup > 0)); then
          wait_quiet
          for server in feedsmith nginx; do run_wrk "$server" "$l" "$s" "$case" "$conns" "$warmup" >/dev/null; done
        fi
        for run in $(seq "$repeats"); do
          if ((run % 2)); then order="feedsmith nginx"; else order="nginx feedsmith"; fi
          for server in $order; do measure "$server" "$l" "$s" "$case" "$conns" "$run"; done
        done
        if [[ $l == on ]]; then
          # Both logs really were written: a line per request, warm-up included.
          sleep 0.5
          printf '  access log lines: feedsmith %s (dropped since start: %s), nginx %s\n' \
            "$(grep -cE '" [0-9]{3} [0-9]+ "' "$work/feedsmith-on.log" || true)" \
            "$(curl -fsS "${fs_base[on]}/healthz" | sed -n 's/.*"lines_dropped":\([0-9]*\).*/\1/p')" \
            "$(wc -l <"$work/nginx-access.log")"
        fi
      done
    done
  done
done

echo
echo "== summary (medians over $repeats runs per server; ratio = feedsmith/nginx of runs paired by repeat)"
python3 - "$results" "$clk_tck" "$quiet_limit" <<'PY'
import csv, math, statistics, sys

path, hz, quiet = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(path), delimiter="\t"))
cells = []
for r in rows:
    key = (r["log"], r["size"], r["case"], int(r["conns"]))
    if key not in cells:
        cells.append(key)

def runs(cell, server):
    rs = sorted((r for r in rows if (r["log"], r["size"], r["case"], int(r["conns"])) == cell and r["server"] == server),
                key=lambda r: int(r["run"]))
    return [dict(rps=float(r["rps"]), p99=int(r["p99_us"]) / 1000, reqs=int(r["reqs"]),
                 cpu=int(r["cpu_ticks"]) / hz * 1e6 / int(r["reqs"]), errors=int(r["errors"])) for r in rs]

med = statistics.median
label = {"plain": "plain 200", "gzip": "200 gzip", "br": "200 br", "304": "304"}
head = ("logs", "size", "case", "conns", "fs req/s", "nginx req/s", "ratio", "(min-max)", "fs p99 ms", "nginx p99 ms",
        "fs cpu us/req", "nginx cpu us/req", "cpu<=", "ratio>=.95")
line = "| " + " | ".join(["{:<4}", "{:<4}", "{:<9}", "{:>5}", "{:>9}", "{:>11}", "{:>5}", "{:>9}", "{:>9}", "{:>12}",
                         "{:>13}", "{:>16}", "{:>5}", "{:>10}"]) + " |"
print(line.format(*head))
print("|" + "|".join("-" * (len(line.format(*head).split("|")[i + 1])) for i in range(len(head))) + "|")
ratios, by_log, all_ok, errors, missed = [], {}, True, 0, []
for cell in cells:
    l, s, case, conns = cell
    fs, ng = runs(cell, "feedsmith"), runs(cell, "nginx")
    if not fs or not ng:
        continue
    pair = [a["rps"] / b["rps"] for a, b in zip(fs, ng)]
    ratio = med(pair)
    ratios.append(ratio)
    by_log.setdefault(l, []).append(ratio)
    fs_cpu, ng_cpu = med(x["cpu"] for x in fs), med(x["cpu"] for x in ng)
    fs_p99, ng_p99 = med(x["p99"] for x in fs), med(x["p99"] for x in ng)
    errors += sum(x["errors"] for x in fs + ng)
    ok = (fs_cpu <= ng_cpu, ratio >= 0.95)
    if not all(ok):
        missed.append(f"logs {l}, {s}, {label[case]}, {conns}")
    all_ok &= all(ok)
    yn = lambda b: "yes" if b else "NO"
    print(line.format(l, s, label[case], conns, f"{med(x['rps'] for x in fs):,.0f}", f"{med(x['rps'] for x in ng):,.0f}",
                      f"{ratio:.2f}", f"{min(pair):.2f}-{max(pair):.2f}", f"{fs_p99:.2f}", f"{ng_p99:.2f}",
                      f"{fs_cpu:.1f}", f"{ng_cpu:.1f}", *map(yn, ok)))
geo = lambda rs: math.exp(sum(map(math.log, rs)) / len(rs))
print()
for l, rs in by_log.items():
    print(f"logs {l}: geomean of the median req/s ratios over {len(rs)} cells: {geo(rs):.3f}")
print(f"all cells: geomean {geo(ratios):.3f} (target >= 1.0: {'yes' if geo(ratios) >= 1.0 else 'NO'})")
print(f"cells missing a per-cell target (cpu <= nginx, ratio >= 0.95): {len(missed)} of {len(ratios)}")
for m in missed:
    print(f"  {m}")
print(f"all targets met: {'yes' if all_ok and geo(ratios) >= 1.0 else 'NO'}")
noisy = [r for r in rows if int(r["other_pct"]) > 2 * quiet]
if noisy:
    print(f"WARNING: {len(noisy)} of {len(rows)} runs had other processes using more than {2 * quiet}% of a core "
          f"(max {max(int(r['other_pct']) for r in noisy)}%): those figures are unreliable")
else:
    print(f"background load: no run had other processes above {2 * quiet}% of a core "
          f"(max {max(int(r['other_pct']) for r in rows)}%)")
if errors:
    print(f"WARNING: wrk reported {errors} socket errors or unexpected statuses in total")
print("cpu = utime+stime of the server's processes / requests (median of runs); p99 from wrk --latency (median of runs)")
PY
fi

# --- optional profile -------------------------------------------------------
if [[ $profile == 1 ]]; then
  conns=${conns_list%% *} s=${sizes%% *} l=${logs%% *}
  for server in feedsmith nginx; do
    echo
    echo "== perf profile of $server, logs $l, $s, plain 200, $conns connections, ${duration}s"
    pids=$(server_pids "$server" "$l" | tr ' ' ',')
    wait_quiet
    run_wrk "$server" "$l" "$s" plain "$conns" "$((duration + 2))" >/dev/null &
    wrk_pid=$!
    sleep 1
    perf record -q -g -o "$work/perf.data" -p "$pids" -- sleep "$duration" >/dev/null 2>&1
    wait "$wrk_pid"
    echo "-- share of samples by object"
    perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
      awk '!/^#/ && NF >= 2 && $1 ~ /%$/ {printf "  %7s  %s\n", $1, $2}' | head -6
    echo "-- top symbols"
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 1 2>/dev/null |
      awk '!/^#/ && NF >= 4 && $1 ~ /%$/ {sym = $4; for (i = 5; i <= NF; i++) sym = sym " " $i; sub(/( +-)+ *$/, "", sym); printf "  %7s  %-18s %s\n", $1, $2, substr(sym, 1, 90)}' | head -20
  done
fi
echo
echo "saved to $out"
