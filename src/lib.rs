//! feedsmith: a syndication service that turns a newsroom's article store into
//! RSS 2.0, Atom 1.0 and JSON Feed documents and serves them over HTTP.
//!
//! Data flows one way: `store` → builder → publish → server, driven by the
//! scheduler. This crate is the library behind the `feedsmith` binary; the
//! binary only parses the command line and reports errors.
//!
//! - [`config`]: the TOML configuration, checked into typed values.
//! - [`article`]: the article model and its validation.
//! - [`store`]: the article store trait and its two backends, SQLite and
//!   PostgreSQL, sharing one row codec.
//! - [`builder`]: RSS, Atom and JSON Feed documents from a feed's articles.
//! - [`import`]: reading article files into the store.
//! - [`source`]: pulling upstream RSS and Atom feeds on a schedule into the
//!   store, through the same mapping as `import`.
//! - [`publish`]: the served set, and the output folder written atomically.
//! - [`refresh`]: one feed from the store to documents ready to serve, shared
//!   by `feedsmith build`, start-up and the scheduler.
//! - [`server`]: the HTTP server answering from the published set.
//! - [`access_log`]: the operator's per-request log, written off the request path.
//! - [`scheduler`]: when feeds refresh (schedules, the watch poll, store
//!   notifications), applying reloads, back-off on faults; on a clock it is given.
//! - [`reloader`]: reading a changed configuration off the scheduler's loop,
//!   and what asks for one (a changed file, SIGHUP).
//! - [`websub`]: the built-in WebSub hub (subscriptions, verification,
//!   content distribution) and the pings of external hubs.
//! - [`archive`]: RFC 5005 archive pages of a feed: sealing their bounds at a
//!   rebuild, building a page from the store when the server asks.
//! - [`metrics`]: Prometheus metrics of the service and the process, and the
//!   text of `/metrics`.
//! - [`app`]: wiring the parts together for the commands.

//!
//! feedsmith runs on Linux only: the HTTP/1 fast path sends bodies with
//! `sendfile(2)` and `MSG_MORE`, the output folder is made durable with
//! `syncfs(2)`, and the body store punches holes with `fallocate(2)`. Rather
//! than keep fallbacks no one builds or tests, other targets fail to compile.

// Nothing here needs unsafe; the system calls go through nix and rustix.
#![forbid(unsafe_code)]
// Every public item says what it is for: the library is read more than written.
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "feedsmith supports Linux only (sendfile, MSG_MORE, syncfs, fallocate); see README.md"
);

pub mod access_log;
pub mod app;
pub mod archive;
pub mod article;
pub mod builder;
pub mod config;
pub mod import;
pub mod metrics;
pub mod publish;
pub mod refresh;
pub mod reloader;
pub mod scheduler;
pub mod server;
pub mod source;
pub mod store;
pub mod websub;
