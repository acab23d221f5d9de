#!/usr/bin/env bash
# How long upgrading a PostgreSQL store holds article writes: applies the
# first migration to a fresh schema, fills it with N articles straight in SQL
# (3 tags and 1 author each, keys as the importer stores them), then times each
# later migration, in one transaction as sqlx applies it.
# Usage: PG_URL=postgres://postgres@127.0.0.1:5432/test bench/pg_upgrade.sh [N]
# N defaults to 1 000 000. The schema is dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PG_URL:?set PG_URL to a PostgreSQL database where schemas may be created}"
n=${1:-1000000}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "pg_upgrade: N must be a positive whole number, not '$n'" >&2; exit 1; }
command -v psql >/dev/null || { echo "pg_upgrade: psql is required" >&2; exit 1; }
schema="feedsmith_upgrade_$$"
cleanup() { psql "$PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null || true; }
trap cleanup EXIT
psql "$PG_URL" -qc "CREATE SCHEMA $schema"

echo "pg_upgrade: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), PostgreSQL $(psql "$PG_URL" -Atc 'SHOW server_version'), $n articles"
{
  echo "SET search_path = $schema;"
  cat migrations/postgres/0001_articles.sql
  cat <<SQL
SET feedsmith.writer = 'on';
INSERT INTO articles (id, revision, published_at, updated_at, section, section_key, url, headline,
                      tags, tag_keys, authors, author_keys)
SELECT 'a' || g, g, timestamptz '2026-01-01' - g * interval '1 minute',
       timestamptz '2026-01-01' - g * interval '1 minute', 'World', 'world',
       'https://news.example.com/' || g, 'Headline ' || g,
       to_jsonb(k.tags), k.tags, jsonb_build_array(jsonb_build_object('name', 'Author ' || g % 200)),
       ARRAY['author ' || g % 200]
FROM generate_series(1, $n) AS g,
     LATERAL (SELECT ARRAY(SELECT DISTINCT 'tag' || t FROM unnest(ARRAY[g % 500, g * 7 % 500, g * 13 % 500]) AS t
                           ORDER BY 1) AS tags) AS k;
UPDATE store_state SET revision = $n;
ANALYZE articles;
SQL
} | psql "$PG_URL" -q -v ON_ERROR_STOP=1 >/dev/null
echo "filled: $(psql "$PG_URL" -Atc "SELECT count(*) || ' articles, ' || pg_size_pretty(pg_total_relation_size('$schema.articles')) FROM $schema.articles")"

for migration in migrations/postgres/*.sql; do
  [[ $(basename "$migration") == 0001_* ]] && continue
  start=$(date +%s.%N)
  { echo "SET search_path = $schema;"; echo "BEGIN;"; cat "$migration"; echo "COMMIT;"; } |
    psql "$PG_URL" -q -v ON_ERROR_STOP=1 >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'$(basename "$migration"): {$end - $start:.1f} s, in one transaction (article writes wait for it)')"
done
echo "filter rows: $(psql "$PG_URL" -Atc "SELECT (SELECT count(*) FROM $schema.article_tags) || ' tag rows, ' || (SELECT count(*) FROM $schema.article_authors) || ' author rows'")"
