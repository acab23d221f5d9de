//! Background compression: makes the gzip and brotli variants of published
//! documents after they are already being served.
//!
//! A bounded pool of threads (one per core) at a lowered priority works
//! through a queue; the kernel gives builds and requests the CPU first, so a
//! backlog of brotli after a cold start never delays a write being served.
//! All pending gzip comes before any brotli: every client takes gzip, and it
//! is three times cheaper. A job holds its document weakly: if a newer build
//! replaced it before its turn, the work is skipped. Each time a variant is
//! made, the `done` callback names its feed so the output folder can get the
//! new file. This module never decides what is published.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use tracing::warn;

use super::Representation;
use super::body::BodyStore;
use crate::config::FeedName;

/// Niceness of the compression threads: well below builds (0), above idle.
const NICENESS: i32 = 10;

/// Called with a document's feed each time one of its variants is made.
pub type Done = Box<dyn Fn(&FeedName) + Send + Sync>;

struct Job {
    rep: Weak<Representation>,
    feed: Option<FeedName>,
}

#[derive(Default)]
struct Queue {
    gzip: VecDeque<Job>,
    brotli: VecDeque<Job>,
    /// Jobs taken and not yet finished.
    running: usize,
    stopped: bool,
}

impl Queue {
    fn next(&mut self) -> Option<(Job, super::Encoding)> {
        if let Some(job) = self.gzip.pop_front() {
            return Some((job, super::Encoding::Gzip));
        }
        self.brotli
            .pop_front()
            .map(|job| (job, super::Encoding::Brotli))
    }

    /// Queues `job` for its next variant, `encoding`.
    fn push(&mut self, encoding: super::Encoding, job: Job) {
        match encoding {
            super::Encoding::Brotli => self.brotli.push_back(job),
            _ => self.gzip.push_back(job),
        }
    }

    fn is_idle(&self) -> bool {
        self.gzip.is_empty() && self.brotli.is_empty() && self.running == 0
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool stops.
    work: Condvar,
    /// Signalled when the queue becomes idle.
    idle: Condvar,
    store: Option<Arc<BodyStore>>,
    done: Done,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every step leaves the queue consistent; a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes one variant of `job`, queueing the next one it needs.
    fn run(&self, job: Job, encoding: super::Encoding) {
        let Some(rep) = job.rep.upgrade() else {
            return; // replaced before its turn
        };
        if let Err(e) = rep.compress(encoding, self.store.as_ref()) {
            // The identity bytes could not be read back: the document is
            // served identity-only, which is always correct.
            warn!(feed = ?job.feed.as_ref().map(FeedName::as_str), encoding = encoding.name(),
                error = %e, "cannot compress a document");
            return;
        }
        let next = rep.pending().next();
        drop(rep);
        if let Some(feed) = &job.feed {
            (self.done)(feed);
        }
        if let Some(encoding) = next {
            self.queue().push(encoding, job);
            self.work.notify_one();
        }
    }
}

/// The pool. Dropping it stops its threads after their current job.
pub struct Compressor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

impl Compressor {
    /// A pool of `threads` threads keeping large variants in `store`. With
    /// no threads, nothing is compressed until [`Compressor::run_all`] is
    /// called (tests use it to look at a document before its variants exist).
    pub fn new(threads: usize, store: Option<Arc<BodyStore>>, done: Done) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
            store,
            done,
        });
        for n in 0..threads {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("feedsmith-compress-{n}"))
                .spawn(move || worker(&shared));
            if let Err(e) = spawned {
                warn!(error = %e, "cannot start a compression thread");
            }
        }
        Self { shared }
    }

    /// One thread per core.
    pub fn per_core(store: Option<Arc<BodyStore>>, done: Done) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, store, done)
    }

    /// Queues the variants `rep` still lacks.
    pub fn submit(&self, feed: Option<FeedName>, rep: &Arc<Representation>) {
        let Some(first) = rep.pending().next() else {
            return;
        };
        let job = Job {
            rep: Arc::downgrade(rep),
            feed,
        };
        self.shared.queue().push(first, job);
        self.shared.work.notify_one();
    }

    /// Documents waiting for a variant (for `/healthz`).
    pub fn backlog(&self) -> usize {
        let queue = self.shared.queue();
        queue.gzip.len() + queue.brotli.len() + queue.running
    }

    /// Runs every queued job on the calling thread, until none is left.
    /// Blocking.
    pub fn run_all(&self) {
        loop {
            let Some((job, encoding)) = self.shared.queue().next() else {
                return;
            };
            self.shared.run(job, encoding);
        }
    }

    /// Waits until nothing is queued or running. Blocking (for tests and
    /// tools that want every variant made).
    pub fn wait_idle(&self) {
        let mut queue = self.shared.queue();
        while !queue.is_idle() {
            queue = self
                .shared
                .idle
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.shared.queue().stopped = true;
        self.shared.work.notify_all();
    }
}

fn worker(shared: &Shared) {
    // Lower this thread only (on Linux a thread id names one thread); if the
    // system refuses, compression runs at normal priority.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS);
    loop {
        let mut queue = shared.queue();
        let (job, encoding) = loop {
            if queue.stopped {
                return;
            }
            if let Some(next) = queue.next() {
                break next;
            }
            queue = shared
                .work
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        };
        queue.running += 1;
        drop(queue);
        shared.run(job, encoding);
        let mut queue = shared.queue();
        queue.running -= 1;
        if queue.is_idle() {
            shared.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::DateTime;

    fn rep(text: &str) -> Arc<Representation> {
        Arc::new(Representation::new(
            Bytes::from(text.repeat(400)),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(0, 0).expect("time"),
            "public".into(),
            None,
        ))
    }

    fn recorder() -> (Arc<Mutex<Vec<String>>>, Done) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let done: Done = Box::new(move |feed: &FeedName| {
            log.lock().expect("log").push(feed.to_string());
        });
        (seen, done)
    }

    #[test]
    fn every_gzip_comes_before_any_brotli_and_done_names_the_feed() {
        let (seen, done) = recorder();
        let pool = Compressor::new(0, None, done);
        let a = rep("<item>a</item>");
        let b = rep("<item>b</item>");
        pool.submit(Some("a".parse().expect("name")), &a);
        pool.submit(Some("b".parse().expect("name")), &b);
        assert_eq!(pool.backlog(), 2);
        let mut queue = pool.shared.queue();
        let order: Vec<_> = std::iter::from_fn(|| queue.next().map(|(_, e)| e)).collect();
        assert_eq!(order, vec![super::super::Encoding::Gzip; 2]);
        drop(queue);
        pool.submit(Some("a".parse().expect("name")), &a);
        pool.submit(Some("b".parse().expect("name")), &b);
        pool.run_all();
        assert!(a.gzip().is_some() && a.brotli().is_some());
        assert!(b.gzip().is_some() && b.brotli().is_some());
        // gzip of both, then brotli of both.
        assert_eq!(*seen.lock().expect("seen"), vec!["a", "b", "a", "b"]);
    }

    #[test]
    fn a_replaced_document_is_skipped() {
        let (seen, done) = recorder();
        let pool = Compressor::new(0, None, done);
        let old = rep("<item>old</item>");
        pool.submit(Some("a".parse().expect("name")), &old);
        drop(old);
        pool.run_all();
        assert!(seen.lock().expect("seen").is_empty());
        assert_eq!(pool.backlog(), 0);
    }

    #[test]
    fn threads_make_every_variant_and_report_idle() {
        let (seen, done) = recorder();
        let pool = Compressor::new(2, None, done);
        let docs: Vec<_> = (0..6).map(|i| rep(&format!("<item>{i}</item>"))).collect();
        for d in &docs {
            pool.submit(Some("f".parse().expect("name")), d);
        }
        pool.wait_idle();
        assert!(docs.iter().all(|d| d.pending().next().is_none()));
        assert_eq!(seen.lock().expect("seen").len(), 12);
    }
}
