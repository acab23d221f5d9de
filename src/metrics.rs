//! Prometheus metrics: what the service counts, and `/metrics` in the
//! Prometheus text exposition format (version 0.0.4).
//!
//! This module owns every metric family and their names, labels and help
//! texts; the other modules only record events through [`global`]. One set
//! of metrics per process, like the process metrics beside them: Prometheus
//! scrapes a process, and a counter handed down through every constructor
//! would touch every module for no gain. It never decides anything and
//! never blocks: recording a request is a few relaxed atomic additions into
//! fixed arrays (no lock, no map, no allocation), the labelled publishing
//! families are written at most once per feed build, and the text is made
//! only when `/metrics` is asked for.
//!
//! The encoding is `prometheus-client`'s (the Prometheus project's Rust
//! client). No label takes a value from a request: a route is one of
//! [`RouteKind`], and a feed label is only ever a configured feed's name.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What kind of URL a request was for: the `route` label. `archive` and
/// `websub` are reserved for RFC 5005 archive pages and the WebSub hub
/// endpoint, so dashboards need not change when those routes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `/feeds/{name}.{rss,atom,json}`.
    Feed,
    /// `/feeds/{name}` and `/feeds/{name}.html`: a feed's page for people.
    Page,
    /// `/feeds/{name}/archive/...` (reserved).
    Archive,
    /// `/`.
    Index,
    /// `/feeds.opml`.
    Opml,
    /// `/healthz`.
    Health,
    /// `/metrics`.
    Metrics,
    /// `/websub` (reserved).
    Websub,
    /// Anything else: unknown paths, and requests refused before routing.
    Other,
}

impl RouteKind {
    const ALL: [RouteKind; 9] = [
        RouteKind::Feed,
        RouteKind::Page,
        RouteKind::Archive,
        RouteKind::Index,
        RouteKind::Opml,
        RouteKind::Health,
        RouteKind::Metrics,
        RouteKind::Websub,
        RouteKind::Other,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Feed => "feed",
            RouteKind::Page => "page",
            RouteKind::Archive => "archive",
            RouteKind::Index => "index",
            RouteKind::Opml => "opml",
            RouteKind::Health => "health",
            RouteKind::Metrics => "metrics",
            RouteKind::Websub => "websub",
            RouteKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const ROUTES: usize = RouteKind::ALL.len();
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Content codings; `none` for a response that is not a published document.
const CODINGS: [&str; 4] = ["identity", "gzip", "br", "none"];
/// The access log's names for a request's preconditions and their outcome.
const CONDITIONALS: [&str; 4] = ["none", "not_modified", "modified", "precondition_failed"];
const REQUEST_SLOTS: usize = ROUTES * STATUS_CLASSES.len() * CODINGS.len() * CONDITIONALS.len();

/// Upper bounds of the request-duration buckets, in seconds: a request
/// answered from memory takes microseconds, so the low end is fine-grained.
const REQUEST_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// A histogram of fixed buckets made of atomics only, for the request path:
/// `prometheus-client`'s own takes a mutex on every observation.
#[derive(Debug)]
struct AtomicHistogram {
    /// Observations per bucket, not cumulative (one increment each); the
    /// last slot is above every bound.
    buckets: [AtomicU64; REQUEST_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = REQUEST_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(REQUEST_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Sum, count and the buckets of `histograms` together, as
    /// `prometheus-client`'s encoder takes them: each bucket's own count (it
    /// adds them up), `+Inf` last.
    fn snapshot<'a>(histograms: impl Iterator<Item = &'a Self>) -> (f64, u64, Vec<(f64, u64)>) {
        let mut counts = [0u64; REQUEST_BUCKETS.len() + 1];
        let mut nanos = 0u64;
        for h in histograms {
            for (total, slot) in counts.iter_mut().zip(&h.buckets) {
                *total += slot.load(Ordering::Relaxed);
            }
            nanos = nanos.saturating_add(h.sum_nanos.load(Ordering::Relaxed));
        }
        let buckets = counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (REQUEST_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n))
            .collect();
        // The count is the buckets' total, so the +Inf bucket and the count
        // always agree in one scrape.
        (nanos as f64 / 1e9, counts.iter().sum(), buckets)
    }
}

/// The HTTP families: plain arrays indexed by label values, so recording a
/// request is atomic additions; the collector writes only the label sets
/// that have been seen. Each thread records into a shard of its own: with
/// one set of counters, the serving threads took turns owning the same
/// cache lines, which cost 304s (the cheapest answers) up to a quarter more
/// CPU per request on two cores; a scrape adds the shards up.
#[derive(Debug)]
pub struct HttpMetrics {
    shards: Vec<Padded<Shard>>,
}

/// Shards of [`HttpMetrics`]: threads beyond this many share them.
const SHARDS: usize = 16;

/// A value on cache lines of its own (128 bytes: two lines, as adjacent-line
/// prefetching pairs them).
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

/// One thread's counters.
#[derive(Debug)]
struct Shard {
    requests: Vec<AtomicU64>,
    bytes: [AtomicU64; ROUTES],
    durations: [AtomicHistogram; ROUTES],
}

/// This thread's shard number, given out in turn the first time a thread
/// records.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// One answered request, as [`HttpMetrics::record`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// What kind of URL it was for.
    pub route: RouteKind,
    /// The response status.
    pub status: u16,
    /// The content coding of a published document (`identity`, `gzip`,
    /// `br`); `None` for anything else.
    pub coding: Option<&'static str>,
    /// The access log's name for its preconditions' outcome.
    pub conditional: &'static str,
    /// Body bytes sent.
    pub body_bytes: u64,
    /// From the request head to the response decided.
    pub elapsed: Duration,
}

impl HttpMetrics {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Padded(Shard {
                        // A few slots more, so no two shards' request arrays
                        // end on one cache line.
                        requests: (0..REQUEST_SLOTS + 16).map(|_| AtomicU64::new(0)).collect(),
                        bytes: std::array::from_fn(|_| AtomicU64::new(0)),
                        durations: std::array::from_fn(|_| AtomicHistogram::new()),
                    })
                })
                .collect(),
        }
    }

    /// Requests counted in label slot `slot`, over all shards.
    fn requests(&self, slot: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                s.0.requests
                    .get(slot)
                    .map_or(0, |c| c.load(Ordering::Relaxed))
            })
            .sum()
    }

    /// The duration histogram of `route`, over all shards.
    fn durations(&self, route: usize) -> (f64, u64, Vec<(f64, u64)>) {
        AtomicHistogram::snapshot(self.shards.iter().filter_map(|s| s.0.durations.get(route)))
    }

    /// Counts one answered request.
    pub fn record(&self, r: &Request) {
        let route = r.route.index();
        let class = usize::from((r.status / 100).clamp(1, 5) - 1);
        let coding = match r.coding {
            Some("identity") => 0,
            Some("gzip") => 1,
            Some("br") => 2,
            _ => 3,
        };
        let conditional = CONDITIONALS
            .iter()
            .position(|c| *c == r.conditional)
            .unwrap_or(0);
        let slot = ((route * STATUS_CLASSES.len() + class) * CODINGS.len() + coding)
            * CONDITIONALS.len()
            + conditional;
        let Some(Padded(shard)) = self.shards.get(shard_index()) else {
            return;
        };
        if let Some(counter) = shard.requests.get(slot) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        shard.bytes[route].fetch_add(r.body_bytes, Ordering::Relaxed);
        shard.durations[route].observe(r.elapsed);
    }
}

impl Collector for &'static HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "feedsmith_http_requests",
            "HTTP requests answered, by route kind, status class, content coding and conditional outcome.",
            None,
            MetricType::Counter,
        )?;
        for slot in 0..REQUEST_SLOTS {
            let value = self.requests(slot);
            if value == 0 {
                continue;
            }
            let conditional = CONDITIONALS[slot % CONDITIONALS.len()];
            let rest = slot / CONDITIONALS.len();
            let coding = CODINGS[rest % CODINGS.len()];
            let rest = rest / CODINGS.len();
            let class = STATUS_CLASSES[rest % STATUS_CLASSES.len()];
            let route = RouteKind::ALL[rest / STATUS_CLASSES.len()].name();
            let labels = [
                ("route", route),
                ("status", class),
                ("coding", coding),
                ("conditional", conditional),
            ];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "feedsmith_http_response_bytes",
            "HTTP response body bytes, by route kind.",
            None,
            MetricType::Counter,
        )?;
        for kind in RouteKind::ALL {
            let value: u64 = self
                .shards
                .iter()
                .map(|s| s.0.bytes[kind.index()].load(Ordering::Relaxed))
                .sum();
            ConstCounter::new(value).encode(family.encode_family(&[("route", kind.name())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "feedsmith_http_request_duration_seconds",
            "Time from a request's head to its response decided (the send is not included), by route kind.",
            None,
            MetricType::Histogram,
        )?;
        for kind in RouteKind::ALL {
            let (sum, count, buckets) = self.durations(kind.index());
            family
                .encode_family(&[("route", kind.name())])?
                .encode_histogram::<NoExemplar>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

/// Histograms here carry no exemplars.
type NoExemplar = prometheus_client::encoding::NoLabelSet;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedResult {
    feed: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    feed: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodingLabel {
    coding: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// How one feed's rebuild ended: the `result` label of
/// `feedsmith_feed_builds_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildResult {
    /// New bytes, published.
    Published,
    /// Rebuilt to the same bytes: nothing to publish.
    Unchanged,
    /// The store or the builder failed; the last documents stay served.
    Failed,
}

impl BuildResult {
    fn name(self) -> &'static str {
        match self {
            BuildResult::Published => "published",
            BuildResult::Unchanged => "unchanged",
            BuildResult::Failed => "failed",
        }
    }
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests, response bytes and durations.
    pub http: &'static HttpMetrics,
    builds: Family<FeedResult, Counter>,
    build_seconds: Histogram,
    compression_seconds: Family<CodingLabel, Histogram>,
    documents_published: Counter,
    store_revision: Gauge,
    built_revision: Family<FeedLabel, Gauge>,
    store_poll: Gauge<f64, AtomicU64>,
    store_errors: Counter,
    reloads: Family<ResultLabel, Counter>,
    output_failures: Counter,
    access_log_dropped: Counter,
}

/// The process's metrics, made on first use.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Buckets for work that takes milliseconds to seconds (builds, compression).
fn work_buckets() -> Histogram {
    Histogram::new([
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    fn new() -> Self {
        // Leaked once per process: the collector must be 'static and the
        // recorders keep a plain reference to it.
        let http: &'static HttpMetrics = Box::leak(Box::new(HttpMetrics::new()));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(http));
        let m = Self {
            registry: Registry::default(),
            http,
            builds: Family::default(),
            build_seconds: work_buckets(),
            compression_seconds: Family::new_with_constructor(work_buckets),
            documents_published: Counter::default(),
            store_revision: Gauge::default(),
            built_revision: Family::default(),
            store_poll: Gauge::default(),
            store_errors: Counter::default(),
            reloads: Family::default(),
            output_failures: Counter::default(),
            access_log_dropped: Counter::default(),
        };
        registry.register(
            "feedsmith_feed_builds",
            "Feed rebuilds, by feed and result (published, unchanged, failed)",
            m.builds.clone(),
        );
        registry.register(
            "feedsmith_feed_build_duration_seconds",
            "Time to read a feed's articles and build its documents",
            m.build_seconds.clone(),
        );
        registry.register(
            "feedsmith_compression_duration_seconds",
            "Time to compress one document, by content coding",
            m.compression_seconds.clone(),
        );
        registry.register(
            "feedsmith_documents_published",
            "Documents published with new bytes (one per format of each changed feed)",
            m.documents_published.clone(),
        );
        registry.register(
            "feedsmith_store_revision",
            "The article store's revision at its last successful poll",
            m.store_revision.clone(),
        );
        registry.register(
            "feedsmith_feed_built_revision",
            "The store revision each feed's served documents were built from",
            m.built_revision.clone(),
        );
        registry.register(
            "feedsmith_store_last_poll_timestamp_seconds",
            "Unix time of the last successful store poll",
            m.store_poll.clone(),
        );
        registry.register(
            "feedsmith_store_errors",
            "Store faults: failed opens, polls and queries",
            m.store_errors.clone(),
        );
        registry.register(
            "feedsmith_config_reloads",
            "Configuration reloads, by result (applied, rejected)",
            m.reloads.clone(),
        );
        registry.register(
            "feedsmith_output_write_failures",
            "Failed writes of the output folder",
            m.output_failures.clone(),
        );
        registry.register(
            "feedsmith_access_log_dropped_lines",
            "Access log lines dropped (buffer full or write failed)",
            m.access_log_dropped.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        Self { registry, ..m }
    }

    /// The text of `/metrics` now.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry).is_err()
        {
            // Writing to a String cannot fail; say so rather than serve half.
            text.clear();
            let _ = writeln!(text, "# encoding the metrics failed");
        }
        text
    }

    /// One feed's rebuild ended with `result` after `elapsed`.
    pub fn feed_built(&self, feed: &str, result: BuildResult, elapsed: Duration) {
        self.builds
            .get_or_create(&FeedResult {
                feed: feed.to_owned(),
                result: result.name(),
            })
            .inc();
        self.build_seconds.observe(elapsed.as_secs_f64());
    }

    /// `feed`'s served documents now reflect store revision `revision`.
    pub fn feed_at_revision(&self, feed: &str, revision: i64) {
        self.built_revision
            .get_or_create(&FeedLabel {
                feed: feed.to_owned(),
            })
            .set(revision);
    }

    /// A feed left the configuration: its series go with it.
    pub fn forget_feed(&self, feed: &str) {
        let label = FeedLabel {
            feed: feed.to_owned(),
        };
        self.built_revision.remove(&label);
        for result in [
            BuildResult::Published,
            BuildResult::Unchanged,
            BuildResult::Failed,
        ] {
            self.builds.remove(&FeedResult {
                feed: label.feed.clone(),
                result: result.name(),
            });
        }
    }

    /// A document was compressed into `coding` in `elapsed`.
    pub fn compressed(&self, coding: &'static str, elapsed: Duration) {
        self.compression_seconds
            .get_or_create(&CodingLabel { coding })
            .observe(elapsed.as_secs_f64());
    }

    /// `count` documents with new bytes were published.
    pub fn documents_published(&self, count: usize) {
        self.documents_published.inc_by(count as u64);
    }

    /// The store answered a poll at `revision` (if it said) at `unix_seconds`.
    pub fn store_polled(&self, revision: Option<i64>, unix_seconds: f64) {
        if let Some(rev) = revision {
            self.store_revision.set(rev);
        }
        self.store_poll.set(unix_seconds);
    }

    /// The store failed (open, poll or query).
    pub fn store_failed(&self) {
        self.store_errors.inc();
    }

    /// A reloaded configuration was applied (`true`) or rejected.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// Writing the output folder failed.
    pub fn output_failed(&self) {
        self.output_failures.inc();
    }

    /// `lines` access log lines were dropped.
    pub fn access_log_dropped(&self, lines: u64) {
        self.access_log_dropped.inc_by(lines);
    }
}

/// The standard `process_*` metrics, read from `/proc/self` at each scrape.
///
/// `prometheus-client` has no process collector; the older `prometheus`
/// crate's (behind its `process` feature) would bring a second metrics
/// library and `procfs` for six numbers. These are the same names and
/// meanings as the Go client's, which dashboards expect. Reading `/proc`
/// never waits on a disk: it is the kernel's memory.
#[derive(Debug)]
struct ProcessCollector {
    start_time: Option<f64>,
}

impl ProcessCollector {
    fn new() -> Self {
        Self {
            start_time: process_start_time(),
        }
    }
}

/// `/proc/self/stat`'s fields after the command name (which may hold spaces).
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// Unix time the process started: boot time plus its start in clock ticks.
fn process_start_time() -> Option<f64> {
    let fields = stat_fields()?;
    // Field 22 (starttime); the fields here start at field 3 (state).
    let ticks: f64 = fields.get(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + ticks / clock_ticks())
}

/// Writes one gauge family of a single value.
fn const_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(fields) = stat_fields() {
            // The fields here start at field 3 (state) of proc(5): 14 and 15
            // are utime and stime, 23 and 24 vsize and rss (in pages).
            let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
            if let (Some(user), Some(system)) = (num(11), num(12)) {
                let cpu = ConstCounter::new((user + system) / clock_ticks());
                cpu.encode(encoder.encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds.",
                    None,
                    MetricType::Counter,
                )?)?;
            }
            if let Some(vsize) = num(20) {
                const_gauge(
                    &mut encoder,
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    vsize,
                )?;
            }
            if let Some(pages) = num(21) {
                let page = rustix::param::page_size() as f64;
                const_gauge(
                    &mut encoder,
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    pages * page,
                )?;
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            const_gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                fds.count() as f64,
            )?;
        }
        if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            const_gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                limit as f64,
            )?;
        }
        if let Some(start) = self.start_time {
            const_gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                start,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_under_its_labels() {
        let m = Metrics::new();
        m.http.record(&Request {
            route: RouteKind::Feed,
            status: 304,
            coding: Some("gzip"),
            conditional: "not_modified",
            body_bytes: 0,
            elapsed: Duration::from_micros(30),
        });
        let text = m.render();
        assert!(
            text.contains(
                "feedsmith_http_requests_total{route=\"feed\",status=\"3xx\",coding=\"gzip\",conditional=\"not_modified\"} 1\n"
            ),
            "{text}"
        );
        for le in ["5e-05", "0.0001", "1", "+Inf"] {
            assert!(
                text.contains(&format!(
                    "feedsmith_http_request_duration_seconds_bucket{{route=\"feed\",le=\"{le}\"}} 1\n"
                )),
                "cumulative bucket {le}: {text}"
            );
        }
        assert!(text.contains("feedsmith_http_request_duration_seconds_count{route=\"feed\"} 1\n"));
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    #[test]
    fn status_and_coding_outside_the_known_values_are_kept_in_range() {
        let m = HttpMetrics::new();
        m.record(&Request {
            route: RouteKind::Other,
            status: 999,
            coding: Some("zstd"),
            conditional: "whatever",
            body_bytes: 1,
            elapsed: Duration::from_secs(100),
        });
        m.record(&Request {
            route: RouteKind::Other,
            status: 0,
            coding: None,
            conditional: "none",
            body_bytes: 1,
            elapsed: Duration::ZERO,
        });
        let total: u64 = (0..REQUEST_SLOTS).map(|slot| m.requests(slot)).sum();
        assert_eq!(total, 2);
        let (_, count, buckets) = m.durations(RouteKind::Other.index());
        assert_eq!(count, 2);
        assert_eq!(buckets.first().map(|b| b.1), Some(1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
    }

    #[test]
    fn requests_recorded_on_many_threads_add_up_in_one_scrape() {
        let m = HttpMetrics::new();
        let one = Request {
            route: RouteKind::Feed,
            status: 304,
            coding: Some("identity"),
            conditional: "none",
            body_bytes: 0,
            elapsed: Duration::from_micros(20),
        };
        std::thread::scope(|scope| {
            for _ in 0..SHARDS + 3 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        m.record(&one);
                    }
                });
            }
        });
        let total: u64 = (0..REQUEST_SLOTS).map(|slot| m.requests(slot)).sum();
        assert_eq!(total, 100 * (SHARDS as u64 + 3));
        let (sum, count, _) = m.durations(RouteKind::Feed.index());
        assert_eq!(count, total);
        assert!((sum - total as f64 * 20e-6).abs() < 1e-6, "{sum}");
    }
}
