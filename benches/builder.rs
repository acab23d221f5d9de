//! Feed builder benchmarks: RSS, Atom and JSON Feed for feeds of 50, 1 000 and
//! 10 000 articles.
//!
//! The articles are generated in-process (`bench/articles.rs`) with the same
//! shape as `bench/gen_articles.py` (every field filled, eight ~50-word
//! paragraphs of body, two related links, an image with caption and credit, an
//! agency source; about 3.7 KB of JSON each) and go through
//! `RawArticle::validate`, exactly as an import would. A fixed-seed generator
//! keeps every run on the same input.
//!
//! Per feed size the group measures:
//! - `prepare`: sorting and sanitising alone (shared by every format);
//! - `rss`, `atom`, `json`: `prepare` + `build_format` for one format, what a
//!   feed with a single format costs;
//! - `all`: `build` of all three formats, i.e. one `prepare` and three renders,
//!   what a real rebuild of a feed costs.
//!
//! Run with `cargo bench --bench builder`; targets: `all` at 50 items under
//! 1 ms. The comparison with Python's feedgen is `bench/builder_vs_feedgen.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use feedsmith::builder::{build, build_format, prepare};
use feedsmith::config::Format;

const SIZES: [usize; 3] = [50, 1_000, 10_000];

#[path = "../bench/articles.rs"]
mod articles;
#[path = "../bench/splitmix.rs"]
mod splitmix;
use articles::{articles, meta};

fn bench_builder(c: &mut Criterion) {
    let meta = meta();
    for n in SIZES {
        let articles = articles(n);
        let sizes: Vec<String> = build(&meta, &articles, &Format::ALL)
            .expect("feed builds")
            .iter()
            .map(|d| format!("{} {} bytes", d.format.extension(), d.body.len()))
            .collect();
        eprintln!("builder/{n}: {}", sizes.join(", "));
        let mut group = c.benchmark_group(format!("builder/{n}"));
        group.throughput(Throughput::Elements(
            u64::try_from(n).expect("usize fits in u64"),
        ));
        if n >= 10_000 {
            // ~40 MB per document: a few hundred ms an iteration at most, so
            // the minimum sample count keeps the group within a minute or two.
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(2));
            group.measurement_time(Duration::from_secs(8));
        } else if n >= 1_000 {
            group.sample_size(30);
            group.measurement_time(Duration::from_secs(5));
        }
        group.bench_function(BenchmarkId::new("prepare", n), |b| {
            b.iter(|| prepare(black_box(&meta), black_box(&articles)))
        });
        for format in Format::ALL {
            group.bench_function(BenchmarkId::new(format.extension(), n), |b| {
                b.iter(|| {
                    let prepared = prepare(black_box(&meta), black_box(&articles));
                    build_format(&meta, &prepared, format).expect("feed builds")
                })
            });
        }
        group.bench_function(BenchmarkId::new("all", n), |b| {
            b.iter(|| {
                build(black_box(&meta), black_box(&articles), &Format::ALL).expect("feed builds")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_builder);
criterion_main!(benches);
