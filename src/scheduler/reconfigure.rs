//! What the scheduler does with a configuration the reloader read: apply it,
//! or refuse it and say why.
//!
//! Applying keeps the service serving throughout. Settings that only a restart
//! can change (the listen address, connection limits, the store's URL and
//! pool) are kept and logged; removed feeds answer `410 Gone` at once and
//! added ones `503` until built; and every feed is rebuilt once, since titles,
//! URLs and the caching policy may all have changed (identical bytes keep
//! their representation, so readers see no change). It never reads a file:
//! configurations arrive already loaded and checked, as [`Control`] messages.
//!
//! [`Control`]: super::Control

use std::sync::Arc;

use tracing::{error, info, warn};

use super::{FeedState, Scheduler, later, next_run};
use crate::config::{Config, ConfigError, FeedName, FeedSpec};
use crate::refresh::site_documents;

impl Scheduler {
    /// A reloaded configuration was refused: keep running on the current one
    /// and say why, with file:line:col.
    pub(super) fn rejected(&self, e: &ConfigError) {
        for problem in &e.problems {
            error!(%problem, "configuration error");
        }
        if let Some(line) = e.omitted_line() {
            error!("{line}");
        }
        let generation = self.health.generation();
        error!(
            errors = e.total(),
            generation, "configuration rejected; still running on the previous one"
        );
        self.health.config_rejected(self.clock.now(), e.to_string());
    }

    /// Runs on `new` from now on (see the module notes), then refreshes every
    /// feed.
    pub(super) async fn apply(&mut self, mut new: Config) {
        let old = self.config.clone();
        if new.server.listen != old.server.listen {
            warn!(from = %old.server.listen, to = %new.server.listen,
                "server.listen changed; restart feedsmith to listen there");
        }
        let limits = |c: &Config| {
            (
                (
                    c.server.max_connections,
                    c.server.max_connections_per_address,
                ),
                (c.server.header_timeout, c.server.idle_timeout),
                (c.server.send_timeout, c.server.min_send_rate),
                c.server.shutdown_grace,
            )
        };
        if limits(&new) != limits(&old) {
            warn!("server connection limits or timeouts changed; they apply after a restart");
        }
        if new.store.url != old.store.url && self.store.is_some() {
            warn!(from = %old.store.url, to = %new.store.url,
                "store.url changed; restart feedsmith to use the new store");
            new.store = old.store.clone();
        }
        if new.store.connect != old.store.connect && self.store.is_some() {
            warn!(
                from = old.store.connect.pool_size,
                to = new.store.connect.pool_size,
                "store.pool_size changed; it applies after a restart"
            );
            new.store.connect = old.store.connect;
        }
        let removed: Vec<FeedName> = old
            .feeds
            .keys()
            .filter(|n| !new.feeds.contains_key(*n))
            .cloned()
            .collect();
        let added: Vec<FeedName> = new
            .feeds
            .keys()
            .filter(|n| !old.feeds.contains_key(*n))
            .cloned()
            .collect();
        let changed: Vec<FeedName> = new
            .feeds
            .iter()
            .filter(|(n, spec)| old.feeds.get(*n).is_some_and(|o| !same_feed(o, spec)))
            .map(|(n, _)| n.clone())
            .collect();
        let config = Arc::new(new);
        let generation = self.health.config_applied();
        info!(
            generation,
            ?added,
            ?removed,
            ?changed,
            "configuration applied"
        );

        let now = self.clock.now();
        for name in &removed {
            self.feeds.remove(name);
            self.pending.remove(name);
            self.health.forget_feed(name);
            crate::metrics::global().forget_feed(name.as_str());
        }
        for spec in config.feeds.values() {
            let state = self
                .feeds
                .entry(spec.name.clone())
                .or_insert_with(|| FeedState::new(spec, &config, now));
            // Titles, URLs and caching policy may all have changed: rebuild
            // everything once. Identical bytes keep their representation.
            state.built_at = None;
            state.next_run = next_run(spec, &config, now);
        }
        self.pending.extend(config.feeds.keys().cloned());
        self.config = config.clone();
        self.save_all = true;
        self.applied.send_replace(config.clone());
        self.next_watch = config.watch.map(|every| later(now, every));

        let current = self.publisher.snapshot();
        let mut set = (*current).clone();
        for name in &removed {
            set.retire(name);
        }
        for name in &added {
            set.admit(name);
        }
        let store = self.pipeline.store.clone();
        let site =
            tokio::task::spawn_blocking(move || site_documents(&config, store.as_ref())).await;
        if let Ok((index, opml)) = site {
            set.set_site(index, opml);
        }
        self.swap_and_save(set, Vec::new(), removed);
        self.refresh_pending().await;
    }
}

/// Whether two versions of a feed's file configure the same feed.
fn same_feed(a: &FeedSpec, b: &FeedSpec) -> bool {
    a.title == b.title
        && a.description == b.description
        && a.limit == b.limit
        && a.filter == b.filter
        && a.formats == b.formats
        && a.refresh == b.refresh
}
