//! Wall time to build one feed of every article in a JSON Lines file, for the
//! side-by-side comparison with feedgen (`bench/builder_vs_feedgen.sh`).
//!
//! Usage: `cargo run --release --example build-timing -- ARTICLES.jsonl [RUNS]`
//!
//! The articles are read and validated first (not timed), as the store would
//! hand them to the builder. Then, for each format, the best of RUNS (default 5)
//! wall times of `prepare` + `build_format` is printed on stdout as
//! `FORMAT SECONDS`, followed by `all SECONDS` for `build` of all three formats
//! together (one prepare, three renders). Sizes and counts go to stderr.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use feedsmith::article::{Article, RawArticle, ValidationContext};
use feedsmith::builder::{Document, FeedMeta, build, build_format, prepare};
use feedsmith::config::Format;
use url::Url;

fn meta() -> anyhow::Result<FeedMeta> {
    Ok(FeedMeta {
        name: "latest".parse().map_err(anyhow::Error::msg)?,
        title: "Latest news".to_owned(),
        description: "The newest stories from every desk".to_owned(),
        site_title: "Example News".to_owned(),
        site_url: Url::parse("https://news.example.com/")?,
        base_url: Url::parse("https://feeds.example.com/")?,
        language: Some("en-IE".to_owned()),
        rights: Some("© Example News".to_owned()),
        logo: Some(Url::parse("https://news.example.com/logo.png")?),
        icon: Some(Url::parse("https://news.example.com/icon.png")?),
        timezone: chrono_tz::Europe::Dublin,
        ttl_minutes: 15,
        categories: vec!["World".to_owned(), "Business".to_owned()],
        tag_authority: "feeds.example.com".to_owned(),
        hubs: Vec::new(),
        paging: Default::default(),
    })
}

fn read_articles(path: &str) -> anyhow::Result<Vec<Article>> {
    let file = File::open(path).with_context(|| format!("opening {path}"))?;
    let mut articles = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {path}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawArticle =
            serde_json::from_str(&line).with_context(|| format!("{path}:{}", i + 1))?;
        match raw.validate(ValidationContext {
            timezone: chrono_tz::Europe::Dublin,
        }) {
            Ok(checked) => articles.push(checked.article),
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                bail!("{path}:{}: {}", i + 1, errors.join("; "));
            }
        }
    }
    Ok(articles)
}

/// The best of `runs` wall times of `f`, and the last result.
fn best_of<T>(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Duration, T)> {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f()?;
        best = best.min(start.elapsed());
        // Dropping the previous documents outside the timed region.
        last = Some(out);
    }
    match last {
        Some(out) => Ok((best, out)),
        None => bail!("RUNS must be at least 1"),
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        bail!("usage: build-timing ARTICLES.jsonl [RUNS]");
    };
    let runs: usize = match args.get(2) {
        Some(r) => r.parse().context("RUNS must be a whole number")?,
        None => 5,
    };
    let meta = meta()?;
    let articles = read_articles(path)?;
    eprintln!("build-timing: {} articles from {path}", articles.len());

    for format in Format::ALL {
        let (best, doc): (Duration, Document) = best_of(runs, || {
            let prepared = prepare(&meta, &articles);
            Ok(build_format(&meta, &prepared, format)?)
        })?;
        eprintln!(
            "build-timing: {} {} bytes",
            format.extension(),
            doc.body.len()
        );
        println!("{} {:.4}", format.extension(), best.as_secs_f64());
    }
    let (best, _) = best_of(runs, || Ok(build(&meta, &articles, &Format::ALL)?))?;
    println!("all {:.4}", best.as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build-timing: {e:#}");
            ExitCode::FAILURE
        }
    }
}
