-- Per-value filter rows, so a tag or author feed walks one small index
-- newest-first and stops after N rows, however large the store grows.
--
-- With only the GIN indexes on `tag_keys`/`author_keys`, a feed for a tag on
-- tens of thousands of articles fetched every match and sorted them (126 ms at
-- 300 000 articles, about 0.7 s at 1 000 000). These rows repeat the article's
-- status and publication time, so the index holds everything the newest-N walk
-- needs. They are derived from `tag_keys`/`author_keys`: a CMS never writes
-- them; the trigger below (or feedsmith's importer, per batch) does.
--
-- Replicas of the previous version still running during an upgrade keep
-- working, but their tag and author feeds lose the GIN indexes dropped here
-- and are slow until those replicas are replaced.

-- The backfill takes seconds per million articles: a statement_timeout set in
-- the store URL for queries must not cancel it.
SET LOCAL statement_timeout = 0;

-- Writes wait while the rows are backfilled (reads go on), so no article
-- written meanwhile can be missed by both the backfill and the trigger.
LOCK TABLE articles IN SHARE ROW EXCLUSIVE MODE;

-- No foreign key to `articles`: articles are never deleted, and checking one
-- per row would make every import pay a lookup per tag. The indexes are built
-- after the backfill, which is several times faster than growing them row by row.
CREATE TABLE article_tags (
    article_id   TEXT NOT NULL,
    tag_key      TEXT NOT NULL,
    status       TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE article_authors (
    article_id   TEXT NOT NULL,
    author_key   TEXT NOT NULL,
    status       TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL
);

-- The importer and the write trigger store each key once per article; DISTINCT
-- keeps the primary keys below from failing the upgrade on a row written
-- some other way.
INSERT INTO article_tags (article_id, tag_key, status, published_at)
    SELECT DISTINCT a.id, k.key, a.status, a.published_at FROM articles a, unnest(a.tag_keys) AS k(key);
INSERT INTO article_authors (article_id, author_key, status, published_at)
    SELECT DISTINCT a.id, k.key, a.status, a.published_at FROM articles a, unnest(a.author_keys) AS k(key);

ALTER TABLE article_tags ADD PRIMARY KEY (article_id, tag_key);
CREATE INDEX article_tags_newest ON article_tags (tag_key, status, published_at DESC, article_id DESC);
ALTER TABLE article_authors ADD PRIMARY KEY (article_id, author_key);
CREATE INDEX article_authors_newest ON article_authors (author_key, status, published_at DESC, article_id DESC);

-- Filters now drive from the rows above; the GIN indexes only slowed writes.
DROP INDEX articles_tag_keys;
DROP INDEX articles_author_keys;

-- Rewrites the filter rows of the given articles from their stored keys. The
-- importer calls it once per batch (one round trip); the trigger below calls
-- it for a CMS write. Each statement of a volatile SQL function sees the
-- previous one's changes, so the inserts follow the deletes.
CREATE FUNCTION feedsmith_refresh_filter_rows(ids TEXT[]) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM article_tags WHERE article_id = ANY(ids);
    DELETE FROM article_authors WHERE article_id = ANY(ids);
    INSERT INTO article_tags (article_id, tag_key, status, published_at)
        SELECT a.id, k.key, a.status, a.published_at
        FROM articles a, unnest(a.tag_keys) AS k(key) WHERE a.id = ANY(ids)
        ON CONFLICT DO NOTHING;
    INSERT INTO article_authors (article_id, author_key, status, published_at)
        SELECT a.id, k.key, a.status, a.published_at
        FROM articles a, unnest(a.author_keys) AS k(key) WHERE a.id = ANY(ids)
        ON CONFLICT DO NOTHING;
$$;

-- Direct writes (and the first version's importer): rewrite the article's
-- filter rows when its keys, status or publication time changed.
CREATE FUNCTION feedsmith_article_filter_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.tag_keys, NEW.author_keys, NEW.status, NEW.published_at)
           IS NOT DISTINCT FROM (OLD.tag_keys, OLD.author_keys, OLD.status, OLD.published_at)
    THEN
        RETURN NULL;
    END IF;
    PERFORM feedsmith_refresh_filter_rows(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;

-- Who writes the filter rows: feedsmith's importer from this version on says
-- `feedsmith.writer = 'with-filter-rows'` and writes revisions, keys and rows
-- itself, so neither trigger runs for its rows (the WHEN clause skips them
-- before a trigger call is even queued). The importer of the first version
-- says 'on': it writes revisions and keys but knows nothing of these rows, so
-- during a rolling upgrade the trigger below writes them for it.
CREATE TRIGGER articles_filter_rows AFTER INSERT OR UPDATE ON articles
    FOR EACH ROW WHEN (current_setting('feedsmith.writer', true) IS DISTINCT FROM 'with-filter-rows')
    EXECUTE FUNCTION feedsmith_article_filter_rows();

DROP TRIGGER articles_write ON articles;
CREATE TRIGGER articles_write BEFORE INSERT OR UPDATE ON articles
    FOR EACH ROW WHEN (coalesce(current_setting('feedsmith.writer', true), '') NOT IN ('on', 'with-filter-rows'))
    EXECUTE FUNCTION feedsmith_article_write();
