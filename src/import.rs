//! Importing article files into the store (`feedsmith import`, first-start seeding).
//!
//! Owns the file side of `docs/contract.md` §3: finding `*.json` / `*.jsonl`
//! files (and RSS / Atom feeds, `*.rss` / `*.atom` / `*.xml`, or any file whose
//! root element is a feed) under directories in a stable order, splitting each
//! into articles (one object, an array, one object per line, or one per feed
//! item, mapped by [`feed`]), handing each to `article` for validation and
//! writing the valid ones to the store in transactions. A rejected article
//! never stops the others, and every rejection names the file, the article and
//! the field. An id given twice in one file is rejected where it repeats. It
//! reports progress through [`ImportObserver`] and never draws
//! anything itself, so the CLI decides what a terminal shows.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde_json::Value;

use crate::article::{ArticleId, Checked, FieldError, RawArticle, ValidationContext};
use crate::config::Config;
use crate::store::{ArticleStore, StoreError, Upserted};

pub mod feed;

/// How files are read into articles, the same for every file of an import.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Zone for article times written without an offset (`[site].timezone`).
    pub timezone: Tz,
    /// The authority of the `tag:` URIs this service writes (the host of
    /// `[server].base_url`), so our own feeds import with their own ids.
    pub own_tag_authority: Option<String>,
    /// Credit and section written into every item of a feed file (a pulled
    /// source's; none for `feedsmith import`).
    pub overrides: feed::FeedOverrides,
}

impl ImportSettings {
    /// The settings a configured service imports with.
    pub fn for_config(config: &Config) -> Self {
        Self {
            timezone: config.site.timezone,
            // The same authority `builder::FeedMeta` writes into `tag:` URIs.
            own_tag_authority: Some(
                config
                    .server
                    .base_url
                    .host_str()
                    .unwrap_or("localhost")
                    .to_owned(),
            ),
            overrides: feed::FeedOverrides::default(),
        }
    }

    /// Settings with only a time zone: no `tag:` URI is taken as our own.
    pub fn with_timezone(timezone: Tz) -> Self {
        Self {
            timezone,
            own_tag_authority: None,
            overrides: feed::FeedOverrides::default(),
        }
    }
}

/// Articles written per store transaction. Large enough that a 100 000-article
/// import is not dominated by commits, small enough that a crash loses little
/// and progress moves smoothly.
pub const BATCH_SIZE: usize = 1_000;

/// One article (or file) that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The file the article came from.
    pub file: PathBuf,
    /// Which article: `article 3 (id "x")`, `line 7`, or empty for a whole file.
    pub article: String,
    /// What was wrong, naming the field where there is one.
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
    /// Articles new to the store.
    pub imported: usize,
    /// Stored articles whose content changed (each took a new revision).
    pub updated: usize,
    /// Articles identical to what was stored: nothing written.
    pub unchanged: usize,
    /// Articles (or whole files) refused, each reported as a [`Rejection`].
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
    /// An article or a whole file was refused; the import goes on.
    fn rejected(&self, _rejection: &Rejection) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl ImportObserver for Quiet {}

/// Why an import stopped. Bad articles never stop it: they are rejections.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store refused a batch; the batches before it are kept.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task reading files panicked or was cancelled.
    #[error("file reader task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Imports every article under `paths` into `store`. Rejections are counted and
/// reported to `observer`; only a store failure stops the import (and batches
/// already committed stay committed).
pub async fn import_paths(
    store: &dyn ArticleStore,
    paths: &[PathBuf],
    settings: &ImportSettings,
    observer: &dyn ImportObserver,
) -> Result<ImportSummary, ImportError> {
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
        let settings = settings.clone();
        let reader = tokio::task::spawn_blocking(move || {
            read_file(&file, &settings, &mut |batch| {
                sender.blocking_send(batch).is_ok()
            })
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

/// One feed document fetched from elsewhere (a pulled source), mapped and
/// validated exactly as `feedsmith import` maps and validates a feed file:
/// the valid articles, and the rejected items (`label` names the document in
/// them). A document that is no feed at all is an error, and nothing of it
/// may be stored. CPU-bound: call it on a blocking thread.
pub fn check_feed_document(
    label: &Path,
    bytes: &[u8],
    settings: &ImportSettings,
) -> Result<(Vec<Checked>, Vec<Rejection>), feed::FeedError> {
    // Sniffed first, so that a document that is no feed is told apart from
    // a feed whose items were all rejected.
    feed::sniff(bytes)?;
    let (mut checked, mut rejected) = (Vec::new(), Vec::new());
    let mut failed = None;
    parse_feed(label, bytes, settings, &mut |batch| {
        for item in batch {
            match item {
                Ok(c) => checked.push(c),
                // A whole-document rejection: the parsers disagree with the sniff.
                Err(r) if r.article.is_empty() => failed = Some(r.reason),
                Err(r) => rejected.push(r),
            }
        }
        true
    });
    match failed {
        None => Ok((checked, rejected)),
        Some(reason) => Err(feed::FeedError::Unreadable(reason)),
    }
}

/// Writes validated articles in batches of [`BATCH_SIZE`], one transaction
/// each, as an import does, and says what each batch did. Unchanged articles
/// take no revision.
pub async fn store_checked(
    store: &dyn ArticleStore,
    mut articles: Vec<Checked>,
) -> Result<ImportSummary, StoreError> {
    let mut summary = ImportSummary::default();
    while !articles.is_empty() {
        let rest = articles.split_off(articles.len().min(BATCH_SIZE));
        store_batch(store, &mut articles, &mut summary, &Quiet).await?;
        articles = rest;
    }
    Ok(summary)
}

/// Imports `dir` if the store has never been written to. Returns `None` when
/// the store already had content.
pub async fn seed_if_empty(
    store: &dyn ArticleStore,
    dir: &Path,
    settings: &ImportSettings,
) -> Result<Option<ImportSummary>, ImportError> {
    if store.revision().await?.0 != 0 {
        return Ok(None);
    }
    let summary = import_paths(store, &[dir.to_owned()], settings, &Quiet).await?;
    Ok(Some(summary))
}

fn is_article_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|x| x == "json" || x == "jsonl" || x == "rss" || x == "atom" || x == "xml")
}

/// Expands the arguments into files: a file argument is taken as given, a
/// directory contributes every `*.json` / `*.jsonl` / `*.rss` / `*.atom` /
/// `*.xml` beneath it in sorted order.
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

/// The shapes of article file: the two of `docs/contract.md` §3, and feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.json`: one article object or an array of them.
    Json,
    /// `.jsonl`: one article object per line.
    JsonLines,
    /// An RSS 2.0 or Atom 1.0 document, one article per item ([`feed`]).
    Feed,
}

impl FileKind {
    /// The kind a file's name says: `.jsonl` lines, `.rss` / `.atom` /
    /// `.xml` a feed, anything else JSON.
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|x| x.to_str()) {
            Some("jsonl") => FileKind::JsonLines,
            Some("rss" | "atom" | "xml") => FileKind::Feed,
            _ => FileKind::Json,
        }
    }

    /// The kind of a file by its name and its first bytes: `.json` and
    /// `.jsonl` are always JSON (`docs/contract.md` §3); any other file that starts
    /// with `<` (after a byte order mark and white space) is a feed, whose
    /// root element then says which format.
    pub fn detect(path: &Path, head: &[u8]) -> Self {
        match Self::of(path) {
            FileKind::Json if path.extension().is_none_or(|x| x != "json") => {
                let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
                match head.iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'<') => FileKind::Feed,
                    _ => FileKind::Json,
                }
            }
            kind => kind,
        }
    }
}

/// Parses and validates one file's contents exactly as an import does, without
/// opening the file or a store; `path` only names the file in rejections and
/// picks its [`FileKind`] (with the bytes, as [`FileKind::detect`] does). The
/// entry point of the `import_json` and `import_feed` fuzz targets.
#[doc(hidden)]
pub fn parse_file_bytes(path: &Path, bytes: &[u8], timezone: Tz) -> Vec<Item> {
    let settings = ImportSettings::with_timezone(timezone);
    let ctx = ValidationContext { timezone };
    let mut items = Vec::new();
    let mut collect = |batch: Vec<Item>| {
        items.extend(batch);
        true
    };
    match FileKind::detect(path, bytes) {
        FileKind::JsonLines => parse_lines(path, bytes, ctx, &mut collect),
        FileKind::Json => parse_json(path, bytes, ctx, &mut collect),
        FileKind::Feed => parse_feed(path, bytes, &settings, &mut collect),
    }
    items
}

/// Reads one file into validated articles and rejections, in file order,
/// handing them to `emit` in batches of at most [`BATCH_SIZE`]. Stops early
/// when `emit` returns false (the importer has given up).
fn read_file(path: &Path, settings: &ImportSettings, emit: &mut dyn FnMut(Vec<Item>) -> bool) {
    let ctx = ValidationContext {
        timezone: settings.timezone,
    };
    let cannot_read = |e: std::io::Error| {
        vec![Err(Rejection {
            file: path.to_owned(),
            article: String::new(),
            reason: format!("cannot read: {e}"),
        })]
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            emit(cannot_read(e));
            return;
        }
    };
    let mut reader = BufReader::new(file);
    let kind = match reader.fill_buf() {
        Ok(head) => FileKind::detect(path, head),
        Err(e) => {
            emit(cannot_read(e));
            return;
        }
    };
    match kind {
        // Streamed line by line, so a large file is never held in memory whole.
        FileKind::JsonLines => parse_lines(path, reader, ctx, emit),
        FileKind::Json | FileKind::Feed => {
            let mut bytes = Vec::new();
            match reader.read_to_end(&mut bytes) {
                Ok(_) if kind == FileKind::Feed => parse_feed(path, &bytes, settings, emit),
                Ok(_) => parse_json(path, &bytes, ctx, emit),
                Err(e) => {
                    emit(cannot_read(e));
                }
            }
        }
    }
}

/// One article object per line; blank lines are skipped.
fn parse_lines(
    path: &Path,
    reader: impl BufRead,
    ctx: ValidationContext,
    emit: &mut dyn FnMut(Vec<Item>) -> bool,
) {
    let mut seen = SeenIds::default();
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    for (i, line) in reader.split(b'\n').enumerate() {
        let position = format!("line {}", i + 1);
        let item = match line.map(String::from_utf8) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(Err(e)) => {
                let (_, column) = line_col(e.as_bytes(), e.utf8_error().valid_up_to());
                Err(format!("not UTF-8 at column {column}"))
            }
            Ok(Ok(line)) if line.trim().is_empty() => continue,
            Ok(Ok(line)) => serde_json::from_str::<Value>(&line).map_err(|e| {
                // A line holds no newline, so only the column says anything.
                let (_, column, message) = describe_json_error(&line, &e);
                format!("not valid JSON at column {column}: {message}")
            }),
        };
        batch.push(match item {
            Ok(value) => check(path, position, value, ctx, &mut seen),
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
}

/// One article object, or an array of them.
fn parse_json(
    path: &Path,
    bytes: &[u8],
    ctx: ValidationContext,
    emit: &mut dyn FnMut(Vec<Item>) -> bool,
) {
    let whole_file = |reason: String| {
        vec![Err(Rejection {
            file: path.to_owned(),
            article: String::new(),
            reason,
        })]
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let (line, column) = line_col(bytes, e.valid_up_to());
            emit(whole_file(format!(
                "not UTF-8 at line {line} column {column}"
            )));
            return;
        }
    };
    let mut seen = SeenIds::default();
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => {
            let mut items = items.into_iter().enumerate().peekable();
            while items.peek().is_some() {
                let batch: Vec<Item> = items
                    .by_ref()
                    .take(BATCH_SIZE)
                    .map(|(i, value)| {
                        check(path, format!("article {}", i + 1), value, ctx, &mut seen)
                    })
                    .collect();
                if !emit(batch) {
                    return;
                }
            }
        }
        Ok(value @ Value::Object(_)) => {
            emit(vec![check(path, String::new(), value, ctx, &mut seen)]);
        }
        Ok(_) => {
            emit(whole_file(
                "expected an article object or an array of them".to_owned(),
            ));
        }
        Err(e) => {
            let (line, column, message) = describe_json_error(text, &e);
            emit(whole_file(format!(
                "not valid JSON at line {line} column {column}: {message}"
            )));
        }
    }
}

/// One article per feed item, mapped by [`feed`] and validated like a JSON
/// article; an item whose id repeats an earlier one's is rejected like a
/// repeated JSON id. A document that is no feed is one whole-file rejection.
fn parse_feed(
    path: &Path,
    bytes: &[u8],
    settings: &ImportSettings,
    emit: &mut dyn FnMut(Vec<Item>) -> bool,
) {
    let ctx = ValidationContext {
        timezone: settings.timezone,
    };
    let feed_ctx = feed::FeedContext {
        own_tag_authority: settings.own_tag_authority.as_deref(),
        overrides: Some(&settings.overrides),
    };
    let items = match feed::read_feed(bytes, feed_ctx) {
        Ok(items) => items,
        Err(e) => {
            emit(vec![Err(Rejection {
                file: path.to_owned(),
                article: String::new(),
                reason: e.to_string(),
            })]);
            return;
        }
    };
    let mut seen = SeenIds::default();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let batch: Vec<Item> = items
            .by_ref()
            .take(BATCH_SIZE)
            .map(|item| check_feed_item(path, item, ctx, &mut seen))
            .collect();
        if !emit(batch) {
            return;
        }
    }
}

fn check_feed_item(
    path: &Path,
    item: feed::FeedItem,
    ctx: ValidationContext,
    seen: &mut SeenIds,
) -> Item {
    let feed::FeedItem {
        position,
        raw,
        mut problems,
    } = item;
    let reject = |reason: String| Rejection {
        file: path.to_owned(),
        article: position.clone(),
        reason,
    };
    if raw.id.is_none() {
        problems.push("id: the item has no guid, id or link to derive a stable id from".into());
    }
    if let Some(id) = raw.id.as_deref().and_then(|s| s.parse::<ArticleId>().ok()) {
        // "item 2 at line 9", without the guid the rejection already names.
        let place = position.split(" (").next().unwrap_or(&position);
        seen.first_use(id, place.to_owned()).map_err(&reject)?;
    }
    match raw.validate(ctx) {
        Ok(checked) if problems.is_empty() => Ok(checked),
        Ok(_) => Err(reject(problems.join("; "))),
        Err(errors) => {
            // The missing id is already said in the feed's words.
            let errors: Vec<FieldError> = errors
                .into_iter()
                .filter(|e| !(e.field == "id" && problems.iter().any(|p| p.starts_with("id:"))))
                .collect();
            problems.push(join(&errors));
            problems.retain(|p| !p.is_empty());
            Err(reject(problems.join("; ")))
        }
    }
}

/// 1-based line and column of byte `offset` in `text`, the column counted in
/// characters as an editor shows it. Bytes that are not UTF-8 count as one
/// character each, so the column of the first bad byte is still right.
fn line_col(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Where a JSON syntax error is and what is wrong there. serde_json's wording
/// for a lone UTF-16 surrogate ("unexpected end of hex escape") and for a cut
/// short `\u` escape ("invalid escape") does not say what to fix, so the text
/// at the error is looked at and those two are named; anything else keeps
/// serde_json's message at its position. serde_json has no public error codes,
/// so its wording is matched; the tests below pin it, and a new wording only
/// falls back to serde_json's message.
fn describe_json_error(text: &str, e: &serde_json::Error) -> (usize, usize, String) {
    let message = strip_location(e);
    // serde_json's column counts the bytes read on its line, so this is the
    // offset just past the byte it stopped at.
    let line_start = if e.line() <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', text.as_bytes())
            .nth(e.line() - 2)
            .map_or(text.len(), |i| i + 1)
    };
    let end = (line_start + e.column()).min(text.len());
    let found = match message.as_str() {
        // After `\uD800` serde_json reads one more byte (or an escape that is
        // not `\u`) before it gives up; a pair of `\u` escapes whose second is
        // no low half, or a low half alone, fails just after the escape.
        "unexpected end of hex escape" => [7, 8]
            .into_iter()
            .find_map(|back| surrogate_at(text, end.checked_sub(back)?, 0xD800..=0xDBFF)),
        "lone leading surrogate in hex escape" => end
            .checked_sub(12)
            .filter(|&at| unicode_escape_at(text, at + 6).is_some())
            .and_then(|at| surrogate_at(text, at, 0xD800..=0xDBFF))
            .or_else(|| surrogate_at(text, end.checked_sub(6)?, 0xDC00..=0xDFFF)),
        "invalid escape" => end.checked_sub(6).and_then(|at| {
            let digits = truncated_unicode_escape_at(text, at)?;
            Some((
                at,
                format!(
                    "\\u{digits} is not a complete escape: \\u must be followed by four hex digits"
                ),
            ))
        }),
        _ => None,
    };
    match found {
        Some((at, message)) => {
            let (line, column) = line_col(text.as_bytes(), at);
            (line, column, message)
        }
        None => {
            // The character serde_json stopped in, not the byte after it.
            let mut at = end.saturating_sub(1).max(line_start);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let (line, column) = line_col(text.as_bytes(), at);
            (line, column, message)
        }
    }
}

/// A `\uXXXX` escape at byte `at` whose code unit is in `range`, described.
fn surrogate_at(
    text: &str,
    at: usize,
    range: std::ops::RangeInclusive<u16>,
) -> Option<(usize, String)> {
    unicode_escape_at(text, at).filter(|u| range.contains(u))?;
    // Quoted as written (`\uDBFF` stays upper case) so it can be searched for.
    let escape = text.get(at..at + 6)?;
    Some((
        at,
        format!(
            "{escape} is half of a UTF-16 surrogate pair with no other half; JSON text must encode whole characters"
        ),
    ))
}

/// The code unit of a `\uXXXX` escape starting at byte `at`, if one does.
fn unicode_escape_at(text: &str, at: usize) -> Option<u16> {
    let escape = text.as_bytes().get(at..at + 6)?;
    if !escape.starts_with(b"\\u") || !is_escape_start(text, at) {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

/// The hex digits of a `\u` escape at byte `at` that has fewer than four.
fn truncated_unicode_escape_at(text: &str, at: usize) -> Option<&str> {
    let rest = text.get(at..)?.strip_prefix("\\u")?;
    if !is_escape_start(text, at) {
        return None;
    }
    let digits = rest
        .bytes()
        .take(4)
        .take_while(u8::is_ascii_hexdigit)
        .count();
    (digits < 4).then(|| &rest[..digits])
}

/// Whether the backslash at byte `at` starts an escape rather than ending one
/// (`\\u` is an escaped backslash followed by the letter u).
fn is_escape_start(text: &str, at: usize) -> bool {
    let before = &text.as_bytes()[..at];
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
}

/// serde_json appends " at line L column C" to messages; we place it ourselves.
fn strip_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Ids already given in the file being read, with where each first appeared.
/// An id given twice in one file is a mistake in that file (which one did its
/// author mean?), so later occurrences are rejected; across files the later
/// path wins, as documented.
#[derive(Default)]
struct SeenIds(HashMap<ArticleId, String>);

impl SeenIds {
    /// Notes `id` as given at `place`, or says where it was given first.
    fn first_use(&mut self, id: ArticleId, place: String) -> Result<(), String> {
        match self.0.entry(id) {
            Entry::Occupied(first) => Err(format!(
                "duplicate id {:?}: already given at {} of this file",
                first.key().as_str(),
                first.get()
            )),
            Entry::Vacant(slot) => {
                slot.insert(place);
                Ok(())
            }
        }
    }
}

fn check(
    path: &Path,
    position: String,
    value: Value,
    ctx: ValidationContext,
    seen: &mut SeenIds,
) -> Item {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(140).collect::<String>());
    let article = match (position.is_empty(), &id) {
        (true, Some(id)) => format!("id {id:?}"),
        (true, None) => "article".to_owned(),
        (false, Some(id)) => format!("{position} (id {id:?})"),
        (false, None) => position.clone(),
    };
    let reject = |reason: String| Rejection {
        file: path.to_owned(),
        article: article.clone(),
        reason,
    };
    if !value.is_object() {
        return Err(reject("expected an article object".to_owned()));
    }
    // Only well-formed ids are tracked: a malformed one is rejected for
    // itself, and this keeps the map's keys at most 128 bytes each.
    if let Some(id) = value
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ArticleId>().ok())
    {
        seen.first_use(id, position).map_err(&reject)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Dublin;

    fn article(id: &str, headline: &str) -> String {
        format!(
            r#"{{"id": "{id}", "url": "https://e.com/{id}", "headline": "{headline}", "published_at": "2025-01-01T10:00:00Z"}}"#
        )
    }

    fn parse(name: &str, text: &str) -> Vec<Item> {
        parse_file_bytes(Path::new(name), text.as_bytes(), Dublin)
    }

    /// The reasons of every rejection, in order.
    fn reasons(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| i.as_ref().err())
            .map(|r| {
                if r.article.is_empty() {
                    r.reason.clone()
                } else {
                    format!("{}: {}", r.article, r.reason)
                }
            })
            .collect()
    }

    const HALF: &str = "is half of a UTF-16 surrogate pair with no other half; JSON text must encode whole characters";

    #[test]
    fn every_way_a_surrogate_can_be_alone_is_named_with_its_column() {
        // (headline as written in JSON, the escape named, where it starts in the headline)
        let cases = [
            (r"\ud800", r"\ud800", 0),
            (r"\udc00", r"\udc00", 0),
            (r"\ud800x", r"\ud800", 0),
            (r"ab é \ud800é", r"\ud800", 5),
            (r"\ud800\n", r"\ud800", 0),
            (r"\ud800\u0041", r"\ud800", 0),
            (r"\ud800\ud800", r"\ud800", 0),
            (r"\\\ud800", r"\ud800", 2),
            (r"\uDBFF", r"\uDBFF", 0),
        ];
        for (headline, escape, start) in cases {
            let line = article("a", headline);
            let before = line.find(headline).expect("headline in line");
            let column = line[..before].chars().count() + start + 1;
            let json = format!("[\n{line}\n]");
            assert_eq!(
                reasons(&parse("f.json", &json)),
                [format!(
                    "not valid JSON at line 2 column {column}: {escape} {HALF}"
                )],
                "{headline}"
            );
            assert_eq!(
                reasons(&parse("f.jsonl", &line)),
                [format!(
                    "line 1: not valid JSON at column {column}: {escape} {HALF}"
                )],
                "{headline}"
            );
        }
    }

    #[test]
    fn escapes_that_are_not_lone_surrogates_keep_their_own_messages() {
        // A whole pair, and an escaped backslash before "ud800", are fine.
        for headline in [r"\ud83d\ude00", r"\\ud800"] {
            let items = parse("f.jsonl", &article("a", headline));
            assert!(items.iter().all(Result::is_ok), "{:?}", reasons(&items));
        }
        let cut = article("a", r"\u12");
        let column = cut.find(r"\u12").expect("escape") + 1;
        assert_eq!(
            reasons(&parse("f.jsonl", &cut)),
            [format!(
                "line 1: not valid JSON at column {column}: \\u12 is not a complete escape: \\u must be followed by four hex digits"
            )]
        );
        // Cut off by the end of the text: serde_json's own words are right.
        let reasons = reasons(&parse("f.json", r#"{"id": "\ud8"#));
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("not valid JSON at line 1 column ")
                && reasons[0].contains("EOF while parsing a string")
                && !reasons[0].contains("surrogate"),
            "{reasons:?}"
        );
    }

    #[test]
    fn other_errors_are_placed_at_the_character_serde_json_stopped_at() {
        let text = "[\n  {\"headline\": \"Café\",\n  oops\n]";
        assert_eq!(
            reasons(&parse("f.json", text)),
            ["not valid JSON at line 3 column 3: key must be a string"]
        );
        // Columns count characters: "é" is two bytes but one column.
        let text = "{\"headline\": \"é\" oops}";
        let column = text[..text.find("oops").expect("oops")].chars().count() + 1;
        assert_eq!(
            reasons(&parse("f.json", text)),
            [format!(
                "not valid JSON at line 1 column {column}: expected `,` or `}}`"
            )]
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_placed() {
        let mut json = b"[\n  \"caf".to_vec();
        json.extend([0xE9, b'"', b']']);
        assert_eq!(
            reasons(&parse_file_bytes(Path::new("f.json"), &json, Dublin)),
            ["not UTF-8 at line 2 column 7"]
        );
        let mut lines = format!("{}\n", article("a", "fine")).into_bytes();
        lines.extend(b"ab\xffc\n");
        assert_eq!(
            reasons(&parse_file_bytes(Path::new("f.jsonl"), &lines, Dublin)),
            ["line 2: not UTF-8 at column 3"]
        );
    }

    #[test]
    fn a_repeated_id_is_rejected_at_each_later_occurrence_even_across_batches() {
        let mut objects: Vec<String> = (0..BATCH_SIZE + 10)
            .map(|i| article(&format!("id-{i}"), "unique"))
            .collect();
        objects[2] = article("twice", "first");
        objects[BATCH_SIZE + 5] = article("twice", "second");
        objects.push(article("id-7", "again"));
        let total = objects.len();
        for (name, text, first, later) in [
            (
                "f.json",
                format!("[{}]", objects.join(",\n")),
                "article",
                "article",
            ),
            ("f.jsonl", objects.join("\n"), "line", "line"),
        ] {
            let items = parse(name, &text);
            assert_eq!(items.len(), total, "{name}");
            assert_eq!(
                reasons(&items),
                [
                    format!(
                        "{later} {} (id \"twice\"): duplicate id \"twice\": already given at {first} 3 of this file",
                        BATCH_SIZE + 6
                    ),
                    format!(
                        "{later} {total} (id \"id-7\"): duplicate id \"id-7\": already given at {first} 8 of this file"
                    ),
                ],
                "{name}"
            );
            let twice = items
                .iter()
                .flatten()
                .find(|c| c.article.id.as_str() == "twice")
                .expect("first occurrence accepted");
            assert_eq!(twice.article.headline, "first");
        }
    }

    /// Inputs that fail the import_json fuzz target's round-trip check on the
    /// code before the fix: each was accepted with a time that could not be
    /// written back as RFC 3339 (and a year-10000 one made publishing panic in
    /// httpdate).
    #[test]
    fn fuzz_reproducers_with_times_beyond_four_digit_years_are_rejected() {
        for bytes in [
            &br#"{"id":"a","url":"https://e.com/","headline":"h","published_at":"+10000-01-01T00:00:00"}"#[..],
            br#"{"id":"a","url":"https://e.com/","headline":"h","published_at":"-0001-01-01T00:00:00"}"#,
            br#"{"id":"a","url":"https://e.com/","headline":"h","published_at":"2025-01-01T00:00:00Z","updated_at":"9999-12-31T23:59:59-01:00"}"#,
        ] {
            let items = parse_file_bytes(Path::new("f.json"), bytes, Dublin);
            let reasons = reasons(&items);
            assert_eq!(items.len(), 1);
            assert_eq!(reasons.len(), 1, "accepted: {}", String::from_utf8_lossy(bytes));
            assert!(
                reasons[0].contains("outside the years 0000 to 9999"),
                "{reasons:?}"
            );
        }
    }

    #[test]
    fn an_id_first_given_in_an_invalid_article_still_counts_as_given() {
        let text = format!(
            "{}\n{}\n",
            r#"{"id": "x", "url": "ftp://e.com/x", "headline": "H", "published_at": "2025-01-01T10:00:00Z"}"#,
            article("x", "fixed")
        );
        let reasons = reasons(&parse("f.jsonl", &text));
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with("line 1 (id \"x\"): url:"),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[1],
            "line 2 (id \"x\"): duplicate id \"x\": already given at line 1 of this file"
        );
    }
}
