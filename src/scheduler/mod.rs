//! The scheduler: when each feed is rebuilt, and what happens when that fails.
//!
//! It owns the running service's state — the configuration in force, the
//! store handle, which revision each feed was built from — and drives the one
//! direction data flows: store → builder → publish. Each feed refreshes on its
//! cron schedule in the site's timezone; `[schedule].watch` adds a cheap poll
//! of the store's revision, and a store that notifies (PostgreSQL) triggers a
//! check as each write commits, so a write is served within seconds. A refresh
//! rebuilds only feeds whose content could have changed (each through the
//! `refresh` pipeline), keeps the last good documents when the store or a
//! build fails (retrying with back-off), and publishes all formats of every
//! rebuilt feed in one swap before writing them to the output folder.
//!
//! Reloaded configurations arrive already read and checked, as [`Control`]
//! messages from the reloader, and are applied by `reconfigure`: the
//! scheduler never reads a config file, so a slow one never stops publishing.
//! It never builds a document itself (`refresh` does) and never serves
//! requests.

mod clock;
mod health;
mod reconfigure;
#[cfg(test)]
mod tests;

pub use clock::{Clock, SystemClock, TokioClock};
pub use health::{Health, SourceHealth, SourceStatus};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::article::ArticleId;
use crate::config::{Config, ConfigError, FeedName, FeedSpec};
use crate::metrics::BuildResult;
use crate::publish::{Pipeline, PublishedFeed, PublishedSet, Publisher, Representation};
use crate::refresh::{Rebuild, Rebuilt, RefreshError};
use crate::store::{ArticleStore, Revision, StoreError};

/// Opens the article store. Called at start-up and again after a failure, so
/// a store that is down when the service starts is picked up when it returns.
#[async_trait]
pub trait StoreOpener: Send + Sync {
    /// Connects to (and migrates) the store `config` names. Errors when it cannot
    /// be reached; the caller retries later.
    async fn open(&self, config: &Config) -> Result<Arc<dyn ArticleStore>, OpenError>;
}

/// Why [`StoreOpener::open`] failed: any error, boxed, as it is only logged and
/// reported on `/healthz`.
pub type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// Work for the scheduler besides its schedules: what a reload made of the
/// configuration files (see `reloader`).
#[derive(Debug)]
pub enum Control {
    /// Valid as a whole: apply it.
    Apply(Box<Config>),
    /// Refused: keep running on the configuration in force, and say why.
    Rejected(ConfigError),
}

/// During a refresh, finished feeds are published at least this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// How many feeds build at once: two per core, so one can wait on the store
/// while another renders.
fn build_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// Retries after a failure start at this delay and double up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// The longest the scheduler sleeps without looking at the clock again, so a
/// change of the wall clock is noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Changes examined to decide which feeds a write touches; more than this and
/// every feed is rebuilt (cheaper than reading them all).
const CHANGE_SCAN_LIMIT: u32 = 1000;

#[derive(Debug, Default, Clone, Copy)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let delay = RETRY_MIN.saturating_mul(1 << self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        delay.min(RETRY_MAX)
    }
}

#[derive(Debug)]
struct FeedState {
    next_run: Option<DateTime<Utc>>,
    /// The store revision the served documents reflect; `None` until built
    /// by this process (or after a configuration change).
    built_at: Option<Revision>,
    /// The articles the served documents list.
    listed: HashSet<ArticleId>,
}

impl FeedState {
    fn new(spec: &FeedSpec, config: &Config, now: DateTime<Utc>) -> Self {
        Self {
            next_run: next_run(spec, config, now),
            built_at: None,
            listed: HashSet::new(),
        }
    }
}

/// `delay` after `t`. (A delay too large for chrono counts as none: every
/// delay here is a configured interval or a retry of at most a minute.)
fn later(t: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(delay).unwrap_or_default()
}

fn next_run(spec: &FeedSpec, config: &Config, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    spec.refresh
        .next_after(&after.with_timezone(&config.site.timezone))
}

/// The running service's refresh loop. Build one with [`Scheduler::new`] and
/// drive it with [`Scheduler::run`].
pub struct Scheduler {
    config: Arc<Config>,
    opener: Arc<dyn StoreOpener>,
    store: Option<Arc<dyn ArticleStore>>,
    publisher: Arc<Publisher>,
    pipeline: Arc<Pipeline>,
    health: Arc<Health>,
    feeds: BTreeMap<FeedName, FeedState>,
    /// Feeds due for a refresh that has not yet succeeded.
    pending: BTreeSet<FeedName>,
    backoff: Backoff,
    retry_at: Option<DateTime<Utc>>,
    /// After a reload every feed's files are written again (the output folder
    /// or the caching policy may have changed).
    save_all: bool,
    /// The configuration in force, for whoever watches its files.
    applied: tokio::sync::watch::Sender<Arc<Config>>,
    /// The store once opened, for the tasks that write to it (pulled sources).
    opened: tokio::sync::watch::Sender<Option<Arc<dyn ArticleStore>>>,
    /// Write notifications from the store, where it has them (PostgreSQL).
    notified: Option<tokio::sync::watch::Receiver<u64>>,
    /// When `[schedule].watch` next polls the store's revision.
    next_watch: Option<DateTime<Utc>>,
    /// The time of day, for schedules, retries and the watch poll.
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    /// A scheduler of `config`'s feeds that reads the time from `clock`
    /// ([`SystemClock`] in the service) and reaches the store through
    /// `opener`.
    pub fn new(
        config: Arc<Config>,
        opener: Arc<dyn StoreOpener>,
        publisher: Arc<Publisher>,
        pipeline: Arc<Pipeline>,
        health: Arc<Health>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.now();
        let feeds = config
            .feeds
            .values()
            .map(|spec| (spec.name.clone(), FeedState::new(spec, &config, now)))
            .collect();
        Self {
            pending: config.feeds.keys().cloned().collect(),
            applied: tokio::sync::watch::Sender::new(config.clone()),
            opened: tokio::sync::watch::Sender::new(None),
            notified: None,
            next_watch: config.watch.map(|every| later(now, every)),
            config,
            opener,
            store: None,
            publisher,
            pipeline,
            health,
            feeds,
            backoff: Backoff::default(),
            retry_at: None,
            save_all: false,
            clock,
        }
    }

    /// The configuration in force, updated on every applied reload.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Config>> {
        self.applied.subscribe()
    }

    /// The store, once the scheduler has opened it (`None` until then), so
    /// that a task writing articles (pulled sources) shares its connections
    /// and its retries instead of opening its own.
    pub fn subscribe_store(&self) -> tokio::sync::watch::Receiver<Option<Arc<dyn ArticleStore>>> {
        self.opened.subscribe()
    }

    /// Refreshes every feed now, then follows the schedules, the watch poll and
    /// `control` until `shutdown` completes.
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut control_open = true;
        self.refresh_pending().await;
        loop {
            let wake = self.next_wake(self.clock.now());
            tokio::select! {
                () = &mut shutdown => break,
                msg = control.recv(), if control_open => match msg {
                    Some(Control::Apply(config)) => self.apply(*config).await,
                    Some(Control::Rejected(e)) => self.rejected(&e),
                    None => control_open = false,
                },
                () = tokio::time::sleep(wake) => self.on_wake().await,
                alive = notification(&mut self.notified) => {
                    if alive {
                        self.on_notified().await;
                    } else {
                        self.notified = None;
                    }
                }
            }
        }
    }

    /// The store says a write committed (or that it may have missed some):
    /// check every feed now, by revision, as the watch poll would.
    async fn on_notified(&mut self) {
        if let Some(store) = &self.store {
            self.health
                .notifications(store.notification_fault(), self.clock.now());
        }
        self.pending.extend(self.feeds.keys().cloned());
        if self.retry_at.is_none_or(|t| t <= self.clock.now()) {
            self.refresh_pending().await;
        }
    }

    /// How long to sleep before something may be due: a feed's schedule, a
    /// retry, or the watch poll (which keeps its own rhythm however often the
    /// schedules fire).
    fn next_wake(&self, now: DateTime<Utc>) -> Duration {
        let until = |t: DateTime<Utc>| (t - now).to_std().unwrap_or(Duration::ZERO);
        let mut sleep = MAX_SLEEP;
        if let Some(t) = self.feeds.values().filter_map(|f| f.next_run).min() {
            sleep = sleep.min(until(t));
        }
        if !self.pending.is_empty() {
            sleep = sleep.min(self.retry_at.map_or(Duration::ZERO, until));
        }
        if let Some(t) = self.next_watch {
            sleep = sleep.min(until(t));
        }
        sleep
    }

    async fn on_wake(&mut self) {
        self.on_schedule().await;
        let now = self.clock.now();
        if let (Some(due), Some(every)) = (self.next_watch, self.config.watch)
            && due <= now
        {
            self.next_watch = Some(later(now, every));
            if self.pending.is_empty() {
                self.on_watch().await;
            }
        }
    }

    async fn on_schedule(&mut self) {
        let now = self.clock.now();
        for (name, state) in &mut self.feeds {
            if state.next_run.is_some_and(|t| t <= now) {
                self.pending.insert(name.clone());
                // From the later of the due time and now: a late wake-up runs
                // once, never once per missed slot.
                if let (Some(spec), Some(due)) = (self.config.feeds.get(name), state.next_run) {
                    state.next_run = next_run(spec, &self.config, due.max(now));
                }
            }
        }
        if self.retry_at.is_none_or(|t| t <= now) {
            self.refresh_pending().await;
        }
    }

    /// `[schedule].watch`: one cheap query; a refresh only of the feeds built
    /// before the store's current revision. (Comparing with the revision the
    /// last refresh saw would miss a write that another feed's scheduled
    /// refresh had already seen.)
    async fn on_watch(&mut self) {
        let Some(store) = self.store.clone() else {
            self.pending.extend(self.feeds.keys().cloned());
            self.refresh_pending().await;
            return;
        };
        match store.revision().await {
            Ok(rev) => {
                self.store_ok(rev);
                let behind: Vec<FeedName> = self
                    .feeds
                    .iter()
                    .filter(|(_, state)| state.built_at.is_none_or(|at| at < rev))
                    .map(|(name, _)| name.clone())
                    .collect();
                if !behind.is_empty() {
                    self.pending.extend(behind);
                    self.refresh_pending().await;
                }
            }
            Err(e) => self.store_failed(e.to_string()),
        }
    }

    /// The store answered a poll at `rev`.
    fn store_ok(&self, rev: Revision) {
        let now = self.clock.now();
        self.health.store_ok(now);
        crate::metrics::global().store_polled(Some(rev.0), now.timestamp_millis() as f64 / 1000.0);
    }

    fn store_failed(&mut self, reason: String) {
        crate::metrics::global().store_failed();
        let delay = self.backoff.next_delay();
        let now = self.clock.now();
        self.retry_at = Some(later(now, delay));
        self.health.store_failed(now, reason, delay);
    }

    async fn store(&mut self) -> Option<Arc<dyn ArticleStore>> {
        if let Some(store) = &self.store {
            return Some(store.clone());
        }
        match self.opener.open(&self.config).await {
            Ok(store) => {
                info!(store = %self.config.store.url, "store opened");
                self.notified = store.changes();
                if let Some(rx) = &mut self.notified {
                    // Everything up to now is covered by the refresh under way.
                    rx.mark_unchanged();
                }
                self.store = Some(store.clone());
                self.opened.send_replace(Some(store.clone()));
                Some(store)
            }
            Err(e) => {
                self.store_failed(format!("cannot open {}: {e}", self.config.store.url));
                None
            }
        }
    }

    /// Refreshes the pending feeds: rebuilds those whose content could have
    /// changed since they were built, publishes the ones whose bytes did.
    async fn refresh_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Some(store) = self.store().await else {
            return;
        };
        let rev = match store.revision().await {
            Ok(rev) => rev,
            Err(e) => return self.store_failed(e.to_string()),
        };
        self.store_ok(rev);

        let to_build = match self.affected(store.as_ref(), rev).await {
            Ok(feeds) => feeds,
            Err(e) => return self.store_failed(e.to_string()),
        };
        let mut current = self.publisher.snapshot();
        let mut rebuilt: BTreeMap<FeedName, (PublishedFeed, Arc<Representation>)> = BTreeMap::new();
        let mut failed = false;
        let mut last_swap = tokio::time::Instant::now();
        // Independent feeds build at once, a bounded number at a time: the
        // store answers one while another renders on a blocking thread.
        let mut queue = to_build.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < build_concurrency() {
                let Some(name) = queue.next() else { break };
                let Some(spec) = self.config.feeds.get(&name).cloned() else {
                    self.pending.remove(&name);
                    continue;
                };
                let job = Rebuild {
                    config: self.config.clone(),
                    spec,
                    store: store.clone(),
                    previous: current.feed(name.as_str()).cloned(),
                    previous_page: current.page(name.as_str()).cloned(),
                    bodies: self.pipeline.store.clone(),
                };
                running.spawn(async move {
                    let started = std::time::Instant::now();
                    let result = job.run().await;
                    (name, result, started.elapsed())
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (name, result, took) = match joined {
                Ok(done) => done,
                Err(e) => {
                    // A build task panicked: a bug, reported like a failed build.
                    error!(error = %e, "a feed build task failed");
                    failed = true;
                    continue;
                }
            };
            let metrics = crate::metrics::global();
            match result {
                Ok(Rebuilt { feed, page, listed }) => {
                    self.health.feed_ok(&name);
                    if let Some(state) = self.feeds.get_mut(&name) {
                        state.built_at = Some(rev);
                        state.listed = listed;
                    }
                    metrics.feed_at_revision(name.as_str(), rev.0);
                    self.pending.remove(&name);
                    let same = current.feed(name.as_str()).is_some_and(|old| {
                        old.len() == feed.len()
                            && old
                                .iter()
                                .all(|(f, rep)| feed.get(f).is_some_and(|n| Arc::ptr_eq(rep, n)))
                    }) && current
                        .page(name.as_str())
                        .is_some_and(|old| Arc::ptr_eq(old, &page));
                    let result = if same {
                        BuildResult::Unchanged
                    } else {
                        BuildResult::Published
                    };
                    metrics.feed_built(name.as_str(), result, took);
                    if !same || self.save_all {
                        rebuilt.insert(name, (feed, page));
                    }
                    // A long refresh (a cold start of a thousand feeds) serves
                    // what it has built so far, each feed whole, rather than
                    // keeping every feed waiting for the last.
                    if !rebuilt.is_empty() && last_swap.elapsed() >= PUBLISH_EVERY {
                        self.publish(&current, std::mem::take(&mut rebuilt));
                        current = self.publisher.snapshot();
                        last_swap = tokio::time::Instant::now();
                    }
                }
                Err(RefreshError::Query(e)) => {
                    metrics.feed_built(name.as_str(), BuildResult::Failed, took);
                    // The store went away mid-refresh: everything left waits for it.
                    self.store_failed(format!("feed {name}: {e}"));
                    failed = true;
                    running.abort_all();
                    queue = Vec::new().into_iter();
                }
                Err(e) => {
                    metrics.feed_built(name.as_str(), BuildResult::Failed, took);
                    self.health
                        .feed_failed(&name, self.clock.now(), e.to_string());
                    failed = true;
                }
            }
        }
        if !failed {
            self.backoff = Backoff::default();
            self.retry_at = None;
        } else {
            let now = self.clock.now();
            if self.retry_at.is_none_or(|t| t <= now) {
                let delay = self.backoff.next_delay();
                self.retry_at = Some(later(now, delay));
            }
        }
        self.publish(&current, rebuilt);
    }

    /// Which pending feeds need a rebuild at revision `rev`; marks the others
    /// current. A feed is touched by a changed article that now belongs in it
    /// or that it lists.
    async fn affected(
        &mut self,
        store: &dyn ArticleStore,
        rev: Revision,
    ) -> Result<Vec<FeedName>, StoreError> {
        let mut build = Vec::new();
        let mut by_since: BTreeMap<Revision, Vec<FeedName>> = BTreeMap::new();
        for name in &self.pending {
            match self.feeds.get(name).and_then(|s| s.built_at) {
                None => build.push(name.clone()),
                Some(at) if at >= rev => {}
                Some(at) => by_since.entry(at).or_default().push(name.clone()),
            }
        }
        for (since, names) in by_since {
            let changed = store.changed_since(since, CHANGE_SCAN_LIMIT).await?;
            let all = changed.len() >= CHANGE_SCAN_LIMIT as usize;
            for name in names {
                let (Some(spec), Some(state)) =
                    (self.config.feeds.get(&name), self.feeds.get(&name))
                else {
                    continue;
                };
                let touched = all
                    || changed.iter().any(|c| {
                        state.listed.contains(&c.article.id)
                            || (c.article.status == crate::article::Status::Published
                                && spec.filter.matches(&c.article))
                    });
                if touched {
                    build.push(name);
                }
            }
        }
        // The rest are current as they are.
        let building: HashSet<&FeedName> = build.iter().collect();
        let done: Vec<FeedName> = self
            .pending
            .iter()
            .filter(|n| !building.contains(n))
            .cloned()
            .collect();
        for name in done {
            if let Some(state) = self.feeds.get_mut(&name) {
                state.built_at = Some(rev);
            }
            crate::metrics::global().feed_at_revision(name.as_str(), rev.0);
            self.health.feed_ok(&name);
            self.pending.remove(&name);
        }
        Ok(build)
    }

    /// Swaps in the rebuilt feeds (every format of a feed at once), then
    /// writes them to the output folder.
    fn publish(
        &mut self,
        current: &PublishedSet,
        rebuilt: BTreeMap<FeedName, (PublishedFeed, Arc<Representation>)>,
    ) {
        if rebuilt.is_empty() {
            return;
        }
        let mut set = current.clone();
        let changed: Vec<FeedName> = if self.save_all {
            self.save_all = false;
            self.config.feeds.keys().cloned().collect()
        } else {
            rebuilt.keys().cloned().collect()
        };
        let documents: usize = rebuilt.values().map(|(feed, _)| feed.len() + 1).sum();
        crate::metrics::global().documents_published(documents);
        for (name, (feed, page)) in rebuilt {
            info!(feed = %name, etag = %feed.values().next().map(|r| r.identity.etag.to_string()).unwrap_or_default(), "published feed");
            // The variants follow in the background, then their files; a
            // document with no variant pending queues nothing.
            self.pipeline.compress(&name, &feed);
            set.put_feed(name.clone(), feed);
            set.put_page(&name, page);
        }
        set.stamp(self.clock.now());
        self.swap_and_save(set, changed, Vec::new());
    }

    /// Serves `set` at once and asks the writer to bring the output folder
    /// after it; never waits for the disk.
    fn swap_and_save(&self, set: PublishedSet, changed: Vec<FeedName>, removed: Vec<FeedName>) {
        self.publisher.publish(set);
        self.pipeline
            .writer
            .save(self.config.output_dir.clone(), changed, removed);
    }
}

/// Waits for the next store notification; `false` once the store stopped
/// sending them. Without a notifying store it never completes.
async fn notification(rx: &mut Option<tokio::sync::watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
