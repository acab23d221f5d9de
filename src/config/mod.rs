//! Service and feed configuration: TOML in, a checked [`Config`] out.
//!
//! Admins edit `config/feedsmith.toml`, one file per feed under `feeds/` and
//! one file per pulled upstream feed under `sources/` (`docs/contract.md` §2). Each file is read into `Raw*` structs that mirror
//! the TOML exactly (`deny_unknown_fields`, typed fields that validate
//! themselves while serde still knows the line), then compiled into the checked
//! types that the rest of feedsmith trusts. Every problem in every file is
//! collected and reported at once as `PATH:LINE:COL: message`. This module
//! reads files and nothing else: it never opens the store or binds a socket.

mod document;
pub mod schedule;
mod syntax;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use url::Url;

pub use document::{LineCol, Location, MAX_PROBLEMS, Problem, Problems, Source};
pub use schedule::CronSchedule;

use crate::article::{ArticleFilter, parse_http_url};
use crate::store::{ConnectOptions, StoreUrl};

/// Where the service config is read from when neither `--config` nor
/// `FEEDSMITH_CONFIG` names another file.
pub const DEFAULT_CONFIG_PATH: &str = "config/feedsmith.toml";

/// Largest `limit` a feed may ask for: readers choke on bigger documents long
/// before the store does.
pub const MAX_LIMIT: u32 = 10_000;
/// How long a withdrawn article's tombstone stays in a feed by default: a
/// week, longer than the slowest readers' polling interval, so every
/// aggregator that fetched the story learns it was withdrawn.
pub const DEFAULT_TOMBSTONES: Duration = Duration::from_secs(7 * 24 * 3600);

/// Articles per archive page when neither the feed file nor `[feeds]` says.
pub const DEFAULT_ARCHIVE_PAGE_SIZE: u32 = 100;

/// Articles a feed lists when its file sets no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// The refresh schedule (cron, in the site's time zone) when neither the feed
/// nor `[schedule].refresh` sets one: every five minutes.
pub const DEFAULT_REFRESH: &str = "*/5 * * * *";
/// The shortest `[schedule].watch` interval: each poll is one query.
const MIN_WATCH: Duration = Duration::from_millis(50);

/// The most bytes a pulled source's response body may have when its file sets
/// no `max_bytes`: 10 MB (decompressed).
pub const DEFAULT_SOURCE_MAX_BYTES: u64 = 10 * 1000 * 1000;
/// The largest `max_bytes` a source file may set: 1 GB.
pub const MAX_SOURCE_MAX_BYTES: u32 = 1000 * 1000 * 1000;
/// How long one fetch of a source may take when its file sets no `timeout`.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest config or feed file that is read, in bytes. Real ones are a
/// few hundred bytes; a file near this size is the wrong file (a log, a data
/// dump), and refusing it unread keeps a reload cheap whatever it holds.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Everything wrong with a configuration, one problem per line: the first
/// [`MAX_PROBLEMS`] in file order, then a line counting the rest. `check`,
/// the service's log and `/healthz` all show it, so they agree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The first problems, at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// How many more problems were found than `problems` lists.
    pub omitted: usize,
}

impl ConfigError {
    /// Keeps the first [`MAX_PROBLEMS`] of `problems` and counts the rest.
    pub fn new(problems: impl IntoIterator<Item = Problem>) -> Self {
        Self::from(problems.into_iter().collect::<Problems>())
    }

    /// Every problem found, listed or not.
    pub fn total(&self) -> usize {
        self.problems.len() + self.omitted
    }

    /// The line that stands for the problems not listed, if any.
    pub fn omitted_line(&self) -> Option<String> {
        match self.omitted {
            0 => None,
            1 => Some("… and 1 more problem".to_owned()),
            n => Some(format!("… and {n} more problems")),
        }
    }
}

impl From<Problems> for ConfigError {
    fn from(problems: Problems) -> Self {
        let (problems, omitted) = problems.into_parts();
        Self { problems, omitted }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if let Some(line) = self.omitted_line() {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

/// Why a config file was not read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// Over [`MAX_FILE_BYTES`]; `None` when it grew past it while being read.
    #[error(
        "file is {}; a config file may be at most 1 MiB (is this the right file?)",
        describe_size(*.0)
    )]
    TooLarge(Option<u64>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `4.8 MiB`, rounded up so that no refused size reads as the limit itself.
fn describe_size(bytes: Option<u64>) -> String {
    match bytes {
        Some(bytes) => {
            let tenths = (u128::from(bytes) * 10).div_ceil(1 << 20);
            format!("{}.{} MiB", tenths / 10, tenths % 10)
        }
        None => "more than 1 MiB".to_owned(),
    }
}

/// Reads one config file, refusing it unread when it is over the limit. The
/// metadata says so at once; the bounded read catches a file that grows
/// while it is read.
fn read_source(path: &Path) -> Result<Source, ReadError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(Some(len)));
    }
    let text = read_bounded(file, len)?;
    Ok(Source::new(path.to_owned(), text))
}

/// At most [`MAX_FILE_BYTES`] of `reader` as text; `expected` sizes the buffer.
fn read_bounded(reader: impl std::io::Read, expected: u64) -> Result<String, ReadError> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(MAX_FILE_BYTES)).unwrap_or(0));
    reader.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(None));
    }
    String::from_utf8(bytes)
        .map_err(|e| ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// A feed's name: the stem of its file, `[a-z0-9-]+`, and the `{name}` in its URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedName(String);

impl FeedName {
    /// The name as a string, e.g. for building paths and URLs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FeedName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("feed name {s:?} must be 1 to 64 characters"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "feed name {s:?} may only contain a-z, 0-9 and '-' (it is the file name and the URL)"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Lets maps keyed by feed name be searched with the `{name}` of a URL path.
impl std::borrow::Borrow<str> for FeedName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pulled source's name: the stem of its file, `[a-z0-9-]+`, as feed names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceName(String);

impl SourceName {
    /// The name as a string, e.g. for logs and the store's state table.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SourceName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The same rule as feed names, said in a source's words.
        s.parse::<FeedName>()
            .map(|n| Self(n.0))
            .map_err(|e| e.replacen("feed name", "source name", 1))
    }
}

impl std::borrow::Borrow<str> for SourceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The document formats a feed is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// RSS 2.0, at `/feeds/{name}.rss`.
    Rss,
    /// Atom 1.0, at `/feeds/{name}.atom`.
    Atom,
    /// JSON Feed 1.1, at `/feeds/{name}.json`.
    Json,
}

impl Format {
    /// Every format, in their order; what a feed publishes when it lists none.
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    /// The file extension, which is also the URL suffix.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }
}

/// An absolute `http(s)` URL, checked while serde still knows its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_http_url(&s)
            .map(HttpUrl)
            .map_err(serde::de::Error::custom)
    }
}

/// An IANA zone name such as `Europe/Dublin`.
#[derive(Debug, Clone, Copy)]
struct Zone(Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Tz>().map(Zone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown timezone {s:?}; use an IANA name such as \"Europe/Dublin\" or \"UTC\""
            ))
        })
    }
}

/// A feed's item limit, `1..=MAX_LIMIT`.
#[derive(Debug, Clone, Copy)]
struct Limit(u32);

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, MAX_LIMIT, "limit ").map(Limit)
    }
}

/// An archive page size, `1..=`[`MAX_LIMIT`].
#[derive(Debug, Clone, Copy)]
struct PageSize(u32);

impl<'de> Deserialize<'de> for PageSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, MAX_LIMIT, "archive_page_size ").map(PageSize)
    }
}

/// A whole number in `1..=max`; out of range is reported as
/// "{prefix}{n} is out of range 1..={max}".
fn whole_number<'de, D: Deserializer<'de>>(d: D, max: u32, prefix: &str) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| serde::de::Error::custom(format!("{prefix}{n} is out of range 1..={max}")))
}

/// Text an admin must actually write: empty or blank strings are refused.
#[derive(Debug, Clone)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        if let Some(c) = s.chars().find(|&c| !crate::article::is_xml_char(c)) {
            return Err(serde::de::Error::custom(format!(
                "contains {c:?}, which cannot appear in a feed"
            )));
        }
        Ok(Text(s))
    }
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMain {
    server: RawServer,
    site: RawSite,
    store: RawStore,
    output: Option<RawOutput>,
    schedule: Option<RawSchedule>,
    feeds: Option<RawFeedsSection>,
    sources: Option<RawSourcesSection>,
    log: Option<RawLog>,
    websub: Option<RawWebSub>,
    metrics: Option<RawMetrics>,
}

/// `[metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: Option<bool>,
    listen: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    base_url: HttpUrl,
    cache_max_age: Option<Interval>,
    stale_if_error: Option<Interval>,
    max_connections: Option<Count>,
    max_connections_per_address: Option<Count>,
    header_timeout: Option<Interval>,
    idle_timeout: Option<Interval>,
    send_timeout: Option<Interval>,
    min_send_rate: Option<Rate>,
    shutdown_grace: Option<Interval>,
    access_log: Option<RawAccessLog>,
}

/// `[server.access_log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    format: Option<AccessLogFormat>,
    path: Option<Spanned<PathBuf>>,
    buffer_kib: Option<BufferKib>,
}

/// `server.access_log.buffer_kib`: 4 KiB to 1 GiB.
#[derive(Debug, Clone, Copy)]
struct BufferKib(usize);

impl<'de> Deserialize<'de> for BufferKib {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = whole_number(d, 1 << 20, "")?;
        if n < 4 {
            return Err(serde::de::Error::custom(format!(
                "{n} is out of range 4..={}",
                1 << 20
            )));
        }
        // u32 always fits in usize on the platforms feedsmith builds for.
        Ok(BufferKib(n as usize))
    }
}

/// `[log]`: the service's own log (not the access log).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
}

/// `[websub]`: the built-in WebSub hub and the external hubs pinged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebSub {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    allow_callbacks: Vec<Cidr>,
    #[serde(default)]
    hubs: Vec<HttpUrl>,
    lease_default: Option<Spanned<Interval>>,
    lease_max: Option<Spanned<Interval>>,
    max_subscriptions: Option<Count>,
    max_per_callback_host: Option<Count>,
    max_request_bytes: Option<Count>,
    verify_timeout: Option<Interval>,
    delivery_timeout: Option<Interval>,
    delivery_concurrency: Option<Count>,
    retry_for: Option<Interval>,
    requests_per_minute: Option<Count>,
}

/// An address range such as `"127.0.0.1/32"` or `"fd00::/8"`.
#[derive(Debug, Clone, Copy)]
struct Cidr(ipnet::IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.trim().parse::<ipnet::IpNet>().map(Cidr).map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not an address range such as \"127.0.0.1/32\" or \"fd00::/8\""
            ))
        })
    }
}

/// A duration written with its unit, such as `"30s"`, `"5m"` or `"1d"`.
#[derive(Debug, Clone, Copy)]
struct Interval(Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim())
            .map(Interval)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a duration such as \"30s\", \"5m\" or \"1d\": {e}"
                ))
            })
    }
}

/// A positive count up to a million.
#[derive(Debug, Clone, Copy)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // u32 always fits in usize on the platforms feedsmith builds for.
        whole_number(d, 1_000_000, "").map(|n| Count(n as usize))
    }
}

/// A transfer rate in bytes per second, 1 B/s to 1 GB/s.
#[derive(Debug, Clone, Copy)]
struct Rate(u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, 1_000_000_000, "").map(|n| Rate(u64::from(n)))
    }
}

/// `store.pool_size`: 1 up to [`ConnectOptions::MAX_POOL_SIZE`].
#[derive(Debug, Clone, Copy)]
struct PoolSize(u32);

impl<'de> Deserialize<'de> for PoolSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, ConnectOptions::MAX_POOL_SIZE, "").map(PoolSize)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: Text,
    timezone: Zone,
    description: Option<Text>,
    language: Option<Spanned<String>>,
    url: Option<HttpUrl>,
    rights: Option<Text>,
    logo: Option<HttpUrl>,
    icon: Option<HttpUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Spanned<StoreUrl>,
    seed_dir: Option<Spanned<PathBuf>>,
    pool_size: Option<Spanned<PoolSize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    refresh: Option<CronSchedule>,
    watch: Option<Spanned<Interval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeedsSection {
    dir: Option<Spanned<PathBuf>>,
    tombstones: Option<Interval>,
    archive: Option<bool>,
    archive_page_size: Option<PageSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourcesSection {
    dir: Spanned<PathBuf>,
}

/// One file in the sources folder: an upstream feed the service pulls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: HttpUrl,
    refresh: Option<CronSchedule>,
    name: Option<Text>,
    section: Option<Text>,
    rights: Option<Text>,
    max_bytes: Option<MaxBytes>,
    timeout: Option<Spanned<Interval>>,
}

/// A source's `max_bytes`: 1 to [`MAX_SOURCE_MAX_BYTES`].
#[derive(Debug, Clone, Copy)]
struct MaxBytes(u64);

impl<'de> Deserialize<'de> for MaxBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, MAX_SOURCE_MAX_BYTES, "max_bytes ").map(|n| MaxBytes(u64::from(n)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    title: Text,
    description: Option<Text>,
    limit: Option<Limit>,
    #[serde(default)]
    sections: Vec<Text>,
    #[serde(default)]
    tags: Vec<Text>,
    #[serde(default)]
    authors: Vec<Text>,
    formats: Option<Spanned<Vec<Format>>>,
    refresh: Option<CronSchedule>,
    archive: Option<bool>,
    archive_page_size: Option<PageSize>,
}

/// `[server]`, checked, with the defaults filled in.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on; default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where readers reach the service; self links and feed URLs are built under it.
    pub base_url: Url,
    /// `Cache-Control: max-age` for feeds; unset means each feed's refresh interval.
    pub cache_max_age: Option<Duration>,
    /// `Cache-Control: stale-if-error`: how long a cache may serve a feed while we fail.
    pub stale_if_error: Duration,
    /// Open connections at most, across all clients; default 10 000.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most.
    pub max_connections_per_address: usize,
    /// How long a new connection may take to send its first request head; default
    /// 10 s.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// With `min_send_rate`, how long a response may take to send:
    /// `send_timeout + size / min_send_rate`.
    pub send_timeout: Duration,
    /// Bytes per second.
    pub min_send_rate: u64,
    /// On shutdown, how long in-flight responses may take to finish; default 10 s.
    pub shutdown_grace: Duration,
    /// `[server.access_log]`: one line per request, for the operator.
    pub access_log: AccessLogConfig,
}

/// How the access log writes each request's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// nginx's and Apache's `combined` format, which log analysers read.
    Combined,
    /// One JSON object per line.
    Json,
    /// No access log.
    Off,
}

impl AccessLogFormat {
    /// The name written in the config.
    pub fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
            AccessLogFormat::Off => "off",
        }
    }
}

/// Where a log goes: standard output (`"-"`) or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDestination {
    /// Standard output (`"-"` in the config, the default).
    Stdout,
    /// A file, opened for appending; relative paths resolve against the working
    /// directory.
    File(PathBuf),
}

impl fmt::Display for LogDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogDestination::Stdout => f.write_str("-"),
            LogDestination::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `[server.access_log]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// `combined` (the default), `json` or `off`.
    pub format: AccessLogFormat,
    /// Relative paths resolve against the working directory.
    pub path: LogDestination,
    /// Lines waiting to be written are held up to this many bytes; past it
    /// new lines are dropped (and counted) rather than wait.
    pub buffer_bytes: usize,
}

/// The access log's buffer unless `buffer_kib` says otherwise: 1 MiB.
pub const DEFAULT_ACCESS_LOG_BUFFER: usize = 1 << 20;

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            format: AccessLogFormat::Combined,
            path: LogDestination::Stdout,
            buffer_bytes: DEFAULT_ACCESS_LOG_BUFFER,
        }
    }
}

/// The format of the service's own log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// `[log]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// Text (the default) or JSON.
    pub format: LogFormat,
}

/// `[site]`, checked: the publication as its feeds describe it.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The publication's name: the index page's title, and written into its feeds.
    pub title: String,
    /// The newsroom's IANA time zone; cron schedules run in it.
    pub timezone: Tz,
    /// The publication's description: what a feed without its own says.
    pub description: Option<String>,
    /// A BCP 47 tag such as `en-IE`, written into every feed.
    pub language: Option<String>,
    /// The newsroom's home page; feeds link here. Defaults to `server.base_url`.
    pub url: Url,
    /// The publication's copyright line for feeds as a whole.
    pub rights: Option<String>,
    /// A wide image for readers that show one (RSS `image`, Atom `logo`).
    pub logo: Option<Url>,
    /// A small square image (Atom `icon`, JSON Feed `icon`/`favicon`).
    pub icon: Option<Url>,
}

/// `[store]`, checked: where the articles are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The backend and database `store.url` names.
    pub url: StoreUrl,
    /// Articles imported into an empty store at start-up, if set.
    pub seed_dir: Option<PathBuf>,
    /// Where `url` is written, so a store that fails to open is reported there.
    pub url_at: Location,
    /// PostgreSQL connection settings (`store.pool_size`).
    pub connect: ConnectOptions,
}

/// One feed, checked: its file in the feeds folder, with defaults filled in.
#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// The feed's file stem, and its URL name.
    pub name: FeedName,
    /// The feed's file, for messages.
    pub path: PathBuf,
    /// The feed's title in its documents.
    pub title: String,
    /// The feed's own description; without one its documents use the site's.
    pub description: Option<String>,
    /// Newest matching articles listed, at most [`MAX_LIMIT`]; default
    /// [`DEFAULT_LIMIT`].
    pub limit: u32,
    /// The filters as the admin wrote them, for display.
    pub sections: Vec<String>,
    /// The tags filter as written.
    pub tags: Vec<String>,
    /// The authors filter as written.
    pub authors: Vec<String>,
    /// The same filters, normalised for matching.
    pub filter: ArticleFilter,
    /// The formats published, sorted and without repeats; all of them by default.
    pub formats: Vec<Format>,
    /// When the feed rebuilds: its own `refresh`, else `[schedule].refresh`.
    pub refresh: CronSchedule,
    /// Its own `archive` (RFC 5005 archive pages), if set; else `[feeds].archive`
    /// ([`Config::archive_page_size`] resolves the two).
    pub archive: Option<bool>,
    /// Its own `archive_page_size`, if set.
    pub archive_page_size: Option<u32>,
}

/// One pulled source, checked: its file in the sources folder, with defaults
/// filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// The source's file stem.
    pub name: SourceName,
    /// The source's file, for messages.
    pub path: PathBuf,
    /// The upstream feed (RSS 2.0 or Atom 1.0), `http` or `https`.
    pub url: Url,
    /// When it is fetched: its own `refresh`, else `[schedule].refresh`.
    pub refresh: CronSchedule,
    /// Written as every imported article's source name, instead of the feed's title.
    pub source_name: Option<String>,
    /// Written as every imported article's section, instead of its first category.
    pub section: Option<String>,
    /// Written as every imported article's source rights, instead of the feed's.
    pub rights: Option<String>,
    /// The most bytes a response body may have, decompressed; default
    /// [`DEFAULT_SOURCE_MAX_BYTES`].
    pub max_bytes: u64,
    /// How long one fetch may take, connecting and reading the whole body;
    /// default [`DEFAULT_SOURCE_TIMEOUT`].
    pub timeout: Duration,
}

/// `[websub]`, checked, with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSubConfig {
    /// Whether the hub runs and feeds advertise it; default off.
    pub enabled: bool,
    /// Address ranges callbacks may reach although they are loopback,
    /// private, link-local or unique-local.
    pub allow_callbacks: Vec<ipnet::IpNet>,
    /// External hubs advertised beside ours and pinged on every change.
    pub hubs: Vec<Url>,
    /// The lease given when a subscriber asks for none; default 10 days.
    pub lease_default: Duration,
    /// The longest lease given; default 30 days.
    pub lease_max: Duration,
    /// Subscriptions kept at most, across all callbacks; default 100 000.
    pub max_subscriptions: usize,
    /// Subscriptions one callback host may hold; default 1 000.
    pub max_per_callback_host: usize,
    /// The largest subscription request body; default 16 KiB.
    pub max_request_bytes: usize,
    /// How long a verification request to a callback may take; default 10 s.
    pub verify_timeout: Duration,
    /// How long one content delivery may take; default 10 s.
    pub delivery_timeout: Duration,
    /// Deliveries (and verifications) in flight at once; default 32.
    pub delivery_concurrency: usize,
    /// How long a failing delivery is retried before it is dropped; default 1 day.
    pub retry_for: Duration,
    /// Subscription requests one client address may make per minute; default 60.
    pub requests_per_minute: usize,
}

impl Default for WebSubConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_callbacks: Vec::new(),
            hubs: Vec::new(),
            lease_default: Duration::from_secs(10 * 86_400),
            lease_max: Duration::from_secs(30 * 86_400),
            max_subscriptions: 100_000,
            max_per_callback_host: 1_000,
            max_request_bytes: 16 * 1024,
            verify_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(10),
            delivery_concurrency: 32,
            retry_for: Duration::from_secs(86_400),
            requests_per_minute: 60,
        }
    }
}

/// `[metrics]`, checked: Prometheus metrics at `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether `/metrics` is served at all (default on).
    pub enabled: bool,
    /// A listener of its own for `/metrics`, so it need not be public;
    /// `None` serves it on `[server].listen`. Read at start-up.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// The checked configuration the service runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main config file it was read from (reloads read it again).
    pub path: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[site]`.
    pub site: SiteConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// Where the feed documents are written (`[output].dir`, default
    /// `data/published`).
    pub output_dir: PathBuf,
    /// `[schedule].refresh`: the schedule for feeds that set none, default
    /// [`DEFAULT_REFRESH`].
    pub refresh: CronSchedule,
    /// `[schedule].watch`: poll the store's revision this often and refresh
    /// as soon as it moves, instead of waiting for each feed's schedule.
    pub watch: Option<Duration>,
    /// The folder of feed files, one `NAME.toml` per feed (`[feeds].dir`, default
    /// `feeds`).
    pub feeds_dir: PathBuf,
    /// Every feed, by name.
    pub feeds: BTreeMap<FeedName, FeedSpec>,
    /// `[feeds].tombstones`: how long a withdrawn article stays in the Atom
    /// documents of the feeds that listed it as an RFC 6721 tombstone
    /// (`at:deleted-entry`); default [`DEFAULT_TOMBSTONES`], zero for none.
    pub tombstones: Duration,
    /// `[feeds].archive`: whether feeds whose file does not say keep RFC
    /// 5005 archive pages; default off.
    pub archive: bool,
    /// `[feeds].archive_page_size`: articles per archive page for feeds whose
    /// file does not say; default [`DEFAULT_ARCHIVE_PAGE_SIZE`].
    pub archive_page_size: u32,
    /// The folder of source files, one `NAME.toml` per pulled upstream feed
    /// (`[sources].dir`, default `sources`; a missing folder means none).
    pub sources_dir: PathBuf,
    /// Every pulled source, by name.
    pub sources: BTreeMap<SourceName, SourceSpec>,
    /// `[log]`: the service's own log.
    pub log: LogConfig,
    /// `[websub]`: the hub and the external hubs pinged.
    pub websub: WebSubConfig,
    /// `[metrics]`: Prometheus metrics.
    pub metrics: MetricsConfig,
}

impl Config {
    /// Reads and checks the service config at `path` and every feed file in its
    /// feeds directory. Relative paths resolve against the working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let main = read_main(path)?;
        let (mut partial, mut problems) = compile_main(&main);
        // When the main file has problems, its feeds folder and schedule are
        // still read where they are sound, so feed files get checked too.
        let fallback = partial.is_none().then(|| lenient_main(&main));
        let feeds_dir = match (&partial, &fallback) {
            (Some(p), _) => p.feeds_dir.clone(),
            (None, Some(f)) => f.feeds_dir.clone(),
            (None, None) => PathBuf::from("feeds"),
        };
        let default_refresh = match (&partial, &fallback) {
            (Some(p), _) => Some(p.refresh.clone()),
            (None, Some(f)) => f.refresh.clone(),
            (None, None) => None,
        };
        let feeds_dir_at = match (&partial, fallback) {
            (Some(p), _) => p.feeds_dir_at.clone(),
            (None, Some(f)) => f.feeds_dir_at,
            (None, None) => Location::file(path),
        };
        let mut feeds = BTreeMap::new();
        match read_feed_sources(&feeds_dir) {
            Ok(sources) => {
                if sources.is_empty() {
                    problems.push(feeds_dir_at.problem(format!(
                        "no feed files (*.toml) in {}; add at least one, such as latest.toml",
                        feeds_dir.display()
                    )));
                }
                for source in sources {
                    let source = match source {
                        Ok(source) => source,
                        Err(problem) => {
                            problems.push(problem);
                            continue;
                        }
                    };
                    match compile_feed(&source, default_refresh.as_ref()) {
                        Ok(spec) => {
                            feeds.insert(spec.name.clone(), spec);
                        }
                        Err(p) => problems.append(p),
                    }
                }
            }
            Err(message) => problems.push(feeds_dir_at.problem(message)),
        }
        let sources = match &partial {
            Some(p) => load_sources(
                &p.sources_dir,
                &p.sources_dir_at,
                default_refresh.as_ref(),
                &mut problems,
            ),
            None => BTreeMap::new(),
        };
        match partial.take() {
            Some(main) if problems.is_empty() => Ok(main.into_config(path, feeds, sources)),
            _ => Err(ConfigError::from(problems)),
        }
    }

    /// Reads and checks the service config at `path` alone, with no feeds:
    /// for commands that only write to the store (`import`), so that a feed
    /// file an admin is halfway through editing does not stop the newsroom's
    /// writes.
    pub fn load_without_feeds(path: &Path) -> Result<Config, ConfigError> {
        let main = read_main(path)?;
        match compile_main(&main) {
            (Some(main), problems) if problems.is_empty() => {
                Ok(main.into_config(path, BTreeMap::new(), BTreeMap::new()))
            }
            (_, problems) => Err(ConfigError::from(problems)),
        }
    }
}

/// The service config file's text, or why it cannot be had.
fn read_main(path: &Path) -> Result<Source, ConfigError> {
    read_source(path).map_err(|e| {
        ConfigError::new(vec![Problem::in_file(
            path,
            match e {
                ReadError::Io(e) => format!("cannot read config: {e}"),
                too_large => too_large.to_string(),
            },
        )])
    })
}

/// What the main file alone yields, before the feed files are read.
struct MainParts {
    server: ServerConfig,
    site: SiteConfig,
    store: StoreConfig,
    output_dir: PathBuf,
    refresh: CronSchedule,
    watch: Option<Duration>,
    feeds_dir: PathBuf,
    feeds_dir_at: Location,
    tombstones: Duration,
    archive: bool,
    archive_page_size: u32,
    sources_dir: PathBuf,
    sources_dir_at: Location,
    log: LogConfig,
    websub: WebSubConfig,
    metrics: MetricsConfig,
}

impl Config {
    /// The archive page size of `spec`'s feed if it keeps RFC 5005 archive
    /// pages (its own `archive`, else `[feeds].archive`), else `None`.
    pub fn archive_page_size(&self, spec: &FeedSpec) -> Option<u32> {
        spec.archive
            .unwrap_or(self.archive)
            .then(|| spec.archive_page_size.unwrap_or(self.archive_page_size))
    }
}

impl MainParts {
    fn into_config(
        self,
        path: &Path,
        feeds: BTreeMap<FeedName, FeedSpec>,
        sources: BTreeMap<SourceName, SourceSpec>,
    ) -> Config {
        Config {
            path: path.to_owned(),
            server: self.server,
            site: self.site,
            store: self.store,
            output_dir: self.output_dir,
            refresh: self.refresh,
            watch: self.watch,
            feeds_dir: self.feeds_dir,
            feeds,
            tombstones: self.tombstones,
            archive: self.archive,
            archive_page_size: self.archive_page_size,
            sources_dir: self.sources_dir,
            sources,
            log: self.log,
            websub: self.websub,
            metrics: self.metrics,
        }
    }
}

fn compile_main(source: &Source) -> (Option<MainParts>, Problems) {
    let (raw, mut problems) = document::deserialize_all::<RawMain>(source);
    let Some(raw) = raw else {
        return (None, problems);
    };
    let language = match raw.site.language {
        None => None,
        Some(lang) => {
            let ok = !lang.get_ref().is_empty()
                && lang.get_ref().split('-').all(|part| {
                    (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !ok {
                problems.push(Problem::at(
                    source,
                    Some(lang.span()),
                    format!(
                        "site.language: {:?} is not a language tag such as \"en\" or \"en-IE\"",
                        lang.get_ref()
                    ),
                ));
            }
            Some(lang.into_inner())
        }
    };
    if let Some(seed) = &raw.store.seed_dir
        && !seed.get_ref().is_dir()
    {
        problems.push(Problem::at(
            source,
            Some(seed.span()),
            format!(
                "store.seed_dir: {} is not a directory",
                seed.get_ref().display()
            ),
        ));
    }
    let mut connect = ConnectOptions::default();
    if let Some(size) = &raw.store.pool_size {
        if matches!(raw.store.url.get_ref(), StoreUrl::Postgres(_)) {
            connect.pool_size = size.get_ref().0;
        } else {
            problems.push(Problem::at(
                source,
                Some(size.span()),
                "store.pool_size: applies to PostgreSQL stores only (store.url is SQLite)",
            ));
        }
    }
    let tombstones = raw
        .feeds
        .as_ref()
        .and_then(|f| f.tombstones.as_ref())
        .map_or(DEFAULT_TOMBSTONES, |t| t.0);
    let archive = raw.feeds.as_ref().and_then(|f| f.archive).unwrap_or(false);
    let archive_page_size = raw
        .feeds
        .as_ref()
        .and_then(|f| f.archive_page_size)
        .map_or(DEFAULT_ARCHIVE_PAGE_SIZE, |s| s.0);
    let feeds_dir = raw
        .feeds
        .and_then(|f| f.dir)
        .map(|dir| (dir.get_ref().clone(), Some(dir.span())))
        .unwrap_or_else(|| (PathBuf::from("feeds"), None));
    let sources_dir = raw
        .sources
        .map(|s| (s.dir.get_ref().clone(), Some(s.dir.span())))
        .unwrap_or_else(|| (PathBuf::from("sources"), None));
    let base_url = raw.server.base_url.0;
    let access_log = match raw.server.access_log {
        None => AccessLogConfig::default(),
        Some(raw) => AccessLogConfig {
            format: raw.format.unwrap_or(AccessLogFormat::Combined),
            path: match raw.path {
                None => LogDestination::Stdout,
                Some(p) if p.get_ref().as_os_str() == "-" => LogDestination::Stdout,
                Some(p) if p.get_ref().as_os_str().is_empty() => {
                    problems.push(Problem::at(
                        source,
                        Some(p.span()),
                        "server.access_log.path: must not be empty; \"-\" is standard output",
                    ));
                    LogDestination::Stdout
                }
                Some(p) => LogDestination::File(p.into_inner()),
            },
            buffer_bytes: raw
                .buffer_kib
                .map_or(DEFAULT_ACCESS_LOG_BUFFER, |k| k.0 * 1024),
        },
    };
    let websub = compile_websub(source, raw.websub, &mut problems);
    let parts = MainParts {
        websub,
        site: SiteConfig {
            title: raw.site.title.0,
            timezone: raw.site.timezone.0,
            description: raw.site.description.map(|d| d.0),
            language,
            url: raw
                .site
                .url
                .map(|u| u.0)
                .unwrap_or_else(|| base_url.clone()),
            rights: raw.site.rights.map(|r| r.0),
            logo: raw.site.logo.map(|u| u.0),
            icon: raw.site.icon.map(|u| u.0),
        },
        server: ServerConfig {
            listen: raw.server.listen,
            base_url,
            cache_max_age: raw.server.cache_max_age.map(|i| i.0),
            stale_if_error: raw
                .server
                .stale_if_error
                .map_or(Duration::from_secs(86_400), |i| i.0),
            max_connections: raw.server.max_connections.map_or(10_000, |c| c.0),
            max_connections_per_address: raw
                .server
                .max_connections_per_address
                .map_or(256, |c| c.0),
            header_timeout: raw
                .server
                .header_timeout
                .map_or(Duration::from_secs(10), |i| i.0),
            idle_timeout: raw
                .server
                .idle_timeout
                .map_or(Duration::from_secs(60), |i| i.0),
            send_timeout: raw
                .server
                .send_timeout
                .map_or(Duration::from_secs(10), |i| i.0),
            min_send_rate: raw.server.min_send_rate.map_or(1024, |r| r.0),
            shutdown_grace: raw
                .server
                .shutdown_grace
                .map_or(Duration::from_secs(10), |i| i.0),
            access_log,
        },
        store: StoreConfig {
            url_at: Location::new(source, Some(raw.store.url.span())),
            url: raw.store.url.into_inner(),
            seed_dir: raw.store.seed_dir.map(|s| s.into_inner()),
            connect,
        },
        output_dir: raw
            .output
            .map(|o| o.dir)
            .unwrap_or_else(|| PathBuf::from("data/published")),
        refresh: match raw.schedule.as_ref().and_then(|s| s.refresh.clone()) {
            Some(r) => r,
            None => DEFAULT_REFRESH
                .parse()
                .unwrap_or_else(|e| unreachable!("default schedule is valid: {e}")),
        },
        watch: match raw.schedule.and_then(|s| s.watch) {
            Some(w) if w.get_ref().0 < MIN_WATCH => {
                problems.push(Problem::at(
                    source,
                    Some(w.span()),
                    format!(
                        "schedule.watch: {} is too short; the store is polled at most every {}",
                        humantime::format_duration(w.get_ref().0),
                        humantime::format_duration(MIN_WATCH)
                    ),
                ));
                None
            }
            w => w.map(|w| w.into_inner().0),
        },
        feeds_dir_at: Location::new(source, feeds_dir.1),
        feeds_dir: feeds_dir.0,
        tombstones,
        archive,
        archive_page_size,
        sources_dir_at: Location::new(source, sources_dir.1),
        sources_dir: sources_dir.0,
        log: LogConfig {
            format: raw.log.and_then(|l| l.format).unwrap_or_default(),
        },
        metrics: raw
            .metrics
            .map_or_else(MetricsConfig::default, |m| MetricsConfig {
                enabled: m.enabled.unwrap_or(true),
                listen: m.listen,
            }),
    };
    (Some(parts), problems)
}

/// `[websub]` with its defaults; a lease range that makes no sense is a problem.
fn compile_websub(
    source: &Source,
    raw: Option<RawWebSub>,
    problems: &mut Problems,
) -> WebSubConfig {
    let d = WebSubConfig::default();
    let Some(raw) = raw else {
        return d;
    };
    let lease_max = raw
        .lease_max
        .as_ref()
        .map_or(d.lease_max, |l| l.get_ref().0);
    let lease_default = raw
        .lease_default
        .as_ref()
        .map_or(d.lease_default.min(lease_max), |l| l.get_ref().0);
    for (key, lease) in [
        ("lease_default", &raw.lease_default),
        ("lease_max", &raw.lease_max),
    ] {
        if let Some(l) = lease
            && l.get_ref().0 < Duration::from_secs(1)
        {
            problems.push(Problem::at(
                source,
                Some(l.span()),
                format!("websub.{key}: must be at least 1s"),
            ));
        }
    }
    if lease_default > lease_max {
        problems.push(Problem::at(
            source,
            raw.lease_default.as_ref().map(|l| l.span()),
            format!(
                "websub.lease_default: {} is longer than websub.lease_max ({})",
                humantime::format_duration(lease_default),
                humantime::format_duration(lease_max)
            ),
        ));
    }
    WebSubConfig {
        enabled: raw.enabled,
        allow_callbacks: raw.allow_callbacks.into_iter().map(|c| c.0).collect(),
        hubs: raw.hubs.into_iter().map(|h| h.0).collect(),
        lease_default,
        lease_max,
        max_subscriptions: raw.max_subscriptions.map_or(d.max_subscriptions, |c| c.0),
        max_per_callback_host: raw
            .max_per_callback_host
            .map_or(d.max_per_callback_host, |c| c.0),
        max_request_bytes: raw.max_request_bytes.map_or(d.max_request_bytes, |c| c.0),
        verify_timeout: raw.verify_timeout.map_or(d.verify_timeout, |i| i.0),
        delivery_timeout: raw.delivery_timeout.map_or(d.delivery_timeout, |i| i.0),
        delivery_concurrency: raw
            .delivery_concurrency
            .map_or(d.delivery_concurrency, |c| c.0),
        retry_for: raw.retry_for.map_or(d.retry_for, |i| i.0),
        requests_per_minute: raw
            .requests_per_minute
            .map_or(d.requests_per_minute, |c| c.0),
    }
}

/// The parts of a main file with problems elsewhere that feed checking needs.
struct LenientMain {
    feeds_dir: PathBuf,
    feeds_dir_at: Location,
    refresh: Option<CronSchedule>,
}

fn lenient_main(source: &Source) -> LenientMain {
    #[derive(Deserialize)]
    struct Doc {
        feeds: Option<Feeds>,
        schedule: Option<Schedule>,
    }
    #[derive(Deserialize)]
    struct Feeds {
        dir: Option<Spanned<PathBuf>>,
    }
    #[derive(Deserialize)]
    struct Schedule {
        refresh: Option<toml::Value>,
    }
    // A text with syntax errors never parses: skip toml's parse, which for a
    // 1 MiB garbage file peaked at 110 MB (its tokens, events and the errors
    // it builds and drops), where the scan peaks at 39 MB.
    let doc = if syntax::syntax_errors(source).is_empty() {
        toml::from_str::<Doc>(&source.text).ok()
    } else {
        None
    };
    let dir = doc
        .as_ref()
        .and_then(|d| d.feeds.as_ref())
        .and_then(|f| f.dir.clone());
    let refresh = match doc.as_ref().and_then(|d| d.schedule.as_ref()) {
        None => DEFAULT_REFRESH.parse().ok(),
        Some(s) => match &s.refresh {
            None => DEFAULT_REFRESH.parse().ok(),
            Some(v) => v.as_str().and_then(|r| r.parse().ok()),
        },
    };
    LenientMain {
        feeds_dir: dir
            .as_ref()
            .map_or_else(|| PathBuf::from("feeds"), |d| d.get_ref().clone()),
        feeds_dir_at: Location::new(source, dir.map(|d| d.span())),
        refresh,
    }
}

/// Every `*.toml` file directly in `dir`, sorted by name so errors come out in a
/// stable order. Other files (editor backups, READMEs) are not feeds. A file
/// over [`MAX_FILE_BYTES`] is a problem of its own, and the others are read on.
fn read_feed_sources(dir: &Path) -> Result<Vec<Result<Source, Problem>>, String> {
    read_toml_files(dir, "feeds.dir")
}

/// Every `*.toml` file directly in `dir`, as [`read_feed_sources`] reads
/// them; `key` names the setting in messages.
fn read_toml_files(dir: &Path, key: &str) -> Result<Vec<Result<Source, Problem>>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{key}: cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        match read_source(&path) {
            Ok(source) => sources.push(Ok(source)),
            Err(too_large @ ReadError::TooLarge(_)) => {
                sources.push(Err(Problem::in_file(&path, too_large.to_string())));
            }
            Err(ReadError::Io(e)) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Ok(sources)
}

/// Reads and checks every source file in `dir` into `problems` and the
/// returned map. A missing folder is no sources, not a problem: pulling
/// upstream feeds is optional.
fn load_sources(
    dir: &Path,
    dir_at: &Location,
    default_refresh: Option<&CronSchedule>,
    problems: &mut Problems,
) -> BTreeMap<SourceName, SourceSpec> {
    let mut sources = BTreeMap::new();
    if !dir.exists() {
        return sources;
    }
    match read_toml_files(dir, "sources.dir") {
        Ok(files) => {
            for file in files {
                match file {
                    Ok(file) => match compile_source(&file, default_refresh) {
                        Ok(spec) => {
                            sources.insert(spec.name.clone(), spec);
                        }
                        Err(p) => problems.append(p),
                    },
                    Err(problem) => problems.push(problem),
                }
            }
        }
        Err(message) => problems.push(dir_at.problem(message)),
    }
    sources
}

/// What every one-per-file document (feed, source) starts with: its name,
/// the file stem, parsed as `N` (a problem of the file when it is no valid
/// name), and its contents read as `R`, with every problem found on the way.
fn read_named<N, R>(source: &Source) -> (Option<N>, Option<R>, Problems)
where
    N: std::str::FromStr,
    N::Err: Into<String>,
    R: serde::de::DeserializeOwned,
{
    let stem = source
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let mut problems = Problems::default();
    let name = match stem.parse::<N>() {
        Ok(n) => Some(n),
        Err(e) => {
            problems.push(Problem::in_file(&source.path, e));
            None
        }
    };
    let (raw, found) = document::deserialize_all::<R>(source);
    problems.append(found);
    (name, raw, problems)
}

/// Checks one source file, as [`compile_feed`] checks a feed file.
fn compile_source(
    source: &Source,
    default_refresh: Option<&CronSchedule>,
) -> Result<SourceSpec, Problems> {
    let (name, raw, mut problems) = read_named::<SourceName, RawSource>(source);
    let Some(raw) = raw else {
        return Err(problems);
    };
    let timeout = match raw.timeout {
        None => DEFAULT_SOURCE_TIMEOUT,
        Some(t) if t.get_ref().0.is_zero() => {
            problems.push(Problem::at(
                source,
                Some(t.span()),
                "timeout: must be longer than zero",
            ));
            DEFAULT_SOURCE_TIMEOUT
        }
        Some(t) => t.into_inner().0,
    };
    let refresh = raw.refresh.or_else(|| default_refresh.cloned());
    match (name, refresh) {
        (Some(name), Some(refresh)) if problems.is_empty() => Ok(SourceSpec {
            name,
            path: source.path.clone(),
            url: raw.url.0,
            refresh,
            source_name: raw.name.map(|t| t.0),
            section: raw.section.map(|t| t.0),
            rights: raw.rights.map(|t| t.0),
            max_bytes: raw.max_bytes.map_or(DEFAULT_SOURCE_MAX_BYTES, |m| m.0),
            timeout,
        }),
        _ => Err(problems),
    }
}

/// Checks one feed file. An empty `Err` means the feed cannot be built for a
/// reason already reported elsewhere (a broken global schedule).
fn compile_feed(
    source: &Source,
    default_refresh: Option<&CronSchedule>,
) -> Result<FeedSpec, Problems> {
    let (name, raw, mut problems) = read_named::<FeedName, RawFeed>(source);
    let Some(raw) = raw else {
        return Err(problems);
    };
    let formats = match raw.formats {
        None => Format::ALL.to_vec(),
        Some(f) => {
            let span = f.span();
            let mut list = f.into_inner();
            let len = list.len();
            list.sort();
            list.dedup();
            if list.is_empty() {
                problems.push(Problem::at(
                    source,
                    Some(span.clone()),
                    "formats: must list at least one of \"rss\", \"atom\", \"json\"",
                ));
            } else if list.len() != len {
                problems.push(Problem::at(
                    source,
                    Some(span),
                    "formats: lists a format twice",
                ));
            }
            list
        }
    };
    let refresh = match (raw.refresh, default_refresh) {
        (Some(own), _) => Some(own),
        (None, Some(global)) => Some(global.clone()),
        // The global schedule is broken and already reported.
        (None, None) => None,
    };
    let texts = |v: Vec<Text>| v.into_iter().map(|t| t.0).collect::<Vec<_>>();
    let (sections, tags, authors) = (texts(raw.sections), texts(raw.tags), texts(raw.authors));
    match (name, refresh) {
        (Some(name), Some(refresh)) if problems.is_empty() => Ok(FeedSpec {
            name,
            path: source.path.clone(),
            title: raw.title.0,
            description: raw.description.map(|d| d.0),
            limit: raw.limit.map_or(DEFAULT_LIMIT, |l| l.0),
            filter: ArticleFilter::new(&sections, &tags, &authors),
            sections,
            tags,
            authors,
            formats,
            refresh,
            archive: raw.archive,
            archive_page_size: raw.archive_page_size.map(|s| s.0),
        }),
        _ => Err(problems),
    }
}

/// Checks a main config text and feed texts as [`Config::load`] does, with the
/// texts given instead of read, and returns the problems it lists (the first
/// [`document::MAX_PROBLEMS`] of each file). The entry point of the
/// `config_toml` fuzz target; only `store.seed_dir`'s directory check looks at
/// the filesystem.
#[doc(hidden)]
pub fn check_texts(main: &Source, feeds: &[Source]) -> Vec<Problem> {
    let (parts, mut problems) = compile_main(main);
    let refresh = match parts {
        Some(p) => Some(p.refresh),
        None => lenient_main(main).refresh,
    };
    for feed in feeds {
        if let Err(found) = compile_feed(feed, refresh.as_ref()) {
            problems.append(found);
        }
    }
    problems.into_parts().0
}

/// Checks one source file's text as [`Config::load`] does, with
/// `[schedule].refresh` at its default, and returns its problems.
#[doc(hidden)]
pub fn check_source_text(source: &Source) -> Vec<Problem> {
    let refresh = DEFAULT_REFRESH.parse().ok();
    match compile_source(source, refresh.as_ref()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.into_parts().0,
    }
}

#[cfg(test)]
mod tests;
