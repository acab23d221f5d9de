-- WebSub: the hub's subscriptions, the last document each topic was announced
-- with, and the content deliveries still to make. Owned by feedsmith's
-- `websub` module; a CMS never writes here. Times are Unix milliseconds so
-- that both backends read them through one query. Writing here changes no
-- article, so it takes no store revision.

-- One verified subscription per (topic, callback): a renewal replaces it.
CREATE TABLE websub_subscriptions (
    topic         TEXT    NOT NULL,
    callback      TEXT    NOT NULL,
    callback_host TEXT    NOT NULL,
    secret        TEXT    NOT NULL, -- '' when the subscriber gave none
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (topic, callback)
);
CREATE INDEX websub_subscriptions_host ON websub_subscriptions (callback_host);
CREATE INDEX websub_subscriptions_expiry ON websub_subscriptions (expires_at);

-- The ETag each topic was last announced with: the replica that moves it
-- fans the change out, so replicas sharing the store announce it once.
CREATE TABLE websub_topics (
    topic TEXT PRIMARY KEY NOT NULL,
    etag  TEXT NOT NULL
);

-- One pending delivery per (kind, topic, target): a push of the document to a
-- subscriber, or a publish ping to an external hub. A newer change of the
-- topic replaces the pending one's ETag; `lease_until` is when a replica's
-- claim lapses.
CREATE TABLE websub_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    etag        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    not_before  INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    UNIQUE (kind, topic, target)
);
CREATE INDEX websub_deliveries_due ON websub_deliveries (not_before);
