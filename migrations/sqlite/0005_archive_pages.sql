-- Archived feeds (RFC 5005): where each complete page of a feed's archive
-- ends. Page N holds the feed's articles newer than page N-1's `newest` key and
-- up to its own, so a page keeps its contents when stories arrive, and a
-- withdrawal or an edit inside it changes that page alone. Bounds are written
-- once (a replica that seals the same page later keeps the first bounds) and
-- belong to a `scope` (the feed's filter and page size): a feed whose scope
-- changes starts its archive afresh.

CREATE TABLE archive_pages (
    feed              TEXT NOT NULL,
    page              INTEGER NOT NULL,   -- 1 = the oldest page
    scope             TEXT NOT NULL,
    newest_published  INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    newest_id         TEXT NOT NULL,
    PRIMARY KEY (feed, page)
);
