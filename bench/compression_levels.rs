//! Size against CPU time of gzip levels and brotli qualities on real feed
//! documents (issue 13), printed as a table.
//!
//! Usage: `cargo run --release --example compression-levels -- [RUNS] [SECONDS]`
//!
//! The documents are built in-process by the project's own builder from
//! generated articles (`bench/articles.rs`, the shape of
//! `bench/gen_articles.py`): RSS of 1, 4, 45 and 450 articles (about 5 KB,
//! 18 KB, 200 KB and 2 MB, the feeds of `bench/serve.sh`), and Atom and JSON
//! Feed of the 45-article feed.
//!
//! Every setting compresses with the service's own parameters
//! (`src/publish/variant.rs`): gzip through flate2's `GzBuilder` with mtime 0
//! and OS byte 255; brotli through `brotli::CompressorWriter` with a 64 KiB
//! buffer and window `lgwin` 22 (4 MiB). Only the level / quality varies. The
//! Brotli 5, 9 and 11 are also run with the window fitted to the document
//! (`lgwin` 10..22, the smallest holding it), which the service does since
//! issue 13 (its `service` row uses the fitted window).
//! The `service` row times `Representation::compressed_now`, everything the
//! service does for one document — now in the background, after it is
//! served (gzip 6, brotli 9 — 7 above 1 MiB — and three ETags) — and the
//! program checks that its bytes are the ones the matching rows produce.
//!
//! Each cell is the median of at least 3 and at most RUNS (default 21) timed
//! runs on one thread, stopping once SECONDS (default 1) have been spent on
//! it. Columns: output bytes (for `service`, gzip and brotli together),
//! output as a percentage of the document,
//! median time, and throughput in MB (10^6 bytes) of document per second.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use feedsmith::builder::{build_format, prepare};
use feedsmith::config::Format;
use feedsmith::publish::Representation;

#[path = "articles.rs"]
mod articles;
#[path = "splitmix.rs"]
mod splitmix;

/// flate2 levels measured.
const GZIP_LEVELS: [u32; 5] = [1, 3, 5, 6, 9];
/// Brotli qualities measured (7 is what the service uses above 1 MiB).
const BROTLI_QUALITIES: [u32; 8] = [1, 3, 4, 5, 6, 7, 9, 11];
/// The service's brotli window (`lgwin`) and writer buffer.
const BROTLI_LGWIN: u32 = 22;
const BROTLI_BUFFER: usize = 64 * 1024;
/// Qualities also measured with the window fitted to the document.
const FITTED_QUALITIES: [u32; 3] = [5, 9, 11];

/// The smallest brotli window (10..=22) that holds all of `len` bytes: the
/// same output for any decoder, but the encoder's ring buffer and hash tables
/// are sized to the document instead of 4 MiB (what the service does).
fn fitted_lgwin(len: usize) -> u32 {
    let mut lgwin = 10;
    while lgwin < BROTLI_LGWIN && (1usize << lgwin) - 16 < len {
        lgwin += 1;
    }
    lgwin
}

/// The service's brotli quality switch (`BROTLI_FAST_ABOVE` in variant.rs).
const SERVICE_BROTLI_FAST_ABOVE: usize = 1024 * 1024;
/// The service's gzip level (`src/publish/variant.rs`).
const SERVICE_GZIP_LEVEL: u32 = 6;

fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::new(level),
        );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

fn brotli(body: &[u8], quality: u32, lgwin: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 5);
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, BROTLI_BUFFER, quality, lgwin);
        let _ = writer.write_all(body);
    }
    out
}

/// The median of at least 3 and at most `runs` wall times of `f`, stopping
/// once `budget` has been spent; and the last output.
fn median_of<T>(runs: usize, budget: Duration, mut f: impl FnMut() -> T) -> (Duration, usize, T) {
    let mut times = Vec::with_capacity(runs);
    let started = Instant::now();
    let mut last = f(); // warm-up, not timed
    while times.len() < runs.max(3) && (times.len() < 3 || started.elapsed() < budget) {
        let start = Instant::now();
        let out = f();
        times.push(start.elapsed());
        last = out;
    }
    times.sort();
    (times[times.len() / 2], times.len(), last)
}

struct Doc {
    name: String,
    body: Bytes,
    content_type: &'static str,
    last_modified: chrono::DateTime<chrono::Utc>,
}

fn documents() -> anyhow::Result<Vec<Doc>> {
    let meta = articles::meta();
    let mut docs = Vec::new();
    let cases = [
        (1, Format::Rss),
        (4, Format::Rss),
        (45, Format::Rss),
        (450, Format::Rss),
        (45, Format::Atom),
        (45, Format::Json),
    ];
    for (n, format) in cases {
        let articles = articles::articles(n);
        let prepared = prepare(&meta, &articles);
        let doc = build_format(&meta, &prepared, format)
            .with_context(|| format!("building {} of {n}", format.extension()))?;
        docs.push(Doc {
            name: format!("{}-{n}", format.extension()),
            body: doc.body,
            content_type: doc.content_type,
            last_modified: doc.last_modified,
        });
    }
    Ok(docs)
}

fn row(doc: &Doc, setting: &str, out_len: usize, median: Duration, runs: usize) {
    let secs = median.as_secs_f64();
    let mbps = if secs > 0.0 {
        doc.body.len() as f64 / secs / 1e6
    } else {
        f64::INFINITY
    };
    println!(
        "{:<9} {:>9} {:<24} {:>9} {:>7.2}% {:>10.3} {:>8.1} {:>5}",
        doc.name,
        doc.body.len(),
        setting,
        out_len,
        100.0 * out_len as f64 / doc.body.len() as f64,
        secs * 1e3,
        mbps,
        runs,
    );
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = match args.get(1) {
        Some(r) => r.parse().context("RUNS must be a whole number")?,
        None => 21,
    };
    let budget = match args.get(2) {
        Some(s) => Duration::from_secs_f64(s.parse().context("SECONDS must be a number")?),
        None => Duration::from_secs(1),
    };
    if runs == 0 {
        bail!("RUNS must be at least 1");
    }
    println!(
        "# compression-levels: median of 3..={runs} runs per cell, {:.1} s budget per cell, one thread",
        budget.as_secs_f64()
    );
    println!(
        "# brotli: CompressorWriter buffer {BROTLI_BUFFER}, lgwin {BROTLI_LGWIN}; gzip: flate2 GzBuilder mtime 0"
    );
    println!(
        "{:<9} {:>9} {:<24} {:>9} {:>8} {:>10} {:>8} {:>5}",
        "document", "bytes", "setting", "out", "% of id", "median ms", "MB/s", "runs"
    );
    for doc in documents()? {
        row(&doc, "identity", doc.body.len(), Duration::ZERO, 0);
        let mut gzip_service = Vec::new();
        for level in GZIP_LEVELS {
            let (t, n, out) = median_of(runs, budget, || gzip(&doc.body, level));
            row(&doc, &format!("gzip {level}"), out.len(), t, n);
            if level == SERVICE_GZIP_LEVEL {
                gzip_service = out;
            }
        }
        let service_quality = if doc.body.len() <= SERVICE_BROTLI_FAST_ABOVE {
            9
        } else {
            7
        };
        for quality in BROTLI_QUALITIES {
            let (t, n, out) = median_of(runs, budget, || brotli(&doc.body, quality, BROTLI_LGWIN));
            row(&doc, &format!("brotli {quality}"), out.len(), t, n);
        }
        let brotli_service = brotli(&doc.body, service_quality, fitted_lgwin(doc.body.len()));
        let lgwin = fitted_lgwin(doc.body.len());
        if lgwin < BROTLI_LGWIN {
            for quality in FITTED_QUALITIES {
                let (t, n, out) = median_of(runs, budget, || brotli(&doc.body, quality, lgwin));
                row(
                    &doc,
                    &format!("brotli {quality} lgwin {lgwin}"),
                    out.len(),
                    t,
                    n,
                );
            }
        }
        let (t, n, rep) = median_of(runs, budget, || {
            Representation::compressed_now(
                doc.body.clone(),
                doc.content_type,
                doc.last_modified,
                "public, max-age=300".to_owned(),
                None,
            )
        });
        let bytes =
            |v: &feedsmith::publish::Variant| v.body.in_memory().cloned().unwrap_or_default();
        match (rep.gzip(), rep.brotli()) {
            (Some(g), Some(b)) => {
                let (g, b) = (bytes(g), bytes(b));
                if g[..] != gzip_service[..] {
                    bail!(
                        "{}: the service's gzip is not this gzip {SERVICE_GZIP_LEVEL}",
                        doc.name
                    );
                }
                if b[..] != brotli_service[..] {
                    bail!(
                        "{}: the service's brotli is not this brotli {service_quality}",
                        doc.name
                    );
                }
                let setting = format!("service gz{SERVICE_GZIP_LEVEL}+br{service_quality}");
                row(&doc, &setting, g.len() + b.len(), t, n);
            }
            _ => row(&doc, "service (identity only)", doc.body.len(), t, n),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compression-levels: {e:#}");
            ExitCode::FAILURE
        }
    }
}
