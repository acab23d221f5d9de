-- When a published article was withdrawn, so the feeds that listed it can
-- carry an RFC 6721 tombstone (`at:deleted-entry`) with that time. Set by the
-- store, not the writer: only a change from 'published' to 'withdrawn' sets it
-- (an article withdrawn before it was ever published was never listed, and its
-- id must not leak), and going back to 'published' or 'draft' clears it.
-- Number 0004 because the WebSub tables, built beside this, take 0003.

ALTER TABLE articles ADD COLUMN withdrawn_at INTEGER; -- microseconds since the Unix epoch, UTC

-- An upsert's DO UPDATE sets status, so these fire for imports too; neither
-- sets status itself, so neither fires the other.
CREATE TRIGGER articles_withdrawn AFTER UPDATE OF status ON articles
    WHEN NEW.status = 'withdrawn' AND OLD.status = 'published'
BEGIN
    UPDATE articles SET withdrawn_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER)
        WHERE id = NEW.id;
END;

CREATE TRIGGER articles_reinstated AFTER UPDATE OF status ON articles
    WHEN NEW.status <> 'withdrawn' AND OLD.withdrawn_at IS NOT NULL
BEGIN
    UPDATE articles SET withdrawn_at = NULL WHERE id = NEW.id;
END;
