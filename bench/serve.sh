#!/usr/bin/env bash
# Serving throughput, latency and CPU cost of `feedsmith serve` against nginx
# serving the very same published bytes from disk.
#
# Usage: bench/serve.sh
# Environment (all optional):
#   DURATION  seconds per wrk run (default 5)
#   REPEATS   runs per server per cell, servers alternating (default 5)
#   CONNS     connection counts to test (default "32 256")
#   CASES     cases to run, of "plain gzip 304" (default all three)
#   THREADS   wrk threads (default 2)
#   WARMUP    seconds of unmeasured load per server before each cell (default 1)
#   PACE_MS   if set, each connection waits this many ms after every response
#             before its next request (a wrk Lua delay), so both servers get the
#             same offered load and their p99 compares like for like; without
#             it wrk saturates whichever server is faster
#   ARTICLES  generated articles in the store (default 2000; the feed takes 50)
#   FEED      document to request (default latest.rss, about 220 KB with the default articles)
#   FS_PORT / NGX_PORT  ports on 127.0.0.1 (default 18080 / 18081)
#   PROFILE   1: afterwards, perf-record each server during one plain-200 run
#             at the first CONNS value and print its top symbols (REPEATS=0
#             with PROFILE=1 profiles only)
#   OUT       file to save the output to (default bench/results/serve-DATE.txt)
#   QUIET_LIMIT / QUIET_TIMEOUT  before each run, wait up to QUIET_TIMEOUT s
#             (default 300) until the machine is below QUIET_LIMIT % of one
#             core busy (default 10); each run reports what others used
#   CARGO_TARGET_DIR is honoured.
#
# What it does: builds feedsmith (release), imports ARTICLES generated articles
# (bench/gen_articles.py), starts `feedsmith serve`, which writes the published
# documents to its output dir; fetches feedsmith's own gzip and brotli variants
# and stores them beside the originals as .gz and .br (verified to decompress
# to the identity file), so both servers send byte-identical bodies; starts
# nginx (installed from Debian packages if missing, with the brotli_static
# module) on that folder with etag, gzip_static and brotli_static on; then for
# each case (plain 200; 200 with `Accept-Encoding: gzip, br`; 304 with each
# server's own ETag in If-None-Match) and each connection count runs wrk
# REPEATS times per server, alternating which server goes first. For every run
# it records req/s, p99 latency and the server's CPU time (utime+stime of all
# its processes from /proc, before and after) divided by the requests wrk
# counted. Prints a table of medians and the targets of the serving issue, and
# saves everything to bench/results/serve-DATE.txt.
#
# wrk shares the machine's cores with the server under test, so one run's req/s
# is noisy; CPU per request is the steadier figure. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

duration=${DURATION:-5}
repeats=${REPEATS:-5}
conns_list=${CONNS:-"32 256"}
cases=${CASES:-"plain gzip 304"}
threads=${THREADS:-2}
warmup=${WARMUP:-1}
articles=${ARTICLES:-2000}
feed=${FEED:-latest.rss}
fs_port=${FS_PORT:-18080}
ngx_port=${NGX_PORT:-18081}
profile=${PROFILE:-0}
pace_ms=${PACE_MS:-}
# shellcheck source=bench/lib.sh
. bench/lib.sh

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
fs_pid=
cleanup() {
  local rc=$?
  [[ -n $fs_pid ]] && kill "$fs_pid" 2>/dev/null && wait "$fs_pid" 2>/dev/null
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
log "building feedsmith (release)"
cargo build --release --quiet --locked
feedsmith=$target_dir/release/feedsmith

mkdir -p "$work/feeds" "$work/published"
chmod 755 "$work/published"
printf 'title = "Latest"\nlimit = 50\n' >"$work/feeds/latest.toml"
cat >"$work/feedsmith.toml" <<TOML
[server]
listen = "127.0.0.1:$fs_port"
base_url = "http://127.0.0.1:$fs_port"
[site]
title = "Bench News"
timezone = "Europe/Dublin"
[store]
url = "sqlite://$work/articles.db"
[output]
dir = "$work/published"
[feeds]
dir = "$work/feeds"
TOML
python3 bench/gen_articles.py "$articles" "$work/articles.jsonl"
RUST_LOG=warn "$feedsmith" --config "$work/feedsmith.toml" import "$work/articles.jsonl" </dev/null >/dev/null

RUST_LOG=warn "$feedsmith" --config "$work/feedsmith.toml" serve </dev/null >"$work/feedsmith.log" 2>&1 &
fs_pid=$!
fs_base=http://127.0.0.1:$fs_port
for i in $(seq 300); do
  curl -fsS -o /dev/null "$fs_base/healthz" 2>/dev/null && break
  kill -0 "$fs_pid" 2>/dev/null || { cat "$work/feedsmith.log"; log "feedsmith exited"; exit 1; }
  ((i < 300)) || { log "feedsmith did not come up"; exit 1; }
  sleep 0.1
done

pub=$work/published
[[ -s $pub/$feed ]] || { log "feedsmith did not publish $pub/$feed"; ls -l "$pub"; exit 1; }
url_path=/feeds/$feed
# The bytes feedsmith serves are the bytes it published.
curl -fsS "$fs_base$url_path" -o "$work/check.identity"
cmp -s "$work/check.identity" "$pub/$feed" || { log "served identity differs from $pub/$feed"; exit 1; }
# Its precompressed variants go beside the originals for nginx's *_static modules.
curl -fsS -H 'Accept-Encoding: gzip' "$fs_base$url_path" -o "$pub/$feed.gz"
curl -fsS -H 'Accept-Encoding: br' "$fs_base$url_path" -o "$pub/$feed.br"
gzip -dc "$pub/$feed.gz" | cmp -s - "$pub/$feed" || { log "feedsmith's gzip variant does not decompress to the document"; exit 1; }
brotli -dc "$pub/$feed.br" | cmp -s - "$pub/$feed" || { log "feedsmith's brotli variant does not decompress to the document"; exit 1; }
# Same bytes, same mtime for the three files.
touch -r "$pub/$feed" "$pub/$feed.gz" "$pub/$feed.br"
chmod 644 "$pub"/*

# --- nginx -----------------------------------------------------------------
# nginx adds the headers feedsmith sends that it would not send by itself.
cache_control=$(curl -fsS -o /dev/null -D - "$fs_base$url_path" | tr -d '\r' | sed -n 's/^cache-control: *//Ip')
have_brotli=0
[[ -e $brotli_module ]] && have_brotli=1
mkdir -p "$work/nginx-tmp"
{
  ((have_brotli)) && echo "load_module $brotli_module;"
  cat <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
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
  server {
    listen 127.0.0.1:$ngx_port;
    location /feeds/ {
      alias $pub/;
      add_header Cache-Control "${cache_control:-public, max-age=300}";
      add_header X-Content-Type-Options nosniff;
    }
  }
}
NGINX
} >"$work/nginx.conf"
"$nginx_bin" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" -t -q
"$nginx_bin" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf"
ngx_base=http://127.0.0.1:$ngx_port
for i in $(seq 100); do
  curl -fsS -o /dev/null "$ngx_base$url_path" 2>/dev/null && break
  ((i < 100)) || { log "nginx did not come up"; cat "$work/nginx-error.log"; exit 1; }
  sleep 0.1
done
ngx_master=$(cat "$work/nginx.pid")

# --- what each server answers ---------------------------------------------
headers() { curl -fsS -o "$work/body" -D - "$@" | tr -d '\r'; }
header() { sed -n "s/^$1: *//Ip"; }
etag_of() { headers "$1$url_path" | header etag; }
fs_etag=$(etag_of "$fs_base")
ngx_etag=$(etag_of "$ngx_base")
[[ -n $fs_etag && -n $ngx_etag ]] || { log "no ETag from a server"; exit 1; }

declare -A enc
for server in feedsmith nginx; do
  base=$fs_base etag=$fs_etag
  [[ $server == nginx ]] && base=$ngx_base etag=$ngx_etag
  plain=$(headers "$base$url_path")
  cmp -s "$work/body" "$pub/$feed" || { log "$server: plain body differs"; exit 1; }
  comp=$(headers -H 'Accept-Encoding: gzip, br' "$base$url_path")
  enc[$server]=$(header content-encoding <<<"$comp")
  case ${enc[$server]} in
    br) cmp -s "$work/body" "$pub/$feed.br" ;;
    gzip) cmp -s "$work/body" "$pub/$feed.gz" ;;
    *) false ;;
  esac || { log "$server: compressed body is not the published .${enc[$server]:-?} file"; exit 1; }
  status304=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base$url_path")
  [[ $status304 == 304 ]] || { log "$server: If-None-Match gave $status304, not 304"; exit 1; }
  echo "== $server: 200 headers"
  sed -n '1p;/^[A-Za-z-]*:/p' <<<"$plain"
  echo "   'Accept-Encoding: gzip, br' -> Content-Encoding: ${enc[$server]}, $(stat -c %s "$work/body") bytes"
  echo "   If-None-Match: $etag -> 304"
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
echo "feedsmith:   $rev, release build, RUST_LOG=warn, $(grep -c '^processor' /proc/cpuinfo) tokio workers (default)"
echo "nginx:       $("$nginx_bin" -v 2>&1 | sed 's/.*: //'), worker_processes 2, sendfile, etag, gzip_static$( ((have_brotli)) && echo ', brotli_static'), access_log off"
echo "wrk:         $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), -t$threads, ${duration}s per run, $repeats runs per server per cell, ${warmup}s warm-up"
[[ -n $pace_ms ]] && echo "pacing:      each connection waits ${pace_ms} ms after every response (equal offered load)"
echo "document:    $url_path: $(stat -c %s "$pub/$feed") bytes identity, $(stat -c %s "$pub/$feed.gz") gzip, $(stat -c %s "$pub/$feed.br") brotli ($articles articles stored, 50 in the feed)"
if [[ ${enc[feedsmith]} != "${enc[nginx]}" ]]; then
  echo "NOTE:        for 'gzip, br' feedsmith sends ${enc[feedsmith]} and nginx sends ${enc[nginx]} (no brotli module): the bodies differ in size"
fi
echo

# --- measurement -----------------------------------------------------------
server_pids() {
  if [[ $1 == feedsmith ]]; then
    echo "$fs_pid"
  else
    echo "$ngx_master" $(pgrep -P "$ngx_master")
  fi
}
# utime+stime, in clock ticks, summed over the processes of a server.
cpu_ticks() {
  local total=0 pid f
  for pid in $(server_pids "$1"); do
    # Fields after the ")" that ends the command name: utime and stime are 12th and 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat")
    set -- $f
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

results=$work/results.tsv
if [[ -n $pace_ms ]]; then
  [[ $pace_ms =~ ^[0-9]+$ ]] || { echo "PACE_MS must be a whole number of milliseconds" >&2; exit 2; }
  printf 'function delay()\n  return %d\nend\n' "$pace_ms" >"$work/pace.lua"
fi
printf 'case\tconns\tserver\trun\treqs\trps\tp99_us\tcpu_ticks\terrors\twrk_ticks\tother_pct\n' >"$results"

run_wrk() { # server case conns seconds -> wrk output on stdout
  local server=$1 case=$2 conns=$3 secs=$4 base=$fs_base etag=$fs_etag hdr=()
  [[ $server == nginx ]] && base=$ngx_base etag=$ngx_etag
  case $case in
    plain) ;;
    gzip) hdr=(-H 'Accept-Encoding: gzip, br') ;;
    304) hdr=(-H "If-None-Match: $etag") ;;
  esac
  local script=()
  [[ -n $pace_ms ]] && script=(-s "$work/pace.lua")
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${script[@]}" "${hdr[@]}" "$base$url_path"
}

measure() { # server case conns run
  local server=$1 case=$2 conns=$3 run=$4 before after m0 m1 c0 c1 text reqs rps p99 errors other
  wait_quiet
  m0=$(machine_ticks); children_ticks >"$work/c0"; before=$(cpu_ticks "$server")
  run_wrk "$server" "$case" "$conns" "$duration" >"$work/wrk.out"
  after=$(cpu_ticks "$server"); children_ticks >"$work/c1"; m1=$(machine_ticks)
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
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$conns" "$server" "$run" "$reqs" "$rps" "$p99" "$((after - before))" "$errors" "$((c1 - c0))" "$other" >>"$results"
  printf '  %-9s run %d: %9.0f req/s  p99 %8.2f ms  cpu %6.2f us/req  wrk %3d%%  other %3d%%%s\n' "$server" "$run" "$rps" \
    "$(awk -v p="$p99" 'BEGIN {print p / 1000}')" \
    "$(awk -v t="$((after - before))" -v n="$reqs" -v hz="$clk_tck" 'BEGIN {print t / hz * 1e6 / n}')" \
    "$(((c1 - c0) * 100 / clk_tck / duration))" "$other" \
    "$( ((errors)) && echo "  ($errors errors)")"
}

if ((repeats > 0)); then
echo "== runs"
for case in $cases; do
  for conns in $conns_list; do
    echo "-- $case, $conns connections"
    if ((warmup > 0)); then
      wait_quiet
      for server in feedsmith nginx; do run_wrk "$server" "$case" "$conns" "$warmup" >/dev/null; done
    fi
    for run in $(seq "$repeats"); do
      if ((run % 2)); then order="feedsmith nginx"; else order="nginx feedsmith"; fi
      for server in $order; do measure "$server" "$case" "$conns" "$run"; done
    done
  done
done

echo
echo "== summary (medians over $repeats runs per server; ratio = feedsmith/nginx of runs paired by repeat)"
python3 - "$results" "$clk_tck" "${enc[feedsmith]}" "${enc[nginx]}" "$quiet_limit" <<'PY'
import csv, math, statistics, sys

path, hz, enc_fs, enc_ngx, quiet = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = list(csv.DictReader(open(path), delimiter="\t"))
cells = []
for r in rows:
    key = (r["case"], int(r["conns"]))
    if key not in cells:
        cells.append(key)

def runs(case, conns, server):
    rs = sorted((r for r in rows if r["case"] == case and int(r["conns"]) == conns and r["server"] == server),
                key=lambda r: int(r["run"]))
    return [dict(rps=float(r["rps"]), p99=int(r["p99_us"]) / 1000, reqs=int(r["reqs"]),
                 cpu=int(r["cpu_ticks"]) / hz * 1e6 / int(r["reqs"]), errors=int(r["errors"])) for r in rs]

med = statistics.median
label = {"plain": "plain 200", "gzip": "200 gzip, br", "304": "304"}
head = ("case", "conns", "fs req/s", "nginx req/s", "ratio", "(min-max)", "fs p99 ms", "nginx p99 ms",
        "fs cpu us/req", "nginx cpu us/req", "cpu<=", "ratio>=.95", "p99<=")
line = "| " + " | ".join(["{:<12}", "{:>5}", "{:>9}", "{:>11}", "{:>5}", "{:>11}", "{:>9}", "{:>12}",
                         "{:>13}", "{:>16}", "{:>5}", "{:>10}", "{:>5}"]) + " |"
print(line.format(*head))
print("|" + "|".join("-" * (len(line.format(*head).split("|")[i + 1])) for i in range(len(head))) + "|")
ratios, all_ok, errors = [], True, 0
for case, conns in cells:
    fs, ng = runs(case, conns, "feedsmith"), runs(case, conns, "nginx")
    pair = [a["rps"] / b["rps"] for a, b in zip(fs, ng)]
    ratio = med(pair)
    ratios.append(ratio)
    fs_cpu, ng_cpu = med(x["cpu"] for x in fs), med(x["cpu"] for x in ng)
    fs_p99, ng_p99 = med(x["p99"] for x in fs), med(x["p99"] for x in ng)
    errors += sum(x["errors"] for x in fs + ng)
    ok = (fs_cpu <= ng_cpu, ratio >= 0.95, fs_p99 <= ng_p99)
    all_ok &= all(ok)
    yn = lambda b: "yes" if b else "NO"
    print(line.format(label[case], conns, f"{med(x['rps'] for x in fs):,.0f}", f"{med(x['rps'] for x in ng):,.0f}",
                      f"{ratio:.2f}", f"{min(pair):.2f}-{max(pair):.2f}", f"{fs_p99:.2f}", f"{ng_p99:.2f}",
                      f"{fs_cpu:.1f}", f"{ng_cpu:.1f}", *map(yn, ok)))
geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
print()
print(f"geomean of the median req/s ratios: {geo:.3f} (target >= 1.0: {'yes' if geo >= 1.0 else 'NO'})")
print(f"all per-cell targets met: {'yes' if all_ok else 'NO'}; all targets met: {'yes' if all_ok and geo >= 1.0 else 'NO'}")
noisy = [r for r in rows if int(r["other_pct"]) > 2 * quiet]
if noisy:
    print(f"WARNING: {len(noisy)} of {len(rows)} runs had other processes using more than {2 * quiet}% of a core "
          f"(max {max(int(r['other_pct']) for r in noisy)}%): those figures are unreliable")
else:
    print(f"background load: no run had other processes above {2 * quiet}% of a core "
          f"(max {max(int(r['other_pct']) for r in rows)}%)")
if errors:
    print(f"WARNING: wrk reported {errors} socket errors or unexpected statuses in total")
if enc_fs != enc_ngx:
    print(f"NOTE: 'gzip, br' cell: feedsmith sent {enc_fs}, nginx sent {enc_ngx}")
print("cpu = utime+stime of the server's processes / requests (median of runs); p99 from wrk --latency (median of runs)")
PY
fi

# --- optional profile -------------------------------------------------------
if [[ $profile == 1 ]]; then
  conns=${conns_list%% *}
  for server in feedsmith nginx; do
    echo
    echo "== perf profile of $server, plain 200, $conns connections, ${duration}s"
    pids=$(server_pids "$server" | tr ' ' ',')
    wait_quiet
    run_wrk "$server" plain "$conns" "$((duration + 2))" >/dev/null &
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
