#!/usr/bin/env python3
"""Helpers of bench/soak.sh: a slowloris, an ETag refresher and the report.

Usage:
  soak_helper.py slowloris --port P --conns N --byte-ms MS --events FILE
      Keeps N connections to 127.0.0.1:P, each sending a request head that
      never ends, one byte every MS ms. Each connection the server closes is
      reopened at once. Until SIGTERM/SIGINT. One line per event in FILE
      (tab-separated): close EPOCH LIFETIME_S HOW BYTES_SENT (HOW: the status
      line's code if the server answered before closing, else eof or reset),
      connect_error EPOCH REASON, status EPOCH OPEN CLOSES CONNECT_ERRORS every
      5 s, and open_at_end EPOCH AGE_S for each connection still open at the end.
  soak_helper.py etags --port P --paths FILE --out FILE [--every S]
      Every S seconds (default 1), HEADs each path of FILE (lines "INDEX PATH")
      with `Accept-Encoding: gzip, br` and writes "INDEX ETAG" lines to OUT
      (atomically), so wrk's conditional requests carry a current ETag as a
      feed reader's would. Until SIGTERM/SIGINT; then prints one summary line.
  soak_helper.py report WORK_DIR
      Reads what bench/soak.sh left in WORK_DIR (see the names below), prints
      the per-minute table and the summary against the targets, and exits 1 if
      a target is missed.

Only 127.0.0.1 is contacted.
"""
import asyncio
import http.client
import json
import math
import os
import random
import re
import resource
import signal
import statistics
import sys
import time


def arg(args, name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    if default is None:
        sys.exit(f"soak_helper: missing {name}")
    return default


# --- slowloris ----------------------------------------------------------------

def head_bytes(port):
    """A request head that never ends: a request line, then header lines forever."""
    start = f"GET /feeds/latest.rss HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: soak-slowloris\r\n"
    yield from start.encode()
    n = 0
    while True:
        n += 1
        yield from f"X-Slow-{n}: {n}\r\n".encode()


async def slowloris(port, conns, byte_s, events_path, source, reopen_s):
    # Each connection is a socket: 1000 of them need more than the usual 1024 fds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = conns + 100
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    events = open(events_path, "a", buffering=1 << 16)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state = {"open": 0, "closes": 0, "connect_errors": 0}
    opened_at = {}

    async def one(slot):
        # Spread the first opens over a few seconds rather than flood the backlog.
        await asyncio.sleep(slot / 250)
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            except OSError as e:
                state["connect_errors"] += 1
                events.write(f"connect_error\t{time.time():.3f}\t{type(e).__name__}: {e}\n")
                await asyncio.sleep(1)
                continue
            t0 = time.monotonic()
            opened_at[slot] = t0
            state["open"] += 1
            sent = 0

            async def send():
                nonlocal sent
                # A random phase, so the bytes of 1000 connections do not arrive in bursts.
                await asyncio.sleep(random.uniform(0, byte_s))
                for b in head_bytes(port):
                    writer.write(bytes([b]))
                    await writer.drain()
                    sent += 1
                    await asyncio.sleep(byte_s)

            async def receive():
                data = await reader.read(4096)
                if not data:
                    return "eof"
                m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                return m.group(1).decode() if m else "data"

            tasks = [asyncio.ensure_future(send()), asyncio.ensure_future(receive())]
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait(tasks + [stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in tasks + [stopper]:
                t.cancel()
            how = None
            if tasks[1] in done and not tasks[1].cancelled():
                exc = tasks[1].exception()
                how = "reset" if exc else tasks[1].result()
            elif tasks[0] in done and not tasks[0].cancelled():
                exc = tasks[0].exception()
                how = "reset" if exc else "eof"
            state["open"] -= 1
            opened_at.pop(slot, None)
            try:
                writer.close()
            except OSError:
                pass
            if how is None:  # stopping
                events.write(f"open_at_end\t{time.time():.3f}\t{time.monotonic() - t0:.3f}\n")
                return
            state["closes"] += 1
            events.write(f"close\t{time.time():.3f}\t{time.monotonic() - t0:.3f}\t{how}\t{sent}\n")
            # Reopen on the next tick, as slowloris tools do, rather than in a
            # tight loop (which would be a connection flood, another attack).
            await asyncio.sleep(reopen_s)

    async def status():
        while not stop.is_set():
            events.write(f"status\t{time.time():.3f}\t{state['open']}\t{state['closes']}\t{state['connect_errors']}\n")
            events.flush()
            try:
                await asyncio.wait_for(stop.wait(), 5)
            except asyncio.TimeoutError:
                pass

    await asyncio.gather(status(), *(one(i) for i in range(conns)))
    events.write(f"status\t{time.time():.3f}\t{state['open']}\t{state['closes']}\t{state['connect_errors']}\n")
    events.close()


# --- ETag refresher --------------------------------------------------------------

def etags(port, paths_file, out, every):
    entries = []
    for line in open(paths_file):
        idx, path = line.split()
        entries.append((idx, path))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    conn = None
    rounds = failures = 0
    reasons = {}
    while not stopping:
        started = time.monotonic()
        lines = []
        for idx, path in entries:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("HEAD", path, headers={"Accept-Encoding": "gzip, br"})
                r = conn.getresponse()
                r.read()
                tag = r.getheader("ETag")
                if r.status == 200 and tag:
                    lines.append(f"{idx} {tag}\n")
                else:
                    failures += 1
                    reasons[f"status {r.status}"] = reasons.get(f"status {r.status}", 0) + 1
            except (OSError, http.client.HTTPException) as e:
                failures += 1
                reasons[type(e).__name__] = reasons.get(type(e).__name__, 0) + 1
                conn = None
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, out)
        rounds += 1
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
    print(f"etag refresher: {rounds} rounds of {len(entries)} HEAD requests, {failures} failed{' (' + detail + ')' if detail else ''}")


# --- report --------------------------------------------------------------------------

def read_wrk(path):
    """The numbers the wrk Lua script's done() wrote."""
    r = {"statuses": {}, "lat": [], "errors": {}}
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "lat":
            r["lat"].append((int(f[1]), int(f[2])))
        elif f[0] == "status":
            r["statuses"][int(f[1])] = r["statuses"].get(int(f[1]), 0) + int(f[2])
        elif f[0] == "errors":
            r["errors"] = dict(zip(("connect", "read", "write", "status", "timeout"), map(int, f[1:6])))
        else:
            r[f[0]] = int(f[1])
    r["socket_errors"] = sum(v for k, v in r["errors"].items() if k != "status")
    r["bad_status"] = sum(n for s, n in r["statuses"].items() if not 200 <= s < 400)
    r["errors_total"] = r["socket_errors"] + r["bad_status"]
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r.get("duration_us") else 0.0
    return r


def percentile(hist, q):
    """Nearest-rank percentile (q in 0..100) of a [(value, count)] histogram, in µs."""
    total = sum(c for _, c in hist)
    if total == 0:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for v, c in sorted(hist):
        seen += c
        if seen >= rank:
            return v
    return sorted(hist)[-1][0]


def ms(us):
    return f"{us / 1000:.2f}"


def tsv(path):
    if not os.path.exists(path):
        return []
    return [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]


def slope(xs, ys):
    """Least-squares slope of ys over xs."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LINE = re.compile(r"^\S+\s+(ERROR|WARN)\s+([\w:]+):\s+(.*)$")
FIELD = re.compile(r"\s+[A-Za-z_][\w.]*=")


def report(work):
    env = json.load(open(os.path.join(work, "report-env.json")))
    hz = env["clk_tck"]
    failures = []

    def target(ok, text):
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
        if not ok:
            failures.append(text)

    base = read_wrk(os.path.join(work, "baseline.wrk"))
    base_p50, base_p99 = percentile(base["lat"], 50), percentile(base["lat"], 99)

    slices = [dict(idx=int(r[0]), start=float(r[1]), end=float(r[2]), wrk=read_wrk(r[3])) for r in tsv(os.path.join(work, "slices.tsv"))]
    samples = {int(r[0]): dict(t=float(r[1]), rss=int(r[2]), hwm=int(r[3]), fds=int(r[4]), threads=int(r[5]),
                               cpu=int(r[6]), machine=int(r[7]), ours=int(r[8])) for r in tsv(os.path.join(work, "samples.tsv"))}
    events = tsv(os.path.join(work, "slowloris.events"))
    closes = [(float(e[1]), float(e[2]), e[3], int(e[4])) for e in events if e[0] == "close"]
    connect_errors = [(float(e[1]), e[2]) for e in events if e[0] == "connect_error"]
    open_at_end = [float(e[2]) for e in events if e[0] == "open_at_end"]
    status_lines = [(float(e[1]), int(e[2])) for e in events if e[0] == "status"]
    writes = [dict(n=int(r[0]), t=float(r[1]), kind=r[2], id=r[3], rc=int(r[4]), ms=int(r[5])) for r in tsv(os.path.join(work, "writes.tsv"))]
    reloads = [dict(n=int(r[0]), t=float(r[1]), kind=r[2], ok=r[3] == "ok", detail=r[4]) for r in tsv(os.path.join(work, "reloads.tsv"))]
    checks = [dict(name=r[0], ok=r[1] == "ok", detail=r[2]) for r in tsv(os.path.join(work, "checks.tsv"))]
    # VmRSS and fds every 5 s: one sample a minute would catch whatever a
    # rebuild happened to hold at that instant; the minute's median does not.
    monitor = [(float(r[0]), int(r[1]), int(r[2])) for r in tsv(os.path.join(work, "monitor.tsv"))]
    for i, s in enumerate(slices):
        nxt = slices[i + 1]["start"] if i + 1 < len(slices) else s["end"] + 1
        ms_ = [m for m in monitor if s["start"] <= m[0] < nxt]
        if s["idx"] in samples and ms_:
            samples[s["idx"]].update(rss_med=statistics.median(m[1] for m in ms_), rss_min=min(m[1] for m in ms_),
                                     rss_max=max(m[1] for m in ms_), fds_med=statistics.median(m[2] for m in ms_),
                                     fds_min=min(m[2] for m in ms_), fds_max=max(m[2] for m in ms_))

    # --- per minute
    print("== per minute (wrk slices back to back)")
    head = ("min", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "304 %", "VmRSS MB", "(min-max)", "VmHWM MB", "fds",
            "(min-max)", "threads", "srv CPU %", "writes", "reloads", "slow closes", "slow open", "other %")
    widths = [3, 7, 6, 7, 7, 6, 5, 8, 11, 8, 5, 11, 7, 9, 6, 7, 11, 9, 7]
    fmt = "| " + " | ".join(f"{{:>{w}}}" for w in widths) + " |"
    print(fmt.format(*head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    s0 = samples.get(0)
    if s0:
        print(fmt.format("0", "", "", "", "", "", "", f"{s0['rss'] / 1024:.1f}", "", f"{s0['hwm'] / 1024:.1f}", s0["fds"], "",
                         s0["threads"], "", "", "", "", "", "") + "  (as the soak starts)")
    all_lat, total_req, total_dur = [], 0, 0
    statuses, errs = {}, {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    bad_status = 0
    noisy, over_2x = [], []
    for s in slices:
        w = s["wrk"]
        all_lat += w["lat"]
        total_req += w["requests"]
        total_dur += w["duration_us"]
        for k, v in w["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k in errs:
            errs[k] += w["errors"].get(k, 0)
        bad_status += w["bad_status"]
        cur, prev = samples.get(s["idx"]), samples.get(s["idx"] - 1)
        secs = s["end"] - s["start"]
        cpu = other = ""
        if cur and prev:
            dt = cur["t"] - prev["t"]
            cpu = f"{(cur['cpu'] - prev['cpu']) / hz / dt * 100:.0f}"
            o = ((cur["machine"] - prev["machine"]) - (cur["ours"] - prev["ours"])) / hz / dt * 100
            other = f"{max(0.0, o):.0f}"
            if o > env["noise_pct"]:
                noisy.append((s["idx"], o))
        p99 = percentile(w["lat"], 99)
        if p99 > 2 * base_p99:
            over_2x.append((s["idx"], p99))
        # A minute runs until the next slice starts (so the sampling gap between
        # slices belongs to one); after the last, events of the helpers
        # stopping belong to none.
        nxt = next((x["start"] for x in slices if x["idx"] == s["idx"] + 1), s["end"])
        in_slice = lambda t: s["start"] <= t < nxt
        n_closes = sum(1 for c in closes if in_slice(c[0]))
        opens = [o for t, o in status_lines if in_slice(t)]
        n_writes = sum(1 for x in writes if in_slice(x["t"]))
        n_reloads = sum(1 for x in reloads if in_slice(x["t"]))
        share304 = w["statuses"].get(304, 0) / w["requests"] * 100 if w["requests"] else 0
        print(fmt.format(s["idx"], f"{w['rps']:,.0f}", ms(percentile(w["lat"], 50)), ms(p99), ms(max((v for v, _ in w["lat"]), default=0)),
                         w["errors_total"], f"{share304:.0f}",
                         f"{cur['rss_med'] / 1024:.1f}" if cur and "rss_med" in cur else "?",
                         f"{cur['rss_min'] / 1024:.1f}-{cur['rss_max'] / 1024:.1f}" if cur and "rss_med" in cur else "",
                         f"{cur['hwm'] / 1024:.1f}" if cur else "?",
                         f"{cur['fds_med']:.0f}" if cur and "fds_med" in cur else "?",
                         f"{cur['fds_min']}-{cur['fds_max']}" if cur and "fds_med" in cur else "",
                         cur["threads"] if cur else "?", cpu, n_writes, n_reloads, n_closes,
                         f"{min(opens)}-{max(opens)}" if opens else "", other)
              + (f"  ({secs:.0f} s)" if abs(secs - env["slice"]) > 2 else ""))
    print(f"(p50/p99/max: latency of the paced wrk load; errors: socket errors + responses outside 2xx/3xx; "
          f"VmRSS, fds: median (min-max) of the server's, sampled every 5 s; VmHWM, threads: at the minute's end; "
          f"srv CPU: the server's utime+stime as % of one core; slow open: slowloris connections open, min-max of 5 s samples; "
          f"other: CPU used by processes outside this benchmark, % of one core)")

    soak_p50, soak_p99 = percentile(all_lat, 50), percentile(all_lat, 99)
    total_req_all = total_req
    soak_p999, soak_max = percentile(all_lat, 99.9), max((v for v, _ in all_lat), default=0)
    errors_total = sum(errs.values()) + bad_status
    print()
    print("== load")
    print(f"  baseline ({env['baseline']} s, no writes, reloads or slowloris): {base['requests']:,} requests, {base['rps']:,.0f} req/s, "
          f"p50 {ms(base_p50)} ms, p99 {ms(base_p99)} ms, max {ms(max(v for v, _ in base['lat']))} ms, "
          f"{base['errors_total']} errors, statuses {dict(sorted(base['statuses'].items()))}")
    marks = tsv(os.path.join(work, "baseline.cpu"))
    base_other = None
    if len(marks) == 2:
        (t0, m0, o0, c0), (t1, m1, o1, c1) = [[float(x) for x in m] for m in marks]
        base_other = max(0.0, ((m1 - m0) - (o1 - o0)) / hz / (t1 - t0) * 100)
        print(f"  baseline server CPU: {(c1 - c0) / hz / (t1 - t0) * 100:.0f}% of a core, "
              f"{(c1 - c0) / hz * 1e6 / base['requests']:.1f} µs per request; other processes: {base_other:.0f}% of a core")
    if samples.get(0) and slices and samples.get(slices[-1]["idx"]):
        a, b = samples[0], samples[slices[-1]["idx"]]
        print(f"  soak server CPU: {(b['cpu'] - a['cpu']) / hz / (b['t'] - a['t']) * 100:.0f}% of a core, "
              f"{(b['cpu'] - a['cpu']) / hz * 1e6 / max(1, total_req_all):.1f} µs per wrk request "
              f"(also serving the slowloris, the ETag refresher and the checks, and applying writes and reloads)")
        print(f"  the load tools (wrk, slowloris, imports, checks): {((b['ours'] - a['ours']) - (b['cpu'] - a['cpu'])) / hz / (b['t'] - a['t']) * 100:.0f}% of a core")
    print(f"  soak ({total_dur / 1e6:.0f} s): {total_req:,} requests, {total_req / (total_dur / 1e6):,.0f} req/s, "
          f"p50 {ms(soak_p50)} ms, p99 {ms(soak_p99)} ms, p99.9 {ms(soak_p999)} ms, max {ms(soak_max)} ms, "
          f"statuses {dict(sorted(statuses.items()))}")
    print(f"  soak errors: {errors_total} (connect {errs['connect']}, read {errs['read']}, write {errs['write']}, "
          f"timeout {errs['timeout']}, status outside 2xx/3xx {bad_status})")
    etag_line = open(os.path.join(work, "etags.summary")).read().strip() if os.path.exists(os.path.join(work, "etags.summary")) else "etag refresher: no summary"
    print(f"  {etag_line}")

    # --- writes
    print()
    print("== writes (one `feedsmith import` a second into the live store)")
    ok_writes = [x for x in writes if x["rc"] == 0]
    if writes:
        ims = [x["ms"] for x in writes]
        print(f"  {len(writes)} writes ({sum(1 for x in writes if x['kind'] == 'new')} new, "
              f"{sum(1 for x in writes if x['kind'] == 'update')} updates), {len(writes) - len(ok_writes)} failed; "
              f"import took median {statistics.median(ims):.0f} ms, max {max(ims)} ms")
    missed_ticks = env.get("missed_write_ticks", 0)
    if missed_ticks:
        print(f"  {missed_ticks} one-second ticks passed without a write (an import ran over its second)")

    # --- reloads
    print()
    print(f"== configuration reloads (every {env['reload_every']} s)")
    for kind in ("edit", "sighup", "invalid", "fix"):
        ks = [r for r in reloads if r["kind"] == kind]
        if ks:
            bad = [r for r in ks if not r["ok"]]
            print(f"  {kind:8} {len(ks):3} done, {len(bad)} not as expected" + "".join(f"\n    #{r['n']}: {r['detail']}" for r in bad[:5]))
    def times(pattern, kinds):
        xs = [int(m.group(1)) for r in reloads if r["kind"] in kinds for m in [re.search(pattern, r["detail"])] if m]
        return f"median {statistics.median(xs):.0f} ms, max {max(xs)} ms (n={len(xs)})" if xs else "no samples"
    gen_re, title_re, err_re = r"-> \d+ after (\d+) ms", r"title served after (\d+) ms", r"config error after (\d+) ms"
    print(f"  edit -> new generation: {times(gen_re, ('edit', 'fix'))}; -> new title served: {times(title_re, ('edit', 'fix'))}")
    print(f"  SIGHUP -> new generation: {times(gen_re, ('sighup',))}; invalid edit -> error in /healthz: {times(err_re, ('invalid',))}")
    for r in reloads:
        if r["kind"] in ("invalid", "fix"):
            print(f"  #{r['n']} {r['kind']}: {r['detail']}")

    # --- slowloris
    print()
    print(f"== slowloris ({env['slowloris']} connections, one byte every {env['slow_byte_ms']} ms, reopened when closed)")
    if closes:
        life = sorted(c[1] for c in closes)
        hows = {}
        for c in closes:
            hows[c[2]] = hows.get(c[2], 0) + 1
        soak_secs = total_dur / 1e6
        print(f"  {len(closes):,} closes by the server ({len(closes) / soak_secs * 60:,.0f}/min): "
              + ", ".join(f"{k}: {v:,}" for k, v in sorted(hows.items())))
        print(f"  time to be closed: median {statistics.median(life):.2f} s, p99 {life[max(0, math.ceil(0.99 * len(life)) - 1)]:.2f} s, "
              f"min {life[0]:.2f} s, max {life[-1]:.2f} s; bytes sent before the close: median "
              f"{statistics.median(c[3] for c in closes):.0f}")
    else:
        print("  the server closed none of them")
    if open_at_end:
        print(f"  {len(open_at_end)} open at the end, the oldest {max(open_at_end):.0f} s old")
    print(f"  {len(connect_errors)} connection attempts failed" + (
        f" (first: {connect_errors[0][1]})" if connect_errors else ""))

    # --- server log
    print()
    log_path = os.path.join(work, "server.log")
    size = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    print(f"== server log ({size / 1e6:,.0f} MB, {env.get('log_lines', '?'):,} lines; shipped default level: info incl. one access line per request)")
    panics = int(env.get("log_panics", 0))
    counts = {}
    for line in open(os.path.join(work, "log-warn-error.txt"), errors="replace"):
        line = ANSI.sub("", line.rstrip("\n"))
        m = LOG_LINE.match(line)
        if not m:
            continue
        level, tgt, rest = m.groups()
        msg = FIELD.split(rest, maxsplit=1)[0].strip() or rest
        counts[(level, tgt, msg)] = counts.get((level, tgt, msg), 0) + 1
    print(f"  panics: {panics}")
    if counts:
        for (level, tgt, msg), n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {n:7,} {level:5} {tgt}: {msg}")
    else:
        print("  no ERROR or WARN lines")
    print("  (the deliberate invalid edits produce `configuration error` and `configuration rejected` ERROR lines)")

    # --- noise
    if base_other is not None and base_other > env["noise_pct"]:
        print()
        print(f"WARNING: during the baseline other processes used {base_other:.0f}% of a core: its p99, the yardstick of the "
              f"latency target, is unreliable")
    if noisy:
        print()
        print(f"WARNING: in {len(noisy)} of {len(slices)} minutes other processes used more than {env['noise_pct']}% of a core "
              f"(max {max(o for _, o in noisy):.0f}% in minute {max(noisy, key=lambda x: x[1])[0]}): latency figures of those minutes are unreliable")

    # --- targets
    print()
    print("== targets")
    target(errors_total == 0 and base["errors_total"] == 0,
           f"0 errors: {errors_total} during the soak, {base['errors_total']} during the baseline")
    ratio = soak_p99 / base_p99 if base_p99 else float("inf")
    target(ratio <= 2.0, f"p99 within 2x of the unloaded p99: {ms(soak_p99)} ms over the whole soak against {ms(base_p99)} ms "
                         f"unloaded ({ratio:.2f}x)" + (f"; minutes over 2x: {', '.join(f'{i} ({ms(p)} ms)' for i, p in over_2x)}" if over_2x else "; no minute over 2x"))
    # Minute 1 is the warm-up (1000 slowloris connections opening, buffers
    # growing), so flat is judged after it: the median of minute 2, the first
    # minute after it, against the median of the last minute.
    mins = sorted(k for k in samples if k >= 1 and "rss_med" in samples[k])
    if len(mins) >= 3:
        ref, last = samples[mins[1]], samples[mins[-1]]
        end1 = samples[mins[0]]
        grow_kb = last["rss_med"] - ref["rss_med"]
        allowed_kb = max(ref["rss_med"] * env["rss_flat_pct"] / 100, env["rss_flat_mb"] * 1024)
        rss_slope = slope(mins[1:], [samples[k]["rss_med"] / 1024 for k in mins[1:]])
        peak = max(samples[k]["rss_max"] for k in mins[1:])
        target(grow_kb <= allowed_kb,
               f"VmRSS flat after minute 1 (median of minute {mins[1]} against the last minute's; growth at most "
               f"{env['rss_flat_pct']} % or {env['rss_flat_mb']} MB, whichever is larger): {ref['rss_med'] / 1024:.1f} MB -> "
               f"{last['rss_med'] / 1024:.1f} MB in minute {mins[-1]}: {grow_kb / 1024:+.1f} MB ({grow_kb / ref['rss_med'] * 100:+.1f} %); "
               f"trend {rss_slope:+.2f} MB/min; highest sample {peak / 1024:.1f} MB, VmHWM {last['hwm'] / 1024:.1f} MB")
        print(f"         (single samples at the end of minute 1 and of minute {mins[-1]}: {end1['rss'] / 1024:.1f} -> "
              f"{last['rss'] / 1024:.1f} MB, {(last['rss'] - end1['rss']) / 1024:+.1f} MB "
              f"({(last['rss'] - end1['rss']) / end1['rss'] * 100:+.1f} %); within minute 1 from {samples[0]['rss'] / 1024:.1f} MB)")
        grow_fd = last["fds_med"] - ref["fds_med"]
        allowed_fd = max(ref["fds_med"] * env["fd_flat_pct"] / 100, env["fd_flat_n"])
        target(grow_fd <= allowed_fd,
               f"open fds flat after minute 1 (median of minute {mins[1]} against the last minute's; growth at most "
               f"{env['fd_flat_pct']} % or {env['fd_flat_n']}, whichever is larger): {ref['fds_med']:.0f} -> {last['fds_med']:.0f} "
               f"in minute {mins[-1]}: {grow_fd:+.0f} ({grow_fd / ref['fds_med'] * 100:+.1f} %); samples from minute {mins[1]} on "
               f"{min(samples[k]['fds_min'] for k in mins[1:])}-{max(samples[k]['fds_max'] for k in mins[1:])}; "
               f"{samples[0]['fds']} as the soak started (no slowloris yet)")
        print(f"         (single samples at the end of minute 1 and of minute {mins[-1]}: {end1['fds']} -> {last['fds']} fds, "
              f"{last['fds'] - end1['fds']:+d}; threads {end1['threads']} -> {last['threads']})")
    else:
        print("  [n/a] VmRSS and fds flat after minute 1: needs at least 3 minutes (minute 1 is the warm-up, then two to compare)")
    target(len(writes) > 0 and len(ok_writes) == len(writes), f"every write imported: {len(ok_writes)} of {len(writes)}")
    target(len(reloads) > 0 and all(r["ok"] for r in reloads),
           f"every reload as expected (valid ones applied, invalid ones refused while serving went on, then fixed): "
           f"{sum(r['ok'] for r in reloads)} of {len(reloads)}")
    target(any(r["kind"] == "invalid" for r in reloads), "at least one invalid edit tried: "
           f"{sum(1 for r in reloads if r['kind'] == 'invalid')}")
    for c in checks:
        target(c["ok"], f"{c['name']}: {c['detail']}")
    target(panics == 0, f"no panic in the server log: {panics}")
    print()
    print(f"all targets met: {'yes' if not failures else 'NO (' + str(len(failures)) + ' missed)'}")
    return 0 if not failures else 1


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "slowloris":
        asyncio.run(slowloris(int(arg(args, "--port")), int(arg(args, "--conns")),
                              int(arg(args, "--byte-ms")) / 1000, arg(args, "--events"),
                              arg(args, "--from", "127.0.0.1"), float(arg(args, "--reopen-ms", "0")) / 1000))
    elif cmd == "etags":
        etags(int(arg(args, "--port")), arg(args, "--paths"), arg(args, "--out"), float(arg(args, "--every", "1")))
    elif cmd == "report":
        sys.exit(report(args[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
