//! Wiring for the commands: start-up order, not behaviour.
//!
//! This module opens the configured store (seeding an empty one), connects
//! the file watcher and SIGHUP to the reloader and the reloader to the
//! scheduler, starts the pulled sources' task on the scheduler's store and
//! configuration, and starts the HTTP server with a bound listener and a shutdown
//! signal — so tests run the real service on port 0 and `main.rs` stays a thin
//! CLI. When a feed refreshes is the scheduler's business, what a refresh does
//! `refresh`'s, what a request gets the server's.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::access_log::{self, AccessLog, AccessLogError};
use crate::article::Article;
use crate::builder::{self, FeedMeta};
use crate::config::{Config, FeedName};
use crate::import::{ImportError, ImportSettings, seed_if_empty};
use crate::publish::{self, Pipeline, PublishedSet, Publisher};
use crate::refresh::{self, RefreshError};
use crate::reloader::{self, Loader, Reloader};
use crate::scheduler::{Health, OpenError, Scheduler, StoreOpener, SystemClock};
use crate::server::{self, ServerSettings};
use crate::source::Sources;
use crate::store::{self, ArticleStore, StoreError};
use crate::websub::WebSub;

/// Why a command (`serve`, `build`, `import`) could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not be opened; `at` is where its URL is configured.
    #[error("{at}: {source}")]
    Store {
        /// Where `[store].url` is set in the configuration.
        at: crate::config::Location,
        /// The store's own error.
        #[source]
        source: StoreError,
    },
    /// One feed could not be read or built (`build` stops at the first).
    #[error("feed {feed}: {source}")]
    Refresh {
        /// The feed that failed.
        feed: FeedName,
        /// Why it failed.
        #[source]
        source: RefreshError,
    },
    /// Writing the output folder failed.
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Seeding the empty store from `[store].seed_dir` failed.
    #[error("seeding the store from {dir}: {source}")]
    Seed {
        /// The seed folder, as configured.
        dir: String,
        /// The import's own error.
        #[source]
        source: ImportError,
    },
    /// `[server.access_log]` could not be started (its file does not open).
    #[error("server.access_log: {0}")]
    AccessLog(#[from] AccessLogError),
    /// `[metrics].listen` could not be bound.
    #[error("metrics.listen: cannot listen on {addr}: {source}")]
    MetricsListen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
}

/// Whether opening the store for a command may seed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Service start (`serve`, `build`): an empty store gets `[store].seed_dir`.
    OnFirstStart,
    /// `import`: the admin is loading their own articles; add nothing else.
    Never,
}

/// Opens the configured store and, when `seeding` allows and the store is
/// empty, seeds it from `[store].seed_dir`.
pub async fn open_store(
    config: &Config,
    seeding: Seeding,
) -> Result<Box<dyn ArticleStore>, AppError> {
    open_store_with(config, seeding, config.store.connect).await
}

/// [`open_store`] for a one-shot command (`feedsmith build`, `import`): the
/// same store, without the LISTEN connection a running service keeps to hear
/// of writes as they commit.
pub async fn open_store_once(
    config: &Config,
    seeding: Seeding,
) -> Result<Box<dyn ArticleStore>, AppError> {
    let connect = store::ConnectOptions {
        listen: false,
        ..config.store.connect
    };
    open_store_with(config, seeding, connect).await
}

async fn open_store_with(
    config: &Config,
    seeding: Seeding,
    connect: store::ConnectOptions,
) -> Result<Box<dyn ArticleStore>, AppError> {
    let store = store::open(&config.store.url, connect)
        .await
        .map_err(|source| AppError::Store {
            at: config.store.url_at.clone(),
            source,
        })?;
    if let (Seeding::OnFirstStart, Some(dir)) = (seeding, &config.store.seed_dir) {
        let seeded = seed_if_empty(store.as_ref(), dir, &ImportSettings::for_config(config))
            .await
            .map_err(|source| AppError::Seed {
                dir: dir.display().to_string(),
                source,
            })?;
        if let Some(summary) = seeded {
            info!(dir = %dir.display(), %summary, "seeded the empty store");
        }
    }
    Ok(store)
}

/// What `build` wrote for one feed.
#[derive(Debug, Clone)]
pub struct BuiltFeed {
    /// The feed.
    pub name: FeedName,
    /// How many articles the feed lists (at most its `limit`).
    pub items: usize,
    /// The files written for it, one per format (`{dir}/{name}.{ext}`).
    pub files: Vec<PathBuf>,
}

/// Builds every configured feed once from the store and writes its documents
/// into `out` (`feedsmith build`).
///
/// The same query and the same bytes as the running service's refresh
/// (`refresh::build_feed`), but streamed: the store's rows are decoded on
/// the runtime as they arrive and handed in chunks to a blocking thread that
/// renders each chunk's items at once (every format on a thread of its own)
/// and writes them straight into each document's temporary file, so for a
/// large feed rendering and writing overlap reading instead of waiting for
/// the last row; the header, which needs the newest update of all items, is
/// written last into the room left in front ([`builder::FeedStream`],
/// [`publish::StreamedFiles`]). Each chunk and its render buffers are
/// reused, so memory is not freshly faulted in. Rows out of feed order (a
/// PostgreSQL collation that sorts ids unlike Rust) make it build the feed
/// as the service does instead.
pub async fn build_all(
    config: &Config,
    store: &dyn ArticleStore,
    out: &Path,
) -> Result<Vec<BuiltFeed>, AppError> {
    let mut written = Vec::with_capacity(config.feeds.len());
    for spec in config.feeds.values() {
        let failed = |source| AppError::Refresh {
            feed: spec.name.clone(),
            source,
        };
        let started = std::time::Instant::now();
        let mut meta = FeedMeta::new(config, spec);
        if let Some(page_size) = config.archive_page_size(spec) {
            let index = crate::archive::seal_current(store, spec, page_size)
                .await
                .map_err(|e| failed(RefreshError::Query(e)))?;
            meta.paging = index.subscription_paging();
        }
        let formats = spec.formats.clone();
        let (chunks, arriving) = std::sync::mpsc::channel::<Vec<Article>>();
        let name = spec.name.clone();
        let dir = out.to_owned();
        let candidates = refresh::withdrawn_candidates(config, spec, store)
            .await
            .map_err(failed)?;
        let tombstones = Tombstones {
            candidates,
            limit: spec.limit,
            period: config.tombstones,
        };
        let rendering = tokio::task::spawn_blocking(move || {
            render_into_files(meta, &formats, &dir, &name, arriving, tombstones, started)
        });
        let read = send_in_chunks(store, spec, chunks).await;
        let mut items = read.map_err(|e| failed(RefreshError::Query(e)))?;
        debug!(feed = %spec.name, items, elapsed = ?started.elapsed(), "read the feed's articles");
        let streamed = rendering
            .await
            .map_err(|e| failed(RefreshError::Task(e)))?
            .map_err(|e| match e {
                StreamFailure::Build(e) => failed(RefreshError::Build(e)),
                StreamFailure::Write(e) => AppError::from(e),
            })?;
        let files = match streamed {
            Some(files) => files,
            None => {
                // The store's order is not the builder's (a PostgreSQL
                // collation sorting ids differently): the service's way.
                debug!(feed = %spec.name, "rows out of feed order; building from a full read");
                let built = refresh::build_feed(config, spec, store)
                    .await
                    .map_err(failed)?;
                items = built.listed.len();
                publish::write_documents(out, &spec.name, &built.docs).await?
            }
        };
        debug!(feed = %spec.name, elapsed = ?started.elapsed(), "written");
        info!(feed = %spec.name, items, files = files.len(), "built feed");
        written.push(BuiltFeed {
            name: spec.name.clone(),
            items,
            files,
        });
    }
    Ok(written)
}

/// The blocking half of [`build_all`] for one feed: renders each chunk of
/// `arriving` as it comes and writes its items straight into the
/// documents' temporary files ([`publish::StreamedFiles`]), then the heads
/// and feet, and renames the files into place. `None` (and the old files
/// left as they were) if the articles came out of feed order.
fn render_into_files(
    meta: FeedMeta,
    formats: &[crate::config::Format],
    dir: &Path,
    feed: &crate::config::FeedName,
    arriving: std::sync::mpsc::Receiver<Vec<Article>>,
    tombstones: Tombstones,
    started: std::time::Instant,
) -> Result<Option<Vec<PathBuf>>, StreamFailure> {
    use StreamFailure::{Build, Write};
    let mut stream = builder::FeedStream::new(meta, formats);
    let mut files: Option<publish::StreamedFiles> = None;
    let open = |stream: &builder::FeedStream, updated| -> Result<_, StreamFailure> {
        // Room for the head as it would be if the newest update so far
        // stayed the newest: its length rarely changes after that.
        let heads: Vec<usize> = stream
            .heads(updated)
            .map_err(Build)?
            .iter()
            .map(Vec::len)
            .collect();
        publish::StreamedFiles::create(dir, feed, formats, &heads).map_err(Write)
    };
    for chunk in arriving {
        let sink = match files.take() {
            Some(sink) => sink,
            None => {
                let newest = chunk.iter().map(|a| a.updated_at).max();
                open(&stream, newest.unwrap_or(builder::EMPTY_FEED_UPDATED))?
            }
        };
        stream.push_to(&chunk, &sink).map_err(Build)?;
        files = Some(sink);
        // Freed here, so the next chunks reuse its memory.
        drop(chunk);
        if !stream.in_order() {
            // Stop writing; the caller builds the feed from a full read.
            return Ok(None);
        }
    }
    let files = match files {
        Some(files) => files,
        None => open(&stream, builder::EMPTY_FEED_UPDATED)?,
    };
    let shown = builder::tombstones_to_show(
        &stream.window(),
        tombstones.limit,
        tombstones.candidates,
        tombstones.period,
    );
    let Some(ends) = stream.finish_ends(&shown).map_err(Build)? else {
        return Ok(None);
    };
    debug!(feed = %feed, elapsed = ?started.elapsed(), "rendered");
    files.finish(&ends).map(Some).map_err(Write)
}

/// What [`render_into_files`] needs to pick a feed's tombstones once it
/// knows what the feed lists.
struct Tombstones {
    candidates: Vec<builder::Tombstone>,
    limit: u32,
    period: Duration,
}

/// Why [`render_into_files`] gave up: the builder or the output folder.
#[derive(Debug)]
enum StreamFailure {
    Build(builder::BuildError),
    Write(publish::PublishError),
}

/// Articles per chunk handed from the store read to the renderer: enough
/// that handing over and starting the render threads costs little per
/// article, few enough that the renderer starts early and the last chunk,
/// rendered after the last row, is short.
const BUILD_CHUNK: usize = 256;

/// Reads the newest articles of `spec`'s feed and sends them on in chunks
/// of [`BUILD_CHUNK`], in store order; returns how many were read. Stops
/// early, without an error, if the renderer is gone (it failed; its own
/// result says why).
async fn send_in_chunks(
    store: &dyn ArticleStore,
    spec: &crate::config::FeedSpec,
    chunks: std::sync::mpsc::Sender<Vec<Article>>,
) -> Result<usize, StoreError> {
    use futures_util::TryStreamExt;
    let mut rows = store.newest_stream(&spec.filter, spec.limit);
    let mut chunk = Vec::with_capacity(BUILD_CHUNK);
    let mut read = 0;
    while let Some(stored) = rows.try_next().await? {
        chunk.push(stored.article);
        read += 1;
        if chunk.len() == BUILD_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(BUILD_CHUNK));
            if chunks.send(full).is_err() {
                return Ok(read);
            }
        }
    }
    if !chunk.is_empty() {
        // A renderer that is gone reports its own error.
        let _ = chunks.send(chunk);
    }
    Ok(read)
}

/// Builds every feed, the index and the OPML list into a set ready to serve,
/// writing the feed documents to the output folder on the way. The service
/// refreshes through its scheduler; this one-shot form is for tests and tools.
pub async fn publish_all(
    config: &Config,
    store: &dyn ArticleStore,
    now: DateTime<Utc>,
) -> Result<PublishedSet, AppError> {
    let mut set = PublishedSet::default();
    set.stamp(now);
    let shared = Arc::new(config.clone());
    // Large bodies off the heap, as the service keeps them (the heap if the
    // folder cannot take them).
    let bodies = publish::BodyStore::create(&config.output_dir).ok();
    for spec in config.feeds.values() {
        let built = refresh::build_feed(config, spec, store)
            .await
            .map_err(|source| AppError::Refresh {
                feed: spec.name.clone(),
                source,
            })?;
        publish::write_documents(&config.output_dir, &spec.name, &built.docs).await?;
        let (config, spec, bodies) = (shared.clone(), spec.clone(), bodies.clone());
        let name = spec.name.clone();
        // Every variant made before returning: callers serve the set as it is.
        let (feed, page) = tokio::task::spawn_blocking(move || {
            let bodies = bodies.as_ref();
            let feed = refresh::represent_feed(&config, &spec, &built.docs, None, bodies);
            for rep in feed.values() {
                for encoding in publish::Encoding::COMPRESSED {
                    let _ = rep.compress(encoding, bodies);
                }
            }
            let page = refresh::represent_page(&config, &spec, &built.page, None, bodies);
            (feed, page)
        })
        .await?;
        set.put_feed(name.clone(), feed);
        set.put_page(&name, page);
    }
    let (index, opml) =
        tokio::task::spawn_blocking(move || refresh::site_documents(&shared, None)).await?;
    set.set_site(index, opml);
    Ok(set)
}

/// The server's limits from the configuration.
pub fn server_settings(config: &Config) -> ServerSettings {
    ServerSettings {
        header_read_timeout: config.server.header_timeout,
        idle_timeout: config.server.idle_timeout,
        send_timeout: config.server.send_timeout,
        min_send_rate: config.server.min_send_rate,
        max_connections: config.server.max_connections,
        max_connections_per_address: config.server.max_connections_per_address,
        shutdown_grace: config.server.shutdown_grace,
        // A listener of its own for `/metrics` takes it off the main one.
        metrics: config.metrics.enabled && config.metrics.listen.is_none(),
        ..ServerSettings::default()
    }
}

/// The store `[store].url` names, seeded from `[store].seed_dir` when empty.
pub struct ConfiguredStore;

#[async_trait]
impl StoreOpener for ConfiguredStore {
    async fn open(&self, config: &Config) -> Result<Arc<dyn ArticleStore>, OpenError> {
        let store = open_store(config, Seeding::OnFirstStart).await?;
        Ok(Arc::from(store))
    }
}

/// Runs the service on an already-bound listener until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    run_with(
        config,
        Arc::new(ConfiguredStore),
        reloader::config_loader(),
        listener,
        shutdown,
    )
    .await
}

/// [`run`] with the store opened by `opener` and reloads read by `loader`
/// (tests use a store that can fail and a loader that takes its time).
///
/// Start-up order matters: the documents an earlier run left in the output
/// folder are served at once, before the store is reached; the scheduler then
/// opens the store (retrying while it is down) and refreshes every feed.
pub async fn run_with(
    config: Config,
    opener: Arc<dyn StoreOpener>,
    loader: Loader,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    // First, so a log that cannot be opened stops start-up before anything runs.
    let access_log = AccessLog::start(&config.server.access_log)?;
    let config = Arc::new(config);
    let publisher = Arc::new(Publisher::default());
    let health = Arc::new(Health::new(1));
    let reporting = health.clone();
    let pipeline = Arc::new(Pipeline::start(
        &config.output_dir,
        publisher.clone(),
        Box::new(move |outcome| match outcome {
            Ok(()) => reporting.output_ok(),
            Err(e) => reporting.output_failed(Utc::now(), e.to_string()),
        }),
    ));
    publisher.publish(refresh::initial_set(&config, &pipeline).await);
    let (control, control_rx) = mpsc::channel(16);
    let scheduler = Scheduler::new(
        config.clone(),
        opener,
        publisher.clone(),
        pipeline.clone(),
        health.clone(),
        Arc::new(SystemClock),
    );
    let (reload, reloader) = Reloader::new(config.path.clone(), loader, control);
    let reloading = tokio::spawn(reloader.run());
    let watcher = tokio::spawn(reloader::watch_files(scheduler.subscribe(), reload.clone()));
    let following = tokio::spawn(follow_access_log(
        scheduler.subscribe(),
        access_log.0.clone(),
    ));
    let hangup = tokio::spawn(reloader::reload_on_sighup(reload));
    // Pulled sources write to the store the scheduler opens and follow the
    // configurations it applies; a client that cannot start stops only them.
    let pulling = match Sources::new(
        scheduler.subscribe(),
        scheduler.subscribe_store(),
        health.clone(),
        Arc::new(SystemClock),
    ) {
        Ok(sources) => Some(tokio::spawn(sources.run(std::future::pending()))),
        Err(e) => {
            error!(error = %e, "pulled sources are not fetched");
            None
        }
    };
    // The hub answers on the server and delivers beside the scheduler, on the
    // store the scheduler opens, following the configurations it applies (so
    // a reload can turn it on or off); one that cannot start leaves feeds
    // served.
    let hub = match WebSub::new(&config, publisher.clone(), scheduler.subscribe_store()) {
        Ok(hub) => {
            if hub.enabled() {
                info!(hubs = ?crate::builder::hub_urls(&config), "websub hub enabled");
            }
            Some(hub)
        }
        Err(e) => {
            error!(error = %e, "websub is not served");
            None
        }
    };
    let following_hub = hub.clone().map(|hub| {
        let applied = scheduler.subscribe();
        tokio::spawn(async move { hub.follow(applied).await })
    });
    let (stop_delivering, delivering_stopped) = tokio::sync::oneshot::channel::<()>();
    let delivering = hub.clone().map(|hub| {
        tokio::spawn(async move {
            hub.deliver(async {
                let _ = delivering_stopped.await;
            })
            .await;
        })
    });
    // Archive pages are read from the store the scheduler opens, for the
    // configuration it applies.
    let archive: Arc<dyn server::ArchiveEndpoint> = Arc::new(crate::archive::ArchivePages::new(
        scheduler.subscribe_store(),
        scheduler.subscribe(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let refreshing = tokio::spawn(scheduler.run(control_rx, async {
        let _ = stopped.await;
    }));
    let served = serve_with_health(
        &config,
        (publisher, Some(pipeline.clone())),
        (health, hub, Some(archive)),
        access_log,
        listener,
        shutdown,
    )
    .await;
    let _ = stop.send(());
    let _ = stop_delivering.send(());
    if let Some(delivering) = delivering {
        // A delivery in flight is abandoned; its lease lapses and it is sent again.
        let _ = tokio::time::timeout(Duration::from_secs(5), delivering).await;
    }
    watcher.abort();
    following.abort();
    if let Some(pulling) = pulling {
        pulling.abort();
    }
    hangup.abort();
    reloading.abort();
    if let Some(following_hub) = following_hub {
        following_hub.abort();
    }
    // A refresh in progress finishes its step; do not wait forever on a stuck store.
    if tokio::time::timeout(Duration::from_secs(10), refreshing)
        .await
        .is_err()
    {
        warn!("the scheduler did not stop within 10s; exiting anyway");
    }
    // What was served last goes to the output folder before the process ends,
    // so the next start serves it at once (variants still being made are
    // made again then).
    if tokio::time::timeout(Duration::from_secs(10), pipeline.writer.flush())
        .await
        .is_err()
    {
        warn!("the output folder was not saved within 10s; exiting anyway");
    }
    served
}

/// Serves whatever `publisher` holds — which its owner may replace at any
/// time — until `shutdown` completes, with the configured access log.
pub async fn serve(
    config: &Config,
    publisher: Arc<Publisher>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let access_log = AccessLog::start(&config.server.access_log)?;
    let health = Arc::new(Health::new(1));
    serve_with_health(
        config,
        (publisher, None),
        (health, None, None),
        access_log,
        listener,
        shutdown,
    )
    .await
}

/// Serves until `shutdown`, then writes the last access log lines (the
/// writer thread finishes before this returns, so they are on disk). With
/// `[metrics].listen` set, `/metrics` (and `/healthz`) are served there, by a
/// server of their own with no documents.
async fn serve_with_health(
    config: &Config,
    (publisher, pipeline): (Arc<Publisher>, Option<Arc<Pipeline>>),
    (health, hub, archive): (
        Arc<Health>,
        Option<WebSub>,
        Option<Arc<dyn server::ArchiveEndpoint>>,
    ),
    (access_log, writer): (AccessLog, access_log::Writer),
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let metrics_listener = match config.metrics.listen {
        Some(addr) if config.metrics.enabled => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::MetricsListen { addr, source })?,
        ),
        _ => None,
    };
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, feeds = config.feeds.len(), "serving");
    }
    let reopening = tokio::spawn(reopen_on_sigusr1(access_log.clone()));
    let report = health_reporter(
        publisher.clone(),
        pipeline,
        (health, hub.clone()),
        access_log.clone(),
    );
    let (stop_metrics, metrics_stopping) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = metrics_listener.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "serving /metrics");
        }
        let settings = ServerSettings {
            metrics: true,
            ..server_settings(config)
        };
        tokio::spawn(server::serve(
            listener,
            Arc::new(Publisher::default()),
            report.clone(),
            settings,
            access_log.clone(),
            server::Endpoints::default(),
            async {
                let _ = metrics_stopping.await;
            },
        ))
    });
    server::serve(
        listener,
        publisher,
        report,
        server_settings(config),
        access_log,
        server::Endpoints {
            hub: hub.map(|h| Arc::new(h) as Arc<dyn server::HubEndpoint>),
            archive,
        },
        shutdown,
    )
    .await;
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_server {
        let _ = task.await;
    }
    reopening.abort();
    if let Err(e) = tokio::task::spawn_blocking(move || writer.finish()).await {
        warn!(error = %e, "the access log writer failed while finishing");
    }
    Ok(())
}

/// `/healthz`: what a load balancer or an admin needs to know, with the
/// server's connection figures and the access log's.
fn health_reporter(
    publisher: Arc<Publisher>,
    pipeline: Option<Arc<Pipeline>>,
    (health, hub): (Arc<Health>, Option<WebSub>),
    access_log: AccessLog,
) -> server::HealthReport {
    Arc::new(move |connections: &server::ConnectionStats| {
        let set = publisher.snapshot();
        let mut body = health.report(Utc::now(), set.feeds().len(), set.published_at());
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "connections".into(),
                serde_json::to_value(connections).unwrap_or_default(),
            );
            fields.insert(
                "access_log".into(),
                serde_json::to_value(access_log.stats()).unwrap_or_default(),
            );
            if let Some(hub) = &hub {
                fields.insert("websub".into(), hub.report());
            }
            if let Some(p) = &pipeline {
                let usage = p.store.as_ref().map(|s| s.usage()).unwrap_or_default();
                fields.insert(
                    "publishing".into(),
                    serde_json::json!({
                        "compression_backlog": p.compressor.backlog(),
                        "body_store": p.store.is_some(),
                        "body_store_used_bytes": usage.used_bytes,
                        "body_store_file_bytes": usage.file_bytes,
                    }),
                );
            }
        }
        Bytes::from(body.to_string())
    })
}

/// SIGUSR1 reopens a file access log at its path, the logrotate convention
/// (`postrotate kill -USR1 …`).
async fn reopen_on_sigusr1(access_log: AccessLog) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut signals) = signal(SignalKind::user_defined1()) else {
        warn!("cannot listen for SIGUSR1; the access log cannot be reopened after rotation");
        return;
    };
    while signals.recv().await.is_some() {
        tracing::debug!("SIGUSR1: reopening the access log");
        access_log.reopen();
    }
}

/// Applies each newly applied configuration's `[server.access_log]`.
async fn follow_access_log(mut applied: watch::Receiver<Arc<Config>>, access_log: AccessLog) {
    loop {
        let config = applied.borrow_and_update().clone();
        access_log.reconfigure(&config.server.access_log);
        if applied.changed().await.is_err() {
            return;
        }
    }
}
