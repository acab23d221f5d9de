//! The output folder. Each document is written atomically — a temporary file
//! in the same folder, flushed to disk, then renamed over the old one — so a
//! static server or a reader never sees half a feed, and a crash leaves the
//! previous version.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::builder::Document;
use crate::config::FeedName;

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
