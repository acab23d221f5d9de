-- The article store (PostgreSQL). This schema is also the interface for a CMS
-- that writes articles directly (README, "Writing articles from a CMS").
--
-- Revision contract: `store_state.revision` is the store-wide counter. Every
-- write that changes an article takes the next value and stores it on the row,
-- so "anything new since R?" reads one row and "what changed since R?" is a
-- range scan of `articles_revision`. The counter is a row, not a sequence: its
-- row lock serialises writers, so revisions become visible in order (a
-- sequence hands out numbers that commit out of order, and a reader that saw
-- revision 11 committed could miss 10 committing later). Identical writes take
-- no revision.

CREATE TABLE store_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    revision  BIGINT NOT NULL
);
INSERT INTO store_state (singleton, revision) VALUES (1, 0);

CREATE TABLE articles (
    id           TEXT PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,128}$'),
    revision     BIGINT NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'draft', 'withdrawn')),
    published_at TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    section      TEXT,
    section_key  TEXT,                          -- trimmed, lower-cased section, for filters
    url          TEXT NOT NULL,
    headline     TEXT NOT NULL,
    standfirst   TEXT,
    body_html    TEXT,
    authors      JSONB NOT NULL DEFAULT '[]',   -- [{name, email, url}]
    source       JSONB,                         -- {name, rights, url}
    tags         JSONB NOT NULL DEFAULT '[]',   -- ["tag", ...] as written
    image        JSONB,                         -- {url, caption, credit, mime_type, length}
    related      JSONB NOT NULL DEFAULT '[]',   -- [{title, url}]
    tag_keys     TEXT[] NOT NULL DEFAULT '{}',  -- trimmed, lower-cased tags, for filters
    author_keys  TEXT[] NOT NULL DEFAULT '{}',  -- trimmed, lower-cased author names
    content_hash BYTEA,                         -- set by feedsmith's importer to skip identical writes
    CHECK (updated_at >= published_at)
);

CREATE UNIQUE INDEX articles_revision ON articles (revision);
CREATE INDEX articles_newest ON articles (status, published_at DESC, id DESC);
CREATE INDEX articles_section_newest ON articles (status, section_key, published_at DESC, id DESC);
CREATE INDEX articles_tag_keys ON articles USING GIN (tag_keys);
CREATE INDEX articles_author_keys ON articles USING GIN (author_keys);

-- Direct writes (a CMS's INSERT or UPDATE): take the next revision and derive
-- the filter keys, unless nothing a feed shows changed. feedsmith's own
-- importer does this work itself, per batch, and says so with the
-- transaction-local setting `feedsmith.writer`.
CREATE FUNCTION feedsmith_article_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('feedsmith.writer', true) = 'on' THEN
        RETURN NEW;
    END IF;
    NEW.section_key := lower(btrim(NEW.section));
    NEW.tag_keys := ARRAY(SELECT DISTINCT lower(btrim(t)) FROM jsonb_array_elements_text(NEW.tags) AS t ORDER BY 1);
    NEW.author_keys := ARRAY(SELECT DISTINCT lower(btrim(a->>'name')) FROM jsonb_array_elements(NEW.authors) AS a
                             WHERE a->>'name' IS NOT NULL ORDER BY 1);
    IF TG_OP = 'UPDATE'
       AND (NEW.status, NEW.published_at, NEW.updated_at, NEW.section, NEW.url, NEW.headline,
            NEW.standfirst, NEW.body_html, NEW.authors, NEW.source, NEW.tags, NEW.image, NEW.related)
           IS NOT DISTINCT FROM
           (OLD.status, OLD.published_at, OLD.updated_at, OLD.section, OLD.url, OLD.headline,
            OLD.standfirst, OLD.body_html, OLD.authors, OLD.source, OLD.tags, OLD.image, OLD.related)
    THEN
        NEW.revision := OLD.revision;
        RETURN NEW;
    END IF;
    -- The row lock on store_state is held until commit: writers take turns.
    UPDATE store_state SET revision = revision + 1 WHERE singleton = 1 RETURNING revision INTO NEW.revision;
    NEW.content_hash := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER articles_write BEFORE INSERT OR UPDATE ON articles
    FOR EACH ROW EXECUTE FUNCTION feedsmith_article_write();

-- A deleted row leaves nothing for "what changed since R?" to find, so replicas
-- would keep serving it: withdraw articles instead.
CREATE FUNCTION feedsmith_article_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'articles are never deleted: set status = ''withdrawn'' on % instead', OLD.id
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER articles_no_delete BEFORE DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION feedsmith_article_delete();

-- Replicas LISTEN on this channel; the notification is delivered at commit.
CREATE FUNCTION feedsmith_articles_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('feedsmith_articles', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_notify AFTER INSERT OR UPDATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION feedsmith_articles_notify();
