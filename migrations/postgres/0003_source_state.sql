-- Pulled sources: what the fetcher remembers about each upstream feed across
-- restarts (validators, last success, last error, back-off, gone). One row per
-- source file name; `state` is a JSON document owned by feedsmith's `source`
-- module (see `store::SourceState`), never written by a CMS. Kept as text, as
-- in the SQLite store, so both backends read it through one query. Writing it
-- changes no article, so it takes no store revision and notifies no replica.

CREATE TABLE source_state (
    name  TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL
);
