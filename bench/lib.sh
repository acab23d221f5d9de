# Helpers the bench scripts share: the release build, clocks and CPU counters,
# and waiting for a quiet machine. Source it after setting `repo` and, for
# children_ticks, `work`; it defines functions and a few variables only.

target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=$target_dir/release/feedsmith
clk_tck=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }

# Builds the release binary unless SKIP_BUILD=1, then checks it is there.
build_release() {
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building feedsmith (release, CARGO_TARGET_DIR=$target_dir)"
    cargo build --release --quiet --locked --bin feedsmith || die "cargo build failed"
  fi
  [[ -x $bin ]] || die "no binary at $bin (build it, or unset SKIP_BUILD)"
}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Busy CPU of the whole machine, in clock ticks: user+nice+system+irq+softirq+steal.
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# User+system CPU of this shell's finished children (wrk, curl), in clock
# ticks. bash `times` must run in this shell, not in a $(...) subshell, so it
# goes through a file in $work.
children_ticks() {
  times >"$work/times"
  tail -1 "$work/times" | awk -v hz="$clk_tck" '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] } printf "%.0f", s * hz }'
}

# Waits until nothing else keeps the machine busy: others' builds and tests
# share the cores with the servers and wreck the figures. Gives up after
# QUIET_TIMEOUT seconds (default 300) and goes on; the runs' "other" column
# then shows it.
quiet_limit=${QUIET_LIMIT:-10}     # percent of one core
quiet_timeout=${QUIET_TIMEOUT:-300}
wait_quiet() {
  local start=$SECONDS a b said=0
  while :; do
    a=$(machine_ticks); sleep 0.5; b=$(machine_ticks)
    # ticks per 0.5 s -> percent of one core
    (((b - a) * 200 / clk_tck <= quiet_limit)) && break
    if ((!said)); then log "  (waiting for the machine to go quiet: $(((b - a) * 200 / clk_tck))% of a core busy)"; said=1; fi
    ((SECONDS - start < quiet_timeout)) || { log "  (still busy after ${quiet_timeout}s; measuring anyway)"; break; }
  done
}
