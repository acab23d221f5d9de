//! Pulled sources: upstream RSS and Atom feeds fetched on a schedule and
//! imported into the store.
//!
//! This module owns the task that fetches every source in the configuration
//! in force (one file per source, see `config`), each on its own cron
//! schedule in the site's time zone, a few at a time, as a good feed client:
//! conditional requests with the saved validators, the upstream's
//! `max-age`, `Retry-After` and back-off honoured, `410 Gone` respected. A
//! fetched feed goes through exactly the mapping and validation of
//! `feedsmith import` ([`crate::import::check_feed_document`]) and into the
//! store in batches; unchanged items write nothing. Each source's fetch state
//! is saved in the store after every fetch, so it survives a restart, and
//! shown in `/healthz` through [`Health`]. Each change of a source's state is
//! logged once.
//!
//! Data flows one way: this task writes articles to the store and the
//! scheduler notices the revision move as it would any other write. It never
//! builds, publishes or serves anything, and never reads a config file (it
//! follows the configurations the scheduler applies). The HTTP exchange is
//! [`fetch`]'s; the decisions on what an answer means are [`state`]'s.

pub mod fetch;
pub mod state;

pub use fetch::{FetchError, Fetcher};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};
use url::Url;

use crate::config::{Config, SourceName, SourceSpec};
use crate::import::feed::FeedOverrides;
use crate::import::{self, ImportSettings, ImportSummary, Rejection};
use crate::scheduler::{Clock, Health};
use crate::store::{ArticleStore, SourceState};
use fetch::Answer;
use state::{Change, Outcome};

/// Sources fetched at once, at most: upstreams are slow, and each fetch may
/// hold a body of up to its `max_bytes` in memory.
pub const CONCURRENCY: usize = 4;
/// The longest the task sleeps without looking at the clock again, so a
/// change of the wall clock is noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How soon the saved states are read again after the store failed to give them.
const LOAD_RETRY: Duration = Duration::from_secs(5);
/// Rejected items logged per fetch; the rest are counted.
const REJECTIONS_LOGGED: usize = 3;

/// Why the sources task could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The TLS setup of the HTTP client failed.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] rustls::Error),
}

/// One configured source as the task tracks it.
#[derive(Debug)]
struct Entry {
    spec: SourceSpec,
    state: SourceState,
    /// The schedule's next fire time (or now, for a fetch at start-up or
    /// after an edit).
    scheduled: Option<DateTime<Utc>>,
    /// A fetch is under way.
    running: bool,
    /// The permanent redirect already logged for this source's URL.
    moved_logged: Option<Url>,
}

impl Entry {
    fn due(&self) -> Option<DateTime<Utc>> {
        state::due(&self.state, self.scheduled)
    }
}

/// The task that fetches the pulled sources; see the module notes. Build one
/// with [`Sources::new`] and drive it with [`Sources::run`].
pub struct Sources {
    config: watch::Receiver<Arc<Config>>,
    store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
    health: Arc<Health>,
    clock: Arc<dyn Clock>,
    fetcher: Fetcher,
    /// Saving a state failed last time (logged once until it works again).
    save_failing: bool,
}

/// What one fetch job came back with.
struct Done {
    name: SourceName,
    /// The URL it fetched (the file may have changed meanwhile).
    url: Url,
    outcome: Outcome,
    moved_to: Option<Url>,
    imported: Option<(ImportSummary, Vec<Rejection>)>,
}

impl Sources {
    /// A task following the configurations `config` gives (the scheduler's
    /// [`subscribe`](crate::scheduler::Scheduler::subscribe)), writing to the
    /// store `store` gives once it is open
    /// ([`subscribe_store`](crate::scheduler::Scheduler::subscribe_store)),
    /// reporting to `health` and reading the time from `clock`.
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
        health: Arc<Health>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            config,
            store,
            health,
            clock,
            fetcher: Fetcher::new()?,
            save_failing: false,
        })
    }

    /// Waits for the store and the saved states, then fetches every source
    /// on its schedule until `shutdown` completes (fetches under way are
    /// dropped then; their sources are fetched again after a restart).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (store, mut saved) = tokio::select! {
            () = &mut shutdown => return,
            loaded = self.load() => loaded,
        };
        let mut entries: BTreeMap<SourceName, Entry> = BTreeMap::new();
        let mut applied: Option<Arc<Config>> = None;
        let mut running: JoinSet<Done> = JoinSet::new();
        loop {
            let config = self.config.borrow_and_update().clone();
            if applied.as_ref().is_none_or(|a| !Arc::ptr_eq(a, &config)) {
                self.sync(&config, &mut entries, &mut saved, applied.is_none());
                applied = Some(config.clone());
            }
            let now = self.clock.now();
            self.start_due(&config, &store, &mut entries, &mut running, now);
            let wake = next_wake(&entries, now);
            tokio::select! {
                () = &mut shutdown => break,
                changed = self.config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(joined) = running.join_next(), if !running.is_empty() => match joined {
                    Ok(done) => self.finish(&store, &mut entries, done).await,
                    Err(e) => error!(error = %e, "a source fetch task failed"),
                },
                () = tokio::time::sleep(wake) => {}
            }
        }
    }

    /// The store, once the scheduler has opened it, and every saved state.
    async fn load(&mut self) -> (Arc<dyn ArticleStore>, BTreeMap<String, SourceState>) {
        let mut warned = false;
        loop {
            let store = loop {
                if let Some(store) = self.store.borrow_and_update().clone() {
                    break store;
                }
                if self.store.changed().await.is_err() {
                    // The scheduler is gone: the service is stopping.
                    std::future::pending::<()>().await;
                }
            };
            match store.source_states().await {
                Ok(states) => return (store, states.into_iter().collect()),
                Err(e) => {
                    if !warned {
                        warn!(error = %e, "cannot read the sources' saved state; retrying");
                        warned = true;
                    }
                    tokio::time::sleep(LOAD_RETRY).await;
                }
            }
        }
    }

    /// Brings `entries` in line with `config`: removed sources stop (their
    /// state is kept in `saved`, should they come back), added ones start
    /// from their saved state, changed ones are fetched now (afresh when
    /// their URL changed). At start-up a source is fetched at once only when
    /// its last success is older than its schedule's interval.
    fn sync(
        &self,
        config: &Config,
        entries: &mut BTreeMap<SourceName, Entry>,
        saved: &mut BTreeMap<String, SourceState>,
        start_up: bool,
    ) {
        let now = self.clock.now();
        let removed: Vec<SourceName> = entries
            .keys()
            .filter(|name| !config.sources.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(entry) = entries.remove(&name) {
                info!(source = %name, "source removed; no longer fetched");
                saved.insert(name.to_string(), entry.state);
            }
            self.health.forget_source(&name);
        }
        for (name, spec) in &config.sources {
            let url = spec.url.as_str();
            match entries.get_mut(name) {
                Some(entry) if entry.spec == *spec => {}
                Some(entry) => {
                    if entry.spec.url != spec.url {
                        info!(source = %name, from = %entry.spec.url, to = %spec.url,
                            "source url changed; fetching it afresh");
                        entry.state = state::resume(None, url);
                        entry.moved_logged = None;
                    } else {
                        state::revive(&mut entry.state);
                    }
                    entry.spec = spec.clone();
                    entry.scheduled = Some(now);
                }
                None => {
                    let mut state = state::resume(saved.remove(name.as_str()), url);
                    let scheduled = if start_up {
                        let interval = spec.refresh.typical_interval(&config.site.timezone);
                        if state::stale_at_start(&state, interval, now) {
                            Some(now)
                        } else {
                            next_fire(spec, config, now)
                        }
                    } else {
                        // Added (or added again) while running: a gone
                        // source gets another chance.
                        state::revive(&mut state);
                        info!(source = %name, url = %spec.url, "source added");
                        Some(now)
                    };
                    entries.insert(
                        name.clone(),
                        Entry {
                            spec: spec.clone(),
                            state,
                            scheduled,
                            running: false,
                            moved_logged: None,
                        },
                    );
                }
            }
            if let Some(entry) = entries.get(name) {
                self.health
                    .source(name, state::health(&entry.state, entry.due()));
            }
        }
    }

    /// Starts the fetch of every source due at `now`, up to [`CONCURRENCY`].
    fn start_due(
        &self,
        config: &Config,
        store: &Arc<dyn ArticleStore>,
        entries: &mut BTreeMap<SourceName, Entry>,
        running: &mut JoinSet<Done>,
        now: DateTime<Utc>,
    ) {
        let user_agent = format!(
            "feedsmith/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            config.server.base_url
        );
        for (name, entry) in entries.iter_mut() {
            if running.len() >= CONCURRENCY {
                break;
            }
            if entry.running || entry.due().is_none_or(|due| due > now) {
                continue;
            }
            entry.running = true;
            // The schedule moves on from now: a late wake-up fetches once,
            // never once per missed slot.
            entry.scheduled = next_fire(&entry.spec, config, now);
            let mut settings = ImportSettings::for_config(config);
            settings.overrides = FeedOverrides {
                source_name: entry.spec.source_name.clone(),
                section: entry.spec.section.clone(),
                rights: entry.spec.rights.clone(),
            };
            let job = Job {
                name: name.clone(),
                url: entry.spec.url.clone(),
                etag: entry.state.etag.clone(),
                last_modified: entry.state.last_modified.clone(),
                max_bytes: entry.spec.max_bytes,
                timeout: entry.spec.timeout,
                user_agent: user_agent.clone(),
                settings,
                store: store.clone(),
                fetcher: self.fetcher.clone(),
                now,
            };
            debug!(source = %name, url = %entry.spec.url, "fetching source");
            running.spawn(job.run());
        }
    }

    /// Applies a finished fetch: the state changes (logged when they are a
    /// change), is saved and shown.
    async fn finish(
        &mut self,
        store: &Arc<dyn ArticleStore>,
        entries: &mut BTreeMap<SourceName, Entry>,
        done: Done,
    ) {
        let Some(entry) = entries.get_mut(&done.name) else {
            return; // removed while it was fetched
        };
        entry.running = false;
        if entry.spec.url != done.url {
            return; // its file names another URL now, which is fetched afresh
        }
        let name = &done.name;
        let now = self.clock.now();
        if let Some(to) = &done.moved_to
            && entry.moved_logged.as_ref() != Some(to)
        {
            warn!(source = %name, file = %entry.spec.path.display(), from = %entry.spec.url, to = %to,
                "the upstream moved permanently; update the url in the source file");
            entry.moved_logged = Some(to.clone());
        }
        if let Some((summary, rejections)) = &done.imported {
            if summary.imported + summary.updated > 0 || summary.rejected > 0 {
                info!(source = %name, %summary, "imported from source");
            } else {
                debug!(source = %name, %summary, "source unchanged");
            }
            for rejection in rejections.iter().take(REJECTIONS_LOGGED) {
                warn!(source = %name, %rejection, "source item rejected");
            }
        }
        let interval = interval(&entry.spec, &self.config.borrow());
        match state::apply(&mut entry.state, done.outcome, interval, now) {
            Change::None => {
                debug!(source = %name, status = ?entry.state.last_status, "source fetched")
            }
            Change::Recovered => info!(source = %name, "source fetched again"),
            Change::Failing => warn!(
                source = %name,
                reason = entry.state.last_error.as_deref().unwrap_or_default(),
                next_fetch = ?entry.due().map(|t| t.to_rfc3339()),
                "source fetch failed; stored articles are kept"
            ),
            Change::Gone => error!(
                source = %name,
                url = %entry.spec.url,
                file = %entry.spec.path.display(),
                "the upstream answered 410 Gone; no more fetches until the source file changes"
            ),
        }
        self.health
            .source(name, state::health(&entry.state, entry.due()));
        match store.save_source_state(name.as_str(), &entry.state).await {
            Ok(()) => {
                if std::mem::take(&mut self.save_failing) {
                    info!("sources' fetch state saved again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut self.save_failing, true) {
                    warn!(error = %e, "cannot save a source's fetch state; it is kept in memory");
                }
            }
        }
    }
}

/// How often the source's schedule fires, for the back-off (a minute when
/// it cannot be told).
fn interval(spec: &SourceSpec, config: &Config) -> Duration {
    spec.refresh
        .typical_interval(&config.site.timezone)
        .and_then(|d| d.to_std().ok())
        .unwrap_or(Duration::from_secs(60))
}

/// The schedule's first fire time after `after`, in the site's time zone.
fn next_fire(spec: &SourceSpec, config: &Config, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    spec.refresh
        .next_after(&after.with_timezone(&config.site.timezone))
}

/// How long to sleep before a source not yet started may be due. Sources
/// due now but waiting for a free slot start when a fetch finishes.
fn next_wake(entries: &BTreeMap<SourceName, Entry>, now: DateTime<Utc>) -> Duration {
    entries
        .values()
        .filter(|e| !e.running)
        .filter_map(Entry::due)
        .filter(|t| *t > now)
        .min()
        .map_or(MAX_SLEEP, |t| {
            (t - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)
        })
}

/// One fetch of one source, run as its own task.
struct Job {
    name: SourceName,
    url: Url,
    etag: Option<String>,
    last_modified: Option<String>,
    max_bytes: u64,
    timeout: Duration,
    user_agent: String,
    settings: ImportSettings,
    store: Arc<dyn ArticleStore>,
    fetcher: Fetcher,
    now: DateTime<Utc>,
}

impl Job {
    async fn run(self) -> Done {
        let request = fetch::Request {
            url: &self.url,
            etag: self.etag.as_deref(),
            last_modified: self.last_modified.as_deref(),
            max_bytes: self.max_bytes,
            timeout: self.timeout,
            user_agent: &self.user_agent,
        };
        let (outcome, moved_to, imported) = match self.fetcher.fetch(&request, self.now).await {
            Err(e) => (
                Outcome::Failed {
                    status: None,
                    reason: e.to_string(),
                },
                None,
                None,
            ),
            Ok(fetched) => {
                let (outcome, imported) = match fetched.answer {
                    Answer::NotModified { max_age } => (Outcome::NotModified { max_age }, None),
                    Answer::Gone => (Outcome::Gone, None),
                    Answer::Throttled {
                        status,
                        retry_after,
                    } => (
                        Outcome::Throttled {
                            status,
                            retry_after,
                        },
                        None,
                    ),
                    Answer::Status(code) => (
                        Outcome::Failed {
                            status: Some(code),
                            reason: format!("the upstream answered {}", describe_status(code)),
                        },
                        None,
                    ),
                    Answer::Body {
                        body,
                        etag,
                        last_modified,
                        max_age,
                    } => match self.import(body).await {
                        Ok(imported) => (
                            Outcome::Imported {
                                etag,
                                last_modified,
                                max_age,
                            },
                            Some(imported),
                        ),
                        Err(reason) => (
                            Outcome::Failed {
                                status: Some(200),
                                reason,
                            },
                            None,
                        ),
                    },
                };
                (outcome, fetched.moved_to, imported)
            }
        };
        Done {
            name: self.name,
            url: self.url,
            outcome,
            moved_to,
            imported,
        }
    }

    /// Maps and validates the body as `feedsmith import` does a feed file
    /// (on a blocking thread: a 10 MB feed takes a while), then stores the
    /// valid articles. A body that is no feed stores nothing.
    async fn import(&self, body: Vec<u8>) -> Result<(ImportSummary, Vec<Rejection>), String> {
        let label = PathBuf::from(self.url.as_str());
        let settings = self.settings.clone();
        let (articles, rejections) = tokio::task::spawn_blocking(move || {
            import::check_feed_document(&label, &body, &settings)
                .map_err(|e| format!("the body is not a feed: {e}"))
        })
        .await
        .map_err(|e| format!("the feed reading task failed: {e}"))??;
        let mut summary = import::store_checked(self.store.as_ref(), articles)
            .await
            .map_err(|e| format!("cannot store its articles: {e}"))?;
        summary.rejected += rejections.len();
        Ok((summary, rejections))
    }
}

/// `404 Not Found`, or the bare number for a code HTTP does not name.
fn describe_status(code: u16) -> String {
    match http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    }
}
