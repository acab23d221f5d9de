//! The output folder's writer: one task that brings the folder up to date
//! with what is being served, behind publication and never in front of it.
//!
//! Serving never waits for the disk. The scheduler swaps a new set in and
//! hands the writer the names of the feeds that changed; the compressor names
//! a feed when its variants are made. Requests that arrive while a save runs
//! are merged, and the next save writes the newest version of every feed
//! named since (read from the [`Publisher`] at that moment), so a burst of
//! builds costs one save and a slow disk costs staleness on disk only — never
//! a later write's publication. A save that fails is retried with back-off,
//! keeping its feeds. What is durable when is in `output`'s documentation.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{PublishError, Publisher, save};
use crate::config::FeedName;

/// Told the outcome of every save (for `/healthz`).
pub type Report = Box<dyn Fn(Result<(), &PublishError>) + Send + Sync>;

const RETRY_MIN: Duration = Duration::from_secs(1);
/// Saves for new variants alone are at least this far apart.
const VARIANTS_EVERY: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

enum Request {
    /// These feeds changed (or went) in what is served; write them to `dir`.
    Save {
        dir: PathBuf,
        changed: Vec<FeedName>,
        removed: Vec<FeedName>,
    },
    /// A feed's compressed variants were made: write them where the folder is.
    Variants(FeedName),
    /// Answer once everything asked before is on disk (or failed).
    Flush(oneshot::Sender<()>),
}

/// What is waiting to be written.
#[derive(Default)]
struct Batch {
    dir: Option<PathBuf>,
    changed: BTreeSet<FeedName>,
    removed: BTreeSet<FeedName>,
    flushes: Vec<oneshot::Sender<()>>,
    /// Whether a published change (not only new variants) is waiting, or a
    /// caller waits on a flush.
    urgent: bool,
}

impl Batch {
    fn add(&mut self, request: Request) {
        match request {
            Request::Save {
                dir,
                changed,
                removed,
            } => {
                self.urgent = true;
                self.dir = Some(dir);
                for name in changed {
                    self.removed.remove(&name);
                    self.changed.insert(name);
                }
                for name in removed {
                    self.changed.remove(&name);
                    self.removed.insert(name);
                }
            }
            Request::Variants(name) => {
                // Before the first save there is nothing on disk to complete:
                // the first save writes the variants made by then.
                if self.dir.is_some() && !self.removed.contains(&name) {
                    self.changed.insert(name);
                }
            }
            Request::Flush(tx) => {
                self.urgent = true;
                self.flushes.push(tx);
            }
        }
    }

    fn has_work(&self) -> bool {
        !self.changed.is_empty() || !self.removed.is_empty()
    }
}

/// The handle to the writer task; cheap to clone. The task ends when every
/// handle is dropped and its last save is done.
#[derive(Debug, Clone)]
pub struct OutputWriter {
    tx: mpsc::UnboundedSender<Request>,
}

impl OutputWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(publisher: Arc<Publisher>, report: Report) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, publisher, report));
        Self { tx }
    }

    /// Writes the `changed` feeds as now served into `dir` and removes the
    /// `removed` ones, soon. Returns at once.
    pub fn save(&self, dir: PathBuf, changed: Vec<FeedName>, removed: Vec<FeedName>) {
        let _ = self.tx.send(Request::Save {
            dir,
            changed,
            removed,
        });
    }

    /// `feed` has new compressed variants to write. Callable from any thread.
    pub fn variants_ready(&self, feed: &FeedName) {
        let _ = self.tx.send(Request::Variants(feed.clone()));
    }

    /// Waits until everything asked so far was written (or its save failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Request>, publisher: Arc<Publisher>, report: Report) {
    let mut batch = Batch::default();
    let mut retry = RETRY_MIN;
    let now = tokio::time::Instant::now();
    let mut last_save = now.checked_sub(VARIANTS_EVERY).unwrap_or(now);
    loop {
        if !batch.has_work() {
            for tx in batch.flushes.drain(..) {
                let _ = tx.send(());
            }
            match rx.recv().await {
                Some(request) => batch.add(request),
                None => return,
            }
        }
        // Everything that arrived meanwhile goes into the same save.
        while let Ok(request) = rx.try_recv() {
            batch.add(request);
        }
        // Variants alone are not worth a save each (after a cold start they
        // arrive by the thousand): gather them for a while, unless a
        // published change comes in.
        if !batch.urgent {
            let until = last_save + VARIANTS_EVERY;
            while !batch.urgent {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(request)) => batch.add(request),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let (Some(dir), true) = (batch.dir.clone(), batch.has_work()) else {
            continue;
        };
        let changed: Vec<FeedName> = std::mem::take(&mut batch.changed).into_iter().collect();
        let removed: Vec<FeedName> = std::mem::take(&mut batch.removed).into_iter().collect();
        let flushes = std::mem::take(&mut batch.flushes);
        batch.urgent = false;
        last_save = tokio::time::Instant::now();
        match save(&dir, publisher.snapshot(), changed.clone(), removed.clone()).await {
            Ok(()) => {
                report(Ok(()));
                retry = RETRY_MIN;
                for tx in flushes {
                    let _ = tx.send(());
                }
            }
            Err(e) => {
                report(Err(&e));
                // Flushes are answered: a caller waiting must not hang on a
                // broken disk. The feeds are kept for the next attempt.
                for tx in flushes {
                    let _ = tx.send(());
                }
                for name in changed {
                    if !batch.removed.contains(&name) {
                        batch.changed.insert(name);
                    }
                }
                for name in removed {
                    if !batch.changed.contains(&name) {
                        batch.removed.insert(name);
                    }
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{PublishedSet, Representation};
    use bytes::Bytes;
    use chrono::DateTime;
    use std::sync::Mutex;

    fn feed_set(names: &[(&str, &str)]) -> PublishedSet {
        let mut set = PublishedSet::default();
        for (name, text) in names {
            let rep = Representation::new(
                Bytes::from(text.repeat(100)),
                "application/rss+xml; charset=utf-8",
                DateTime::from_timestamp(0, 0).expect("time"),
                "public".into(),
                None,
            );
            set.feeds.insert(
                name.parse().expect("name"),
                [(crate::config::Format::Rss, Arc::new(rep))].into(),
            );
        }
        set
    }

    #[tokio::test]
    async fn saves_are_merged_and_write_what_is_served_at_that_moment() {
        let dir = tempfile::tempdir().expect("dir");
        let publisher = Arc::new(Publisher::new(feed_set(&[("a", "<a1/>"), ("b", "<b1/>")])));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let seen = outcomes.clone();
        let writer = OutputWriter::start(
            publisher.clone(),
            Box::new(move |r| seen.lock().expect("seen").push(r.is_ok())),
        );
        let names = |n: &[&str]| n.iter().map(|n| n.parse().expect("name")).collect();
        writer.save(dir.path().to_owned(), names(&["a"]), vec![]);
        writer.save(dir.path().to_owned(), names(&["b"]), vec![]);
        writer.flush().await;
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect("read");
        assert_eq!(read("a.rss"), "<a1/>".repeat(100));
        assert_eq!(read("b.rss"), "<b1/>".repeat(100));

        // A newer version published before the writer gets to it is what lands.
        publisher.publish(feed_set(&[("a", "<a2/>")]));
        writer.save(dir.path().to_owned(), names(&["a"]), names(&["b"]));
        writer.flush().await;
        assert_eq!(read("a.rss"), "<a2/>".repeat(100));
        assert!(!dir.path().join("b.rss").exists(), "removed feed's file");
        let outcomes = outcomes.lock().expect("outcomes");
        assert!(
            !outcomes.is_empty() && outcomes.iter().all(|ok| *ok),
            "{outcomes:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_save_is_reported_and_flush_does_not_hang() {
        let root = tempfile::tempdir().expect("dir");
        // A file where the folder should be: every save fails.
        let dir = root.path().join("blocked");
        std::fs::write(&dir, b"x").expect("file");
        let publisher = Arc::new(Publisher::new(feed_set(&[("a", "<a1/>")])));
        let failures = Arc::new(Mutex::new(0));
        let seen = failures.clone();
        let writer = OutputWriter::start(
            publisher,
            Box::new(move |r| {
                if r.is_err() {
                    *seen.lock().expect("seen") += 1;
                }
            }),
        );
        writer.save(dir, vec!["a".parse().expect("name")], vec![]);
        tokio::time::timeout(Duration::from_secs(10), writer.flush())
            .await
            .expect("flush answered");
        assert!(*failures.lock().expect("failures") >= 1);
    }
}
