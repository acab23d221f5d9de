//! Arbitrary bytes as a `.json` and as a `.jsonl` article file, through the
//! import's real parsing and validation (`import::parse_file_bytes`).
//!
//! Beyond "no panic" it checks what the import promises: one result per
//! article object or non-blank line, rejections that name their file and say
//! something, positions that lie inside the text, no id accepted twice from
//! one file, and accepted articles that validate again to themselves.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use chrono_tz::Europe::Dublin;
use feedsmith::article::{RawArticle, ValidationContext};
use feedsmith::import::{Rejection, parse_file_bytes};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    json_file(data);
    json_lines_file(data);
});

fn json_file(data: &[u8]) {
    let path = Path::new("fuzz.json");
    let items = parse_file_bytes(path, data, Dublin);
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(objects)) => {
            assert_eq!(items.len(), objects.len(), "one result per array element");
            for (i, item) in items.iter().enumerate() {
                if let Err(r) = item {
                    let label = format!("article {}", i + 1);
                    assert!(
                        r.article == label || r.article.starts_with(&format!("{label} (")),
                        "rejection {i} is labelled {:?}",
                        r.article
                    );
                }
            }
        }
        Ok(Value::Object(_)) => assert_eq!(items.len(), 1, "one object, one result"),
        _ => {
            assert_eq!(items.len(), 1, "a file that is no article is one rejection");
            let r = items[0].as_ref().expect_err("nothing to accept");
            assert!(
                r.article.is_empty(),
                "a whole-file rejection names no article"
            );
            // Bad bytes or bad JSON must be said as such, at a place in the text.
            let prefix = match std::str::from_utf8(data) {
                Err(_) => Some("not UTF-8 at line "),
                Ok(text) if serde_json::from_str::<Value>(text).is_err() => {
                    Some("not valid JSON at line ")
                }
                Ok(_) => None,
            };
            if let Some(prefix) = prefix {
                let numbers = numbers_after(&r.reason, prefix)
                    .unwrap_or_else(|| panic!("{:?} does not start {prefix:?}", r.reason));
                assert_eq!(numbers.len(), 2, "{}", r.reason);
                assert_inside(data, numbers[0], numbers[1], &r.reason);
            }
        }
    }
    check_items(path, &items);
}

fn json_lines_file(data: &[u8]) {
    let path = Path::new("fuzz.jsonl");
    let items = parse_file_bytes(path, data, Dublin);
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let non_blank = lines
        .iter()
        .filter(|l| !std::str::from_utf8(l).is_ok_and(|s| s.trim().is_empty()))
        .count();
    assert_eq!(items.len(), non_blank, "one result per non-blank line");
    let mut last = 0;
    for r in items.iter().filter_map(|i| i.as_ref().err()) {
        let n: usize = r
            .article
            .strip_prefix("line ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("rejection labelled {:?}", r.article));
        assert!(n > last && n <= lines.len(), "line {n} after {last}");
        last = n;
        let line = lines[n - 1];
        let prefix = match std::str::from_utf8(line) {
            Err(_) => Some("not UTF-8 at column "),
            Ok(text) if serde_json::from_str::<Value>(text).is_err() => {
                Some("not valid JSON at column ")
            }
            Ok(_) => None,
        };
        if let Some(prefix) = prefix {
            let numbers = numbers_after(&r.reason, prefix)
                .unwrap_or_else(|| panic!("{:?} does not start {prefix:?}", r.reason));
            assert_eq!(numbers.len(), 1, "{}", r.reason);
            assert_inside(line, 1, numbers[0], &r.reason);
        }
    }
    check_items(path, &items);
}

/// What holds for every result, whatever the file's shape.
fn check_items(path: &Path, items: &[Result<feedsmith::article::Checked, Rejection>]) {
    let mut ids = HashSet::new();
    for item in items {
        match item {
            Ok(checked) => {
                let article = &checked.article;
                assert!(
                    ids.insert(article.id.clone()),
                    "{} accepted twice",
                    article.id
                );
                assert!(article.updated_at >= article.published_at);
                // What was accepted, written back in the import shape, is
                // accepted again as the very same article with nothing removed.
                let value = serde_json::to_value(article).expect("an article serialises");
                let raw: RawArticle = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{value} is not the import shape: {e}"));
                let again = raw
                    .validate(ValidationContext { timezone: Dublin })
                    .unwrap_or_else(|e| panic!("{value} no longer validates: {e:?}"));
                assert_eq!(&again.article, article, "re-validation changed {value}");
                assert_eq!(again.removed_chars, 0, "re-validation removed characters");
            }
            Err(r) => {
                assert_eq!(r.file, path);
                assert!(!r.reason.trim().is_empty(), "rejection without a reason");
            }
        }
    }
}

/// The numbers between `prefix` and the first `:` of `reason`, if it starts so.
fn numbers_after(reason: &str, prefix: &str) -> Option<Vec<usize>> {
    let rest = reason.strip_prefix(prefix)?;
    let head = rest.split(':').next()?;
    Some(
        head.split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect(),
    )
}

/// Line `line` exists in `text` and column `column` is on it or just past
/// its end (where an error at the end of the text points).
fn assert_inside(text: &[u8], line: usize, column: usize, reason: &str) {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        line >= 1 && line <= lines.len(),
        "line {line} outside the text: {reason}"
    );
    let width = lines[line - 1].chars().count();
    assert!(
        column >= 1 && column <= width + 1,
        "column {column} outside line {line} ({width} characters): {reason}"
    );
}
