use super::*;

/// The regex log analysers use for `combined` (GoAccess style).
const COMBINED: &str =
    r#"^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$"#;

fn entry<'a>(user_agent: Option<&'a [u8]>, referer: Option<&'a [u8]>) -> Entry<'a> {
    Entry {
        peer: "192.0.2.7:51234".parse().expect("addr"),
        method: "GET",
        target: "/feeds/latest.rss?utm=x",
        protocol: "HTTP/1.1",
        status: 200,
        body_bytes: 1234,
        encoding: Some("gzip"),
        conditional: Conditional::None,
        started: Instant::now(),
        user_agent,
        referer,
    }
}

fn line(format: u8, e: &Entry<'_>, now: SystemTime) -> String {
    let mut out = Vec::new();
    format_line(format, e, now, &mut Clock::default(), &mut out);
    String::from_utf8(out).expect("every line is ASCII or UTF-8")
}

/// 2026-12-03T13:12:24.042Z
fn when() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_796_303_544_042)
}

#[test]
fn combined_is_nginx_combined() {
    let e = entry(Some(b"NetNewsWire/6.1"), None);
    assert_eq!(
        line(FORMAT_COMBINED, &e, when()),
        "192.0.2.7 - - [03/Dec/2026:13:12:24 +0000] \"GET /feeds/latest.rss?utm=x HTTP/1.1\" \
         200 1234 \"-\" \"NetNewsWire/6.1\"\n"
    );
}

#[test]
fn a_hostile_user_agent_cannot_break_or_forge_a_combined_line() {
    let ua: &[u8] = b"evil\" 200 1 \"-\" \"x\n1.2.3.4 - - [x] \"GET / HTTP/1.1\\\x7f\xff";
    let e = entry(Some(ua), Some(b"\"\r\n"));
    let text = line(FORMAT_COMBINED, &e, when());
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let re = regex::Regex::new(COMBINED).expect("regex");
    let caps = re
        .captures(text.trim_end_matches('\n'))
        .expect("parses as combined");
    assert_eq!(&caps[1], "192.0.2.7");
    assert_eq!(&caps[8], r"\x22\x0D\x0A");
    assert_eq!(
        &caps[9],
        r#"evil\x22 200 1 \x22-\x22 \x22x\x0A1.2.3.4 - - [x] \x22GET / HTTP/1.1\x5C\x7F\xFF"#
    );
}

#[test]
fn json_lines_parse_whatever_the_client_sent() {
    let ua: &[u8] = b"a\"b\\c\nd\x00\xff\xfe";
    let mut e = entry(Some(ua), None);
    e.conditional = Conditional::of(true, 304);
    e.status = 304;
    e.body_bytes = 0;
    let text = line(FORMAT_JSON, &e, when());
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["time"], "2026-12-03T13:12:24.042Z");
    assert_eq!(v["remote"], "192.0.2.7");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/feeds/latest.rss?utm=x");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["status"], 304);
    assert_eq!(v["bytes"], 0);
    assert_eq!(v["encoding"], "gzip");
    assert_eq!(v["conditional"], "not_modified");
    assert!(v["duration_us"].is_u64());
    assert_eq!(v["user_agent"], "a\"b\\c\nd\u{0}\u{fffd}\u{fffd}");
    assert!(v["referer"].is_null());
}

#[test]
fn conditional_outcomes_come_from_the_status() {
    assert_eq!(Conditional::of(false, 304), Conditional::None);
    assert_eq!(Conditional::of(true, 304).name(), "not_modified");
    assert_eq!(Conditional::of(true, 200).name(), "modified");
    assert_eq!(Conditional::of(true, 412).name(), "precondition_failed");
    assert_eq!(Conditional::None.name(), "none");
}

#[test]
fn the_clock_formats_once_per_second() {
    let mut clock = Clock::default();
    let s = clock.at(1_796_303_544).combined.clone();
    assert_eq!(s, "03/Dec/2026:13:12:24 +0000");
    assert_eq!(clock.at(1_796_303_545).iso, "2026-12-03T13:12:25");
}

fn config(format: AccessLogFormat, buffer_bytes: usize) -> AccessLogConfig {
    AccessLogConfig {
        format,
        path: LogDestination::Stdout,
        buffer_bytes,
    }
}

/// A writer stuck on a pipe nobody reads: requests go on at once, lines past
/// the cap are dropped and counted, and once the pipe is read again the
/// buffered lines still arrive, whole.
#[test]
fn a_full_buffer_drops_lines_instead_of_waiting() {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let sink = Sink::File {
        file: File::from(std::os::fd::OwnedFd::from(writer)),
        path: PathBuf::from("pipe"),
    };
    let cap = 8 * 1024;
    let (log, thread) =
        AccessLog::start_with(&config(AccessLogFormat::Combined, cap), Some(sink)).expect("start");
    let ua = [b'x'; 100];
    let e = entry(Some(&ua), None);
    // Far more than the pipe (64 KiB on Linux) and the buffer hold together.
    let started = Instant::now();
    let total = 5_000u64;
    for _ in 0..total {
        log.record(&e);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "recording waited for the writer: {:?}",
        started.elapsed()
    );
    let stats = log.stats();
    assert!(stats.lines_dropped > 0, "{stats:?}");
    // Read everything while the writer finishes.
    let drain = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut all).expect("read");
        all
    });
    thread.finish();
    let stats = log.stats();
    drop(log);
    let all = drain.join().expect("drain");
    let text = String::from_utf8(all).expect("utf-8");
    let lines = text.lines().count() as u64;
    assert_eq!(lines, stats.lines_written, "{stats:?}");
    assert_eq!(
        stats.lines_written + stats.lines_dropped,
        total,
        "{stats:?}"
    );
    let re = regex::Regex::new(COMBINED).expect("regex");
    assert!(text.lines().all(|l| re.is_match(l)), "a line was cut");
}

#[test]
fn off_logs_nothing_and_a_reload_turns_it_on() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("access.log");
    let (log, thread) = AccessLog::start(&config(AccessLogFormat::Off, 4096)).expect("start");
    assert!(!log.enabled());
    log.record(&entry(None, None));
    let mut on = config(AccessLogFormat::Json, 4096);
    on.path = LogDestination::File(path.clone());
    log.reconfigure(&on);
    assert!(log.enabled());
    log.record(&entry(None, None));
    thread.finish();
    let text = std::fs::read_to_string(&path).expect("log written");
    assert_eq!(text.lines().count(), 1, "{text}");
    let stats = log.stats();
    assert_eq!((stats.format, stats.lines_written), ("json", 1));
    assert_eq!(stats.path, path.display().to_string());
}
