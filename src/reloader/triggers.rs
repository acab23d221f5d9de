//! What asks for a reload: a changed configuration file, and SIGHUP.
//!
//! A watched folder reports every write, rename and chmod an editor makes;
//! this module waits for a burst of them to settle and turns it into one
//! [`ReloadRequests::request`]. It watches the folders the configuration *in
//! force* names, following `[feeds].dir` and `[sources].dir` as applied
//! configurations move them.
//! It never reads a configuration (the [`Reloader`](super::Reloader) does).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::ReloadRequests;
use crate::config::Config;

/// Waits this long after a file event for the editor to finish writing.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Asks for a reload when the config file, a feed file or a source file
/// changes. Folders are watched rather than files because editors replace a
/// file by renaming a new one over it. The watch follows `[feeds].dir` and
/// `[sources].dir` as applied configs move them. A sources folder that does
/// not exist yet is not watched; once it is made, a reload (SIGHUP, or an edit
/// of the config file) applies its files and starts watching it.
pub async fn watch_files(mut applied: watch::Receiver<Arc<Config>>, reload: ReloadRequests) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    loop {
        let config = applied.borrow_and_update().clone();
        let targets = WatchTargets::of(&config);
        let _watcher = match targets.start(tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the configuration files; reload with SIGHUP");
                None
            }
        };
        loop {
            tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if WatchTargets::of(&applied.borrow()) != targets {
                        break; // watch the new folders
                    }
                }
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                    // Let a burst of events (write, rename, chmod) settle into one reload.
                    while tokio::time::timeout(DEBOUNCE, rx.recv()).await.is_ok_and(|e| e.is_some()) {}
                    if !reload.request() {
                        return;
                    }
                }
            }
        }
    }
}

/// The folders to watch and the files in them that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WatchTargets {
    config_dir: PathBuf,
    config_file: Option<std::ffi::OsString>,
    feeds_dir: PathBuf,
    /// The sources folder, when it exists (it is optional).
    sources_dir: Option<PathBuf>,
}

impl WatchTargets {
    fn of(config: &Config) -> Self {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        let config_path = absolute(&config.path);
        Self {
            config_dir: config_path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
            config_file: config_path.file_name().map(ToOwned::to_owned),
            feeds_dir: absolute(&config.feeds_dir),
            sources_dir: config
                .sources_dir
                .is_dir()
                .then(|| absolute(&config.sources_dir)),
        }
    }

    fn matters(&self, path: &Path) -> bool {
        let parent = path.parent();
        (parent == Some(self.config_dir.as_path())
            && path.file_name() == self.config_file.as_deref())
            || ((parent == Some(self.feeds_dir.as_path())
                || (parent.is_some() && parent == self.sources_dir.as_deref()))
                && path.extension().is_some_and(|x| x == "toml"))
    }

    fn start(&self, tx: mpsc::UnboundedSender<()>) -> notify::Result<notify::RecommendedWatcher> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let me = self.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                // Reading the files (as every reload does) must not trigger another.
                let edit = matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                );
                if edit && event.paths.iter().any(|p| me.matters(p)) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&self.config_dir, RecursiveMode::NonRecursive)?;
        if self.feeds_dir != self.config_dir {
            watcher.watch(&self.feeds_dir, RecursiveMode::NonRecursive)?;
        }
        if let Some(dir) = &self.sources_dir
            && dir != &self.config_dir
            && dir != &self.feeds_dir
        {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok(watcher)
    }
}

/// SIGHUP asks for a reload, as admins expect of a daemon.
pub async fn reload_on_sighup(reload: ReloadRequests) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; reloads come from file changes only");
        return;
    };
    while hangups.recv().await.is_some() {
        info!("SIGHUP: reloading the configuration");
        if !reload.request() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_config_file_and_feed_files_matter() {
        let targets = WatchTargets {
            config_dir: PathBuf::from("/etc/feedsmith"),
            config_file: Some("feedsmith.toml".into()),
            feeds_dir: PathBuf::from("/etc/feedsmith/feeds"),
            sources_dir: Some(PathBuf::from("/etc/feedsmith/sources")),
        };
        for (path, matters) in [
            ("/etc/feedsmith/feedsmith.toml", true),
            ("/etc/feedsmith/feeds/world.toml", true),
            ("/etc/feedsmith/sources/wire.toml", true),
            ("/etc/feedsmith/sources/.wire.toml.swp", false),
            // An editor's swap file, another file beside the config, a
            // feed file in a sub-folder: none is read by a reload.
            ("/etc/feedsmith/feeds/.world.toml.swp", false),
            ("/etc/feedsmith/other.toml", false),
            ("/etc/feedsmith/feeds/old/world.toml", false),
            ("/var/lib/feedsmith/feedsmith.toml", false),
        ] {
            assert_eq!(targets.matters(Path::new(path)), matters, "{path}");
        }
    }
}
