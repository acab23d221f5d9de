//! The operator's access log: one line per answered request, in nginx's
//! `combined` format or as JSON, to standard output or a file.
//!
//! This module owns the line formats, the buffer the lines wait in and the
//! thread that writes them. A request formats its line into a thread-local
//! scratch buffer and copies it into one shared buffer under a short lock;
//! the writer thread swaps that buffer out every [`FLUSH_INTERVAL`] (or
//! sooner, when it crosses [`WAKE_THRESHOLD`]) and writes it with one
//! `write(2)`. A request must never wait for log I/O, never block on a full
//! buffer (its line is dropped and counted instead), never allocate when the
//! log is off, and never panic whatever bytes a client sent: every line of
//! either format is one line, parseable as its format says. The file is
//! reopened on request (SIGUSR1 in the service, the logrotate convention) and
//! the log can be re-pointed while running. This module knows nothing of HTTP
//! servers: callers hand it an [`Entry`] of borrowed fields.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AccessLogConfig, AccessLogFormat, LogDestination};

/// The writer writes whatever is buffered at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A request whose line takes the buffer past this many bytes wakes the
/// writer at once (only the one that crosses it: never a signal per line).
pub const WAKE_THRESHOLD: usize = 64 * 1024;

/// Dropped lines are reported in the service log at most this often.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Write errors are reported at most this often.
const ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Why the access log could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The log file could not be opened for appending (or created).
    #[error("cannot open the access log {path}: {source}")]
    Open {
        /// The configured path.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The writer thread could not be spawned.
    #[error("cannot start the access log writer: {0}")]
    Thread(#[source] std::io::Error),
}

/// Whether and how a conditional request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// No `If-None-Match`, `If-Modified-Since`, `If-Match` or
    /// `If-Unmodified-Since` in the request.
    None,
    /// `304 Not Modified`.
    NotModified,
    /// A conditional request that got a full (or error) response.
    Modified,
    /// `412 Precondition Failed`.
    PreconditionFailed,
}

impl Conditional {
    /// From whether the request carried preconditions and its status.
    pub fn of(conditional: bool, status: u16) -> Self {
        match (conditional, status) {
            (false, _) => Conditional::None,
            (true, 304) => Conditional::NotModified,
            (true, 412) => Conditional::PreconditionFailed,
            (true, _) => Conditional::Modified,
        }
    }

    /// The value's name in the JSON format's `conditional` field.
    pub fn name(self) -> &'static str {
        match self {
            Conditional::None => "none",
            Conditional::NotModified => "not_modified",
            Conditional::Modified => "modified",
            Conditional::PreconditionFailed => "precondition_failed",
        }
    }
}

/// One request, as the access log sees it; everything borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The request method as sent (`GET`, `HEAD`, …).
    pub method: &'a str,
    /// The request target as sent: path and query.
    pub target: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, … as nginx writes `$server_protocol`.
    pub protocol: &'static str,
    /// The response's status code.
    pub status: u16,
    /// Body bytes sent (0 for `HEAD` and 304).
    pub body_bytes: u64,
    /// The content coding of a document (`identity`, `gzip`, `br`).
    pub encoding: Option<&'static str>,
    /// Whether and how the request was conditional.
    pub conditional: Conditional,
    /// When the request began; the logged duration (µs) runs from here to the line.
    pub started: Instant,
    /// The `User-Agent` header's raw bytes, if sent; escaped when written.
    pub user_agent: Option<&'a [u8]>,
    /// The `Referer` header's raw bytes, if sent; escaped when written.
    pub referer: Option<&'a [u8]>,
}

const FORMAT_OFF: u8 = 0;
const FORMAT_COMBINED: u8 = 1;
const FORMAT_JSON: u8 = 2;

fn format_code(format: AccessLogFormat) -> u8 {
    match format {
        AccessLogFormat::Off => FORMAT_OFF,
        AccessLogFormat::Combined => FORMAT_COMBINED,
        AccessLogFormat::Json => FORMAT_JSON,
    }
}

/// Lines waiting for the writer.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

/// What the writer thread is asked to do besides its periodic flush.
enum Command {
    /// The buffer crossed [`WAKE_THRESHOLD`]: write it now.
    Wake,
    /// Reopen the file at the same path (after a rotation).
    Reopen,
    /// Write to this destination from now on (`None`: nowhere).
    Retarget(Option<LogDestination>),
    /// Write what is left and stop.
    Finish,
}

struct Shared {
    format: AtomicU8,
    /// The buffer's cap in bytes; a line that would pass it is dropped.
    cap: AtomicUsize,
    pending: Mutex<Pending>,
    commands: mpsc::Sender<Command>,
    /// The configuration now in force, for `/healthz` and reloads.
    config: Mutex<AccessLogConfig>,
    written: AtomicU64,
    dropped: AtomicU64,
    reopens: AtomicU64,
}

impl Shared {
    fn send(&self, command: Command) {
        // The writer only stops when told to; then there is nothing to wake.
        let _ = self.commands.send(command);
    }
}

/// The access log as requests and the service see it; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    shared: Arc<Shared>,
}

/// The access log's figures for `/healthz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccessLogStats {
    /// The format in force: `combined`, `json` or `off`.
    pub format: &'static str,
    /// Where lines go: a file path, or `-` for standard output.
    pub path: String,
    /// Lines written since start.
    pub lines_written: u64,
    /// Lines lost since start: the buffer was full, or a write failed.
    pub lines_dropped: u64,
    /// Times the file was reopened at its path (after log rotation).
    pub reopens: u64,
}

/// Owns the writer thread; [`Writer::finish`] (or dropping it) writes every
/// buffered line and stops the thread.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Writes what is buffered, stops the thread and waits for it.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.send(Command::Finish);
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl AccessLog {
    /// Opens the configured destination (so a bad path fails start-up) and
    /// starts the writer thread.
    pub fn start(config: &AccessLogConfig) -> Result<(AccessLog, Writer), AccessLogError> {
        let sink = match config.format {
            AccessLogFormat::Off => None,
            _ => Some(Sink::open(&config.path)?),
        };
        Self::start_with(config, sink)
    }

    fn start_with(
        config: &AccessLogConfig,
        sink: Option<Sink>,
    ) -> Result<(AccessLog, Writer), AccessLogError> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            format: AtomicU8::new(format_code(config.format)),
            cap: AtomicUsize::new(config.buffer_bytes),
            pending: Mutex::new(Pending::default()),
            commands: tx,
            config: Mutex::new(config.clone()),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
        });
        let mut thread = WriterThread {
            shared: shared.clone(),
            sink,
            spare: Vec::new(),
            dropped_reported: 0,
            last_drop_report: None,
            last_error_report: None,
        };
        let handle = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || thread.run(&rx))
            .map_err(AccessLogError::Thread)?;
        Ok((
            AccessLog {
                shared: shared.clone(),
            },
            Writer {
                shared,
                thread: Some(handle),
            },
        ))
    }

    /// Whether lines are being logged at all; callers check this before
    /// gathering an [`Entry`].
    #[inline]
    pub fn enabled(&self) -> bool {
        self.shared.format.load(Ordering::Relaxed) != FORMAT_OFF
    }

    /// Formats `entry` and queues it for the writer; drops it (and counts
    /// the drop) if the buffer is full. Never waits for I/O.
    pub fn record(&self, entry: &Entry<'_>) {
        let format = self.shared.format.load(Ordering::Relaxed);
        if format == FORMAT_OFF {
            return;
        }
        let now = SystemTime::now();
        let queued = LOCAL.try_with(|local| match local.try_borrow_mut() {
            Ok(mut local) => {
                let local = &mut *local;
                local.scratch.clear();
                format_line(format, entry, now, &mut local.clock, &mut local.scratch);
                self.append(&local.scratch);
            }
            // Not reachable (nothing here re-enters), but never panic for it.
            Err(_) => self.append_fresh(format, entry, now),
        });
        if queued.is_err() {
            // The thread is being torn down; its locals are gone.
            self.append_fresh(format, entry, now);
        }
    }

    fn append_fresh(&self, format: u8, entry: &Entry<'_>, now: SystemTime) {
        let mut scratch = Vec::with_capacity(256);
        format_line(format, entry, now, &mut Clock::default(), &mut scratch);
        self.append(&scratch);
    }

    fn append(&self, line: &[u8]) {
        let cap = self.shared.cap.load(Ordering::Relaxed);
        let threshold = WAKE_THRESHOLD.min(cap / 2);
        let crossed = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let before = pending.bytes.len();
            if before + line.len() > cap {
                drop(pending);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                crate::metrics::global().access_log_dropped(1);
                return;
            }
            pending.bytes.extend_from_slice(line);
            pending.lines += 1;
            before < threshold && before + line.len() >= threshold
        };
        if crossed {
            self.shared.send(Command::Wake);
        }
    }

    /// Reopens a file log at its path (create, append), as after logrotate
    /// has renamed it. Standard output is left as it is.
    pub fn reopen(&self) {
        self.shared.send(Command::Reopen);
    }

    /// Applies a reloaded `[server.access_log]`: the format and buffer cap at
    /// once, a new path by the writer (which keeps the old one if the new
    /// one cannot be opened). Says in the service log what changed.
    pub fn reconfigure(&self, new: &AccessLogConfig) {
        let old = {
            let mut config = self
                .shared
                .config
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *config == *new {
                return;
            }
            std::mem::replace(&mut *config, new.clone())
        };
        self.shared
            .format
            .store(format_code(new.format), Ordering::Relaxed);
        self.shared.cap.store(new.buffer_bytes, Ordering::Relaxed);
        let was_writing = old.format != AccessLogFormat::Off;
        let writes = new.format != AccessLogFormat::Off;
        if writes != was_writing || (writes && old.path != new.path) {
            self.shared
                .send(Command::Retarget(writes.then(|| new.path.clone())));
        }
        info!(
            format = new.format.name(),
            path = %new.path,
            buffer_bytes = new.buffer_bytes,
            "access log reconfigured"
        );
    }

    /// Figures for `/healthz`.
    pub fn stats(&self) -> AccessLogStats {
        let (format, path) = {
            let config = self
                .shared
                .config
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (config.format.name(), config.path.to_string())
        };
        AccessLogStats {
            format,
            path,
            lines_written: self.shared.written.load(Ordering::Relaxed),
            lines_dropped: self.shared.dropped.load(Ordering::Relaxed),
            reopens: self.shared.reopens.load(Ordering::Relaxed),
        }
    }
}

/// Where the writer writes.
enum Sink {
    Stdout,
    File { file: File, path: PathBuf },
}

impl Sink {
    fn open(destination: &LogDestination) -> Result<Sink, AccessLogError> {
        match destination {
            LogDestination::Stdout => Ok(Sink::Stdout),
            LogDestination::File(path) => Ok(Sink::File {
                file: open_append(path).map_err(|source| AccessLogError::Open {
                    path: path.display().to_string(),
                    source,
                })?,
                path: path.clone(),
            }),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }
}

fn open_append(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct WriterThread {
    shared: Arc<Shared>,
    sink: Option<Sink>,
    /// The buffer swapped in for the full one, so neither is reallocated.
    spare: Vec<u8>,
    dropped_reported: u64,
    last_drop_report: Option<Instant>,
    last_error_report: Option<Instant>,
}

impl WriterThread {
    fn run(&mut self, commands: &mpsc::Receiver<Command>) {
        loop {
            let command = commands.recv_timeout(FLUSH_INTERVAL);
            self.flush();
            match command {
                Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Command::Reopen) => self.reopen(),
                Ok(Command::Retarget(destination)) => self.retarget(destination),
                Ok(Command::Finish) | Err(RecvTimeoutError::Disconnected) => {
                    self.discard_unwritable();
                    self.report_drops(true);
                    return;
                }
            }
            self.report_drops(false);
        }
    }

    /// Writes every buffered line with one write. With nowhere to write (the
    /// log was off and is being turned on) the lines wait for the new sink.
    fn flush(&mut self) {
        if self.sink.is_none() {
            return;
        }
        let lines = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.lines == 0 {
                return;
            }
            std::mem::swap(&mut pending.bytes, &mut self.spare);
            std::mem::take(&mut pending.lines)
        };
        let result = match &mut self.sink {
            Some(sink) => sink.write_all(&self.spare),
            None => Ok(()),
        };
        self.spare.clear();
        match result {
            Ok(()) => {
                self.shared.written.fetch_add(lines, Ordering::Relaxed);
            }
            Err(e) => {
                self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
                crate::metrics::global().access_log_dropped(lines);
                if due(&mut self.last_error_report, ERROR_REPORT_INTERVAL) {
                    warn!(error = %e, lines, "cannot write the access log; lines lost");
                }
            }
        }
    }

    /// Lines left with nowhere to go (queued as the log was turned off)
    /// count as dropped.
    fn discard_unwritable(&mut self) {
        if self.sink.is_some() {
            return;
        }
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lines = std::mem::take(&mut pending.lines);
        pending.bytes.clear();
        self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
        crate::metrics::global().access_log_dropped(lines);
    }

    fn reopen(&mut self) {
        let Some(Sink::File { path, .. }) = &self.sink else {
            tracing::debug!("the access log is not a file; nothing to reopen");
            return;
        };
        let path = path.clone();
        match open_append(&path) {
            Ok(file) => {
                self.sink = Some(Sink::File {
                    file,
                    path: path.clone(),
                });
                self.shared.reopens.fetch_add(1, Ordering::Relaxed);
                info!(path = %path.display(), "reopened the access log");
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot reopen the access log; still writing to the old file");
            }
        }
    }

    fn retarget(&mut self, destination: Option<LogDestination>) {
        match destination {
            None => self.sink = None,
            Some(destination) => match Sink::open(&destination) {
                Ok(sink) => self.sink = Some(sink),
                Err(e) => warn!(error = %e, "keeping the access log where it was"),
            },
        }
    }

    fn report_drops(&mut self, finishing: bool) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped == self.dropped_reported {
            return;
        }
        if finishing || due(&mut self.last_drop_report, DROP_REPORT_INTERVAL) {
            warn!(
                dropped = dropped - self.dropped_reported,
                total = dropped,
                "access log lines dropped since the last report (buffer full or write failed)"
            );
            self.dropped_reported = dropped;
        }
    }
}

/// True (and now remembered) if `last` is unset or `every` ago.
fn due(last: &mut Option<Instant>, every: Duration) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < every) {
        return false;
    }
    *last = Some(now);
    true
}

/// Each thread's scratch buffer and clock.
#[derive(Default)]
struct Local {
    scratch: Vec<u8>,
    clock: Clock,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// The time strings of the current second, formatted once per second.
#[derive(Default)]
struct Clock {
    /// Seconds since the epoch the strings are for; `None` before the first.
    second: Option<u64>,
    /// `03/Dec/2026:13:12:24 +0000`
    combined: String,
    /// `2026-12-03T13:12:24`
    iso: String,
}

impl Clock {
    fn at(&mut self, second: u64) -> &Self {
        if self.second != Some(second) {
            let time = i64::try_from(second)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .unwrap_or_default();
            self.combined.clear();
            self.iso.clear();
            use std::fmt::Write as _;
            let _ = write!(self.combined, "{}", time.format("%d/%b/%Y:%H:%M:%S +0000"));
            let _ = write!(self.iso, "{}", time.format("%Y-%m-%dT%H:%M:%S"));
            self.second = Some(second);
        }
        self
    }
}

fn format_line(format: u8, e: &Entry<'_>, now: SystemTime, clock: &mut Clock, out: &mut Vec<u8>) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let clock = clock.at(since_epoch.as_secs());
    if format == FORMAT_JSON {
        json_line(e, clock, since_epoch.subsec_millis(), out);
    } else {
        combined_line(e, clock, out);
    }
    out.push(b'\n');
}

/// `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent
/// "$http_referer" "$http_user_agent"`, escaped as nginx escapes.
fn combined_line(e: &Entry<'_>, clock: &Clock, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{} - - [{}] \"", e.peer.ip(), clock.combined);
    push_escaped(out, e.method.as_bytes());
    out.push(b' ');
    push_escaped(out, e.target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(e.protocol.as_bytes());
    let _ = write!(out, "\" {} {} \"", e.status, e.body_bytes);
    push_header(out, e.referer);
    out.extend_from_slice(b"\" \"");
    push_header(out, e.user_agent);
    out.push(b'"');
}

fn push_header(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => push_escaped(out, v),
        None => out.push(b'-'),
    }
}

/// nginx's `escape=default`: `"`, `\` and bytes outside 0x20–0x7e become
/// `\xHH`, so no client can end a line or a field early.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b == b'"' || b == b'\\' || !(0x20..=0x7e).contains(&b) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.push(b);
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time: &'a str,
    remote: std::net::IpAddr,
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    status: u16,
    bytes: u64,
    encoding: Option<&'a str>,
    conditional: &'a str,
    duration_us: u64,
    user_agent: Option<Cow<'a, str>>,
    referer: Option<Cow<'a, str>>,
}

fn json_line(e: &Entry<'_>, clock: &Clock, millis: u32, out: &mut Vec<u8>) {
    let mut time = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut time[..]);
    let _ = write!(cursor, "{}.{millis:03}Z", clock.iso);
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    let time = std::str::from_utf8(&time[..len]).unwrap_or_default();
    let line = JsonLine {
        time,
        remote: e.peer.ip(),
        method: e.method,
        path: e.target,
        protocol: e.protocol,
        status: e.status,
        bytes: e.body_bytes,
        encoding: e.encoding,
        conditional: e.conditional.name(),
        duration_us: u64::try_from(e.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        // Header bytes outside UTF-8 (obs-text) become U+FFFD.
        user_agent: e.user_agent.map(String::from_utf8_lossy),
        referer: e.referer.map(String::from_utf8_lossy),
    };
    // Serializing these field types into a Vec cannot fail; if it ever did,
    // a half line must not be left behind.
    let start = out.len();
    if serde_json::to_writer(&mut *out, &line).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"{}");
    }
}

#[cfg(test)]
mod tests;
