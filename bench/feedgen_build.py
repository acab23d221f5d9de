#!/usr/bin/env python3
"""Builds RSS and Atom from a JSON Lines file of articles with Python's feedgen,
the reference point for feedsmith's builder (bench/builder_vs_feedgen.sh).

Usage: feedgen_build.py ARTICLES.jsonl [--runs N] [--no-extensions]

The articles are read and their dates parsed first (not timed), as feedsmith's
validated articles come to its builder. Then, for each format, the best of N
(default 5) wall times of a whole build is printed on stdout as `FORMAT SECONDS`,
like `bench/build_timing.rs`. A build is what feedsmith's `prepare` +
`build_format` do: sort newest first, make the `tag:` ids, set every field
feedgen supports on a fresh FeedGenerator, and serialise it (pretty-printed, as
feedsmith's output is).

Field mapping, per article (feed-level fields likewise mirror feedsmith's):
  title        <- headline
  link         <- url (rel=alternate, type=text/html); related links as
                  rel=related (Atom only: RSS has one link)
  enclosure    <- image: url, length, type, caption as title (RSS enclosure,
                  Atom link rel=enclosure)
  summary      <- standfirst (RSS description, Atom summary)
  content      <- body_html, type html (RSS content:encoded, Atom content)
  author       <- authors: name, email, uri (Atom; RSS <author> needs an email,
                  so names also go to dc:creator, as feedsmith writes them)
  category     <- section then tags, without repeats
  id / guid    <- tag:feeds.example.com,YYYY-MM-DD:{id} (guid isPermaLink=false)
  published    <- published_at (RSS pubDate)
  updated      <- updated_at
  rights       <- source.rights (Atom rights; RSS dc:rights)
  source       <- source name and url
  media        <- media:content url, type, medium=image, fileSize
With --no-extensions the dc: and media: extensions are not loaded (feedgen core
fields only), which shows what the extensions cost feedgen.
"""
import argparse
import json
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator

ZONE = ZoneInfo("Europe/Dublin")
TAG_AUTHORITY = "feeds.example.com"
BASE_URL = "https://feeds.example.com"
SITE_URL = "https://news.example.com/"


def parse_time(s):
    t = datetime.fromisoformat(s)
    return t if t.tzinfo is not None else t.replace(tzinfo=ZONE)


def load(path):
    articles = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            a = json.loads(line)
            a["published"] = parse_time(a["published_at"])
            a["updated"] = parse_time(a.get("updated_at") or a["published_at"])
            articles.append(a)
    return articles


def build(articles, fmt, extensions):
    ordered = sorted(articles, key=lambda a: (a["published"], a["id"]), reverse=True)
    self_url = f"{BASE_URL}/feeds/latest.{fmt}"
    fg = FeedGenerator()
    if extensions:
        fg.load_extension("dc")
        fg.load_extension("media")
    fg.id(self_url)
    fg.title("Latest news")
    fg.subtitle("The newest stories from every desk")
    # RSS's one channel link is the last link given, so the site's goes last.
    fg.link(href=self_url, rel="self", type=f"application/{fmt}+xml")
    fg.link(href=SITE_URL, rel="alternate", type="text/html")
    fg.author(name="Example News", uri=SITE_URL)
    fg.language("en-IE")
    fg.rights("© Example News")
    fg.logo("https://news.example.com/logo.png")
    fg.icon("https://news.example.com/icon.png")
    fg.generator("feedgen")
    fg.ttl(15)
    for c in ("World", "Business"):
        fg.category(term=c)
    updated = max((a["updated"] for a in ordered), default=datetime.fromtimestamp(0, timezone.utc))
    fg.updated(updated)
    fg.lastBuildDate(updated)

    for a in ordered:
        fe = fg.add_entry(order="append")
        published = a["published"]
        tag = f"tag:{TAG_AUTHORITY},{published.astimezone(timezone.utc):%Y-%m-%d}:{a['id']}"
        fe.id(tag)
        fe.guid(tag, permalink=False)
        fe.title(a["headline"])
        fe.link(href=a["url"], rel="alternate", type="text/html")
        for r in a.get("related") or []:
            fe.link(href=r["url"], rel="related", type="text/html", title=r["title"])
        image = a.get("image")
        if image:
            link = {"href": image["url"], "rel": "enclosure",
                    "type": image.get("mime_type") or "image/jpeg",
                    "length": str(image.get("length") or 0)}
            if image.get("caption"):
                link["title"] = image["caption"]
            fe.link(link)
        if a.get("standfirst"):
            fe.summary(a["standfirst"])
        if a.get("body_html"):
            fe.content(a["body_html"], type="html")
        for au in a.get("authors") or []:
            author = {"name": au["name"]}
            if au.get("email"):
                author["email"] = au["email"]
            if au.get("url"):
                author["uri"] = au["url"]
            fe.author(author)
        categories = []
        for c in [a.get("section")] + (a.get("tags") or []):
            if c and c not in categories:
                categories.append(c)
                fe.category(term=c)
        fe.published(published)
        fe.updated(a["updated"])
        source = a.get("source")
        if source:
            if source.get("rights"):
                fe.rights(source["rights"])
            if source.get("url"):
                fe.source(url=source["url"], title=source["name"])
        if extensions:
            names = [au["name"] for au in a.get("authors") or []]
            if names:
                fe.dc.dc_creator(names)
            if source and source.get("rights"):
                fe.dc.dc_rights(source["rights"])
            if image:
                media = {"url": image["url"], "medium": "image",
                         "type": image.get("mime_type") or "image/jpeg"}
                if image.get("length"):
                    media["fileSize"] = str(image["length"])
                fe.media.content(media, group=None)

    if fmt == "rss":
        return fg.rss_str(pretty=True)
    return fg.atom_str(pretty=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("articles")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-extensions", action="store_true")
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be at least 1")
    articles = load(args.articles)
    print(f"feedgen_build: {len(articles)} articles from {args.articles}", file=sys.stderr)
    for fmt in ("rss", "atom"):
        best = float("inf")
        size = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            doc = build(articles, fmt, not args.no_extensions)
            best = min(best, time.perf_counter() - start)
            size = len(doc)
            del doc
        print(f"feedgen_build: {fmt} {size} bytes", file=sys.stderr)
        print(f"{fmt} {best:.4f}", flush=True)


if __name__ == "__main__":
    main()
