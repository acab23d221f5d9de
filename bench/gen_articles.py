#!/usr/bin/env python3
"""Writes N realistic articles (about 3 KB of body each, every field filled) as JSON Lines.

Usage: gen_articles.py N OUT.jsonl [--seed S]

Deterministic for a given N and seed, so runs are comparable.
"""
import json
import random
import sys

SECTIONS = ["World", "Business", "Sport", "Culture", "Science", "Politics"]
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


def article(i, rng):
    section = SECTIONS[i % len(SECTIONS)]
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
        "tags": rng.sample(TAGS, 3),
        "image": {"url": f"https://news.example.com/images/{i}.jpg", "caption": paragraph(rng, 12),
                  "credit": rng.choice(NAMES), "mime_type": "image/jpeg", "length": 40000 + i % 9000},
        "related": [{"title": paragraph(rng, 6), "url": f"https://news.example.com/related/{i}-{k}"} for k in range(2)],
        "published_at": f"{year}-{month:02d}-{day:02d}T{hour:02d}:{i % 60:02d}:00",
        "updated_at": f"{year}-{month:02d}-{day:02d}T{hour + 1:02d}:{i % 60:02d}:00",
        "status": "published",
    }


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seed" else 1
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(article(i, rng), ensure_ascii=False))
            f.write("\n")


if __name__ == "__main__":
    main()
