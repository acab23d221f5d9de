-- The article store (SQLite). Times are microseconds since the Unix epoch, UTC.
--
-- Revision contract: `store_state.revision` is the store-wide counter. Every
-- write that changes an article takes the next value and stores it on the row,
-- so "anything new since R?" reads one row and "what changed since R?" is a
-- range scan of `articles_revision`. Identical re-imports write nothing.

CREATE TABLE store_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO store_state (singleton, revision) VALUES (1, 0);

CREATE TABLE articles (
    id           TEXT PRIMARY KEY NOT NULL,
    revision     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('published', 'draft', 'withdrawn')),
    published_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    section      TEXT,
    section_key  TEXT,              -- trimmed, lower-cased section, for filters
    url          TEXT NOT NULL,
    headline     TEXT NOT NULL,
    standfirst   TEXT,
    body_html    TEXT,
    authors      TEXT NOT NULL,     -- JSON array of {name, email, url}
    source       TEXT,              -- JSON {name, rights, url}
    tags         TEXT NOT NULL,     -- JSON array of strings, as written
    image        TEXT,              -- JSON {url, caption, credit, mime_type, length}
    related      TEXT NOT NULL,     -- JSON array of {title, url}
    content_hash BLOB NOT NULL      -- sha256 of the canonical article, to skip identical writes
);

CREATE UNIQUE INDEX articles_revision ON articles (revision);
CREATE INDEX articles_newest ON articles (status, published_at DESC, id DESC);
CREATE INDEX articles_section_newest ON articles (status, section_key, published_at DESC, id DESC);

-- Filter tables: one row per (article, tag) and (article, author), carrying the
-- article's status and publish time so a tag- or author-driven feed walks one
-- index in order and stops after `limit` rows.
CREATE TABLE article_tags (
    article_id   TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag_key      TEXT NOT NULL,
    status       TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (article_id, tag_key)
) WITHOUT ROWID;
CREATE INDEX article_tags_newest ON article_tags (tag_key, status, published_at DESC, article_id DESC);

CREATE TABLE article_authors (
    article_id   TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_key   TEXT NOT NULL,
    status       TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (article_id, author_key)
) WITHOUT ROWID;
CREATE INDEX article_authors_newest ON article_authors (author_key, status, published_at DESC, article_id DESC);
