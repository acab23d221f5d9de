#!/usr/bin/env python3
"""Writes N realistic articles (about 3 KB of body each, every field filled) as JSON Lines.

Usage: gen_articles.py N OUT.jsonl [--seed S] [--tags T] [--sections K]

  --seed S      random seed (default 1)
  --tags T      draw each article's 3 tags from T generated tags, tag-001 ..
                tag-T (zero-padded to at least 3 digits), instead of the 15
                named ones below: a large site's tag vocabulary (bench/scale.sh)
  --sections K  the first K of SECTIONS (2 to 12) instead of the first 6

Deterministic for a given N, seed, tags and sections, so runs are comparable;
without --tags and --sections the output is what it always was.
"""
import json
import random
import sys

# The first six are the default; --sections takes more.
SECTIONS = ["World", "Business", "Sport", "Culture", "Science", "Politics",
            "Opinion", "Travel", "Education", "Property", "Motoring", "Food"]
DEFAULT_SECTIONS = 6
TAGS = ["UN", "Russia", "Climate", "Energy", "Housing", "Elections", "Markets", "Health",
        "Transport", "Technology", "Ireland", "Europe", "Trade", "Weather", "Courts"]
NAMES = ["Aoife Brennan", "Ciarán Walsh", "Maeve Doherty", "Paul Lenz", "Sofia Marques",
         "Ingrid Halvorsen", "Niamh Fitzgerald", "Tomás Ó Briain", "Zoë O'Sullivan"]
AGENCIES = [("Northwire", "https://northwire.example.org/"), ("Meridian Wire", "https://meridianwire.example.net/")]
WORDS = ("the minister said on Thursday that talks would continue into next week while officials "
         "in several capitals cautioned against expecting a breakthrough before the summit "
         "analysts noted that markets had already priced in a delay & investors remained "
         "wary of <volatile> conditions ahead of the central bank's decision").split()


def paragraph(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def article(i, rng, sections=SECTIONS[:DEFAULT_SECTIONS], tags=TAGS):
    section = sections[i % len(sections)]
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    year = 2020 + (i // (28 * 12)) % 6
    hour = 6 + i % 14
    agency, agency_url = AGENCIES[i % 2]
    body = "".join(f"<p>{paragraph(rng, 50)}</p>" for _ in range(8))
    return {
        "id": f"{section.lower()}-{year}-{i:07d}",
        "url": f"https://news.example.com/{section.lower()}/{year}/{month:02d}/{day:02d}/story-{i}",
        "headline": paragraph(rng, 10)[:-1],
        "standfirst": paragraph(rng, 25),
        "body_html": body,
        "authors": [{"name": rng.choice(NAMES), "email": None, "url": None} for _ in range(1 + i % 2)],
        "source": {"name": agency, "rights": f"© {agency}, {year}", "url": agency_url},
        "section": section,
        "tags": rng.sample(tags, 3),
        "image": {"url": f"https://news.example.com/images/{i}.jpg", "caption": paragraph(rng, 12),
                  "credit": rng.choice(NAMES), "mime_type": "image/jpeg", "length": 40000 + i % 9000},
        "related": [{"title": paragraph(rng, 6), "url": f"https://news.example.com/related/{i}-{k}"} for k in range(2)],
        "published_at": f"{year}-{month:02d}-{day:02d}T{hour:02d}:{i % 60:02d}:00",
        "updated_at": f"{year}-{month:02d}-{day:02d}T{hour + 1:02d}:{i % 60:02d}:00",
        "status": "published",
    }


def tag_names(t):
    """The generated tag vocabulary of --tags T: tag-001 .. tag-T."""
    width = max(3, len(str(t)))
    return [f"tag-{k:0{width}d}" for k in range(1, t + 1)]


def usage(why):
    sys.exit(f"gen_articles.py: {why}\nusage: gen_articles.py N OUT.jsonl [--seed S] [--tags T] [--sections K]")


def main():
    if len(sys.argv) < 3:
        usage("N and OUT.jsonl are required")
    n = int(sys.argv[1])
    out = sys.argv[2]
    opts = {"--seed": 1, "--tags": 0, "--sections": DEFAULT_SECTIONS}
    rest = sys.argv[3:]
    if len(rest) % 2:
        usage(f"{rest[-1]} needs a value")
    for flag, value in zip(rest[::2], rest[1::2]):
        if flag not in opts or not value.isdigit():
            usage(f"unknown option or not a whole number: {flag} {value}")
        opts[flag] = int(value)
    if not 2 <= opts["--sections"] <= len(SECTIONS):
        usage(f"--sections must be 2 to {len(SECTIONS)}")
    if opts["--tags"] and opts["--tags"] < 3:
        usage("--tags must be at least 3 (each article has 3 tags)")
    sections = SECTIONS[:opts["--sections"]]
    tags = tag_names(opts["--tags"]) or TAGS
    rng = random.Random(opts["--seed"])
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(article(i, rng, sections, tags), ensure_ascii=False))
            f.write("\n")


if __name__ == "__main__":
    main()
