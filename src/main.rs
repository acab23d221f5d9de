//! The `feedsmith` command line (`docs/contract.md` §1): parses arguments, sets
//! up logging, calls into the library and turns results into exit codes. No
//! behaviour lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use feedsmith::app;
use feedsmith::config::{Config, DEFAULT_CONFIG_PATH, LogFormat};
use feedsmith::import::{self, ImportObserver, Rejection};
use feedsmith::store;

#[derive(Parser)]
#[command(
    name = "feedsmith",
    version,
    about = "Publishes a newsroom's articles as RSS, Atom and JSON Feed"
)]
struct Cli {
    /// The service config file; feed files are read from its `[feeds].dir`.
    #[arg(long, global = true, env = "FEEDSMITH_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler and the HTTP server until SIGINT/SIGTERM.
    Serve,
    /// Build every configured feed once from the store and write the documents.
    Build {
        /// Where to write {name}.rss, {name}.atom and {name}.json (default: [output].dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate article files and upsert them into the store.
    Import {
        /// Article files (.json: an object or an array; .jsonl: one per line;
        /// .rss, .atom, .xml: an RSS 2.0 or Atom 1.0 feed, one per item) or
        /// directories to search for them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate the config and check that the store opens.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The config says how to log, so it is read first; its problems (and
    // anything else before this point) go to stderr as plain lines.
    // `import` only writes to the store: it reads the service config alone,
    // so a broken feed file does not stop the newsroom's writes.
    let only_main = matches!(cli.command, Command::Import { .. });
    let Some(config) = load_config(&cli.config, only_main) else {
        return ExitCode::from(1);
    };
    init_logging(config.log.format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// The service's own log on stderr: `[log] format`, the level from
/// `RUST_LOG` (default info), colour only when stderr is a terminal (and
/// `NO_COLOR` is not set): never escape codes in a file or a journal.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            )
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// The error and its causes, each said once. The library's errors already
/// name their source in their own message (so logs and /healthz show it);
/// anyhow's `context` does not. `{:#}` would repeat the former.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Loads the config, printing every problem; `None` means it was invalid.
fn load_config(path: &std::path::Path, only_main: bool) -> Option<Config> {
    let loaded = if only_main {
        Config::load_without_feeds(path)
    } else {
        Config::load(path)
    };
    match loaded {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{}: {} problem{} found",
                path.display(),
                e.total(),
                if e.total() == 1 { "" } else { "s" }
            );
            None
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check => check(&config).await,
        Command::Import { paths } => import(&config, &paths).await,
        Command::Serve => {
            let listen = config.server.listen;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
            app::run(config, listener, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { out } => {
            let store = app::open_store_once(&config, app::Seeding::OnFirstStart).await?;
            let out = out.unwrap_or_else(|| config.output_dir.clone());
            let built = app::build_all(&config, store.as_ref(), &out).await?;
            for feed in &built {
                let files: Vec<String> =
                    feed.files.iter().map(|f| f.display().to_string()).collect();
                println!(
                    "{}: {} items -> {}",
                    feed.name,
                    feed.items,
                    files.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let zone = config.site.timezone;
    let now = chrono::Utc::now().with_timezone(&zone);
    match store::probe(&config.store.url).await {
        Ok(true) => println!("store {}: opens", config.store.url),
        Ok(false) => println!(
            "store {}: does not exist yet; it is created on first start",
            config.store.url
        ),
        Err(e) => {
            eprintln!("{}: {e}", config.store.url_at);
            return Ok(ExitCode::from(1));
        }
    }
    for feed in config.feeds.values() {
        let next: Vec<String> = feed
            .refresh
            .upcoming(&now, 3)
            .iter()
            .map(|t| {
                t.with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .collect();
        println!(
            "feed {}: {} ({}), up to {} items, refresh {:?}, next {}",
            feed.name,
            feed.title,
            feed.formats
                .iter()
                .map(|f| f.extension())
                .collect::<Vec<_>>()
                .join(", "),
            feed.limit,
            feed.refresh.source(),
            next.join(", ")
        );
    }
    for source in config.sources.values() {
        let next = source
            .refresh
            .next_after(&now)
            .map(|t| {
                t.with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_default();
        println!(
            "source {}: {}, refresh {:?}, next {}",
            source.name,
            source.url,
            source.refresh.source(),
            next
        );
    }
    println!(
        "{}: ok, {} feed{}",
        config.path.display(),
        config.feeds.len(),
        if config.feeds.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Shows a progress bar on a terminal once an import is big enough to wait for.
struct Progress {
    bar: ProgressBar,
    interactive: bool,
}

/// Below this many articles an import finishes before a bar would be readable.
const PROGRESS_THRESHOLD: u64 = 300;

impl ImportObserver for Progress {
    fn found(&self, n: usize) {
        self.bar.inc_length(n as u64);
        if self.interactive
            && self.bar.is_hidden()
            && self.bar.length().unwrap_or(0) > PROGRESS_THRESHOLD
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn advanced(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    fn rejected(&self, rejection: &Rejection) {
        self.bar.suspend(|| eprintln!("rejected: {rejection}"));
    }
}

async fn import(config: &Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let store = app::open_store_once(config, app::Seeding::Never).await?;
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} articles, {elapsed} elapsed, eta {eta}")
            .context("progress bar template")?,
    );
    let progress = Progress {
        bar,
        interactive: std::io::stderr().is_terminal(),
    };
    let settings = import::ImportSettings::for_config(config);
    let summary = import::import_paths(store.as_ref(), paths, &settings, &progress).await?;
    progress.bar.finish_and_clear();
    println!("{summary}");
    Ok(if summary.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open store x: {source}")]
    struct Open {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let open = Open {
            source: std::io::Error::other("connection refused"),
        };
        let e = anyhow::Error::new(open).context("starting the service");
        assert_eq!(
            describe(&e),
            "starting the service: cannot open store x: connection refused"
        );
    }
}
