//! Arbitrary bytes as a feed file, as a pulled-source file and as the main
//! config file, through the real checking code (`document::deserialize_all`
//! and compile, behind `config::check_texts` and `config::check_source_text`).
//!
//! Beyond "no panic": every problem names one of the files given, and every
//! reported line and column lies inside that file's text.

#![no_main]

use std::path::{Path, PathBuf};

use feedsmith::config::{Problem, Source, check_source_text, check_texts};
use libfuzzer_sys::fuzz_target;

/// A valid main file whose feeds folder is never read (the texts are given).
const MAIN: &str = r#"[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1:8080"

[site]
title = "Example News"
timezone = "Europe/Dublin"

[store]
url = "sqlite::memory:"
"#;

const FEED: &str = "title = \"Latest\"\n";

fn source(path: &str, text: &str) -> Source {
    Source::new(PathBuf::from(path), text.to_owned())
}

fuzz_target!(|data: &[u8]| {
    // The files are read as UTF-8 text, which any bytes can be turned into;
    // this keeps the fuzzer's effort on the TOML rather than on encodings.
    let text = String::from_utf8_lossy(data);

    // The fixed texts must check clean, or every finding below would be noise.
    let main = source("feedsmith.toml", MAIN);
    let feed = source("feeds/latest.toml", FEED);
    assert!(
        check_texts(&main, &[feed.clone()]).is_empty(),
        "fixture is invalid"
    );

    let as_feed = source("feeds/fuzz.toml", &text);
    check(&check_texts(&main, &[as_feed.clone()]), &[&main, &as_feed]);

    let as_source = source("sources/fuzz.toml", &text);
    check(&check_source_text(&as_source), &[&as_source]);

    let as_main = source("feedsmith.toml", &text);
    check(&check_texts(&as_main, &[feed.clone()]), &[&as_main, &feed]);
});

fn check(problems: &[Problem], sources: &[&Source]) {
    for p in problems {
        assert!(
            !p.message.trim().is_empty(),
            "problem without a message: {p}"
        );
        let source = sources
            .iter()
            .find(|s| s.path == p.location.path)
            .unwrap_or_else(|| panic!("{p} names a file that was not given"));
        if let Some(at) = p.location.at {
            assert_inside(&source.text, at.line, at.col, p, &source.path);
        }
    }
}

/// Line `line` exists and column `col` is on it or just past its end (where
/// an error at the end of a line or of the text points).
fn assert_inside(text: &str, line: usize, col: usize, p: &Problem, path: &Path) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        line >= 1 && line <= lines.len(),
        "{p}: line {line} is outside {} ({} lines)",
        path.display(),
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    assert!(
        col >= 1 && col <= width + 1,
        "{p}: column {col} is outside line {line} ({width} characters)"
    );
}
