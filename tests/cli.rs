//! End-to-end tests of the `feedsmith` binary: `check` and `import` as an admin
//! runs them, against a config in a temporary folder.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::{TempSite, repo_root, sample_articles};
use feedsmith::store::ArticleStore;

/// A site whose one feed is a minimal `latest` (tests/common).
fn new_site() -> TempSite {
    TempSite::with_feed("title = \"Latest\"\n")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn importing_the_samples_stores_exactly_them_and_a_second_import_changes_nothing() {
    let site = new_site();
    let first = site.run(&["import", "examples/articles"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let samples = sample_articles();
    assert_eq!(samples.len(), 12);
    assert_eq!(
        stdout(&first).trim(),
        "imported 12, updated 0, unchanged 0, rejected 0 (removed 1 character that XML 1.0 forbids)"
    );

    let store = site.store().await;
    let revision = store.revision().await.expect("revision");
    for sample in &samples {
        let stored = store.get(&sample.id).await.expect("get").expect("stored");
        assert_eq!(&stored.article, sample, "{} differs", sample.id);
    }
    // The escaping sample keeps its text byte for byte, minus the vertical tab.
    let tricky = store
        .get(&"business-2026-ampersand-merger".parse().expect("id"))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        tricky.article.headline,
        "Smith & Jones agree €2bn merger: \"a <bold> step\" for the 'old firm' 🚀"
    );
    let body = tricky.article.body_html.expect("body");
    assert!(
        body.contains("]]> and again ]]&gt;") && body.contains("word processor: a vertical tab"),
        "{body}"
    );
    assert!(!body.contains('\u{b}'));

    let second = site.run(&["import", "examples/articles"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).starts_with("imported 0, updated 0, unchanged 12, rejected 0"),
        "{}",
        stdout(&second)
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        revision,
        "second import must not bump the revision"
    );
}

#[tokio::test]
async fn rejections_name_file_article_and_field_and_valid_articles_still_land() {
    let site = new_site();
    let file = site.write(
        "in/batch.json",
        r#"[
  {"id": "ok-1", "url": "https://e.com/1", "headline": "Fine", "published_at": "2025-01-01T10:00:00Z"},
  {"id": "bad-time", "url": "https://e.com/2", "headline": "Gap", "published_at": "2025-03-30T01:30:00"},
  {"id": "bad-order", "url": "https://e.com/3", "headline": "Order", "published_at": "2025-01-02T10:00:00Z", "updated_at": "2025-01-01T10:00:00Z"},
  {"url": "https://e.com/4", "headline": "No id", "published_at": "2025-01-01T10:00:00Z"},
  {"id": "typo", "url": "https://e.com/5", "headine": "Typo", "published_at": "2025-01-01T10:00:00Z"},
  {"id": "wrong-type", "url": "https://e.com/6", "headline": "T", "tags": "UN", "published_at": "2025-01-01T10:00:00Z"}
]"#,
    );
    site.write(
        "in/more.jsonl",
        "{\"id\": \"ok-2\", \"url\": \"https://e.com/7\", \"headline\": \"Line\", \"published_at\": \"2025-01-03T10:00:00\"}\n\n{not json}\n",
    );
    let out = site.run(&["import", &site.dir.path().join("in").display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejections make the exit non-zero"
    );
    assert_eq!(
        stdout(&out).trim(),
        "imported 2, updated 0, unchanged 0, rejected 6"
    );
    let err = stderr(&out);
    let f = file.display().to_string();
    let more = site.dir.path().join("in/more.jsonl").display().to_string();
    for expected in [
        format!(
            "rejected: {f}: article 2 (id \"bad-time\"): published_at: \"2025-03-30T01:30:00\" does not exist in Europe/Dublin"
        ),
        format!(
            "rejected: {f}: article 3 (id \"bad-order\"): updated_at: 2025-01-01T10:00:00+00:00 is before published_at"
        ),
        format!("rejected: {f}: article 4: id: is required"),
        format!("rejected: {f}: article 5 (id \"typo\"): headine: unknown field `headine`"),
        format!(
            "rejected: {f}: article 6 (id \"wrong-type\"): tags: invalid type: string \"UN\", expected a sequence"
        ),
        format!("rejected: {more}: line 3: not valid JSON"),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in\n{err}"
        );
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("rejected: ")).count(),
        6,
        "{err}"
    );
    let store = site.store().await;
    for id in ["ok-1", "ok-2"] {
        assert!(
            store
                .get(&id.parse().expect("id"))
                .await
                .expect("get")
                .is_some(),
            "{id} missing"
        );
    }
}

#[tokio::test]
async fn single_objects_arrays_and_directories_import_in_sorted_order() {
    let site = new_site();
    let one = |id: &str, headline: &str| {
        format!(
            r#"{{"id": "{id}", "url": "https://e.com/{id}", "headline": "{headline}", "published_at": "2025-01-01T10:00:00Z"}}"#
        )
    };
    // The same id in two files: the later file in sorted order wins.
    site.write("tree/b/2.json", &one("same", "from b/2"));
    site.write(
        "tree/a.json",
        &format!("[{}, {}]", one("x", "array"), one("same", "from a")),
    );
    site.write("tree/b/1.jsonl", &format!("{}\n", one("y", "jsonl")));
    site.write("tree/ignored.txt", "not an article");
    let out = site.run(&[
        "import",
        &site.dir.path().join("tree").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "imported 3, updated 1, unchanged 0, rejected 0"
    );
    let store = site.store().await;
    let same = store
        .get(&"same".parse().expect("id"))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(same.article.headline, "from b/2");
}

#[tokio::test]
async fn import_goes_on_while_a_feed_file_is_broken_and_the_main_config_is_still_checked() {
    let site = new_site();
    site.write(
        "feeds/latest.toml",
        "title = \"Latest\"\nlimit = \"many\"\n",
    );
    let check = site.run(&["check"]);
    assert!(
        !check.status.success(),
        "check must still refuse the feed file"
    );
    assert!(
        stderr(&check).contains("latest.toml:2:9"),
        "{}",
        stderr(&check)
    );
    site.write(
        "one.json",
        r#"{"id": "written-anyway", "url": "https://e.com/w", "headline": "Still stored", "published_at": "2025-01-01T10:00:00Z"}"#,
    );
    let out = site.run(&[
        "import",
        &site.dir.path().join("one.json").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "imported 1, updated 0, unchanged 0, rejected 0"
    );
    let store = site.store().await;
    assert!(
        store
            .get(&"written-anyway".parse().expect("id"))
            .await
            .expect("get")
            .is_some()
    );
    // A broken main file still stops an import: it names the store.
    site.write("feedsmith.toml", "[site]\ntitle = 3\n");
    let out = site.run(&[
        "import",
        &site.dir.path().join("one.json").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("feedsmith.toml:2:9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_that_is_not_json_is_rejected_with_its_position() {
    let site = new_site();
    let file = site.write("broken.json", "[\n  {\"id\": \"a\",\n  oops\n]");
    let out = site.run(&["import", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "rejected: {}: not valid JSON at line 3 column 3",
            file.display()
        )),
        "{err}"
    );
    let missing = site.run(&["import", "/no/such/file.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("rejected: /no/such/file.json: cannot read"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_lone_surrogate_escape_is_named_in_json_and_jsonl_files() {
    let site = new_site();
    let article = |id: &str, headline: &str| {
        format!(
            r#"{{"id": "{id}", "url": "https://e.com/{id}", "headline": "{headline}", "published_at": "2025-01-01T10:00:00Z"}}"#
        )
    };
    // The first line is long enough that a byte-counted and a character-counted
    // column would differ if the text before the escape were not ASCII.
    let json_text = format!("[\n{}\n]\n", article("a", r"Café \ud800"));
    let json = site.write("in/one.json", &json_text);
    let lines = [
        article("b", r"\udc00 first"),
        article("c", r"\ud800x"),
        article("d", r"\u12"),
    ];
    let jsonl = site.write("in/lines.jsonl", &format!("{}\n", lines.join("\n")));
    let out = site.run(&["import", &site.dir.path().join("in").display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let half = "is half of a UTF-16 surrogate pair with no other half; JSON text must encode whole characters";
    // Columns count characters, as an editor shows them.
    let column = |line: &str, escape: &str| {
        let at = line.find(escape).expect("escape in fixture");
        line[..at].chars().count() + 1
    };
    let json_line = json_text.lines().nth(1).expect("second line");
    let expected = [
        format!(
            "rejected: {}: not valid JSON at line 2 column {}: \\ud800 {half}",
            json.display(),
            column(json_line, r"\ud800")
        ),
        format!(
            "rejected: {}: line 1: not valid JSON at column {}: \\udc00 {half}",
            jsonl.display(),
            column(&lines[0], r"\udc00")
        ),
        format!(
            "rejected: {}: line 2: not valid JSON at column {}: \\ud800 {half}",
            jsonl.display(),
            column(&lines[1], r"\ud800")
        ),
    ];
    for expected in &expected {
        assert!(
            err.lines().any(|l| l == expected),
            "missing {expected:?} in\n{err}"
        );
    }
    // A truncated escape is a different mistake and keeps a message of its own.
    let truncated = err
        .lines()
        .find(|l| l.contains(&format!("{}: line 3:", jsonl.display())))
        .unwrap_or_else(|| panic!("no rejection for line 3 in\n{err}"));
    assert!(
        truncated.contains(&format!(
            "not valid JSON at column {}: \\u12 is not a complete escape",
            column(&lines[2], r"\u12")
        )) && !truncated.contains("surrogate"),
        "{truncated}"
    );
}

#[tokio::test]
async fn an_id_given_twice_in_one_file_is_rejected_where_it_repeats() {
    let site = new_site();
    let one = |id: &str, headline: &str| {
        format!(
            r#"{{"id": "{id}", "url": "https://e.com/{id}", "headline": "{headline}", "published_at": "2025-01-01T10:00:00Z"}}"#
        )
    };
    let json = site.write(
        "in/a.json",
        &format!(
            "[{}, {}, {}, {}]",
            one("x", "first x"),
            one("y", "only y"),
            one("x", "second x"),
            one("x", "third x")
        ),
    );
    let jsonl = site.write(
        "in/b.jsonl",
        &format!("{}\n\n{}\n", one("z", "first z"), one("z", "second z")),
    );
    let out = site.run(&["import", &site.dir.path().join("in").display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "imported 3, updated 0, unchanged 0, rejected 3"
    );
    let err = stderr(&out);
    let (json, jsonl) = (json.display(), jsonl.display());
    for expected in [
        format!(
            "rejected: {json}: article 3 (id \"x\"): duplicate id \"x\": already given at article 1 of this file"
        ),
        format!(
            "rejected: {json}: article 4 (id \"x\"): duplicate id \"x\": already given at article 1 of this file"
        ),
        format!(
            "rejected: {jsonl}: line 3 (id \"z\"): duplicate id \"z\": already given at line 1 of this file"
        ),
    ] {
        assert!(
            err.lines().any(|l| l == expected),
            "missing {expected:?} in\n{err}"
        );
    }
    let store = site.store().await;
    for (id, headline) in [("x", "first x"), ("y", "only y"), ("z", "first z")] {
        let stored = store
            .get(&id.parse().expect("id"))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(stored.article.headline, headline, "{id}");
    }
}

#[test]
fn check_reports_every_mistake_with_line_and_column() {
    let site = new_site();
    let config = fs::read_to_string(site.config()).expect("read");
    fs::write(
        site.config(),
        config.replace(
            "timezone = \"Europe/Dublin\"",
            "timezone = \"Mars/Olympus\"\ncolour = \"red\"",
        ),
    )
    .expect("write");
    site.write(
        "feeds/world.toml",
        "title = \"World\"\nrefresh = \"* * *\"\n",
    );
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let cfg = site.config().display().to_string();
    let world = site
        .dir
        .path()
        .join("feeds/world.toml")
        .display()
        .to_string();
    for expected in [
        format!("{cfg}:6:12: site.timezone: unknown timezone \"Mars/Olympus\""),
        format!("{cfg}:7:1: site.colour: unknown key `colour`"),
        format!("{world}:2:11: refresh: cron expression \"* * *\" has 3 fields"),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in\n{err}"
        );
    }
}

/// `len` bytes drawn from `abc=[]"\n {}#`, as a probe of the release build
/// wrote into a feed file: the same bytes on every run.
fn garbage(len: usize) -> String {
    const ALPHABET: &[u8] = b"abc=[]\"\n {}#";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

#[test]
fn check_refuses_a_huge_feed_file_by_its_size() {
    let site = new_site();
    let g = site.write("feeds/g.toml", &garbage(5_000_000));
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "{}: file is 4.8 MiB; a config file may be at most 1 MiB (is this the right file?)",
                g.display()
            ),
            format!("{}: 1 problem found", site.config().display()),
        ],
        "{err}"
    );
}

#[test]
fn check_lists_the_first_hundred_problems_and_counts_the_rest() {
    let site = new_site();
    let mut text = String::from("title = \"Noisy\"\n");
    for i in 1..=250 {
        text.push_str(&format!("key{i} = {i}\n"));
    }
    let noisy = site.write("feeds/noisy.toml", &text);
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 102, "{err}");
    for (i, line) in lines[..100].iter().enumerate() {
        let n = i + 1;
        let want = format!(
            "{}:{}:1: key{n}: unknown key `key{n}`",
            noisy.display(),
            n + 1
        );
        assert!(line.starts_with(&want), "{line}");
    }
    assert_eq!(lines[100], "… and 150 more problems");
    assert_eq!(
        lines[101],
        format!("{}: 250 problems found", site.config().display())
    );
}

#[test]
fn check_accepts_the_shipped_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_feedsmith"))
        .args(["check", "--config", "config/feedsmith.toml"])
        .current_dir(repo_root())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("config/feedsmith.toml: ok, "), "{text}");
    assert!(text.contains("feed latest: Latest news"), "{text}");
}

#[test]
fn config_path_can_come_from_the_environment() {
    let site = new_site();
    let out = Command::new(env!("CARGO_BIN_EXE_feedsmith"))
        .arg("check")
        .env("FEEDSMITH_CONFIG", site.config())
        .current_dir(site.dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("does not exist yet"),
        "{}",
        stdout(&out)
    );
    assert!(
        !site.dir.path().join("data/articles.db").exists(),
        "check must not create the store"
    );
}

/// `feedsmith serve` as a process: its stderr lines arrive on a channel.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(site: &TempSite) -> Self {
        use std::io::BufRead;
        let mut child = serve_command(site)
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start feedsmith serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first log line (from now on) containing every one of `needles`.
    fn wait_for_line(&mut self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // Strip ANSI colours, in case the subscriber adds them anyway.
                    let plain = String::from_utf8_lossy(&strip_ansi(line.as_bytes())).into_owned();
                    self.seen.push(plain.clone());
                    if needles.iter().all(|n| plain.contains(n)) {
                        return plain;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needles:?} within 20s; the log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

/// `feedsmith serve` on `site`'s config, at `RUST_LOG=info`, its stdout (an
/// access log on `-`) discarded.
fn serve_command(site: &TempSite) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedsmith"));
    command
        .arg("--config")
        .arg(site.config())
        .arg("serve")
        .current_dir(repo_root())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null());
    command
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            while i < bytes.len() && !bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    out
}

#[test]
fn serve_logs_a_refused_edit_with_its_position_and_reloads_on_sighup() {
    let site = new_site();
    site.write(
        "feedsmith.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://127.0.0.1:8080\"\n\n\
             [site]\ntitle = \"T\"\ntimezone = \"Europe/Dublin\"\n\n\
             [store]\nurl = \"sqlite://{db}\"\n\n[output]\ndir = \"{out}\"\n\n[feeds]\ndir = \"{feeds}\"\n",
            db = site.dir.path().join("data/articles.db").display(),
            out = site.dir.path().join("published").display(),
            feeds = site.dir.path().join("feeds").display(),
        ),
    );
    let mut serve = Running::start(&site);
    serve.wait_for_line(&["serving", "127.0.0.1:"]);
    serve.wait_for_line(&["published feed", "latest"]);

    // A typo, and 120 more unknown keys: the log lists the first 100.
    let mut broken = String::from("title = \"Latest\"\nlimt = 5\n");
    for i in 0..120 {
        broken.push_str(&format!("k{i} = {i}\n"));
    }
    site.write("feeds/latest.toml", &broken);
    let logged = serve.wait_for_line(&["configuration error", "latest.toml:2:1", "limt"]);
    assert!(logged.contains("ERROR"), "{logged}");
    let more = serve.wait_for_line(&["… and 21 more problems"]);
    assert!(more.contains("ERROR"), "{more}");
    serve.wait_for_line(&["configuration rejected", "errors=121", "generation=1"]);
    let listed = serve
        .seen
        .iter()
        .filter(|l| l.contains("configuration error"))
        .count();
    assert_eq!(listed, 100, "{}", serve.seen.join("\n"));

    // Fixed on disk; SIGHUP applies it even if the watcher were off.
    site.write("feeds/latest.toml", "title = \"Latest\"\nlimit = 5\n");
    serve.wait_for_line(&["configuration applied"]);
    serve.signal("HUP");
    serve.wait_for_line(&["SIGHUP: reloading the configuration"]);
    serve.wait_for_line(&["configuration applied", "generation=3"]);

    serve.signal("TERM");
    let status = serve.child.wait().expect("wait");
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
}

/// A `serve` config for `site` on a free port; `extra` goes at the end.
fn serve_config(site: &TempSite, extra: &str) {
    site.write(
        "feedsmith.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://127.0.0.1:8080\"\n\n\
             [site]\ntitle = \"T\"\ntimezone = \"Europe/Dublin\"\n\n\
             [store]\nurl = \"sqlite://{db}\"\n\n[output]\ndir = \"{out}\"\n\n[feeds]\ndir = \"{feeds}\"\n\n{extra}\n",
            db = site.dir.path().join("data/articles.db").display(),
            out = site.dir.path().join("published").display(),
            feeds = site.dir.path().join("feeds").display(),
        ),
    );
}

/// The address in a `serving addr=…` log line.
fn served_addr(line: &str) -> String {
    let at = line.find("127.0.0.1:").expect("address in the line");
    line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect()
}

/// One `GET` over a fresh connection; the response's status line.
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read");
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until `path` holds `n` lines (the writer writes every 100 ms).
fn wait_for_lines(path: &std::path::Path, n: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never reached {n} lines: {text:?}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn sigusr1_reopens_the_access_log_after_logrotate_renames_it() {
    let site = new_site();
    let log = site.dir.path().join("access.log");
    let rotated = site.dir.path().join("access.log.1");
    serve_config(
        &site,
        &format!("[server.access_log]\npath = \"{}\"", log.display()),
    );
    let mut serve = Running::start(&site);
    let addr = served_addr(&serve.wait_for_line(&["serving", "127.0.0.1:"]));

    assert!(get(&addr, "/before-rotation").contains("404"));
    wait_for_lines(&log, 1);
    // logrotate: rename, then signal. Lines until the reopen still go to the
    // renamed file (the writer holds it open).
    fs::rename(&log, &rotated).expect("rename");
    assert!(get(&addr, "/between").contains("404"));
    wait_for_lines(&rotated, 2);
    serve.signal("USR1");
    serve.wait_for_line(&["reopened the access log", "access.log"]);
    assert!(get(&addr, "/after-rotation").contains("404"));
    assert!(get(&addr, "/healthz").contains("200"));

    serve.signal("TERM");
    let status = serve.child.wait().expect("wait");
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
    let old = fs::read_to_string(&rotated).expect("rotated log");
    let new = fs::read_to_string(&log).expect("new log");
    let targets = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split('"').nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        targets(&old),
        ["GET /before-rotation HTTP/1.1", "GET /between HTTP/1.1"]
    );
    // Written at exit: the last lines are flushed before the process ends.
    assert_eq!(
        targets(&new),
        ["GET /after-rotation HTTP/1.1", "GET /healthz HTTP/1.1"]
    );
}

/// `serve` with stderr to a file (not a terminal), as under a supervisor.
fn serve_to_file(site: &TempSite, stderr_path: &std::path::Path) -> String {
    let stderr = fs::File::create(stderr_path).expect("stderr file");
    let mut child = serve_command(site)
        .env_remove("NO_COLOR")
        .stderr(stderr)
        .spawn()
        .expect("start feedsmith serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let addr = loop {
        let text = fs::read_to_string(stderr_path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("serving")) {
            break served_addr(line);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not start: {text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(get(&addr, "/feeds/not-logged-here.rss").contains("404"));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{exit}");
    fs::read_to_string(stderr_path).expect("stderr")
}

#[test]
fn the_service_log_has_no_colour_codes_in_a_file_and_no_request_lines() {
    let site = new_site();
    serve_config(&site, "");
    let text = serve_to_file(&site, &site.dir.path().join("stderr.log"));
    assert!(text.contains("serving"), "{text}");
    assert!(!text.contains("\x1b["), "colour codes in a file: {text:?}");
    assert!(
        !text.contains("not-logged-here"),
        "a request in the service log: {text}"
    );
}

#[test]
fn log_format_json_makes_every_service_log_line_an_object() {
    let site = new_site();
    serve_config(&site, "[log]\nformat = \"json\"");
    let text = serve_to_file(&site, &site.dir.path().join("stderr.log"));
    assert!(text.lines().count() >= 2, "{text}");
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(text.contains("\"serving\""), "{text}");
    assert!(!text.contains("\x1b["), "{text:?}");
}
