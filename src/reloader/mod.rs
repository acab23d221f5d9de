//! The reloader: turns requests to re-read the configuration into loaded
//! configurations for the scheduler, off the scheduler's loop.
//!
//! Reading and checking every config file takes as long as the files make it,
//! and the scheduler must go on publishing meanwhile. So this task owns the
//! requests (a watched file changed, SIGHUP; both made in `triggers`): it runs
//! the loader on a blocking thread, coalesces the requests that arrive while a
//! load runs into one more load after it, and hands the scheduler only the
//! outcome, as a [`Control`] message. It never applies a configuration (the
//! scheduler does).

mod triggers;

pub use triggers::{reload_on_sighup, watch_files};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, error};

use crate::config::{Config, ConfigError};
use crate::scheduler::Control;

/// Reads and checks the configuration at a path. The service uses
/// [`config_loader`]; tests pass one that takes its time.
pub type Loader = Arc<dyn Fn(&Path) -> Result<Config, ConfigError> + Send + Sync>;

/// [`Config::load`], the loader the service runs on.
pub fn config_loader() -> Loader {
    Arc::new(Config::load)
}

/// Asks the [`Reloader`] to re-read the configuration; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReloadRequests {
    tx: mpsc::Sender<()>,
}

impl ReloadRequests {
    /// Asks for a reload. While one request already waits, another is the
    /// same request. `false` once the reloader has stopped.
    pub fn request(&self) -> bool {
        match self.tx.try_send(()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(())) => true,
            Err(mpsc::error::TrySendError::Closed(())) => false,
        }
    }
}

/// Loads the configuration at one path whenever asked; see the module docs.
pub struct Reloader {
    path: PathBuf,
    loader: Loader,
    /// Room for one request: the one waiting while a load runs.
    requests: mpsc::Receiver<()>,
    results: mpsc::Sender<Control>,
}

impl Reloader {
    /// A reloader of the configuration at `path`, sending what `loader` makes
    /// of it to `results`, and the handle that asks it to.
    pub fn new(
        path: PathBuf,
        loader: Loader,
        results: mpsc::Sender<Control>,
    ) -> (ReloadRequests, Reloader) {
        let (tx, requests) = mpsc::channel(1);
        let reloader = Reloader {
            path,
            loader,
            requests,
            results,
        };
        (ReloadRequests { tx }, reloader)
    }

    /// Loads once per request (coalesced) until every [`ReloadRequests`] is
    /// dropped or the receiver of the results is.
    pub async fn run(mut self) {
        while self.requests.recv().await.is_some() {
            let (path, loader) = (self.path.clone(), self.loader.clone());
            let started = Instant::now();
            let loaded = tokio::task::spawn_blocking(move || loader(&path)).await;
            debug!(took = ?started.elapsed(), path = %self.path.display(), "configuration read");
            let outcome = match loaded {
                Ok(Ok(config)) => Control::Apply(Box::new(config)),
                Ok(Err(e)) => Control::Rejected(e),
                Err(e) => {
                    error!(error = %e, "reading the configuration failed; still running on the previous one");
                    continue;
                }
            };
            if self.results.send(outcome).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use crate::config::{DEFAULT_CONFIG_PATH, Problem};

    /// Loads that wait until the test opens the gate, counting how many began.
    #[derive(Default)]
    struct Gate {
        started: AtomicUsize,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        fn loader(self: &Arc<Self>, load: fn(&Path) -> Result<Config, ConfigError>) -> Loader {
            let gate = self.clone();
            Arc::new(move |path| {
                gate.started.fetch_add(1, Ordering::SeqCst);
                let open = gate.open.lock().expect("gate lock");
                // Bounded, so a failing test cannot hang its runtime's shutdown.
                let _open = gate
                    .opened
                    .wait_timeout_while(open, Duration::from_secs(30), |open| !*open)
                    .expect("gate lock");
                load(path)
            })
        }

        fn started(&self) -> usize {
            self.started.load(Ordering::SeqCst)
        }

        fn release(&self) {
            *self.open.lock().expect("gate lock") = true;
            self.opened.notify_all();
        }
    }

    /// Opens the gate however the test ends.
    struct Release(Arc<Gate>);

    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release();
        }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn refuse(path: &Path) -> Result<Config, ConfigError> {
        Err(ConfigError::new(vec![Problem::in_file(
            path,
            "test: refused",
        )]))
    }

    #[tokio::test]
    async fn requests_during_a_load_become_one_more_load_after_it() {
        let gate = Arc::new(Gate::default());
        let _release = Release(gate.clone());
        let (results_tx, mut results) = mpsc::channel(16);
        let (requests, reloader) =
            Reloader::new("feedsmith.toml".into(), gate.loader(refuse), results_tx);
        let running = tokio::spawn(reloader.run());

        assert!(requests.request());
        until("the first load to begin", || gate.started() == 1).await;
        for _ in 0..5 {
            assert!(requests.request(), "the reloader is running");
        }
        gate.release();
        // With the handle gone the reloader stops after what it was asked.
        drop(requests);
        running.await.expect("reloader task");
        let mut outcomes = Vec::new();
        while let Some(outcome) = results.recv().await {
            outcomes.push(outcome);
        }
        assert_eq!(
            gate.started(),
            2,
            "one load, then one for the five requests"
        );
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            match outcome {
                Control::Rejected(e) => {
                    assert_eq!(e.to_string(), "feedsmith.toml: test: refused");
                }
                Control::Apply(_) => panic!("the loader refuses everything"),
            }
        }
    }

    #[tokio::test]
    async fn a_valid_configuration_is_handed_over_whole() {
        let (results_tx, mut results) = mpsc::channel(16);
        let (requests, reloader) =
            Reloader::new(DEFAULT_CONFIG_PATH.into(), config_loader(), results_tx);
        tokio::spawn(reloader.run());
        assert!(requests.request());
        match results.recv().await.expect("an outcome") {
            Control::Apply(config) => {
                assert_eq!(config.path, Path::new(DEFAULT_CONFIG_PATH));
                assert!(config.feeds.contains_key("latest"));
            }
            Control::Rejected(e) => panic!("the shipped config is valid: {e}"),
        }
    }

    #[tokio::test]
    async fn a_loader_that_panics_is_logged_and_later_requests_still_load() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let loader: Loader = Arc::new(move |path| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("test: the first load fails");
            }
            refuse(path)
        });
        let (results_tx, mut results) = mpsc::channel(16);
        let (requests, reloader) = Reloader::new("feedsmith.toml".into(), loader, results_tx);
        let running = tokio::spawn(reloader.run());
        assert!(requests.request());
        until("the first load to fail", || {
            calls.load(Ordering::SeqCst) == 1
        })
        .await;
        assert!(requests.request());
        let outcome = results.recv().await.expect("the second load's outcome");
        assert!(matches!(outcome, Control::Rejected(_)), "{outcome:?}");
        drop(requests);
        running.await.expect("reloader task");
        assert!(
            results.recv().await.is_none(),
            "nothing from the failed load"
        );
    }

    #[tokio::test]
    async fn a_request_after_the_reloader_stopped_says_so() {
        let (results_tx, results) = mpsc::channel(1);
        let (requests, reloader) =
            Reloader::new("feedsmith.toml".into(), config_loader(), results_tx);
        drop(reloader);
        drop(results);
        assert!(!requests.request());
    }
}
