#!/usr/bin/env python3
"""Helpers of bench/scale.sh: the site's feed files, and waiting until every
document answers 200.

  scale_helper.py layout --feeds F --tags T --sections K --dir DIR --paths FILE
      Writes F feed files into DIR (newest 50 each, every format): one per tag
      (up to T, about 30 % of F), one per section (up to K), tag x section
      pairs (section by section: every tag with World, then with Business, ...)
      and, when those run out, pairs of tags (an article with either of them).
      Tags and sections are bench/gen_articles.py's (--tags T --sections K).
      Writes every document's path (/feeds/NAME.EXT) to FILE, one a line, and
      prints "key value" lines: the number of feeds of each kind and the probe
      feed, the tag feed bench/scale.sh writes into.

  scale_helper.py served --base URL --paths FILE --ready FILE --pid-file FILE
                         [--timeout S] [--poll-ms MS]
      Started before the server: creates the --ready file once it is
      polling, and learns the server's PID and start time (microseconds of the
      epoch) from the --pid-file, "PID START_US", once the script has started
      it; so Python's own start-up is not in the figure. Polls until every
      path answers 200 to HEAD, over one keep-alive connection: the first path
      still pending every POLL_MS ms until it answers 200, then a sweep of the
      rest; paths that still do not answer 200 stay pending for the next
      round. The moment the last one answers, reads the server's CPU time
      (/proc/PID/stat) and VmRSS and VmHWM (/proc/PID/status). Prints "key
      value" lines (times in seconds since the server's start); progress goes
      to stderr every 10 s. Exits 1 if the timeout expired or the server
      exited.

  scale_helper.py verify --base URL --paths FILE
      GETs every path once, as a reader would (Accept-Encoding: gzip, br, the
      body read in full); each must answer 200 with a body of its
      Content-Length. Prints "key value" lines, among them a digest of every
      path's ETag (to compare two runs); exits 1 if any did not answer so.
"""
import argparse
import hashlib
import http.client
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_articles  # noqa: E402  (the tag and section vocabulary)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def out(key, value):
    print(f"{key} {value}", flush=True)


def layout(a):
    if a.feeds < 1:
        sys.exit("scale_helper: --feeds must be at least 1")
    tags = gen_articles.tag_names(a.tags)
    sections = gen_articles.SECTIONS[:a.sections]
    n_tag = min(a.tags, -(-a.feeds * 3 // 10))
    n_section = min(len(sections), a.feeds - n_tag)
    n_pair = min(len(tags) * len(sections), a.feeds - n_tag - n_section)
    n_tagpair = a.feeds - n_tag - n_section - n_pair
    # (i, i + d) for d = 1 .. (T - 1) / 2 names every unordered pair once.
    max_tagpair = len(tags) * ((len(tags) - 1) // 2)
    if n_tagpair > max_tagpair:
        sys.exit(f"scale_helper: {a.feeds} feeds need more than {a.tags} tags give "
                 f"(at most {n_tag + n_section + n_pair + max_tagpair}); raise TAGS")
    feeds = []  # (name, title, description, filter lines)

    def q(values):
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    for t in tags[:n_tag]:
        feeds.append((t, f"Tagged {t}", f"Every story tagged {t}", [f"tags = {q([t])}"]))
    for s in sections[:n_section]:
        feeds.append((f"section-{s.lower()}", s, f"Every {s} story", [f"sections = {q([s])}"]))
    for j in range(n_pair):
        s, t = sections[j // len(tags)], tags[j % len(tags)]
        feeds.append((f"{s.lower()}-{t}", f"{s}: {t}", f"{s} stories tagged {t}",
                      [f"sections = {q([s])}", f"tags = {q([t])}"]))
    for j in range(n_tagpair):
        i, d = j % len(tags), 1 + j // len(tags)
        t1, t2 = tags[i], tags[(i + d) % len(tags)]
        feeds.append((f"{t1}-or-{t2}", f"{t1} or {t2}", f"Stories tagged {t1} or {t2}",
                      [f"tags = {q([t1, t2])}"]))
    os.makedirs(a.dir, exist_ok=True)
    with open(a.paths, "w", encoding="utf-8") as paths:
        for name, title, description, filters in feeds:
            with open(os.path.join(a.dir, f"{name}.toml"), "w", encoding="utf-8") as f:
                f.write(f'title = "{title}"\ndescription = "{description}"\nlimit = 50\n')
                f.write('formats = ["rss", "atom", "json"]\n')
                f.write("\n".join(filters) + "\n")
            for ext in ("rss", "atom", "json"):
                paths.write(f"/feeds/{name}.{ext}\n")
    probe = tags[6] if n_tag >= 7 else tags[0]
    out("tag_feeds", n_tag)
    out("section_feeds", n_section)
    out("pair_feeds", n_pair)
    out("tagpair_feeds", n_tagpair)
    out("documents", 3 * len(feeds))
    out("probe_tag", probe)
    out("probe_feed", probe if n_tag else feeds[0][0])


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def proc_status(pid):
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                got[k] = int(v.split()[0])
    return got


class Client:
    """One keep-alive connection, reopened after any failure."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None
        self.requests = 0
        self.etag = None  # of the last response

    def request(self, method, path, headers=None):
        """(status, body length, Content-Length) or (None, error) on failure."""
        self.requests += 1
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.conn.request(method, path, headers=headers or {})
            r = self.conn.getresponse()
            body = r.read()
            length = r.getheader("Content-Length")
            self.etag = r.getheader("ETag")
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, len(body), length
        except (OSError, http.client.HTTPException) as e:
            self.close()
            self.etag = None
            return None, type(e).__name__, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by the script) is not serving.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pid_file(path):
    try:
        with open(path) as f:
            pid, start_us = f.read().split()
        return int(pid), int(start_us) / 1e6
    except (FileNotFoundError, ValueError):
        return None, None  # not written yet, or half-written


def served(a):
    paths = [p.strip() for p in open(a.paths) if p.strip()]
    poll = a.poll_ms / 1000
    client = Client(a.base)
    pid, start = None, None
    pending = paths
    last_not_ok = None  # when a path last answered something other than 200
    last_ok = None
    first_ok = None  # the first 200 of all
    last_status = None
    next_progress = None
    ok = True
    open(a.ready, "w").close()
    while pending:
        now = time.time()
        if pid is None:
            pid, start = read_pid_file(a.pid_file)
            if pid is not None:
                next_progress = start + 10
        if pid is not None:
            if now > start + a.timeout or not alive(pid):
                ok = False
                break
            if now >= next_progress:
                print(f"  {now - start:6.1f} s: {len(paths) - len(pending)} of {len(paths)} documents "
                      f"answer 200 (last answer to {pending[0]}: {last_status})", file=sys.stderr, flush=True)
                next_progress += 10
        status, *_ = client.request("HEAD", pending[0])
        last_status = status
        if status != 200:
            last_not_ok = time.time()
            time.sleep(poll)
            continue
        last_ok = time.time()
        if first_ok is None:
            first_ok = last_ok
        still = []
        for p in pending[1:]:
            status, *_ = client.request("HEAD", p)
            if status == 200:
                last_ok = time.time()
            else:
                last_not_ok = time.time()
                last_status = status
                still.append(p)
        pending = still
    while pid is None:  # served before the script wrote the file
        time.sleep(0.001)
        pid, start = read_pid_file(a.pid_file)
    # Read at once: the figures at the moment everything is served.
    if alive(pid):
        ticks = proc_ticks(pid)
        st = proc_status(pid)
        out("cpu_s", f"{ticks / CLK_TCK:.2f}")
        out("rss_kb", st.get("VmRSS", 0))
        out("hwm_kb", st.get("VmHWM", 0))
        out("threads", st.get("Threads", 0))
    out("documents", len(paths))
    out("requests", client.requests)
    if not ok:
        out("timed_out", 1 if alive(pid) else 0)
        out("exited", 0 if alive(pid) else 1)
        out("pending", len(pending))
        out("first_pending", pending[0])
        out("last_status", last_status)
        out("waited_s", f"{time.time() - start:.2f}")
        return 1
    out("served_s", f"{last_ok - start:.3f}")
    # A document once served stays served, so when the sweep that began with
    # the first 200 found every document served, they all were from then on:
    # the sweep's own length (one request at a time) is measurement, not wait.
    out("first_ok_s", f"{first_ok - start:.3f}")
    out("first_sweep_clean", 1 if client.requests and last_not_ok is None or
        (last_not_ok is not None and last_not_ok < first_ok) else 0)
    # The last answer that was not 200 (refusals before the server started do
    # not count): the moment everything was served lies between it and served_s.
    seen = last_not_ok is not None and last_not_ok >= start
    out("last_not_ok_s", f"{(last_not_ok - start):.3f}" if seen else "none")
    return 0


def verify(a):
    paths = [p.strip() for p in open(a.paths) if p.strip()]
    client = Client(a.base)
    failed, total_bytes, first_failed = 0, 0, ""
    etags = hashlib.sha256()
    for p in paths:
        status, length, declared = client.request("GET", p, {"Accept-Encoding": "gzip, br"})
        # The identity ETag, which depends on the store alone: which variant a
        # GET gets depends on how far background compression has come.
        client.request("HEAD", p)
        etags.update(f"{p} {client.etag}\n".encode())
        if status == 200 and declared is not None and int(declared) == length:
            total_bytes += length
        else:
            failed += 1
            first_failed = first_failed or f"{p}:{status}"
    out("verify_failed", failed)
    out("verify_first_failed", first_failed or "none")
    out("verify_bytes", total_bytes)
    out("etags_digest", etags.hexdigest()[:16])
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lay = sub.add_parser("layout")
    lay.add_argument("--feeds", type=int, required=True)
    lay.add_argument("--tags", type=int, required=True)
    lay.add_argument("--sections", type=int, required=True)
    lay.add_argument("--dir", required=True)
    lay.add_argument("--paths", required=True)
    srv = sub.add_parser("served")
    srv.add_argument("--base", required=True)
    srv.add_argument("--paths", required=True)
    srv.add_argument("--ready", required=True)
    srv.add_argument("--pid-file", required=True)
    srv.add_argument("--timeout", type=float, default=600)
    srv.add_argument("--poll-ms", type=int, default=50)
    ver = sub.add_parser("verify")
    ver.add_argument("--base", required=True)
    ver.add_argument("--paths", required=True)
    a = ap.parse_args()
    if a.cmd == "layout":
        layout(a)
        return 0
    if a.cmd == "verify":
        return verify(a)
    return served(a)


if __name__ == "__main__":
    sys.exit(main())
