-- Pulled sources: what the fetcher remembers about each upstream feed across
-- restarts (validators, last success, last error, back-off, gone). One row per
-- source file name; `state` is a JSON document owned by feedsmith's `source`
-- module (see `store::SourceState`), never written by a CMS. A source whose
-- file is removed keeps its row, so re-adding the same URL resumes with its
-- validators; a changed URL starts afresh.

CREATE TABLE source_state (
    name  TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL
);
