//! The WebSub hub's rows, written once over SQL for both backends.
//!
//! This module owns the [`WebSubStore`] operations: verified subscriptions
//! keyed by (topic, callback), the ETag each topic was last announced with,
//! and the pending deliveries a replica claims with a lease. Deciding *once*
//! across replicas that share a store rests on two statements: moving a
//! topic's ETag is a compare-and-set, so only the replica that moves it fans
//! the change out; and a delivery is claimed by setting its lease, PostgreSQL
//! skipping rows another replica holds (`FOR UPDATE SKIP LOCKED`), SQLite
//! running the claim as one write. It never makes a request, verifies intent
//! or decides what a failure means: that is the `websub` module's job.

use async_trait::async_trait;
use futures_util::TryStreamExt;

use super::StoreError;
use super::codec::{ArticleRow, ColumnError, UpsertDialect};
use super::sql::{Backend, Bind};

/// A verified subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The feed URL subscribed to.
    pub topic: String,
    /// Where its content is delivered.
    pub callback: String,
    /// The callback's host, for the per-host limit.
    pub callback_host: String,
    /// The subscriber's `hub.secret`; empty when it gave none.
    pub secret: String,
    /// When the lease ends, in Unix milliseconds.
    pub expires_at: i64,
}

/// What a delivery row carries to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// The document, pushed to a subscriber's callback.
    Push,
    /// `hub.mode=publish`, sent to an external hub.
    Ping,
}

impl DeliveryKind {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Push => "push",
            DeliveryKind::Ping => "ping",
        }
    }
}

/// A claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The row's key.
    pub id: i64,
    /// Push or ping.
    pub kind: DeliveryKind,
    /// The feed URL that changed.
    pub topic: String,
    /// The callback (push) or the external hub (ping).
    pub target: String,
    /// The ETag of the document the change produced.
    pub etag: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When the change was first queued for this target, Unix milliseconds.
    pub first_at: i64,
}

/// The hub's figures, for `/healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebSubCounts {
    /// Subscriptions whose lease has not ended.
    pub subscriptions: i64,
    /// Deliveries queued (including those failing).
    pub deliveries_pending: i64,
    /// Queued deliveries that have failed at least once.
    pub deliveries_failing: i64,
}

/// The hub's storage. Times are Unix milliseconds.
#[async_trait]
pub trait WebSubStore: Send + Sync {
    /// The subscription of `callback` to `topic`, expired or not.
    async fn subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Saves a verified subscription, replacing (renewing) the same one.
    async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;

    /// Removes a subscription; whether there was one.
    async fn remove_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError>;

    /// Live subscriptions in all, and those whose callback is on `host`.
    async fn count_subscriptions(&self, host: &str, now: i64) -> Result<(i64, i64), StoreError>;

    /// Removes the subscriptions whose lease ended by `now`; how many.
    async fn expire_subscriptions(&self, now: i64) -> Result<u64, StoreError>;

    /// Records that `topic` is now published as `etag`. When that moves the
    /// stored ETag, queues a push to each live subscriber and a ping to each
    /// of `hubs`, and answers how many; `None` when another replica (or an
    /// earlier start) announced it already, or when the topic is new.
    async fn announce(
        &self,
        topic: &str,
        etag: &str,
        hubs: &[String],
        now: i64,
    ) -> Result<Option<u64>, StoreError>;

    /// Claims up to `limit` deliveries due by `now` that no one holds, until
    /// `lease_until`.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// A delivery of `etag` succeeded: it is done unless a newer change
    /// replaced its ETag meanwhile.
    async fn delivered(&self, id: i64, etag: &str) -> Result<(), StoreError>;

    /// Puts a claimed delivery back, due again at `not_before`; `failed`
    /// counts an attempt and records `error`.
    async fn retry_delivery(
        &self,
        id: i64,
        not_before: i64,
        failed: bool,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Drops a delivery for good.
    async fn drop_delivery(&self, id: i64) -> Result<(), StoreError>;

    /// The figures for `/healthz`.
    async fn counts(&self, now: i64) -> Result<WebSubCounts, StoreError>;
}

/// `$1, $2, …` or `?, ?, …`: `n` parameter markers from `first` on.
fn params<D: UpsertDialect>(first: usize, n: usize) -> Vec<String> {
    (first..first + n).map(D::param).collect()
}

fn decode(doing: &'static str) -> impl Fn(ColumnError) -> StoreError {
    move |e| StoreError::Query {
        doing,
        source: sqlx::Error::Decode(e),
    }
}

fn text<R: ArticleRow>(row: &R, column: usize, doing: &'static str) -> Result<String, StoreError> {
    Ok(row
        .owned_text(column)
        .map_err(decode(doing))?
        .unwrap_or_default())
}

#[async_trait]
impl<B: Backend> WebSubStore for B {
    async fn subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let doing = "reading a websub subscription";
        let p = params::<B::Db>(1, 2);
        let sql = format!(
            "SELECT topic, callback, callback_host, secret, expires_at \
             FROM websub_subscriptions WHERE topic = {} AND callback = {}",
            p[0], p[1]
        );
        let mut rows = self.rows(
            sql,
            vec![Bind::Text(topic.into()), Bind::Text(callback.into())],
        );
        let Some(row) = rows.try_next().await.map_err(StoreError::query(doing))? else {
            return Ok(None);
        };
        Ok(Some(Subscription {
            topic: text(&row, 0, doing)?,
            callback: text(&row, 1, doing)?,
            callback_host: text(&row, 2, doing)?,
            secret: text(&row, 3, doing)?,
            expires_at: row.int(4).map_err(decode(doing))?,
        }))
    }

    async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let p = params::<B::Db>(1, 5);
        let sql = format!(
            "INSERT INTO websub_subscriptions (topic, callback, callback_host, secret, expires_at) \
             VALUES ({}, {}, {}, {}, {}) ON CONFLICT (topic, callback) DO UPDATE SET \
             callback_host = excluded.callback_host, secret = excluded.secret, \
             expires_at = excluded.expires_at",
            p[0], p[1], p[2], p[3], p[4]
        );
        self.execute(
            sql,
            vec![
                Bind::Text(sub.topic.clone()),
                Bind::Text(sub.callback.clone()),
                Bind::Text(sub.callback_host.clone()),
                Bind::Text(sub.secret.clone()),
                Bind::Int(sub.expires_at),
            ],
        )
        .await
        .map_err(StoreError::query("saving a websub subscription"))
    }

    async fn remove_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let doing = "removing a websub subscription";
        let p = params::<B::Db>(1, 2);
        let sql = format!(
            "DELETE FROM websub_subscriptions WHERE topic = {} AND callback = {} RETURNING topic",
            p[0], p[1]
        );
        let rows: Vec<_> = self
            .rows(
                sql,
                vec![Bind::Text(topic.into()), Bind::Text(callback.into())],
            )
            .try_collect()
            .await
            .map_err(StoreError::query(doing))?;
        Ok(!rows.is_empty())
    }

    async fn count_subscriptions(&self, host: &str, now: i64) -> Result<(i64, i64), StoreError> {
        let doing = "counting websub subscriptions";
        let p = params::<B::Db>(1, 3);
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM websub_subscriptions WHERE expires_at > {}), \
             (SELECT COUNT(*) FROM websub_subscriptions WHERE callback_host = {} AND expires_at > {})",
            p[0], p[1], p[2]
        );
        let mut rows = self.rows(
            sql,
            vec![Bind::Int(now), Bind::Text(host.into()), Bind::Int(now)],
        );
        let row = rows
            .try_next()
            .await
            .map_err(StoreError::query(doing))?
            .ok_or(sqlx::Error::RowNotFound)
            .map_err(StoreError::query(doing))?;
        Ok((
            row.int(0).map_err(decode(doing))?,
            row.int(1).map_err(decode(doing))?,
        ))
    }

    async fn expire_subscriptions(&self, now: i64) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM websub_subscriptions WHERE expires_at <= {} RETURNING topic",
            B::Db::param(1)
        );
        let rows: Vec<_> = self
            .rows(sql, vec![Bind::Int(now)])
            .try_collect()
            .await
            .map_err(StoreError::query("expiring websub subscriptions"))?;
        Ok(rows.len() as u64)
    }

    async fn announce(
        &self,
        topic: &str,
        etag: &str,
        hubs: &[String],
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let doing = "announcing a websub topic change";
        let p = params::<B::Db>(1, 3);
        let sql = format!("SELECT etag FROM websub_topics WHERE topic = {}", p[0]);
        let mut rows = self.rows(sql, vec![Bind::Text(topic.into())]);
        let stored = match rows.try_next().await.map_err(StoreError::query(doing))? {
            Some(row) => Some(text(&row, 0, doing)?),
            None => None,
        };
        drop(rows);
        let Some(stored) = stored else {
            // A topic seen for the first time changed for no subscriber:
            // whoever subscribed did so to what it is now.
            let sql = format!(
                "INSERT INTO websub_topics (topic, etag) VALUES ({}, {}) \
                 ON CONFLICT (topic) DO NOTHING",
                p[0], p[1]
            );
            self.execute(sql, vec![Bind::Text(topic.into()), Bind::Text(etag.into())])
                .await
                .map_err(StoreError::query(doing))?;
            return Ok(None);
        };
        if stored == etag {
            return Ok(None);
        }
        // The compare-and-set: of the replicas that saw `stored`, only the
        // first to move it gets the row back and fans the change out.
        let sql = format!(
            "UPDATE websub_topics SET etag = {} WHERE topic = {} AND etag = {} RETURNING topic",
            p[0], p[1], p[2]
        );
        let moved: Vec<_> = self
            .rows(
                sql,
                vec![
                    Bind::Text(etag.into()),
                    Bind::Text(topic.into()),
                    Bind::Text(stored),
                ],
            )
            .try_collect()
            .await
            .map_err(StoreError::query(doing))?;
        if moved.is_empty() {
            return Ok(None);
        }
        // A change still pending for a target is replaced, not queued twice:
        // the target gets the newest document once.
        let conflict = "ON CONFLICT (kind, topic, target) DO UPDATE SET etag = excluded.etag, \
                        not_before = excluded.not_before, attempts = 0, \
                        first_at = excluded.first_at, last_error = ''";
        let p = params::<B::Db>(1, 6);
        let sql = format!(
            "INSERT INTO websub_deliveries \
             (kind, topic, target, etag, attempts, not_before, lease_until, first_at, last_error) \
             SELECT {}, topic, callback, {}, 0, {}, 0, {}, '' FROM websub_subscriptions \
             WHERE topic = {} AND expires_at > {} {conflict} RETURNING id",
            p[0], p[1], p[2], p[3], p[4], p[5]
        );
        let pushes: Vec<_> = self
            .rows(
                sql,
                vec![
                    Bind::Text(DeliveryKind::Push.as_str().into()),
                    Bind::Text(etag.into()),
                    Bind::Int(now),
                    Bind::Int(now),
                    Bind::Text(topic.into()),
                    Bind::Int(now),
                ],
            )
            .try_collect()
            .await
            .map_err(StoreError::query(doing))?;
        let mut queued = pushes.len() as u64;
        for hub in hubs {
            let p = params::<B::Db>(1, 6);
            let sql = format!(
                "INSERT INTO websub_deliveries \
                 (kind, topic, target, etag, attempts, not_before, lease_until, first_at, last_error) \
                 VALUES ({}, {}, {}, {}, 0, {}, 0, {}, '') {conflict}",
                p[0], p[1], p[2], p[3], p[4], p[5]
            );
            self.execute(
                sql,
                vec![
                    Bind::Text(DeliveryKind::Ping.as_str().into()),
                    Bind::Text(topic.into()),
                    Bind::Text(hub.clone()),
                    Bind::Text(etag.into()),
                    Bind::Int(now),
                    Bind::Int(now),
                ],
            )
            .await
            .map_err(StoreError::query(doing))?;
            queued += 1;
        }
        Ok(Some(queued))
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let doing = "claiming websub deliveries";
        let p = params::<B::Db>(1, 4);
        let sql = format!(
            "UPDATE websub_deliveries SET lease_until = {} WHERE id IN \
             (SELECT id FROM websub_deliveries WHERE not_before <= {} AND lease_until <= {} \
             ORDER BY not_before, id LIMIT {}{}) \
             RETURNING id, kind, topic, target, etag, attempts, first_at",
            p[0],
            p[1],
            p[2],
            p[3],
            B::Db::SKIP_LOCKED
        );
        let mut rows = self.rows(
            sql,
            vec![
                Bind::Int(lease_until),
                Bind::Int(now),
                Bind::Int(now),
                Bind::Int(limit),
            ],
        );
        let mut claimed = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(StoreError::query(doing))? {
            let kind = match text(&row, 1, doing)?.as_str() {
                "ping" => DeliveryKind::Ping,
                _ => DeliveryKind::Push,
            };
            claimed.push(Delivery {
                id: row.int(0).map_err(decode(doing))?,
                kind,
                topic: text(&row, 2, doing)?,
                target: text(&row, 3, doing)?,
                etag: text(&row, 4, doing)?,
                attempts: row.int(5).map_err(decode(doing))?,
                first_at: row.int(6).map_err(decode(doing))?,
            });
        }
        Ok(claimed)
    }

    async fn delivered(&self, id: i64, etag: &str) -> Result<(), StoreError> {
        let doing = "finishing a websub delivery";
        let p = params::<B::Db>(1, 2);
        let binds = || vec![Bind::Int(id), Bind::Text(etag.into())];
        let sql = format!(
            "DELETE FROM websub_deliveries WHERE id = {} AND etag = {}",
            p[0], p[1]
        );
        self.execute(sql, binds())
            .await
            .map_err(StoreError::query(doing))?;
        // A newer change replaced the ETag meanwhile: the row stays, released
        // at once so that the newer document goes out next.
        let sql = format!(
            "UPDATE websub_deliveries SET lease_until = 0 WHERE id = {} AND etag <> {}",
            p[0], p[1]
        );
        self.execute(sql, binds())
            .await
            .map_err(StoreError::query(doing))
    }

    async fn retry_delivery(
        &self,
        id: i64,
        not_before: i64,
        failed: bool,
        error: &str,
    ) -> Result<(), StoreError> {
        let p = params::<B::Db>(1, 4);
        let sql = format!(
            "UPDATE websub_deliveries SET lease_until = 0, not_before = {}, \
             attempts = attempts + {}, last_error = {} WHERE id = {}",
            p[0], p[1], p[2], p[3]
        );
        self.execute(
            sql,
            vec![
                Bind::Int(not_before),
                Bind::Int(i64::from(failed)),
                Bind::Text(error.into()),
                Bind::Int(id),
            ],
        )
        .await
        .map_err(StoreError::query("rescheduling a websub delivery"))
    }

    async fn drop_delivery(&self, id: i64) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM websub_deliveries WHERE id = {}",
            B::Db::param(1)
        );
        self.execute(sql, vec![Bind::Int(id)])
            .await
            .map_err(StoreError::query("dropping a websub delivery"))
    }

    async fn counts(&self, now: i64) -> Result<WebSubCounts, StoreError> {
        let doing = "counting websub rows";
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM websub_subscriptions WHERE expires_at > {}), \
             (SELECT COUNT(*) FROM websub_deliveries), \
             (SELECT COUNT(*) FROM websub_deliveries WHERE attempts > 0)",
            B::Db::param(1)
        );
        let mut rows = self.rows(sql, vec![Bind::Int(now)]);
        let row = rows
            .try_next()
            .await
            .map_err(StoreError::query(doing))?
            .ok_or(sqlx::Error::RowNotFound)
            .map_err(StoreError::query(doing))?;
        Ok(WebSubCounts {
            subscriptions: row.int(0).map_err(decode(doing))?,
            deliveries_pending: row.int(1).map_err(decode(doing))?,
            deliveries_failing: row.int(2).map_err(decode(doing))?,
        })
    }
}
