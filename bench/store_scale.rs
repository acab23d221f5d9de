//! How the SQLite store behaves at newsroom scale: import rate, the cost of the
//! scheduler's no-change check, `changed_since` after one write, and rebuilding
//! a filtered 50-item feed, on a store of N generated articles (default 1 000 000).
//!
//! Usage:
//!
//! ```sh
//! CARGO_TARGET_DIR=... cargo run --release --example store-scale -- \
//!     --articles 1000000 --db /tmp/scale.db [--reuse]
//! CARGO_TARGET_DIR=... cargo run --release --example store-scale -- \
//!     --articles 1000000 --postgres postgres://postgres@127.0.0.1:5432/test [--keep]
//! ```
//!
//! With `--postgres URL` the same phases run against `PostgresStore` in a
//! fresh schema `feedsmith_scale_<pid>` of that database (created here, and
//! dropped at the end unless `--keep`); `--db` and `--reuse` are then unused.
//! The plans section shows PostgreSQL's `EXPLAIN` (after `ANALYZE` of the tables)
//! of `PostgresStore::explain_newest` per filter and of the no-change checks'
//! SQL, and flags any `Seq Scan on articles`.
//!
//! What it does:
//!
//! 1. Generates N deterministic articles in-process (validated through
//!    `RawArticle::validate`, as `import` does) and upserts them through
//!    `SqliteStore` (`ArticleStore::upsert`) in batches of 1 000, printing the
//!    import rate. With `--reuse`, an existing store at `--db` holding exactly
//!    N articles is used as it is; otherwise the file is recreated (only if it
//!    is a feedsmith store: anything else is refused).
//! 2. Times, each as the median (p90, min, max) of many repetitions:
//!    (a) the no-change check the scheduler makes on every tick: `revision()`,
//!    and separately `changed_since(current, 1000)` returning nothing;
//!    (b) after upserting one changed article, `changed_since(previous, 1000)`;
//!    (c) `newest(filter, 50)` for a section, a tag and an author filter (plus
//!    the unfiltered "latest" feed), the build of RSS + Atom + JSON from those
//!    50 articles (`builder::build`), and `refresh::build_feed` end to end.
//! 3. Prints `EXPLAIN QUERY PLAN` (read-only connection of its own) for the SQL
//!    the store actually ran for `revision()`, `changed_since()` and each
//!    `newest()`: the statements are captured from sqlx's statement log while
//!    the store method runs, so they are exactly what `src/store/sqlite.rs`
//!    sends. Any plan that scans the `articles` table is flagged.
//! 4. Prints a summary table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use clap::Parser;
use feedsmith::article::{
    Article, RawArticle, RawAuthor, RawImage, RawRelated, RawSource, ValidationContext,
};
use feedsmith::builder::{self, FeedMeta};
use feedsmith::config::Config;
use feedsmith::store::{ArticleStore, PostgresStore, SqliteLocation, SqliteStore, Upserted};
use feedsmith::{publish, refresh};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool, Row, SqliteConnection};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

#[derive(Parser, Debug)]
#[command(about = "SQLite store at scale: import rate, no-change checks, filtered newest-N")]
struct Args {
    /// Articles in the store.
    #[arg(long, default_value_t = 1_000_000)]
    articles: u64,
    /// The SQLite database file (recreated unless --reuse finds the right size).
    #[arg(long, default_value = "/tmp/feedsmith-store-scale.db")]
    db: PathBuf,
    /// Keep an existing store at --db if it holds exactly --articles articles.
    #[arg(long)]
    reuse: bool,
    /// Articles per upsert call (one transaction each).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Repetitions of the sub-millisecond checks (revision, empty changed_since).
    #[arg(long, default_value_t = 20_000)]
    reps_fast: usize,
    /// Repetitions of the heavier measurements (one-change, newest, build).
    #[arg(long, default_value_t = 500)]
    reps: usize,
    /// Repetitions of compressing a built feed for serving (slow: brotli 11).
    #[arg(long, default_value_t = 10)]
    reps_publish: usize,
    /// Run against PostgreSQL at this URL instead of SQLite, in a fresh schema
    /// `feedsmith_scale_<pid>` (e.g. postgres://postgres@127.0.0.1:5432/test).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// With --postgres: keep the schema at the end instead of dropping it.
    #[arg(long)]
    keep: bool,
}

/// The PostgreSQL schema the run uses, and the URL the store opens.
struct PgTarget {
    url: String,
    schema: String,
    store_url: String,
}

// --- deterministic generation ------------------------------------------------

#[path = "splitmix.rs"]
mod splitmix;
use splitmix::Rng;

const SECTIONS: [&str; 12] = [
    "World",
    "Business",
    "Politics",
    "Ireland",
    "Europe",
    "Sport",
    "Technology",
    "Science",
    "Climate",
    "Health",
    "Culture",
    "Opinion",
];

const FIRST: [&str; 20] = [
    "Aoife", "Ciarán", "Maeve", "Seán", "Niamh", "Oisín", "Róisín", "Darragh", "Siobhán", "Eoin",
    "Clara", "Tomás", "Grace", "Liam", "Orla", "Declan", "Fiona", "Cormac", "Ailbhe", "Pádraig",
];
const LAST: [&str; 10] = [
    "Walsh",
    "Brennan",
    "Doherty",
    "Murphy",
    "Kelly",
    "O'Sullivan",
    "Byrne",
    "Ryan",
    "Lynch",
    "Nolan",
];

const TAG_HEADS: [&str; 25] = [
    "Housing",
    "Energy",
    "Transport",
    "Elections",
    "Trade",
    "Education",
    "Farming",
    "Banking",
    "Tourism",
    "Fisheries",
    "Health",
    "Courts",
    "Water",
    "Defence",
    "Migration",
    "Broadband",
    "Football",
    "Rugby",
    "Music",
    "Film",
    "Space",
    "Weather",
    "Wildlife",
    "Pensions",
    "Aviation",
];
const TAG_TAILS: [&str; 20] = [
    "",
    "policy",
    "prices",
    "reform",
    "strikes",
    "funding",
    "data",
    "investigation",
    "Dublin",
    "Cork",
    "Galway",
    "EU",
    "UK",
    "US",
    "China",
    "courts",
    "protests",
    "budget",
    "research",
    "jobs",
];

const WORDS: [&str; 64] = [
    "council", "minister", "plan", "report", "vote", "market", "growth", "rates", "talks",
    "budget", "warning", "record", "deal", "court", "ruling", "strike", "workers", "union",
    "prices", "homes", "energy", "grid", "storm", "coast", "farmers", "exports", "study", "data",
    "hospital", "schools", "ferry", "airport", "rail", "city", "county", "region", "summit",
    "leaders", "agency", "figures", "quarter", "year", "week", "after", "before", "amid", "over",
    "under", "new", "first", "final", "major", "local", "national", "public", "private", "early",
    "late", "higher", "lower", "rise", "fall", "opens", "closes",
];

const AGENCIES: [(&str, &str); 3] = [
    ("Northwire", "https://northwire.example.com/"),
    ("Meridian Wire", "https://meridian.example.com/"),
    ("Atlantic Press", "https://atlanticpress.example.com/"),
];

fn author_name(i: usize) -> String {
    format!("{} {}", FIRST[i % FIRST.len()], LAST[i / FIRST.len()])
}

fn tag_name(i: usize) -> String {
    let head = TAG_HEADS[i % TAG_HEADS.len()];
    match TAG_TAILS[i / TAG_HEADS.len()] {
        "" => head.to_owned(),
        tail => format!("{head} {tail}"),
    }
}

/// `min` to `min + spread - 1` words, the first capitalised.
fn sentence(rng: &mut Rng, min: usize, spread: usize) -> String {
    let words = min + rng.index(spread.max(1));
    let mut s = String::new();
    for i in 0..words {
        let w = *rng.pick(&WORDS);
        if i == 0 {
            let mut c = w.chars();
            if let Some(first) = c.next() {
                s.extend(first.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s
}

/// The store's history: 5 years up to this instant.
fn history_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
const HISTORY_SECS: i64 = 5 * 365 * 86_400 + 86_400;

/// Article `i` of `n`, always the same. `headline_suffix` makes a changed version.
fn raw_article(i: u64, n: u64, headline_suffix: Option<&str>) -> RawArticle {
    let mut rng = Rng::new(0x5EED ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let id = format!("scale-{i:07}");
    let section = *rng.pick(&SECTIONS);
    // Roughly chronological (ids follow publication) with two days of jitter either way.
    let base = history_end().timestamp() - HISTORY_SECS;
    let offset = (i as i128 * HISTORY_SECS as i128 / n.max(1) as i128) as i64;
    let jitter = rng.below(4 * 86_400) as i64 - 2 * 86_400;
    let published =
        DateTime::from_timestamp((base + offset + jitter).min(history_end().timestamp()), 0)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let updated = published + chrono::Duration::minutes(rng.below(240) as i64);

    let mut headline = sentence(&mut rng, 7, 6);
    if let Some(suffix) = headline_suffix {
        headline.push_str(suffix);
    }
    let standfirst = format!("{}.", sentence(&mut rng, 18, 12));
    let target = 1_000 + rng.index(1_000);
    let mut body = String::with_capacity(target + 200);
    while body.len() < target {
        body.push_str("<p>");
        body.push_str(&sentence(&mut rng, 25, 25));
        if rng.chance(30) {
            body.push_str(&format!(
                ", <a href=\"/{}/{}\">{}</a>",
                section.to_lowercase(),
                rng.below(100_000),
                rng.pick(&WORDS)
            ));
        }
        if rng.chance(20) {
            body.push_str(&format!(" <em>{}</em>", rng.pick(&WORDS)));
        }
        body.push_str(".</p>\n");
    }

    let authors_n = 1 + rng.index(2);
    let mut authors = Vec::new();
    for _ in 0..authors_n {
        let name = author_name(rng.index(FIRST.len() * LAST.len()));
        let email = rng.chance(60).then(|| {
            format!(
                "{}@news.example.com",
                name.to_lowercase().replace([' ', '\''], ".")
            )
        });
        authors.push(RawAuthor {
            name: Some(name),
            email,
            url: None,
        });
    }
    let tags_n = 2 + rng.index(3);
    let tags = (0..tags_n)
        .map(|_| tag_name(rng.index(TAG_HEADS.len() * TAG_TAILS.len())))
        .collect();
    let source = rng.chance(30).then(|| {
        let (name, url) = *rng.pick(&AGENCIES);
        RawSource {
            name: Some(name.to_owned()),
            rights: Some(format!("© {name}, {}", published.format("%Y"))),
            url: Some(url.to_owned()),
        }
    });
    let image = rng.chance(50).then(|| RawImage {
        url: Some(format!("https://img.example.com/{id}.jpg")),
        caption: Some(sentence(&mut rng, 8, 1)),
        credit: Some(author_name(rng.index(200))),
        mime_type: Some("image/jpeg".to_owned()),
        length: Some(20_000 + rng.below(200_000)),
    });
    let related = if rng.chance(25) {
        vec![RawRelated {
            title: Some(sentence(&mut rng, 6, 1)),
            url: Some(format!(
                "https://news.example.com/{}/{}",
                section.to_lowercase(),
                rng.below(1_000_000)
            )),
        }]
    } else {
        Vec::new()
    };
    let status = match rng.below(100) {
        0 | 1 => "draft",
        2 => "withdrawn",
        _ => "published",
    };
    RawArticle {
        url: Some(format!(
            "https://news.example.com/{}/{}/{id}",
            section.to_lowercase(),
            published.format("%Y/%m/%d")
        )),
        id: Some(id),
        headline: Some(headline),
        standfirst: Some(standfirst),
        body_html: Some(body),
        authors: Some(authors),
        source,
        section: Some(section.to_owned()),
        tags: Some(tags),
        image,
        related: Some(related),
        published_at: Some(published.to_rfc3339_opts(SecondsFormat::Secs, true)),
        updated_at: Some(updated.to_rfc3339_opts(SecondsFormat::Secs, true)),
        status: Some(status.to_owned()),
    }
}

fn article(i: u64, n: u64, headline_suffix: Option<&str>) -> anyhow::Result<Article> {
    match raw_article(i, n, headline_suffix).validate(ValidationContext {
        timezone: chrono_tz::Europe::Dublin,
    }) {
        Ok(checked) => Ok(checked.article),
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            bail!("generated article {i} is invalid: {}", errors.join("; "))
        }
    }
}

// --- capturing the SQL the store runs ---------------------------------------

/// A tracing layer that records the statements sqlx logs (target `sqlx::query`)
/// while `on` is set, and is otherwise a single atomic load per statement.
#[derive(Clone, Default)]
struct SqlCapture {
    on: Arc<AtomicBool>,
    statements: Arc<Mutex<Vec<String>>>,
}

impl SqlCapture {
    fn start(&self) {
        if let Ok(mut s) = self.statements.lock() {
            s.clear();
        }
        self.on.store(true, Ordering::SeqCst);
    }
    fn stop(&self) -> Vec<String> {
        self.on.store(false, Ordering::SeqCst);
        self.statements
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct StatementVisitor {
    summary: String,
    statement: String,
}

impl Visit for StatementVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" => self.summary = format!("{value:?}"),
            "db.statement" => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SqlCapture {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: LayerContext<'_, S>) -> bool {
        meta.target() == "sqlx::query" && self.on.load(Ordering::Relaxed)
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        let mut v = StatementVisitor::default();
        event.record(&mut v);
        // sqlx puts the whole statement in `db.statement` unless it is at most
        // four words, when `summary` is the statement.
        let sql = if v.statement.trim().is_empty() {
            v.summary
        } else {
            v.statement.trim().to_owned()
        };
        if let Ok(mut s) = self.statements.lock() {
            s.push(sql);
        }
    }
}

// --- timing ------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Stats {
    n: usize,
    median: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[((n as f64 - 1.0) * q).round() as usize];
    Stats {
        n,
        median: at(0.5),
        p90: at(0.9),
        min: samples[0],
        max: samples[n - 1],
    }
}

fn fmt_d(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn fmt_stats(s: &Stats) -> String {
    format!(
        "median {:>10}  p90 {:>10}  min {:>10}  max {:>10}  (n={})",
        fmt_d(s.median),
        fmt_d(s.p90),
        fmt_d(s.min),
        fmt_d(s.max),
        s.n
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// One row of the final table.
struct Row_ {
    what: String,
    stats: Stats,
}

// --- machine load ------------------------------------------------------------

/// CPU time of the whole machine and of this process, to tell how much of each
/// phase others used (the machine is shared; a busy neighbour inflates tails).
#[derive(Clone, Copy)]
struct CpuSnap {
    at: Instant,
    busy_all: f64,
    busy_self: f64,
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux configuration we run on.
    100.0
}

fn cpu_snap() -> CpuSnap {
    let all = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let line = t.lines().next()?.to_owned();
            let v: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = v.iter().take(8).sum::<f64>() - v.get(3)? - v.get(4)?;
            Some(busy / clock_ticks())
        })
        .unwrap_or(0.0);
    let me = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| {
            let rest = &t[t.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14 and 15 of stat (utime, stime) are 11 and 12 after the ')'.
            let u: f64 = f.get(11)?.parse().ok()?;
            let s: f64 = f.get(12)?.parse().ok()?;
            Some((u + s) / clock_ticks())
        })
        .unwrap_or(0.0);
    CpuSnap {
        at: Instant::now(),
        busy_all: all,
        busy_self: me,
    }
}

/// "this process X % of a core, others Y %" since `from`.
fn load_since(from: CpuSnap) -> String {
    let now = cpu_snap();
    let wall = (now.at - from.at).as_secs_f64().max(1e-9);
    let me = (now.busy_self - from.busy_self) / wall * 100.0;
    let others = ((now.busy_all - from.busy_all) - (now.busy_self - from.busy_self)) / wall * 100.0;
    format!(
        "cpu during this phase: this process {me:.0} % of a core, other processes {:.0} % (of {} cores)",
        others.max(0.0),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    )
}

/// The commit measured, and whether the working tree differs from it.
fn git_state() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "commit unknown (not a git checkout)".to_owned();
    };
    let status = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]);
    match status {
        Some(s) if s.is_empty() => format!("commit {commit}, clean working tree"),
        Some(s) => format!(
            "commit {commit}, working tree changes: {}",
            s.lines()
                .map(|l| l.get(3..).unwrap_or(l))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("commit {commit}"),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// --- the store file ----------------------------------------------------------

async fn readonly(db: &Path) -> anyhow::Result<SqliteConnection> {
    SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening {} read-only", db.display()))
}

/// The number of articles in an existing feedsmith store, or `None` if `db` is
/// missing. Errors if the file is something else.
async fn existing_articles(db: &Path) -> anyhow::Result<Option<u64>> {
    if !db.exists() {
        return Ok(None);
    }
    let mut conn = readonly(db).await?;
    let is_store: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'store_state'",
    )
    .fetch_optional(&mut conn)
    .await?;
    if is_store.is_none() {
        bail!(
            "{} exists and is not a feedsmith store; refusing to replace it",
            db.display()
        );
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM articles")
        .fetch_one(&mut conn)
        .await?;
    Ok(Some(n as u64))
}

fn remove_db(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {p:?}")),
        }
    }
    Ok(())
}

fn file_size(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
        })
        .sum()
}

/// Imports `n` articles in batches; returns (upsert-only seconds, wall seconds).
async fn import(store: &dyn ArticleStore, n: u64, batch: usize) -> anyhow::Result<(f64, f64)> {
    let wall = Instant::now();
    let mut upsert_time = Duration::ZERO;
    let mut done = 0u64;
    let mut next_report = 100_000u64;
    let mut last = (Instant::now(), 0u64);
    while done < n {
        let end = (done + batch as u64).min(n);
        let articles = (done..end)
            .map(|i| article(i, n, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let t = Instant::now();
        let outcomes = store.upsert(&articles).await?;
        upsert_time += t.elapsed();
        ensure!(
            outcomes.iter().all(|o| matches!(o, Upserted::Inserted(_))),
            "batch at {done}: not every article was inserted"
        );
        done = end;
        if done >= next_report || done == n {
            let now = Instant::now();
            let recent = (done - last.1) as f64 / (now - last.0).as_secs_f64();
            println!(
                "  {:>9} articles  {:>7.1} s  {:>8.0} articles/s over the last {}",
                thousands(done),
                wall.elapsed().as_secs_f64(),
                recent,
                thousands(done - last.1)
            );
            last = (now, done);
            next_report += 100_000;
        }
    }
    Ok((upsert_time.as_secs_f64(), wall.elapsed().as_secs_f64()))
}

// --- query plans ---------------------------------------------------------------

/// `EXPLAIN QUERY PLAN` of `sql` as an indented tree, binding `binds` (the rest
/// stay NULL, which does not change SQLite's plan without ANALYZE statistics).
async fn explain(
    conn: &mut SqliteConnection,
    sql: &str,
    binds: &[i64],
) -> anyhow::Result<Vec<String>> {
    let mut q = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for b in binds {
        q = q.bind(*b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut depth: BTreeMap<i64, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let parent: i64 = r.try_get("parent")?;
        let detail: String = r.try_get("detail")?;
        let d = depth.get(&parent).map_or(0, |d| d + 1);
        depth.insert(id, d);
        lines.push(format!("{}{}", "  ".repeat(d), detail));
    }
    Ok(lines)
}

/// Whether a plan walks the whole `articles` table (or all of one of its
/// indexes): a `SCAN` of `articles` or of its alias `a` in the newest-N queries.
fn scans_articles(plan: &[String]) -> bool {
    plan.iter().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("SCAN") && matches!(words.next(), Some("articles" | "a"))
    })
}

/// Runs `f` once with statement capture on and returns what it sent.
async fn captured<F, Fut, T>(capture: &SqlCapture, f: F) -> anyhow::Result<(T, Vec<String>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    capture.start();
    let out = f().await;
    let sql = capture.stop();
    Ok((out?, sql))
}

// --- main --------------------------------------------------------------------

fn bench_config(
    dir: &Path,
    store_url: &str,
    section: &str,
    tag: &str,
    author: &str,
) -> anyhow::Result<Config> {
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds)?;
    std::fs::write(
        dir.join("feedsmith.toml"),
        format!(
            "[server]\nbase_url = \"https://feeds.example.com/\"\n\n\
             [site]\ntitle = \"Example News\"\ntimezone = \"Europe/Dublin\"\nlanguage = \"en-IE\"\n\
             description = \"News from the Example newsroom\"\n\n\
             [store]\nurl = \"{}\"\n\n[output]\ndir = \"{}\"\n\n\
             [feeds]\ndir = \"{}\"\n",
            store_url,
            dir.join("out").display(),
            feeds.display()
        ),
    )?;
    let feed = |name: &str, body: String| std::fs::write(feeds.join(format!("{name}.toml")), body);
    feed("latest", "title = \"Latest\"\nlimit = 50\n".to_owned())?;
    feed(
        "section",
        format!("title = \"Section\"\nlimit = 50\nsections = [\"{section}\"]\n"),
    )?;
    feed(
        "tag",
        format!("title = \"Tag\"\nlimit = 50\ntags = [\"{tag}\"]\n"),
    )?;
    feed(
        "author",
        format!("title = \"Author\"\nlimit = 50\nauthors = [\"{author}\"]\n"),
    )?;
    Config::load(&dir.join("feedsmith.toml")).map_err(|e| anyhow::anyhow!("bench config: {e}"))
}

async fn time_async<F, Fut, T>(reps: usize, warmup: usize, mut f: F) -> anyhow::Result<(Stats, T)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    for i in 0..warmup {
        f(i).await?;
    }
    let mut samples = Vec::with_capacity(reps);
    let mut last = None;
    for i in 0..reps {
        let t = Instant::now();
        let out = f(i).await?;
        samples.push(t.elapsed());
        last = Some(out);
    }
    match last {
        Some(out) => Ok((stats(samples), out)),
        None => bail!("at least one repetition is needed"),
    }
}

/// `url` with `options[search_path]=schema` added.
fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// Bytes of the tables and indexes in `schema`.
async fn schema_size(pool: &PgPool, schema: &str) -> u64 {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .ok()
    .flatten()
    .map_or(0, |b| b.max(0) as u64)
}

/// Creates the PostgreSQL schema when `--postgres` is given, runs the phases,
/// and drops the schema again (unless `--keep`), also after a failure.
async fn run(args: Args, capture: SqlCapture) -> anyhow::Result<()> {
    let Some(url) = args.postgres.clone() else {
        return run_phases(args, capture, None).await;
    };
    let schema = format!("feedsmith_scale_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .with_context(|| format!("creating schema {schema}"))?;
    let keep = args.keep;
    let target = PgTarget {
        store_url: with_search_path(&url, &schema),
        url,
        schema: schema.clone(),
    };
    let out = run_phases(args, capture, Some(target)).await;
    if keep {
        println!("\n--keep: schema {schema} left in place");
    } else {
        match sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
        {
            Ok(_) => println!("\ndropped schema {schema}"),
            Err(e) => eprintln!("store-scale: dropping schema {schema}: {e}"),
        }
    }
    admin.close().await;
    out
}

async fn run_phases(
    args: Args,
    capture: SqlCapture,
    pg_target: Option<PgTarget>,
) -> anyhow::Result<()> {
    let n = args.articles;
    ensure!(n >= 1_000, "--articles must be at least 1000");
    ensure!(
        args.reps >= 1 && args.reps_fast >= 1 && args.reps_publish >= 1,
        "repetitions must be at least 1"
    );
    let db = args.db.clone();
    match &pg_target {
        Some(t) => println!(
            "store-scale: {} articles, PostgreSQL {} schema {}",
            thousands(n),
            t.url,
            t.schema
        ),
        None => println!(
            "store-scale: {} articles, db {}",
            thousands(n),
            db.display()
        ),
    }
    println!(
        "started {}, {} cores, pid {}, load average {}",
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        std::process::id(),
        loadavg()
    );
    println!("source: {}", git_state());
    let mut loads: Vec<(&str, String)> = Vec::new();
    let mut phase = cpu_snap();

    // 1. The store.
    let mut summary: Vec<Row_> = Vec::new();
    let import_line;
    let store_box: Box<dyn ArticleStore>;
    let mut pg: Option<PostgresStore> = None;
    if let Some(t) = &pg_target {
        if args.reuse {
            println!("--reuse is ignored with --postgres (the schema is always fresh)");
        }
        println!(
            "\n== 1. import: {} generated articles, upsert batches of {}, PostgreSQL schema {}",
            thousands(n),
            args.batch,
            t.schema
        );
        let opened = PostgresStore::open(&t.store_url).await?;
        let (upsert_s, wall_s) = import(&opened, n, args.batch).await?;
        let size = schema_size(opened.pool(), &t.schema).await;
        println!(
            "  import: {:.1} s wall ({:.0} articles/s incl. generation + validation), \
             {:.1} s in upsert ({:.0} articles/s upsert only); schema {:.2} GB",
            wall_s,
            n as f64 / wall_s,
            upsert_s,
            n as f64 / upsert_s,
            size as f64 / 1e9
        );
        import_line = format!(
            "{:.0} articles/s upsert only ({:.1} s), {:.0} articles/s incl. generation ({:.1} s); schema {:.2} GB",
            n as f64 / upsert_s,
            upsert_s,
            n as f64 / wall_s,
            wall_s,
            size as f64 / 1e9
        );
        // Autovacuum would get to it; timing waits for planner statistics so
        // the figures are those of a settled store.
        let t = Instant::now();
        sqlx::query("ANALYZE articles, article_tags, article_authors")
            .execute(opened.pool())
            .await?;
        println!(
            "  ANALYZE articles, article_tags, article_authors: {}",
            fmt_d(t.elapsed())
        );
        store_box = Box::new(opened.clone());
        pg = Some(opened);
    } else {
        let existing = existing_articles(&db).await?;
        let reuse = args.reuse && existing == Some(n);
        if args.reuse && !reuse {
            println!(
                "--reuse: {} ({}); importing afresh",
                db.display(),
                existing.map_or("missing".to_owned(), |c| format!(
                    "{} articles, not {}",
                    thousands(c),
                    thousands(n)
                ))
            );
        }
        if reuse {
            println!(
                "\n== 1. import: reusing {} ({} articles, {:.2} GB)",
                db.display(),
                thousands(n),
                file_size(&db) as f64 / 1e9
            );
            store_box = Box::new(SqliteStore::open(&SqliteLocation::File(db.clone())).await?);
            import_line = "reused an existing store (no import this run)".to_owned();
        } else {
            if existing.is_some() {
                remove_db(&db)?;
            }
            println!(
                "\n== 1. import: {} generated articles, upsert batches of {}",
                thousands(n),
                args.batch
            );
            store_box = Box::new(SqliteStore::open(&SqliteLocation::File(db.clone())).await?);
            let sample = article(n / 2, n, None)?;
            println!(
                "  sample article: {} body {} B, {} author(s), {} tags, section {:?}, published {}",
                sample.id,
                sample.body_html.as_deref().map_or(0, str::len),
                sample.authors.len(),
                sample.tags.len(),
                sample.section.as_deref().unwrap_or(""),
                sample.published_at
            );
            let (upsert_s, wall_s) = import(&*store_box, n, args.batch).await?;
            let size = file_size(&db);
            println!(
                "  import: {:.1} s wall ({:.0} articles/s incl. generation + validation), \
                 {:.1} s in upsert ({:.0} articles/s upsert only); db {:.2} GB",
                wall_s,
                n as f64 / wall_s,
                upsert_s,
                n as f64 / upsert_s,
                size as f64 / 1e9
            );
            import_line = format!(
                "{:.0} articles/s upsert only ({:.1} s), {:.0} articles/s incl. generation ({:.1} s); db {:.2} GB",
                n as f64 / upsert_s,
                upsert_s,
                n as f64 / wall_s,
                wall_s,
                size as f64 / 1e9
            );
        }
    }
    let store: &dyn ArticleStore = &*store_box;
    let start_rev = store.revision().await?;
    println!("  store revision {start_rev}");
    let l = load_since(phase);
    println!("  {l}");
    loads.push(("1 import", l));

    phase = cpu_snap();

    // 2a. No-change checks.
    println!("\n== 2a. no-change checks (what every scheduler tick / watch poll does)");
    let (s, rev) = time_async(args.reps_fast, 200, |_| async {
        Ok(store.revision().await?)
    })
    .await?;
    println!("  revision()                            {}", fmt_stats(&s));
    summary.push(Row_ {
        what: "revision() (no-change check)".into(),
        stats: s,
    });
    let (s, got) = time_async(args.reps_fast, 200, |_| async {
        Ok(store.changed_since(rev, 1000).await?.len())
    })
    .await?;
    ensure!(got == 0, "changed_since(current) returned {got} articles");
    println!("  changed_since(current, 1000) -> 0     {}", fmt_stats(&s));
    summary.push(Row_ {
        what: "changed_since(current, 1000) -> 0 rows".into(),
        stats: s,
    });

    let l = load_since(phase);
    println!("  {l}");
    loads.push(("2a no-change checks", l));

    // 2b. One changed article.
    phase = cpu_snap();
    println!("\n== 2b. after upserting 1 changed article");
    let nonce = Utc::now().timestamp_micros();
    let mut rng = Rng::new(nonce as u64);
    let mut write_times = Vec::with_capacity(args.reps);
    let mut check_times = Vec::with_capacity(args.reps);
    for rep in 0..args.reps + 20 {
        let i = rng.below(n);
        let changed = article(i, n, Some(&format!(" (update {nonce}-{rep})")))?;
        let before = store.revision().await?;
        let t = Instant::now();
        let outcome = store.upsert(std::slice::from_ref(&changed)).await?;
        let write = t.elapsed();
        ensure!(
            matches!(outcome.as_slice(), [Upserted::Updated(_)]),
            "upsert of a changed article gave {outcome:?}"
        );
        let t = Instant::now();
        let got = store.changed_since(before, 1000).await?;
        let check = t.elapsed();
        ensure!(
            got.len() == 1 && got[0].article.id == changed.id,
            "changed_since after one write returned {} articles",
            got.len()
        );
        if rep >= 20 {
            write_times.push(write);
            check_times.push(check);
        }
    }
    let w = stats(write_times);
    let c = stats(check_times);
    println!("  upsert(1 changed article)             {}", fmt_stats(&w));
    println!("  changed_since(previous, 1000) -> 1    {}", fmt_stats(&c));
    summary.push(Row_ {
        what: "changed_since(previous, 1000) -> 1 row".into(),
        stats: c,
    });
    summary.push(Row_ {
        what: "upsert(1 changed article) (write)".into(),
        stats: w,
    });

    let l = load_since(phase);
    println!("  {l}");
    loads.push(("2b one change", l));

    // 2c. Filtered newest(50) + builds.
    phase = cpu_snap();
    println!("\n== 2c. rebuilding a 50-item feed: newest(filter, 50), then RSS + Atom + JSON");
    let section = SECTIONS[0];
    let tag = tag_name(27); // "Transport policy"
    let author = author_name(42);
    let dir = tempfile::tempdir()?;
    let store_url = match &pg_target {
        Some(t) => t.url.clone(),
        None => format!("sqlite://{}", db.display()),
    };
    let config = bench_config(dir.path(), &store_url, section, &tag, &author)?;
    let mut filters = Vec::new();
    let mut plans_newest = Vec::new();
    for (kind, feed, value) in [
        ("section", "section", format!("sections = [{section:?}]")),
        ("tag", "tag", format!("tags = [{tag:?}]")),
        ("author", "author", format!("authors = [{author:?}]")),
        ("none (latest)", "latest", "no filter".to_owned()),
    ] {
        let spec = config
            .feeds
            .get(feed)
            .with_context(|| format!("feed {feed} missing from the bench config"))?;
        let (query, items) = time_async(args.reps, 20, |_| async {
            Ok(store.newest(&spec.filter, 50).await?)
        })
        .await?;
        ensure!(
            items.len() == 50,
            "{kind}: newest returned {} articles",
            items.len()
        );
        let articles: Vec<Article> = items.into_iter().map(|s| s.article).collect();
        let meta = FeedMeta::new(&config, spec);
        let (build, docs) = time_async(args.reps, 20, |_| async {
            Ok(builder::build(&meta, &articles, &spec.formats)?)
        })
        .await?;
        let (e2e, _) = time_async(args.reps, 20, |_| async {
            Ok(refresh::build_feed(&config, spec, store).await?)
        })
        .await?;
        // What making the variants of changed documents costs (the service
        // does it in the background, after they are served).
        let cache_control = refresh::feed_cache_control(&config, spec);
        let (represent, _) = time_async(args.reps_publish, 1, |_| async {
            Ok(docs
                .iter()
                .map(|d| {
                    publish::Representation::compressed_now(
                        d.body.clone(),
                        d.content_type,
                        d.last_modified,
                        cache_control.clone(),
                        None,
                    )
                })
                .collect::<Vec<_>>())
        })
        .await?;
        let sizes: Vec<String> = docs
            .iter()
            .map(|d| format!("{} {} KB", d.format.extension(), d.body.len() / 1024))
            .collect();
        let oldest = articles
            .last()
            .map(|a| a.published_at.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default();
        println!(
            "  filter {kind}: {value}  (50 items, oldest {oldest}; {})",
            sizes.join(", ")
        );
        println!(
            "    newest(filter, 50)                  {}",
            fmt_stats(&query)
        );
        println!(
            "    builder::build (3 formats)          {}",
            fmt_stats(&build)
        );
        println!(
            "    refresh::build_feed (query+build)   {}",
            fmt_stats(&e2e)
        );
        println!(
            "    compressed_now (gzip+brotli x3)     {}",
            fmt_stats(&represent)
        );
        summary.push(Row_ {
            what: format!("newest(50), filter {kind}"),
            stats: query,
        });
        summary.push(Row_ {
            what: format!("build 3 formats, filter {kind}"),
            stats: build,
        });
        summary.push(Row_ {
            what: format!("build_feed end to end, filter {kind}"),
            stats: e2e,
        });
        summary.push(Row_ {
            what: format!("represent (gzip+br) 3 docs, filter {kind}"),
            stats: represent,
        });

        let (_, sql) = captured(&capture, || async {
            Ok(store.newest(&spec.filter, 50).await?)
        })
        .await?;
        plans_newest.push((format!("newest(50), filter {kind}"), sql));
        filters.push((kind, feed));
    }

    let l = load_since(phase);
    println!("  {l}");
    loads.push(("2c newest + build", l));

    // 2d. RFC 5005 archive pages (issue 17): sealing a feed's whole archive
    // the first time (one keys-only walk of everything past its window),
    // then building one old page, one recent page and the open page from
    // the store, as a request for an uncached page does.
    phase = cpu_snap();
    println!(
        "\n== 2d. archive pages (100 articles each): first sealing, then one page built from the store"
    );
    let mut archived = config.clone();
    archived.archive = true;
    for (kind, feed) in [("section", "section"), ("none (latest)", "latest")] {
        let spec = archived
            .feeds
            .get(feed)
            .with_context(|| format!("feed {feed} missing from the bench config"))?;
        let started = Instant::now();
        let index = feedsmith::archive::seal_current(store, spec, 100).await?;
        let sealing = started.elapsed();
        let pages = index.sealed;
        ensure!(pages >= 3, "{kind}: only {pages} archive pages sealed");
        println!(
            "  filter {kind}: {pages} complete pages sealed in {:.2} s (first sealing; later rebuilds walk only the open page)",
            sealing.as_secs_f64()
        );
        for (which, page) in [
            ("oldest page (1)", 1),
            ("a middle page", pages / 2),
            ("the newest complete page", pages),
            ("the open page", pages + 1),
        ] {
            let (stats, rep) = time_async(args.reps, 5, |_| async {
                Ok(feedsmith::archive::build_page(
                    &archived,
                    spec,
                    store,
                    page,
                    feedsmith::config::Format::Atom,
                )
                .await?)
            })
            .await?;
            let size = rep.map_or(0, |r| r.identity.body.len());
            println!(
                "    build_page {which:<26} {} ({} KB Atom)",
                fmt_stats(&stats),
                size / 1024
            );
            summary.push(Row_ {
                what: format!("archive {which}, filter {kind}"),
                stats,
            });
        }
    }
    let l = load_since(phase);
    println!("  {l}");
    loads.push(("2d archive pages", l));

    // 3. Query plans.
    if let Some(pg) = &pg {
        pg_plans(pg, &config, &filters).await?;
    } else {
        // 3. Query plans of exactly what the store sends.
        println!(
            "\n== 3. EXPLAIN QUERY PLAN (statements captured from sqlx while the store method ran)"
        );
        let rev_now = store.revision().await?;
        let (_, rev_sql) = captured(&capture, || async { Ok(store.revision().await?) }).await?;
        let (_, cs_sql) = captured(&capture, || async {
            Ok(store.changed_since(rev_now, 1000).await?)
        })
        .await?;
        let mut conn = readonly(&db).await?;
        let mut captured_cases = vec![
            ("revision()".to_owned(), rev_sql),
            ("changed_since(rev, 1000)".to_owned(), cs_sql),
        ];
        captured_cases.extend(plans_newest);
        let mut cases = Vec::new();
        for (label, statements) in captured_cases {
            if statements.is_empty() {
                println!("  {label}: no statement captured (is sqlx statement logging off?)");
                continue;
            }
            for sql in statements {
                let binds: Vec<i64> = if label.starts_with("changed_since") {
                    vec![rev_now.0, 1000]
                } else {
                    Vec::new()
                };
                let plan = explain(&mut conn, &sql, &binds).await?;
                cases.push((label.clone(), sql, plan));
            }
        }
        drop(conn);
        print_plans(&cases, scans_articles, "SCAN of the articles table");
    }

    // 4. Summary.
    let end_rev = store.revision().await?;
    match (&pg, &pg_target) {
        (Some(pg), Some(t)) => println!(
            "\n== summary: {} articles, PostgreSQL schema {} {:.2} GB, store revision {} at the end",
            thousands(n),
            t.schema,
            schema_size(pg.pool(), &t.schema).await as f64 / 1e9,
            end_rev
        ),
        _ => println!(
            "\n== summary: {} articles, db {:.2} GB, store revision {} at the end",
            thousands(n),
            file_size(&db) as f64 / 1e9,
            end_rev
        ),
    }
    println!("  import: {import_line}");
    println!(
        "  {:<50} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "measurement", "median", "p90", "min", "max", "n"
    );
    for r in &summary {
        println!(
            "  {:<50} {:>10} {:>10} {:>10} {:>10} {:>7}",
            r.what,
            fmt_d(r.stats.median),
            fmt_d(r.stats.p90),
            fmt_d(r.stats.min),
            fmt_d(r.stats.max),
            r.stats.n
        );
    }
    println!("  load average at the end: {}", loadavg());
    for (phase, l) in &loads {
        println!("  {phase:<20} {l}");
    }
    // Dropping (not closing) the pool: `PgPool::close` would wait for the
    // connection the store's LISTEN task holds, which it keeps until every
    // clone of the store is gone and its next 10 s wake-up.
    drop(store_box);
    drop(pg);
    Ok(())
}

/// Whether a PostgreSQL plan reads the whole `articles` table.
fn pg_scans_articles(plan: &[String]) -> bool {
    plan.iter().any(|l| {
        l.split("Seq Scan on ")
            .skip(1)
            .any(|rest| rest.split_whitespace().next() == Some("articles"))
    })
}

/// `EXPLAIN` on PostgreSQL (after `ANALYZE` of the tables): the no-change checks'
/// SQL and `explain_newest` for each filter kind.
async fn pg_plans(
    pg: &PostgresStore,
    config: &Config,
    filters: &[(&str, &str)],
) -> anyhow::Result<()> {
    println!("\n== 3. EXPLAIN (PostgreSQL, statistics from the ANALYZE after the import)");
    let rev_now = pg.revision().await?;
    let mut cases: Vec<(String, String, Vec<String>)> = Vec::new();
    let rev_sql = "SELECT revision FROM store_state WHERE singleton = 1";
    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {rev_sql}")))
        .fetch_all(pg.pool())
        .await?;
    cases.push(("revision()".to_owned(), rev_sql.to_owned(), plan));
    let cs_sql = "SELECT id FROM articles WHERE revision > $1 ORDER BY revision LIMIT 1000";
    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {cs_sql}")))
        .bind(rev_now.0 - 1)
        .fetch_all(pg.pool())
        .await?;
    cases.push((
        format!("changed_since(rev, 1000), $1 = {}", rev_now.0 - 1),
        cs_sql.to_owned(),
        plan,
    ));
    for (kind, feed) in filters {
        let spec = config
            .feeds
            .get(*feed)
            .with_context(|| format!("feed {feed} missing from the bench config"))?;
        let plan = pg.explain_newest(&spec.filter, 50).await?;
        cases.push((
            format!("newest(50), filter {kind}"),
            "PostgresStore::explain_newest(filter, 50)".to_owned(),
            plan.lines().map(str::to_owned).collect(),
        ));
    }
    print_plans(&cases, pg_scans_articles, "Seq Scan on articles");
    Ok(())
}

/// Prints each (label, SQL, plan) and flags the plans `scans` says read the
/// whole articles table (`scan` names that in the backend's words), then the
/// verdict for the no-change checks.
fn print_plans(cases: &[(String, String, Vec<String>)], scans: fn(&[String]) -> bool, scan: &str) {
    let mut scanning = Vec::new();
    for (label, sql, plan) in cases {
        println!("  {label}");
        println!(
            "    sql:  {}",
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        for line in plan {
            println!("    plan: {line}");
        }
        if scans(plan) {
            println!("    !!! this plan has a {scan}");
            scanning.push(label.as_str());
        }
    }
    let no_change_scans = scanning
        .iter()
        .any(|l| l.starts_with("revision") || l.starts_with("changed_since"));
    println!(
        "  verdict: no-change checks {}",
        if no_change_scans {
            format!("have a {scan} (see above)")
        } else {
            format!("use indexes only (no {scan})")
        }
    );
    if scanning.is_empty() {
        println!("  no plan has a {scan}");
    } else {
        println!("  plans with a {scan}: {}", scanning.join(", "));
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let capture = SqlCapture::default();
    if tracing::subscriber::set_global_default(Registry::default().with(capture.clone())).is_err() {
        eprintln!("store-scale: a tracing subscriber was already set");
    }
    match run(args, capture).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-scale: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
