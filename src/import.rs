//! Importing article files into the store (`feedsmith import`, first-start seeding).
//!
//! Owns the file side of CONTRACT §3: finding `*.json` / `*.jsonl` files under
//! directories in a stable order, splitting each into articles (one object, an
//! array, or one object per line), handing each to `article` for validation
//! and writing the valid ones to the store in transactions. A rejected article
//! never stops the others, and every rejection names the file, the article and
//! the field. It reports progress through [`ImportObserver`] and never draws
//! anything itself, so the CLI decides what a terminal shows.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde_json::Value;

use crate::article::{Checked, FieldError, RawArticle, ValidationContext};
use crate::store::{ArticleStore, StoreError, Upserted};

/// Articles written per store transaction. Large enough that a 100 000-article
/// import is not dominated by commits, small enough that a crash loses little
/// and progress moves smoothly.
pub const BATCH_SIZE: usize = 1_000;

/// One article (or file) that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: PathBuf,
    /// Which article: `article 3 (id "x")`, `line 7`, or empty for a whole file.
    pub article: String,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.article.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.article,
                self.reason
            )
        }
    }
}

/// What one import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: usize,
    /// Characters XML 1.0 forbids, removed from articles that were stored.
    pub removed_chars: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {}, updated {}, unchanged {}, rejected {}",
            self.imported, self.updated, self.unchanged, self.rejected
        )?;
        if self.removed_chars > 0 {
            let plural = if self.removed_chars == 1 { "" } else { "s" };
            write!(
                f,
                " (removed {} character{plural} that XML 1.0 forbids)",
                self.removed_chars
            )?;
        }
        Ok(())
    }
}

/// Hooks for whoever shows progress. All have empty defaults.
pub trait ImportObserver: Send + Sync {
    /// `n` more articles were read from a file and are about to be stored.
    fn found(&self, _n: usize) {}
    /// `n` more articles were stored (or found unchanged) or rejected.
    fn advanced(&self, _n: usize) {}
    fn rejected(&self, _rejection: &Rejection) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl ImportObserver for Quiet {}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("file reader task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Imports every article under `paths` into `store`. Rejections are counted and
/// reported to `observer`; only a store failure stops the import (and batches
/// already committed stay committed).
pub async fn import_paths(
    store: &dyn ArticleStore,
    paths: &[PathBuf],
    timezone: Tz,
    observer: &dyn ImportObserver,
) -> Result<ImportSummary, ImportError> {
    let ctx = ValidationContext { timezone };
    let mut summary = ImportSummary::default();
    let listed = {
        let paths = paths.to_vec();
        tokio::task::spawn_blocking(move || list_files(&paths)).await?
    };
    for entry in listed {
        let file = match entry {
            Ok(file) => file,
            Err(rejection) => {
                summary.rejected += 1;
                observer.rejected(&rejection);
                continue;
            }
        };
        // A blocking reader parses the file into batches while this task
        // writes the previous batch, so parsing and SQLite use both cores and a
        // large file is never held in memory whole (for JSON Lines).
        let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Item>>(2);
        let reader = tokio::task::spawn_blocking(move || {
            read_file(&file, ctx, &mut |batch| sender.blocking_send(batch).is_ok())
        });
        while let Some(items) = batches.recv().await {
            observer.found(items.len());
            let mut batch: Vec<Checked> = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Ok(checked) => batch.push(checked),
                    Err(rejection) => {
                        summary.rejected += 1;
                        observer.rejected(&rejection);
                        observer.advanced(1);
                    }
                }
            }
            store_batch(store, &mut batch, &mut summary, observer).await?;
        }
        reader.await?;
    }
    Ok(summary)
}

async fn store_batch(
    store: &dyn ArticleStore,
    batch: &mut Vec<Checked>,
    summary: &mut ImportSummary,
    observer: &dyn ImportObserver,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let articles: Vec<_> = batch.iter().map(|c| c.article.clone()).collect();
    let outcomes = store.upsert(&articles).await?;
    for (outcome, checked) in outcomes.iter().zip(batch.iter()) {
        match outcome {
            Upserted::Inserted(_) => summary.imported += 1,
            Upserted::Updated(_) => summary.updated += 1,
            Upserted::Unchanged => summary.unchanged += 1,
        }
        summary.removed_chars += checked.removed_chars;
    }
    observer.advanced(batch.len());
    batch.clear();
    Ok(())
}

/// Imports `dir` if the store has never been written to. Returns `None` when
/// the store already had content.
pub async fn seed_if_empty(
    store: &dyn ArticleStore,
    dir: &Path,
    timezone: Tz,
) -> Result<Option<ImportSummary>, ImportError> {
    if store.revision().await?.0 != 0 {
        return Ok(None);
    }
    let summary = import_paths(store, &[dir.to_owned()], timezone, &Quiet).await?;
    Ok(Some(summary))
}

fn is_article_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|x| x == "json" || x == "jsonl")
}

/// Expands the arguments into files: a file argument is taken as given, a
/// directory contributes every `*.json` / `*.jsonl` beneath it in sorted order.
/// Unreadable arguments come back as rejections.
fn list_files(paths: &[PathBuf]) -> Vec<Result<PathBuf, Rejection>> {
    let mut out = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                let mut errors = Vec::new();
                walk(path, &mut found, &mut errors);
                found.sort();
                out.extend(found.into_iter().map(Ok));
                out.extend(errors.into_iter().map(Err));
            }
            Ok(_) => out.push(Ok(path.clone())),
            Err(e) => out.push(Err(Rejection {
                file: path.clone(),
                article: String::new(),
                reason: format!("cannot read: {e}"),
            })),
        }
    }
    out
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<Rejection>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(Rejection {
                file: dir.to_owned(),
                article: String::new(),
                reason: format!("cannot read directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Symlinked directories are not followed, so a link loop cannot recurse forever.
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, found, errors),
            Ok(_) if is_article_file(&path) && path.is_file() => found.push(path),
            _ => {}
        }
    }
}

type Item = Result<Checked, Rejection>;

/// Reads one file into validated articles and rejections, in file order,
/// handing them to `emit` in batches of at most [`BATCH_SIZE`]. Stops early
/// when `emit` returns false (the importer has given up).
fn read_file(path: &Path, ctx: ValidationContext, emit: &mut dyn FnMut(Vec<Item>) -> bool) {
    let whole_file = |reason: String| {
        vec![Err(Rejection {
            file: path.to_owned(),
            article: String::new(),
            reason,
        })]
    };
    if path.extension().is_some_and(|x| x == "jsonl") {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                emit(whole_file(format!("cannot read: {e}")));
                return;
            }
        };
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
            let position = format!("line {}", i + 1);
            let item = match line.map(String::from_utf8) {
                Err(e) => Err(format!("cannot read: {e}")),
                Ok(Err(_)) => Err("not UTF-8".to_owned()),
                Ok(Ok(line)) if line.trim().is_empty() => continue,
                Ok(Ok(line)) => serde_json::from_str::<Value>(&line)
                    .map_err(|e| format!("not valid JSON: {}", strip_location(&e))),
            };
            batch.push(match item {
                Ok(value) => check(path, position, value, ctx),
                Err(reason) => Err(Rejection {
                    file: path.to_owned(),
                    article: position,
                    reason,
                }),
            });
            if batch.len() == BATCH_SIZE && !emit(std::mem::take(&mut batch)) {
                return;
            }
        }
        if !batch.is_empty() {
            emit(batch);
        }
        return;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            emit(whole_file(format!("cannot read: {e}")));
            return;
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => {
            let mut items = items.into_iter().enumerate().peekable();
            while items.peek().is_some() {
                let batch: Vec<Item> = items
                    .by_ref()
                    .take(BATCH_SIZE)
                    .map(|(i, value)| check(path, format!("article {}", i + 1), value, ctx))
                    .collect();
                if !emit(batch) {
                    return;
                }
            }
        }
        Ok(value @ Value::Object(_)) => {
            emit(vec![check(path, String::new(), value, ctx)]);
        }
        Ok(_) => {
            emit(whole_file(
                "expected an article object or an array of them".to_owned(),
            ));
        }
        Err(e) => {
            emit(whole_file(format!(
                "not valid JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                strip_location(&e)
            )));
        }
    }
}

/// serde_json appends " at line L column C" to messages; we place it ourselves.
fn strip_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn check(path: &Path, position: String, value: Value, ctx: ValidationContext) -> Item {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(140).collect::<String>());
    let article = match (position.is_empty(), &id) {
        (true, Some(id)) => format!("id {id:?}"),
        (true, None) => "article".to_owned(),
        (false, Some(id)) => format!("{position} (id {id:?})"),
        (false, None) => position,
    };
    let reject = |reason: String| Rejection {
        file: path.to_owned(),
        article: article.clone(),
        reason,
    };
    if !value.is_object() {
        return Err(reject("expected an article object".to_owned()));
    }
    let raw: RawArticle = match serde_path_to_error::deserialize(value) {
        Ok(raw) => raw,
        Err(e) => {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            return Err(reject(if field == "." || field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            }));
        }
    };
    raw.validate(ctx).map_err(|errors| reject(join(&errors)))
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
