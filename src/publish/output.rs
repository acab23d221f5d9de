//! The output folder. Each document is written atomically — a temporary file
//! in the same folder, flushed to disk, then renamed over the old one — so a
//! static server or a reader never sees half a feed, and a crash leaves the
//! previous version.
//!
//! A running service also keeps its compressed variants beside each document
//! (`latest.rss.gz`, `latest.rss.br`, which nginx's `gzip_static` and
//! `brotli_static` serve as they are) and a manifest, `.feedsmith-manifest.json`,
//! naming the ETag and `Last-Modified` of everything published. At start-up the
//! service reads the folder back and serves the same bytes under the same ETags
//! before it has reached the store. A file whose hash does not match the
//! manifest (a crash between two renames, an admin's edit) is not served.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{PublishedFeed, PublishedSet, Representation};
use crate::builder::{self, Document, ETag};
use crate::config::{FeedName, Format};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The file a feed's document is written to: `{dir}/{name}.{ext}`.
pub fn document_path(dir: &Path, feed: &FeedName, doc: &Document) -> PathBuf {
    dir.join(format!("{feed}.{}", doc.format.extension()))
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

/// Bumped when the manifest's meaning changes; other versions are ignored.
const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    /// Feed name → file extension → document.
    feeds: BTreeMap<String, BTreeMap<String, ManifestEntry>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    etag: String,
    last_modified: DateTime<Utc>,
    gzip: Option<String>,
    brotli: Option<String>,
}

fn variant_path(identity: &Path, suffix: &str) -> PathBuf {
    let mut name = identity.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn feed_file(dir: &Path, feed: &str, format: Format) -> PathBuf {
    dir.join(format!("{feed}.{}", format.extension()))
}

/// Writes the documents of the `changed` feeds of `set`, every variant, then
/// removes the files of the `removed` feeds, then replaces the manifest — in
/// that order, so the manifest never names bytes that are not on disk.
pub async fn save(
    dir: &Path,
    set: Arc<PublishedSet>,
    changed: Vec<FeedName>,
    removed: Vec<FeedName>,
) -> Result<(), PublishError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || save_blocking(&dir, &set, &changed, &removed)).await?
}

fn save_blocking(
    dir: &Path,
    set: &PublishedSet,
    changed: &[FeedName],
    removed: &[FeedName],
) -> Result<(), PublishError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| PublishError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    for name in changed {
        let Some(feed) = set.feeds.get(name) else {
            continue;
        };
        for (format, rep) in feed {
            let path = feed_file(dir, name.as_str(), *format);
            for (suffix, variant) in [(".gz", &rep.gzip), (".br", &rep.brotli)] {
                let vpath = variant_path(&path, suffix);
                match variant {
                    Some(v) => write_atomically(&vpath, &v.body).map_err(err(&vpath))?,
                    None => remove_if_present(&vpath).map_err(err(&vpath))?,
                }
            }
            write_atomically(&path, &rep.identity.body).map_err(err(&path))?;
        }
        // A format the feed no longer offers leaves no stale file behind.
        for format in Format::ALL.into_iter().filter(|f| !feed.contains_key(f)) {
            remove_feed_format(dir, name.as_str(), format).map_err(err(dir))?;
        }
    }
    for name in removed {
        for format in Format::ALL {
            remove_feed_format(dir, name.as_str(), format).map_err(err(dir))?;
        }
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        feeds: set
            .feeds
            .iter()
            .map(|(name, feed)| {
                let docs = feed
                    .iter()
                    .map(|(format, rep)| {
                        (
                            format.extension().to_owned(),
                            ManifestEntry {
                                etag: rep.identity.etag.to_string(),
                                last_modified: rep.last_modified,
                                gzip: rep.gzip.as_ref().map(|v| v.etag.to_string()),
                                brotli: rep.brotli.as_ref().map(|v| v.etag.to_string()),
                            },
                        )
                    })
                    .collect();
                (name.to_string(), docs)
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let path = dir.join(MANIFEST);
    write_atomically(&path, &json).map_err(err(&path))?;
    sync_dir(dir).map_err(err(dir))
}

fn remove_feed_format(dir: &Path, feed: &str, format: Format) -> std::io::Result<()> {
    let path = feed_file(dir, feed, format);
    remove_if_present(&variant_path(&path, ".gz"))?;
    remove_if_present(&variant_path(&path, ".br"))?;
    remove_if_present(&path)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A feed to read back from the output folder, with the caching policy its
/// documents are to be served with.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: FeedName,
    pub formats: Vec<Format>,
    pub cache_control: String,
}

/// What [`load`] found: the feeds it can serve, and why it skipped others.
#[derive(Debug, Default)]
pub struct Loaded {
    pub feeds: BTreeMap<FeedName, PublishedFeed>,
    pub skipped: Vec<String>,
}

/// Reads back what an earlier run published into `dir` for the `wanted`
/// feeds. Only documents whose bytes match the manifest come back; a feed with
/// any format missing is left out whole, so it is never served half old.
pub async fn load(dir: &Path, wanted: Vec<Wanted>) -> Loaded {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || load_blocking(&dir, &wanted))
        .await
        .unwrap_or_else(|e| Loaded {
            feeds: BTreeMap::new(),
            skipped: vec![format!("reading the output folder failed: {e}")],
        })
}

fn load_blocking(dir: &Path, wanted: &[Wanted]) -> Loaded {
    let mut loaded = Loaded::default();
    let path = dir.join(MANIFEST);
    let manifest: Manifest = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return loaded,
        Err(e) => {
            loaded.skipped.push(format!("{}: {e}", path.display()));
            return loaded;
        }
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(
                m @ Manifest {
                    version: MANIFEST_VERSION,
                    ..
                },
            ) => m,
            Ok(m) => {
                loaded.skipped.push(format!(
                    "{}: manifest version {} is not {MANIFEST_VERSION}",
                    path.display(),
                    m.version
                ));
                return loaded;
            }
            Err(e) => {
                loaded.skipped.push(format!("{}: {e}", path.display()));
                return loaded;
            }
        },
    };
    'feeds: for want in wanted {
        let Some(entries) = manifest.feeds.get(want.name.as_str()) else {
            continue;
        };
        let mut feed = PublishedFeed::new();
        for &format in &want.formats {
            let Some(entry) = entries.get(format.extension()) else {
                loaded
                    .skipped
                    .push(format!("{}: no {} document", want.name, format.extension()));
                continue 'feeds;
            };
            let path = feed_file(dir, want.name.as_str(), format);
            let body = match read_matching(&path, &entry.etag) {
                Ok(body) => body,
                Err(why) => {
                    loaded.skipped.push(why);
                    continue 'feeds;
                }
            };
            // A compressed copy that does not match is made again, not refused.
            let gzip = entry
                .gzip
                .as_ref()
                .and_then(|etag| read_matching(&variant_path(&path, ".gz"), etag).ok());
            let brotli = entry
                .brotli
                .as_ref()
                .and_then(|etag| read_matching(&variant_path(&path, ".br"), etag).ok());
            let mut rep = Representation::with_compressed(
                body,
                builder::content_type(format),
                entry.last_modified,
                want.cache_control.clone(),
                gzip,
                brotli,
            );
            // Without a file the variant is served by copying: slower, still right.
            let _ = rep.attach_files(dir);
            feed.insert(format, Arc::new(rep));
        }
        loaded.feeds.insert(want.name.clone(), feed);
    }
    loaded
}

fn read_matching(path: &Path, etag: &str) -> Result<Bytes, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if ETag::of(&bytes).as_str() == etag {
        Ok(Bytes::from(bytes))
    } else {
        Err(format!(
            "{}: its bytes do not match the manifest's etag {etag}",
            path.display()
        ))
    }
}

/// Temp file beside the target, fsync, rename over the target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes the renames durable: on Linux a rename is only on disk once its folder is synced.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
