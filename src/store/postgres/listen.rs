//! The LISTEN connection that tells a replica about article writes as they
//! commit (the `articles_notify` trigger notifies [`CHANNEL`]).
//!
//! Owns reconnecting with back-off and reporting while it is down. It only
//! moves a counter: what changed is always read from the store by revision,
//! so a lost notification costs latency, never correctness.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tracing::{info, warn};

use super::CHANNEL;

/// A listener on [`CHANNEL`], on the connection of the LISTEN pool.
pub(super) async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is reported at once; `listen` then starts afresh.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications until every receiver is gone.
///
/// Any error on the LISTEN connection drops the listener and subscribes
/// afresh (with back-off): a listener whose connection was terminated by the
/// server can report an error and keep the dead connection, so it is never
/// reused. Notifications sent meanwhile are lost, so re-subscribing counts as
/// a change and the scheduler catches up by revision. While it is down,
/// `fault` says why, and the counter moves when that starts and when it ends so
/// the scheduler can show it.
pub(super) async fn listen(
    pool: PgPool,
    listener: PgListener,
    tx: watch::Sender<u64>,
    fault: watch::Sender<Option<String>>,
    url: String,
) {
    let mut listener = Some(listener);
    let mut failures = 0u32;
    let down = |reason: String| {
        let started = fault.send_if_modified(|f| {
            let started = f.is_none();
            *f = Some(reason);
            started
        });
        if started {
            tx.send_modify(|n| *n += 1);
        }
    };
    loop {
        if tx.is_closed() {
            return;
        }
        let Some(active) = listener.as_mut() else {
            match subscribe(&pool).await {
                Ok(fresh) => {
                    info!(store = %url, "listening for article writes again");
                    listener = Some(fresh);
                    failures = 0;
                    fault.send_replace(None);
                    tx.send_modify(|n| *n += 1);
                }
                Err(e) => {
                    failures += 1;
                    down(format!("cannot listen for article writes: {e}"));
                    tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
                }
            }
            continue;
        };
        // Wake now and then to notice that the store was dropped.
        let reason = match tokio::time::timeout(Duration::from_secs(10), active.try_recv()).await {
            Err(_) => continue,
            Ok(Ok(Some(_))) => {
                tx.send_modify(|n| *n += 1);
                continue;
            }
            Ok(Ok(None)) => "the connection was closed".to_owned(),
            Ok(Err(e)) => e.to_string(),
        };
        warn!(store = %url, %reason, "lost the connection that listens for article writes; reconnecting");
        down(format!(
            "lost the connection that listens for article writes ({reason}); reconnecting"
        ));
        listener = None;
        failures += 1;
        // The first attempt is immediate; repeated losses back off.
        if failures > 1 {
            tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
        }
    }
}
