-- When a published article was withdrawn, so the feeds that listed it can
-- carry an RFC 6721 tombstone (`at:deleted-entry`) with that time. A trigger
-- keeps it for every writer, feedsmith's importer and a CMS writing rows
-- directly alike: only a change from 'published' to 'withdrawn' sets it (an
-- article withdrawn before it was ever published was never listed, and its id
-- must not leak), a withdrawn row keeps it, and any other status clears it;
-- a new row never has one. Number 0005 because the WebSub tables, built beside
-- this, take 0004.

ALTER TABLE articles ADD COLUMN withdrawn_at TIMESTAMPTZ;

CREATE FUNCTION feedsmith_withdrawn_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.withdrawn_at := NULL;
    ELSIF NEW.status = 'withdrawn' AND OLD.status = 'published' THEN
        NEW.withdrawn_at := statement_timestamp();
    ELSIF NEW.status = 'withdrawn' THEN
        NEW.withdrawn_at := OLD.withdrawn_at;
    ELSE
        NEW.withdrawn_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER articles_withdrawn_at BEFORE INSERT OR UPDATE ON articles
    FOR EACH ROW EXECUTE FUNCTION feedsmith_withdrawn_at();
