//! The output folder. Each document is written atomically — a temporary file
//! in the same folder, flushed to disk, then renamed over the old one — so a
//! static server or a reader never sees half a feed, and a crash leaves the
//! previous version.
//!
//! A running service also keeps its compressed variants beside each document
//! (`latest.rss.gz`, `latest.rss.br`, which nginx's `gzip_static` and
//! `brotli_static` serve as they are) and a manifest, `.feedsmith-manifest.json`,
//! naming the ETag and `Last-Modified` of everything published. At start-up the
//! service removes the temporary files a killed run left, reads the folder
//! back and serves the same bytes under the same ETags before it has reached
//! the store. A file the manifest does not vouch for (an admin's edit, a
//! damaged disk) is not served.
//!
//! Crash consistency comes from write-ahead ordering in [`save`]: the manifest
//! lists, per document, every version the file may hold. Before any document
//! is renamed, a manifest naming both the version on disk and the incoming one
//! is made durable; then the documents are renamed (each rename is atomic, so
//! a file is always one complete version or the other) and the folder synced;
//! only then does a manifest naming just the new versions replace it. So at
//! every instant each complete file matches an entry, with its own
//! `Last-Modified`, and a restart serves it. After a crash a feed's formats may
//! come from two consecutive builds until its rebuild; a compressed variant
//! that does not belong to the identity bytes found is compressed again. This
//! module never decides what to publish, and never touches files other than
//! the documents, their variants, the manifest and its own temporary files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::body::{Body, BodyStore, SENDFILE_MIN_BYTES};
use super::{Encoding, PublishedFeed, PublishedSet, Representation, Variant};
use crate::builder::{self, Document, ETag};
use crate::config::{FeedName, Format};

/// Why the output folder could not be prepared or written. What is served from
/// memory is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Creating or writing a file (or the folder itself) failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The output folder could not be listed.
    #[error("cannot read the output folder {path}: {source}")]
    List {
        /// The output folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking writer task panicked or was cancelled.
    #[error("writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One filesystem operation of a save, announced just before it happens so a
/// test can stop the sequence there, as a crash would. `save` passes a hook
/// that does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))] // the paths are read by the crash tests only
pub(crate) enum Step<'a> {
    CreateDir(&'a Path),
    CreateTemp(&'a Path),
    Write(&'a Path),
    Sync(&'a Path),
    Rename(&'a Path),
    Remove(&'a Path),
    SyncDir(&'a Path),
}

/// The file a feed's document is written to: `{dir}/{name}.{ext}`.
pub fn document_path(dir: &Path, feed: &FeedName, doc: &Document) -> PathBuf {
    feed_file(dir, feed.as_str(), doc.format)
}

/// Writes every document of a feed into `dir`, each atomically. Runs on a
/// blocking thread so the async runtime never waits on the disk.
pub async fn write_documents(
    dir: &Path,
    feed: &FeedName,
    docs: &[Document],
) -> Result<Vec<PathBuf>, PublishError> {
    let jobs: Vec<(PathBuf, bytes::Bytes)> = docs
        .iter()
        .map(|d| (document_path(dir, feed, d), d.body.clone()))
        .collect();
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| PublishError::Write {
            path: dir.clone(),
            source,
        })?;
        let mut written = Vec::with_capacity(jobs.len());
        for (path, body) in jobs {
            write_atomically(&path, &body).map_err(|source| PublishError::Write {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        sync_dir(&dir).map_err(|source| PublishError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(written)
    })
    .await?
}

/// The manifest's file name; it cannot clash with a feed's files, whose
/// names start with a letter or digit.
pub const MANIFEST: &str = ".feedsmith-manifest.json";

/// Bumped when the manifest's meaning changes. Version 1 named one version of
/// each document; version 2 names every version its file may hold (two while
/// a save is under way). Both are read; others are ignored.
const MANIFEST_VERSION: u32 = 2;

/// Feed name → file extension → the versions its file may hold, newest first.
type Documents = BTreeMap<String, BTreeMap<String, Vec<ManifestEntry>>>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    feeds: Documents,
}

/// Only the version, to pick the shape to read the rest with.
#[derive(Debug, Deserialize)]
struct ManifestVersion {
    version: u32,
}

/// What version 1 wrote: one entry per document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestV1 {
    feeds: BTreeMap<String, BTreeMap<String, ManifestEntry>>,
    #[allow(dead_code)] // checked through `ManifestVersion`
    version: u32,
}

/// One version of a document: the ETag of its identity bytes, its
/// `Last-Modified`, and the ETags of the compressed variants made from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    etag: String,
    last_modified: DateTime<Utc>,
    gzip: Option<String>,
    brotli: Option<String>,
}

impl ManifestEntry {
    fn of(doc: &Snapshot<'_>) -> Self {
        Self {
            etag: doc.rep.identity.etag.to_string(),
            last_modified: doc.rep.last_modified,
            gzip: doc.gzip.map(|v| v.etag.to_string()),
            brotli: doc.brotli.map(|v| v.etag.to_string()),
        }
    }
}

/// A document and the compressed variants it had when a save began: they
/// may be made while the save runs, and the manifest must name exactly the
/// files written.
struct Snapshot<'a> {
    rep: &'a Representation,
    gzip: Option<&'a Variant>,
    brotli: Option<&'a Variant>,
}

impl<'a> Snapshot<'a> {
    fn of(rep: &'a Representation) -> Self {
        Self {
            rep,
            gzip: rep.gzip(),
            brotli: rep.brotli(),
        }
    }
}

/// Appends the entries of `more` that `list` lacks, keeping `list`'s first.
fn merge(list: &mut Vec<ManifestEntry>, more: impl IntoIterator<Item = ManifestEntry>) {
    for entry in more {
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}

/// Reads the manifest in `dir`: `Ok(None)` if there is none, `Err` (saying
/// why) if it cannot be used.
fn read_manifest(dir: &Path) -> Result<Option<Documents>, String> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(bytes) => bytes,
    };
    let bad = |e: serde_json::Error| format!("{}: {e}", path.display());
    let version = serde_json::from_slice::<ManifestVersion>(&bytes)
        .map_err(bad)?
        .version;
    match version {
        MANIFEST_VERSION => Ok(Some(
            serde_json::from_slice::<Manifest>(&bytes)
                .map_err(bad)?
                .feeds,
        )),
        1 => {
            let old: ManifestV1 = serde_json::from_slice(&bytes).map_err(bad)?;
            Ok(Some(
                old.feeds
                    .into_iter()
                    .map(|(feed, docs)| {
                        let docs = docs.into_iter().map(|(ext, e)| (ext, vec![e])).collect();
                        (feed, docs)
                    })
                    .collect(),
            ))
        }
        other => Err(format!(
            "{}: manifest version {other} is not 1 or {MANIFEST_VERSION}",
            path.display()
        )),
    }
}

/// Replaces the manifest and makes the replacement durable before anything
/// that relies on it happens.
fn write_manifest(
    dir: &Path,
    feeds: &Documents,
    step: &mut dyn FnMut(Step<'_>),
) -> Result<(), PublishError> {
    let path = dir.join(MANIFEST);
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        feeds: feeds.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| PublishError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_atomically_with(&path, &[&json], step).map_err(|source| PublishError::Write {
        path: path.clone(),
        source,
    })?;
    step(Step::SyncDir(dir));
    sync_dir(dir).map_err(|source| PublishError::Write {
        path: dir.to_owned(),
        source,
    })
}

fn variant_path(identity: &Path, suffix: &str) -> PathBuf {
    let mut name = identity.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn feed_file(dir: &Path, feed: &str, format: Format) -> PathBuf {
    dir.join(format!("{feed}.{}", format.extension()))
}

/// Writes the documents of the `changed` feeds of `set`, every variant made
/// so far, and removes the files of the `removed` feeds, under a write-ahead
/// manifest (see the module's documentation), so a crash at any point leaves
/// every complete file servable. A file that already holds what it should
/// (the manifest names it alone, and its length agrees) is not written again.
pub async fn save(
    dir: &Path,
    set: Arc<PublishedSet>,
    changed: Vec<FeedName>,
    removed: Vec<FeedName>,
) -> Result<(), PublishError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || save_blocking(&dir, &set, &changed, &removed, &mut |_| {}))
        .await?
}

/// Above this many files a save makes them durable with one `syncfs(2)`
/// instead of one `fsync(2)` each (4.5 ms apiece on the project machine's
/// disk: 9 000 files would take 40 s; one syncfs for 300 files took 40 % of
/// their fsyncs).
const SYNCFS_ABOVE: usize = 32;

/// One file a save writes: its temporary file until it is renamed.
struct Pending<'a> {
    path: PathBuf,
    tmp: PathBuf,
    body: &'a Body,
    file: Option<std::fs::File>,
}

/// What happens to one file of a document, in order.
enum FileOp<'a> {
    Write(Pending<'a>),
    Remove(PathBuf),
}

/// [`save`] on the calling thread, calling `step` before every filesystem
/// operation.
pub(crate) fn save_blocking(
    dir: &Path,
    set: &PublishedSet,
    changed: &[FeedName],
    removed: &[FeedName],
    step: &mut dyn FnMut(Step<'_>),
) -> Result<(), PublishError> {
    let err = write_error;
    step(Step::CreateDir(dir));
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    // A manifest that cannot be read vouches for nothing; the files it named
    // were not servable anyway.
    let on_disk = read_manifest(dir).ok().flatten().unwrap_or_default();
    let written = |name: &FeedName| changed.contains(name);
    let snapshots: BTreeMap<(&FeedName, Format), Snapshot<'_>> = set
        .feeds
        .iter()
        .filter(|(name, _)| written(name))
        .flat_map(|(name, feed)| {
            feed.iter()
                .map(move |(format, rep)| ((name, *format), Snapshot::of(rep)))
        })
        .collect();

    // What the manifest says once this save is done: the new version of every
    // document written here; for the others, what is served plus whatever
    // the folder may still hold (a save that failed half-way).
    let mut after = Documents::new();
    for (name, feed) in &set.feeds {
        let docs = after.entry(name.to_string()).or_default();
        for (format, rep) in feed {
            let ext = format.extension();
            let entries = match snapshots.get(&(name, *format)) {
                Some(doc) => vec![ManifestEntry::of(doc)],
                None => {
                    let mut entries = vec![ManifestEntry::of(&Snapshot::of(rep))];
                    let old = on_disk.get(name.as_str()).and_then(|d| d.get(ext));
                    merge(&mut entries, old.into_iter().flatten().cloned());
                    entries
                }
            };
            docs.insert(ext.to_owned(), entries);
        }
    }
    // What it says while the files are replaced: both, newest first.
    let mut ahead = on_disk.clone();
    for (name, docs) in &after {
        for (ext, entries) in docs {
            let slot = ahead
                .entry(name.clone())
                .or_default()
                .entry(ext.clone())
                .or_default();
            let mut both = entries.clone();
            merge(&mut both, slot.drain(..));
            *slot = both;
        }
    }
    if ahead != on_disk {
        write_manifest(dir, &ahead, step)?;
    }

    // Which files change, in the order they are replaced: a document's
    // compressed variants before its identity file.
    let mut ops = Vec::new();
    for ((name, format), doc) in &snapshots {
        let path = feed_file(dir, name.as_str(), *format);
        let held = on_disk
            .get(name.as_str())
            .and_then(|d| d.get(format.extension()))
            .filter(|versions| versions.len() == 1)
            .map(|versions| &versions[0]);
        let holds = |path: &Path, etag: Option<&String>, v: &Variant| {
            etag.is_some_and(|e| e == v.etag.as_str())
                && std::fs::metadata(path).is_ok_and(|m| m.len() == v.body.len() as u64)
        };
        for (suffix, variant, on_file) in [
            (".gz", doc.gzip, held.and_then(|h| h.gzip.as_ref())),
            (".br", doc.brotli, held.and_then(|h| h.brotli.as_ref())),
        ] {
            let vpath = variant_path(&path, suffix);
            match variant {
                Some(v) if holds(&vpath, on_file, v) => {}
                Some(v) => ops.push(FileOp::Write(Pending::new(vpath, &v.body))),
                None => ops.push(FileOp::Remove(vpath)),
            }
        }
        let identity = &doc.rep.identity;
        if !holds(&path, held.map(|h| &h.etag), identity) {
            ops.push(FileOp::Write(Pending::new(path, &identity.body)));
        }
    }

    // Every temporary file written, then made durable together, then renamed.
    let result = write_then_rename(dir, &mut ops, step);
    if result.is_err() {
        for op in &ops {
            if let FileOp::Write(p) = op {
                let _ = std::fs::remove_file(&p.tmp);
            }
        }
    }
    result?;
    for name in changed {
        let Some(feed) = set.feeds.get(name) else {
            continue;
        };
        // A format the feed no longer offers leaves no stale file behind.
        for format in Format::ALL.into_iter().filter(|f| !feed.contains_key(f)) {
            remove_feed_format(dir, name.as_str(), format, step).map_err(err(dir))?;
        }
    }
    for name in removed {
        for format in Format::ALL {
            remove_feed_format(dir, name.as_str(), format, step).map_err(err(dir))?;
        }
    }
    // The renames must be on disk before the manifest stops vouching for the
    // versions they replaced.
    step(Step::SyncDir(dir));
    sync_dir(dir).map_err(err(dir))?;
    if after != ahead {
        write_manifest(dir, &after, step)?;
    }
    Ok(())
}

impl<'a> Pending<'a> {
    fn new(path: PathBuf, body: &'a Body) -> Self {
        Self {
            tmp: temp_path(&path),
            path,
            body,
            file: None,
        }
    }
}

fn write_then_rename(
    dir: &Path,
    ops: &mut [FileOp<'_>],
    step: &mut dyn FnMut(Step<'_>),
) -> Result<(), PublishError> {
    let err = write_error;
    let mut count = 0;
    for op in ops.iter_mut() {
        let FileOp::Write(p) = op else { continue };
        step(Step::CreateTemp(&p.tmp));
        let mut file = std::fs::File::create(&p.tmp).map_err(err(&p.tmp))?;
        step(Step::Write(&p.tmp));
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, &mut file);
        p.body.write_to(&mut out).map_err(err(&p.tmp))?;
        out.flush().map_err(err(&p.tmp))?;
        drop(out);
        p.file = Some(file);
        count += 1;
    }
    if count > SYNCFS_ABOVE {
        step(Step::Sync(dir));
        let folder = std::fs::File::open(dir).map_err(err(dir))?;
        rustix::fs::syncfs(&folder).map_err(|e| PublishError::Write {
            path: dir.to_owned(),
            source: e.into(),
        })?;
    } else {
        for op in ops.iter_mut() {
            let FileOp::Write(p) = op else { continue };
            if let Some(file) = &p.file {
                step(Step::Sync(&p.tmp));
                file.sync_all().map_err(err(&p.tmp))?;
            }
        }
    }
    for op in ops.iter_mut() {
        match op {
            FileOp::Write(p) => {
                p.file = None;
                step(Step::Rename(&p.path));
                std::fs::rename(&p.tmp, &p.path).map_err(err(&p.path))?;
            }
            FileOp::Remove(path) => remove_if_present(path, step).map_err(err(path))?,
        }
    }
    Ok(())
}

fn remove_feed_format(
    dir: &Path,
    feed: &str,
    format: Format,
    step: &mut dyn FnMut(Step<'_>),
) -> std::io::Result<()> {
    let path = feed_file(dir, feed, format);
    remove_if_present(&variant_path(&path, ".gz"), step)?;
    remove_if_present(&variant_path(&path, ".br"), step)?;
    remove_if_present(&path, step)
}

fn remove_if_present(path: &Path, step: &mut dyn FnMut(Step<'_>)) -> std::io::Result<()> {
    step(Step::Remove(path));
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What [`prepare`] did with the temporary files it found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TempCleanup {
    /// Left by a run that was killed mid-write: removed.
    pub removed: usize,
    /// Named after a process that is running (a `feedsmith build` writing into
    /// the same folder): left alone.
    pub in_use: usize,
    /// Could not be removed.
    pub failed: usize,
}

/// Readies the output folder at start-up, before anything is served from it:
/// creates it (large variants need it for their files before the first save),
/// and removes the temporary files a killed run left — only names
/// [`write_atomically`] makes for our own files, never anything else an admin
/// keeps there.
pub async fn prepare(dir: &Path) -> Result<TempCleanup, PublishError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || prepare_blocking(&dir)).await?
}

fn prepare_blocking(dir: &Path) -> Result<TempCleanup, PublishError> {
    std::fs::create_dir_all(dir).map_err(|source| PublishError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let list_err = |source| PublishError::List {
        path: dir.to_owned(),
        source,
    };
    let mut cleanup = TempCleanup::default();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(our_temp_pid) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| !t.is_file()) {
            continue;
        }
        if running_elsewhere(pid) {
            cleanup.in_use += 1;
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => cleanup.removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => cleanup.failed += 1,
        }
    }
    Ok(cleanup)
}

/// The process id in `name` if it is a temporary file [`write_atomically`]
/// makes for one of our own files (`.{file}.tmp-{pid}`), else `None`.
fn our_temp_pid(name: &str) -> Option<u32> {
    let (file, pid) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid = pid.parse().ok()?;
    is_our_file(file).then_some(pid)
}

/// Whether `file` is a name [`save`] or [`write_documents`] writes: the
/// manifest, or `{feed}.{ext}` with an optional `.gz` / `.br`.
fn is_our_file(file: &str) -> bool {
    if file == MANIFEST {
        return true;
    }
    let document = file
        .strip_suffix(".gz")
        .or_else(|| file.strip_suffix(".br"))
        .unwrap_or(file);
    document.rsplit_once('.').is_some_and(|(feed, ext)| {
        Format::ALL.iter().any(|f| f.extension() == ext) && feed.parse::<FeedName>().is_ok()
    })
}

/// Whether another live process may still be writing a temp file named after
/// `pid`. Our own id counts as dead: at start-up we have written nothing yet,
/// and in a container the previous run often had the same id.
fn running_elsewhere(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// A feed to read back from the output folder, with the caching policy its
/// documents are to be served with.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The feed.
    pub name: FeedName,
    /// Its configured formats; all must be read back or the feed is left out.
    pub formats: Vec<Format>,
    /// The `Cache-Control` value to serve its documents with.
    pub cache_control: String,
}

/// What [`load`] found: the feeds it can serve, and why it skipped others.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The feeds read back whole, every wanted format present and verified.
    pub feeds: BTreeMap<FeedName, PublishedFeed>,
    /// One message per file that was not used, naming it and saying why, for the
    /// service log.
    pub skipped: Vec<String>,
}

/// Reads back what an earlier run published into `dir` for the `wanted`
/// feeds. Only documents whose bytes match a version the manifest names come
/// back, each with that version's `Last-Modified`; a feed with any format
/// missing is left out whole, so it is never served half. Large bodies are
/// copied into `store` as they are checked, never whole onto the heap; a
/// compressed variant that is missing or does not match is left pending.
/// Uses every core: a restart of a thousand feeds reads a gigabyte.
pub async fn load(dir: &Path, wanted: Vec<Wanted>, store: Option<Arc<BodyStore>>) -> Loaded {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || load_blocking(&dir, &wanted, store.as_ref()))
        .await
        .unwrap_or_else(|e| Loaded {
            feeds: BTreeMap::new(),
            skipped: vec![format!("reading the output folder failed: {e}")],
        })
}

fn load_blocking(dir: &Path, wanted: &[Wanted], store: Option<&Arc<BodyStore>>) -> Loaded {
    let documents = match read_manifest(dir) {
        Ok(Some(documents)) => documents,
        Ok(None) => return Loaded::default(),
        Err(why) => {
            return Loaded {
                skipped: vec![why],
                ..Loaded::default()
            };
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(wanted.len().max(1));
    let per_thread = wanted.len().div_ceil(threads).max(1);
    let parts: Vec<Loaded> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .chunks(per_thread)
            .map(|part| scope.spawn(|| load_part(dir, &documents, part, store)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Loaded {
                    skipped: vec!["reading the output folder failed".into()],
                    ..Loaded::default()
                })
            })
            .collect()
    });
    let mut loaded = Loaded::default();
    for part in parts {
        loaded.feeds.extend(part.feeds);
        loaded.skipped.extend(part.skipped);
    }
    loaded
}

fn load_part(
    dir: &Path,
    documents: &Documents,
    wanted: &[Wanted],
    store: Option<&Arc<BodyStore>>,
) -> Loaded {
    let mut loaded = Loaded::default();
    'feeds: for want in wanted {
        let Some(entries) = documents.get(want.name.as_str()) else {
            continue;
        };
        let mut feed = PublishedFeed::new();
        for &format in &want.formats {
            let Some(versions) = entries.get(format.extension()) else {
                loaded
                    .skipped
                    .push(format!("{}: no {} document", want.name, format.extension()));
                continue 'feeds;
            };
            let path = feed_file(dir, want.name.as_str(), format);
            let (body, etag) = match read_body(&path, store) {
                Ok(read) => read,
                Err(e) => {
                    loaded.skipped.push(format!("{}: {e}", path.display()));
                    continue 'feeds;
                }
            };
            let Some(entry) = versions.iter().find(|v| v.etag == etag.as_str()) else {
                loaded.skipped.push(format!(
                    "{}: its bytes match no version the manifest names",
                    path.display()
                ));
                continue 'feeds;
            };
            // Only the variants of this very version; any other is made again.
            let variant = |suffix: &str, encoding: Encoding, wanted: &Option<String>| {
                let wanted = wanted.as_ref()?;
                let (body, etag) = read_body(&variant_path(&path, suffix), store).ok()?;
                (etag.as_str() == wanted).then(|| Variant::tagged(encoding, body, etag))
            };
            let gzip = variant(".gz", Encoding::Gzip, &entry.gzip);
            let brotli = variant(".br", Encoding::Brotli, &entry.brotli);
            let rep = Representation::from_variants(
                Variant::tagged(Encoding::Identity, body, etag),
                [gzip, brotli],
                builder::content_type(format),
                entry.last_modified,
                want.cache_control.clone(),
            );
            feed.insert(format, Arc::new(rep));
        }
        loaded.feeds.insert(want.name.clone(), feed);
    }
    loaded
}

/// Reads the file at `path` and its ETag in one pass; a large one goes
/// straight into `store` in chunks.
fn read_body(path: &Path, store: Option<&Arc<BodyStore>>) -> std::io::Result<(Body, ETag)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| std::io::Error::other("file too large"))?;
    let Some(store) = store.filter(|_| len >= SENDFILE_MIN_BYTES) else {
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes)?;
        let etag = ETag::of(&bytes);
        return Ok((Body::Memory(Bytes::from(bytes)), etag));
    };
    let mut region = store.reserve(len)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0; LOAD_CHUNK.min(len)];
    let mut at = 0_usize;
    while at < len {
        let n = (len - at).min(LOAD_CHUNK);
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        region.write_at(&buf[..n], at as u64)?;
        at += n;
    }
    // The file grew while it was read: not the version its length said.
    if file.read(&mut [0])? != 0 {
        return Err(std::io::Error::other("file changed while it was read"));
    }
    Ok((
        Body::Stored(Arc::new(region)),
        ETag::from_digest(hasher.digest128()),
    ))
}

/// Copy buffer for [`read_body`].
const LOAD_CHUNK: usize = 256 * 1024;

/// Temp file beside the target, fsync, rename over the target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, &[bytes], &mut |_| {})
}

/// [`write_atomically`] of a file whose bytes are `parts` one after the
/// other (written with vectored writes rather than first copied together),
/// calling `step` before each filesystem operation.
fn write_atomically_with(
    path: &Path,
    parts: &[&[u8]],
    step: &mut dyn FnMut(Step<'_>),
) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let mut attempt = || {
        step(Step::CreateTemp(&tmp));
        let mut f = std::fs::File::create(&tmp)?;
        step(Step::Write(&tmp));
        write_all_vectored(&mut f, parts)?;
        step(Step::Sync(&tmp));
        f.sync_all()?;
        step(Step::Rename(path));
        std::fs::rename(&tmp, path)
    };
    let result = attempt();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes every byte of `parts` in order, as few `writev` calls as the
/// kernel allows (`Write::write_all_vectored` is not stable yet).
fn write_all_vectored(f: &mut std::fs::File, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::{ErrorKind, IoSlice};
    /// Linux's `IOV_MAX`: `writev` refuses more slices than this.
    const MAX_SLICES: usize = 1024;
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    // Skips empty parts, so an empty `rest` means everything is written.
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        let upto = rest.len().min(MAX_SLICES);
        match f.write_vectored(&rest[..upto]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Turns an I/O error at `path` into the error a save reports.
pub(super) fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + use<> {
    let path = path.to_owned();
    move |source| PublishError::Write { path, source }
}

/// The temporary file a new version of `path` is written to. The start-up
/// cleanup recognises exactly this shape (`our_temp_pid`).
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()))
}

/// Makes the renames durable: on Linux a rename is only on disk once its folder is synced.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

    use super::*;
    use crate::publish::Variant;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("latest.rss");
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("latest.rss")]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("feed.rss");
        write_atomically(&path, b"good").expect("write");
        // A target that is a non-empty folder cannot be replaced by a rename.
        let blocked = dir.path().join("blocked.rss");
        std::fs::create_dir(&blocked).expect("dir");
        std::fs::write(blocked.join("x"), b"x").expect("file");
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"good");
        assert!(
            !dir.path()
                .join(".blocked.rss.tmp-".to_owned() + &std::process::id().to_string())
                .exists()
        );
    }

    fn name(s: &str) -> FeedName {
        s.parse().expect("feed name")
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A document of at least `len` bytes whose content depends on `seed`.
    fn doc(seed: &str, len: usize, modified: i64) -> Arc<Representation> {
        let mut text = format!("<doc seed=\"{seed}\">");
        let mut i = 0_u64;
        while text.len() < len {
            // Varied enough that large documents stay large once compressed.
            let noise = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seed.len() as u64);
            text.push_str(&format!("<item n=\"{i}\">{seed} {noise:x}</item>"));
            i += 1;
        }
        Arc::new(Representation::compressed_now(
            Bytes::from(text),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(modified, 0).expect("time"),
            "public, max-age=60".into(),
            None,
        ))
    }

    /// A feed's documents as the tests write them down.
    type Docs<'a> = &'a [(Format, &'a Arc<Representation>)];

    fn set(feeds: &[(&str, Docs<'_>)]) -> PublishedSet {
        PublishedSet {
            feeds: feeds
                .iter()
                .map(|(n, docs)| {
                    let feed = docs.iter().map(|(f, r)| (*f, Arc::clone(r))).collect();
                    (name(n), feed)
                })
                .collect(),
            ..PublishedSet::default()
        }
    }

    fn wanted(set: &PublishedSet) -> Vec<Wanted> {
        set.feeds
            .iter()
            .map(|(name, feed)| Wanted {
                name: name.clone(),
                formats: feed.keys().copied().collect(),
                cache_control: "public, max-age=60".into(),
            })
            .collect()
    }

    fn no_steps(_: Step<'_>) {}

    /// A save, then what the folder holds in place of a crash.
    struct Scenario {
        what: &'static str,
        /// Saved whole before the save under test; `None`: the folder does
        /// not even exist.
        before: Option<PublishedSet>,
        /// Rewrite the folder's manifest as version 1 wrote it (the first save
        /// after a deploy).
        before_v1: bool,
        after: PublishedSet,
        changed: Vec<FeedName>,
        removed: Vec<FeedName>,
    }

    /// Sentinel payload of the simulated crash.
    struct Crash;

    /// Runs the scenario's save, stopping it just before its `n`th filesystem
    /// step by unwinding out of the hook: no error path and no cleanup runs,
    /// as with a SIGKILL. `true` if the save finished first.
    fn save_crashing_at(n: usize, dir: &Path, s: &Scenario) -> bool {
        let mut steps = 0;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            save_blocking(dir, &s.after, &s.changed, &s.removed, &mut |_| {
                if steps == n {
                    resume_unwind(Box::new(Crash));
                }
                steps += 1;
            })
        }));
        match outcome {
            Ok(result) => {
                result.expect("save without a crash");
                true
            }
            Err(payload) => {
                assert!(payload.is::<Crash>(), "the save itself panicked");
                false
            }
        }
    }

    fn write_v1_manifest(dir: &Path) {
        let docs = read_manifest(dir).expect("manifest").expect("present");
        let feeds: BTreeMap<&String, BTreeMap<&String, &ManifestEntry>> = docs
            .iter()
            .map(|(feed, docs)| (feed, docs.iter().map(|(ext, v)| (ext, &v[0])).collect()))
            .collect();
        let json = serde_json::json!({ "version": 1, "feeds": feeds });
        std::fs::write(
            dir.join(MANIFEST),
            serde_json::to_vec_pretty(&json).expect("json"),
        )
        .expect("write v1 manifest");
    }

    /// The served document is exactly `expected`: same bytes, ETag of those
    /// bytes, same `Last-Modified`, and compressed variants of those bytes.
    fn assert_is(served: &Representation, expected: &Representation, at: &str) {
        assert!(
            served.identity.body == expected.identity.body,
            "{at}: bytes differ"
        );
        assert_eq!(
            served.identity.etag,
            ETag::of(&served.identity.body.read().expect("read")),
            "{at}: etag"
        );
        assert_eq!(served.last_modified, expected.last_modified, "{at}");
        // A variant the folder did not hold for this version is pending, and
        // made from the identity bytes: the same bytes as the original.
        for encoding in Encoding::COMPRESSED {
            if expected.variant(encoding).is_some() {
                served.compress(encoding, None).expect("compress");
            }
        }
        let tag = |v: Option<&Variant>| v.map(|v| ETag::of(&v.body.read().expect("read")));
        assert_eq!(tag(served.gzip()), tag(expected.gzip()), "{at}: gzip");
        assert_eq!(tag(served.brotli()), tag(expected.brotli()), "{at}: br");
        for v in served.variants() {
            assert_eq!(
                v.etag,
                ETag::of(&v.body.read().expect("read")),
                "{at}: {} tag",
                v.encoding.name()
            );
        }
    }

    /// For every N, crashes the save before step N and restarts: cleanup,
    /// then load. Returns how many crash points were tried and at how many
    /// some document was served in its new version while another was still
    /// in its old one (the window a manifest must vouch for both in).
    fn crash_everywhere(s: &Scenario) -> (usize, usize) {
        let template = tempfile::tempdir().expect("temp dir");
        if let Some(before) = &s.before {
            let all: Vec<FeedName> = before.feeds.keys().cloned().collect();
            save_blocking(template.path(), before, &all, &[], &mut no_steps).expect("before");
            if s.before_v1 {
                write_v1_manifest(template.path());
            }
        }
        let mut mixed = 0;
        for n in 0.. {
            let root = tempfile::tempdir().expect("temp dir");
            let dir = root.path().join("published");
            if s.before.is_some() {
                std::fs::create_dir(&dir).expect("dir");
                for file in names_in(template.path()) {
                    std::fs::copy(template.path().join(&file), dir.join(&file)).expect("copy");
                }
            }
            let finished = save_crashing_at(n, &dir, s);
            let at = format!("{}, crash before step {n}", s.what);

            // Start-up.
            prepare_blocking(&dir).expect("prepare");
            let files = names_in(&dir);
            assert!(
                files.iter().all(|f| our_temp_pid(f).is_none()),
                "{at}: temp files left: {files:?}"
            );
            let loaded = load_blocking(&dir, &wanted(&s.after), None);

            let (mut old_served, mut new_served) = (false, false);
            for (feed, docs) in &s.after.feeds {
                let before = s.before.as_ref().and_then(|b| b.feeds.get(feed));
                let mut complete = true;
                for (format, new) in docs {
                    let at = format!("{at}: {feed}.{}", format.extension());
                    let old = before.and_then(|b| b.get(format));
                    let Ok(bytes) = std::fs::read(feed_file(&dir, feed.as_str(), *format)) else {
                        complete = false;
                        continue;
                    };
                    let version = [Some(new), old]
                        .into_iter()
                        .flatten()
                        .find(|v| v.identity.body.read().expect("read")[..] == bytes[..]);
                    let version = version.unwrap_or_else(|| panic!("{at}: holds neither version"));
                    if let Some(served) = loaded.feeds.get(feed).and_then(|f| f.get(format)) {
                        assert_is(served, version, &at);
                        if Arc::ptr_eq(version, new) && old.is_none_or(|o| o != new) {
                            new_served = true;
                        } else if old.is_some_and(|o| Arc::ptr_eq(version, o) && o != new) {
                            old_served = true;
                        }
                    }
                }
                // Renames never open a gap: a document on disk before stays.
                if docs
                    .keys()
                    .all(|f| before.is_some_and(|b| b.contains_key(f)))
                {
                    assert!(complete, "{at}: {feed} lost a document");
                }
                assert_eq!(
                    loaded.feeds.contains_key(feed),
                    complete,
                    "{at}: {feed} complete on disk: {complete}; skipped: {:?}",
                    loaded.skipped
                );
            }
            if old_served && new_served {
                mixed += 1;
            }

            if finished {
                let docs = read_manifest(&dir).expect("manifest").expect("present");
                for (feed, feed_docs) in &docs {
                    for (ext, versions) in feed_docs {
                        assert_eq!(versions.len(), 1, "{at}: {feed}.{ext}: {versions:?}");
                    }
                }
                for feed in &s.removed {
                    assert!(
                        files.iter().all(|f| !f.starts_with(&format!("{feed}."))),
                        "{at}: files of removed {feed} left: {files:?}"
                    );
                    assert!(
                        !docs.contains_key(feed.as_str()),
                        "{at}: {feed} in manifest"
                    );
                }
                assert_eq!(loaded.feeds.len(), s.after.feeds.len(), "{at}");
                return (n, mixed);
            }

            // The rebuild after the restart publishes the new versions whole.
            let all: Vec<FeedName> = s.after.feeds.keys().cloned().collect();
            save_blocking(&dir, &s.after, &all, &s.removed, &mut no_steps).expect("resave");
            let again = load_blocking(&dir, &wanted(&s.after), None);
            for (feed, docs) in &s.after.feeds {
                for (format, new) in docs {
                    let served = again.feeds.get(feed).and_then(|f| f.get(format));
                    let served = served.unwrap_or_else(|| panic!("{at}: {feed} after resave"));
                    assert_is(served, new, &format!("{at}: resaved {feed}"));
                }
            }
        }
        unreachable!("the loop returns once a save finishes")
    }

    #[test]
    fn a_crash_at_any_step_of_a_first_save_serves_every_complete_feed() {
        let (rss, atom, json) = (
            doc("a1", 20_000, 100),
            doc("a1", 2_000, 100),
            doc("a1", 300, 100),
        );
        let c = doc("c1", 3_000, 50);
        let s = Scenario {
            what: "first save",
            before: None,
            before_v1: false,
            after: set(&[
                (
                    "a",
                    &[
                        (Format::Rss, &rss),
                        (Format::Atom, &atom),
                        (Format::Json, &json),
                    ],
                ),
                ("c", &[(Format::Rss, &c)]),
            ]),
            changed: vec![name("a"), name("c")],
            removed: vec![],
        };
        let (steps, _) = crash_everywhere(&s);
        assert!(steps > 20, "only {steps} steps");
    }

    /// Feed `a` changes two formats (large, with variants) and keeps one;
    /// `b` shrinks below the compression threshold and drops a format; `c`
    /// is untouched; `e` is new.
    fn change_scenario(before_v1: bool) -> Scenario {
        let a_rss = doc("a1", 20_000, 100);
        let a_atom = doc("a1", 2_000, 100);
        let a_json = doc("a1", 300, 100);
        let b_rss = doc("b1", 3_000, 80);
        let b_atom = doc("b1", 3_001, 80);
        let c_rss = doc("c1", 3_000, 50);
        let before = set(&[
            (
                "a",
                &[
                    (Format::Rss, &a_rss),
                    (Format::Atom, &a_atom),
                    (Format::Json, &a_json),
                ],
            ),
            ("b", &[(Format::Rss, &b_rss), (Format::Atom, &b_atom)]),
            ("c", &[(Format::Rss, &c_rss)]),
        ]);
        let after = set(&[
            (
                "a",
                &[
                    (Format::Rss, &doc("a2", 21_000, 200)),
                    (Format::Atom, &doc("a2", 2_100, 200)),
                    (Format::Json, &a_json),
                ],
            ),
            ("b", &[(Format::Rss, &doc("b2", 200, 90))]),
            ("c", &[(Format::Rss, &c_rss)]),
            (
                "e",
                &[
                    (Format::Rss, &doc("e1", 2_000, 70)),
                    (Format::Json, &doc("e1", 100, 70)),
                ],
            ),
        ]);
        Scenario {
            what: if before_v1 {
                "change over a version 1 manifest"
            } else {
                "change"
            },
            before: Some(before),
            before_v1,
            after,
            changed: vec![name("a"), name("b"), name("e")],
            removed: vec![],
        }
    }

    #[test]
    fn a_crash_at_any_step_of_a_change_serves_every_document_old_or_new() {
        let (steps, mixed) = crash_everywhere(&change_scenario(false));
        assert!(steps > 40, "only {steps} steps");
        assert!(mixed > 0, "no crash point fell between two renames");
    }

    #[test]
    fn a_crash_during_the_first_save_over_a_version_1_manifest_serves_every_document() {
        let (_, mixed) = crash_everywhere(&change_scenario(true));
        assert!(mixed > 0, "no crash point fell between two renames");
    }

    #[test]
    fn a_crash_at_any_step_of_a_removal_keeps_the_other_feeds() {
        let a = doc("a1", 20_000, 100);
        let b = doc("b1", 3_000, 80);
        let c = doc("c1", 300, 50);
        let before = set(&[
            ("a", &[(Format::Rss, &a)]),
            ("b", &[(Format::Rss, &b), (Format::Atom, &b)]),
            ("c", &[(Format::Json, &c)]),
        ]);
        let s = Scenario {
            what: "removal",
            before: Some(before),
            before_v1: false,
            after: set(&[("a", &[(Format::Rss, &a)]), ("c", &[(Format::Json, &c)])]),
            changed: vec![],
            removed: vec![name("b")],
        };
        let (steps, _) = crash_everywhere(&s);
        assert!(steps > 6, "only {steps} steps");
    }

    #[test]
    fn a_restart_reads_large_bodies_into_the_store_with_their_tags() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rss = doc("a1", 40_000, 100);
        let json = doc("a1", 300, 100);
        let before = set(&[("a", &[(Format::Rss, &rss), (Format::Json, &json)])]);
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut no_steps).expect("save");
        let store = BodyStore::create(dir.path()).expect("store");
        let loaded = load_blocking(dir.path(), &wanted(&before), Some(&store));
        let feed = loaded.feeds.get("a").expect("served");
        assert_is(&feed[&Format::Rss], &rss, "rss");
        assert_is(&feed[&Format::Json], &json, "json");
        assert!(feed[&Format::Rss].identity.body.is_stored(), "off the heap");
        assert!(!feed[&Format::Json].identity.body.is_stored(), "small");
        assert!(store.usage().used_bytes >= 40_000);
    }

    #[test]
    fn a_save_of_what_the_folder_holds_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rss = doc("a1", 20_000, 100);
        let before = set(&[("a", &[(Format::Rss, &rss)])]);
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut no_steps).expect("save");
        let mut writes = Vec::new();
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut |step| {
            if let Step::CreateTemp(p) = step {
                writes.push(p.to_owned());
            }
        })
        .expect("again");
        assert!(writes.is_empty(), "rewrote {writes:?}");
    }

    #[test]
    fn a_document_saved_before_its_variants_exist_gets_them_later_and_no_stale_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = doc("a1", 20_000, 100);
        save_blocking(
            dir.path(),
            &set(&[("a", &[(Format::Rss, &old)])]),
            &[name("a")],
            &[],
            &mut no_steps,
        )
        .expect("old");
        assert!(dir.path().join("a.rss.gz").exists());
        let text = "<doc>new</doc>".repeat(2_000);
        let new = Arc::new(Representation::new(
            Bytes::from(text.clone()),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(200, 0).expect("time"),
            "public, max-age=60".into(),
            None,
        ));
        let after = set(&[("a", &[(Format::Rss, &new)])]);
        save_blocking(dir.path(), &after, &[name("a")], &[], &mut no_steps).expect("new");
        assert_eq!(
            std::fs::read(dir.path().join("a.rss")).expect("read"),
            text.as_bytes()
        );
        assert!(
            !dir.path().join("a.rss.gz").exists() && !dir.path().join("a.rss.br").exists(),
            "the old version's variants are gone: {:?}",
            names_in(dir.path())
        );
        let loaded = load_blocking(dir.path(), &wanted(&after), None);
        assert_is(&loaded.feeds["a"][&Format::Rss], &new, "identity only");

        for encoding in Encoding::COMPRESSED {
            new.compress(encoding, None).expect("compress");
        }
        let mut written = Vec::new();
        save_blocking(dir.path(), &after, &[name("a")], &[], &mut |step| {
            if let Step::Rename(p) = step {
                written.push(p.file_name().expect("name").to_string_lossy().into_owned());
            }
        })
        .expect("variants");
        written.retain(|f| f != MANIFEST);
        written.sort();
        assert_eq!(written, ["a.rss.br", "a.rss.gz"], "only the variants");
        let loaded = load_blocking(dir.path(), &wanted(&after), None);
        assert_is(&loaded.feeds["a"][&Format::Rss], &new, "with variants");
    }

    #[test]
    fn a_version_1_manifest_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rss = doc("a1", 20_000, 100);
        let before = set(&[("a", &[(Format::Rss, &rss)])]);
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut no_steps).expect("save");
        write_v1_manifest(dir.path());
        let text = std::fs::read_to_string(dir.path().join(MANIFEST)).expect("read");
        assert!(text.contains("\"version\": 1"), "{text}");
        let loaded = load_blocking(dir.path(), &wanted(&before), None);
        let served = loaded.feeds.get("a").and_then(|f| f.get(&Format::Rss));
        assert_is(served.expect("served"), &rss, "v1");
    }

    #[test]
    fn an_unknown_manifest_version_serves_nothing_and_says_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rss = doc("a1", 2_000, 100);
        let before = set(&[("a", &[(Format::Rss, &rss)])]);
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut no_steps).expect("save");
        std::fs::write(dir.path().join(MANIFEST), br#"{"version": 9, "feeds": {}}"#)
            .expect("write");
        let loaded = load_blocking(dir.path(), &wanted(&before), None);
        assert!(loaded.feeds.is_empty());
        assert!(
            loaded.skipped[0].contains("manifest version 9"),
            "{:?}",
            loaded.skipped
        );
    }

    #[test]
    fn an_edited_document_is_not_served() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rss = doc("a1", 2_000, 100);
        let before = set(&[("a", &[(Format::Rss, &rss)])]);
        save_blocking(dir.path(), &before, &[name("a")], &[], &mut no_steps).expect("save");
        std::fs::write(dir.path().join("a.rss"), b"<rss>edited</rss>").expect("edit");
        let loaded = load_blocking(dir.path(), &wanted(&before), None);
        assert!(loaded.feeds.is_empty());
        assert!(loaded.skipped[0].contains("a.rss"), "{:?}", loaded.skipped);
    }

    #[test]
    fn start_up_removes_only_our_stale_temp_files() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("not-yet").join("published");
        // Never started before: the folder is made for the variants' files.
        assert_eq!(
            prepare_blocking(&dir).expect("prepare"),
            TempCleanup::default()
        );
        assert!(dir.is_dir());

        let me = std::process::id();
        // Beyond any pid_max, so no process has it.
        let dead = u32::MAX;
        let stale = [
            format!(".latest.rss.tmp-{me}"),
            format!(".latest.rss.gz.tmp-{dead}"),
            format!(".world-2.json.br.tmp-{dead}"),
            format!("..feedsmith-manifest.json.tmp-{me}"),
        ];
        let kept = [
            "latest.rss".to_owned(),
            ".notes.tmp-12".to_owned(),
            format!(".latest.rss.tmp-{me}x"),
            ".latest.rss.tmp-".to_owned(),
            format!(".latest.rss.tmp-+{dead}"),
            format!(".Latest.rss.tmp-{dead}"),
            format!(".latest.html.tmp-{dead}"),
            format!("latest.rss.tmp-{dead}"),
            format!(".latest.rss.zip.tmp-{dead}"),
        ];
        for f in stale.iter().chain(&kept) {
            std::fs::write(dir.join(f), b"x").expect("write");
        }
        let cleanup = prepare_blocking(&dir).expect("prepare");
        assert_eq!(cleanup.removed, stale.len(), "{cleanup:?}");
        let mut expected = kept.to_vec();
        expected.sort();
        assert_eq!(names_in(&dir), expected);
    }

    #[test]
    fn start_up_leaves_the_temp_files_of_a_running_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let busy = format!(".latest.rss.tmp-{}", child.id());
        std::fs::write(dir.path().join(&busy), b"x").expect("write");
        let cleanup = prepare_blocking(dir.path());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            cleanup.expect("prepare"),
            TempCleanup {
                removed: 0,
                in_use: 1,
                failed: 0
            }
        );
        assert_eq!(names_in(dir.path()), vec![busy]);
    }
}
