use super::*;
use std::fs;
use std::io::Read;
use tempfile::TempDir;

/// A config directory in a temp folder: `feedsmith.toml` plus `feeds/*.toml`.
struct Fixture {
    dir: TempDir,
}

const MAIN: &str = r#"[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1:8080"

[site]
title = "Example News"
timezone = "Europe/Dublin"

[store]
url = "sqlite::memory:"

[feeds]
dir = "FEEDS"
"#;

impl Fixture {
    fn new(main: &str, feeds: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let feeds_dir = dir.path().join("feeds");
        fs::create_dir(&feeds_dir).expect("feeds dir");
        let main = main.replace("FEEDS", &feeds_dir.display().to_string());
        fs::write(dir.path().join("feedsmith.toml"), main).expect("write main");
        for (name, text) in feeds {
            fs::write(feeds_dir.join(name), text).expect("write feed");
        }
        Self { dir }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.dir.path().join("feedsmith.toml"))
    }

    /// The problems, with the temp folder replaced by `DIR` so they read like output.
    fn problems(&self) -> Vec<String> {
        let err = self.load().expect_err("config should be invalid");
        let root = self.dir.path().display().to_string();
        err.problems
            .iter()
            .map(|p| p.to_string().replace(&root, "DIR"))
            .collect()
    }
}

fn latest() -> (&'static str, &'static str) {
    ("latest.toml", "title = \"Latest\"\n")
}

#[test]
fn shipped_default_config_is_valid() {
    let config = Config::load(Path::new(DEFAULT_CONFIG_PATH)).expect("shipped config loads");
    assert!(config.feeds.contains_key("latest"));
    let sectioned = config
        .feeds
        .values()
        .filter(|f| !f.sections.is_empty())
        .count();
    assert!(sectioned >= 2, "expected at least two section feeds");
    assert_eq!(config.site.timezone, chrono_tz::Europe::Dublin);
    assert_eq!(
        config.store.seed_dir.as_deref(),
        Some(Path::new("examples/articles"))
    );
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let f = Fixture::new(MAIN, &[latest()]);
    let c = f.load().expect("valid");
    let feed = c.feeds.values().next().expect("one feed");
    assert_eq!(feed.limit, DEFAULT_LIMIT);
    assert_eq!(feed.formats, Format::ALL.to_vec());
    assert_eq!(feed.refresh.source(), DEFAULT_REFRESH);
    assert_eq!(c.output_dir, PathBuf::from("data/published"));
    assert_eq!(
        c.site.url, c.server.base_url,
        "site url defaults to base_url"
    );
}

#[test]
fn three_mistakes_in_two_files_are_all_reported_with_positions() {
    let main = MAIN
        .replace(
            "timezone = \"Europe/Dublin\"",
            "timezone = \"Europe/Dubln\"",
        )
        .replace("[store]", "[store]\npool = 3");
    let f = Fixture::new(&main, &[("latest.toml", "title = \"Latest\"\nlimit = 0\n")]);
    let p = f.problems();
    assert_eq!(
        p,
        vec![
            "DIR/feedsmith.toml:7:12: site.timezone: unknown timezone \"Europe/Dubln\"; use an IANA name such as \"Europe/Dublin\" or \"UTC\"",
            "DIR/feedsmith.toml:10:1: store.pool: unknown key `pool`, expected one of `url`, `seed_dir`, `pool_size`",
            "DIR/feeds/latest.toml:2:9: limit: limit 0 is out of range 1..=10000",
        ]
    );
}

/// Asserts the config fails with exactly one problem at `file:line:col` containing `needle`.
fn fails_at(f: &Fixture, at: &str, needle: &str) {
    let p = f.problems();
    assert!(
        p.iter().any(|p| p.starts_with(at) && p.contains(needle)),
        "expected {at} …{needle}…, got {p:#?}"
    );
}

#[test]
fn main_file_rules() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "base_url = \"http://127.0.0.1:8080\"",
            "base_url = \"/relative\"",
            "feedsmith.toml:3:12",
            "server.base_url: \"/relative\" is not an absolute URL",
        ),
        (
            "listen = \"127.0.0.1:0\"",
            "listen = \"localhost\"",
            "feedsmith.toml:2:10",
            "server.listen: invalid socket address",
        ),
        (
            "title = \"Example News\"",
            "title = \"\"",
            "feedsmith.toml:6:9",
            "site.title: must not be empty",
        ),
        (
            "url = \"sqlite::memory:\"",
            "url = \"mysql://db\"",
            "feedsmith.toml:10:7",
            "neither sqlite://PATH nor postgres://",
        ),
        (
            "[site]",
            "[site]\nlanguage = \"en IE\"",
            "feedsmith.toml:6:12",
            "site.language: \"en IE\" is not a language tag",
        ),
        (
            "[store]",
            "[store]\nseed_dir = \"/definitely/not/here\"",
            "feedsmith.toml:10:12",
            "store.seed_dir: /definitely/not/here is not a directory",
        ),
        (
            "[server]",
            "[server]\nport = 80",
            "feedsmith.toml:2:1",
            "server.port: unknown key `port`",
        ),
        (
            "[feeds]",
            "[schedule]\nrefresh = \"every minute\"\n\n[feeds]",
            "feedsmith.toml:13:11",
            "schedule.refresh: cron expression \"every minute\" has 2 fields",
        ),
        (
            "[feeds]",
            "[extra]\nx = 1\n[feeds]",
            "feedsmith.toml:12:2",
            "extra: unknown key `extra`",
        ),
        (
            "url = \"sqlite::memory:\"",
            "url = \"sqlite::memory:\"\npool_size = 4",
            "feedsmith.toml:11:13",
            "store.pool_size: applies to PostgreSQL stores only",
        ),
        (
            "url = \"sqlite::memory:\"",
            "url = \"postgres://feedsmith@db.internal/news\"\npool_size = 101",
            "feedsmith.toml:11:13",
            "store.pool_size: 101 is out of range 1..=100",
        ),
        (
            "url = \"sqlite::memory:\"",
            "url = \"postgres://feedsmith@db.internal/news\"\npool_size = 0",
            "feedsmith.toml:11:13",
            "store.pool_size: 0 is out of range 1..=100",
        ),
        (
            "title = \"Example News\"\n",
            "",
            "feedsmith.toml:5:1",
            "missing required key `title`",
        ),
        (
            "title = \"Example News\"\n",
            "title = \"Example News\"\ntitle = \"Twice\"\n",
            "feedsmith.toml:7:1",
            "duplicate key",
        ),
    ];
    for (from, to, at, needle) in cases {
        assert!(MAIN.contains(from), "fixture lacks {from:?}");
        let f = Fixture::new(&MAIN.replacen(from, to, 1), &[latest()]);
        fails_at(&f, &format!("DIR/{at}"), needle);
    }
}

#[test]
fn a_bad_key_in_one_table_does_not_hide_a_missing_key_of_the_same_name_in_another() {
    // `feeds.dir` is reported and taken out first; `output` lacks its own `dir`.
    let main = MAIN
        .replace("dir = \"FEEDS\"", "dir = 3")
        .replace("[feeds]", "[output]\n\n[feeds]");
    let f = Fixture::new(&main, &[latest()]);
    // (Whatever follows comes from the default feeds folder, `feeds`.)
    assert_eq!(
        f.problems()[..2],
        [
            "DIR/feedsmith.toml:12:1: missing required key `dir`",
            "DIR/feedsmith.toml:15:7: feeds.dir: invalid type: integer `3`, expected path string",
        ]
    );
}

#[test]
fn postgres_pool_size_is_read_and_defaults_to_8() {
    let pg = MAIN.replace(
        "url = \"sqlite::memory:\"",
        "url = \"postgres://feedsmith@db.internal/news\"",
    );
    let config = Fixture::new(&pg, &[latest()]).load().expect("valid");
    assert_eq!(config.store.connect.pool_size, 8);
    let sized = pg.replace("[store]", "[store]\npool_size = 3");
    let config = Fixture::new(&sized, &[latest()]).load().expect("valid");
    assert_eq!(config.store.connect.pool_size, 3);
}

#[test]
fn connection_limits_and_deadlines_are_read_with_their_defaults() {
    let c = Fixture::new(MAIN, &[latest()]).load().expect("valid");
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.server.max_connections_per_address, 256);
    assert_eq!(c.server.header_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.send_timeout, Duration::from_secs(10));
    assert_eq!(c.server.min_send_rate, 1024);
    let set = MAIN.replace(
        "[site]",
        "max_connections_per_address = 8\nidle_timeout = \"5s\"\nsend_timeout = \"2s\"\nmin_send_rate = 4096\n\n[site]",
    );
    let c = Fixture::new(&set, &[latest()]).load().expect("valid");
    assert_eq!(c.server.max_connections_per_address, 8);
    assert_eq!(c.server.idle_timeout, Duration::from_secs(5));
    assert_eq!(c.server.send_timeout, Duration::from_secs(2));
    assert_eq!(c.server.min_send_rate, 4096);
    for (line, at, needle) in [
        (
            "max_connections_per_address = 0",
            "DIR/feedsmith.toml:5:31",
            "0 is out of range",
        ),
        (
            "min_send_rate = 0",
            "DIR/feedsmith.toml:5:17",
            "0 is out of range",
        ),
        (
            "idle_timeout = \"soon\"",
            "DIR/feedsmith.toml:5:16",
            "is not a duration",
        ),
    ] {
        let bad = MAIN.replace("[site]", &format!("{line}\n\n[site]"));
        fails_at(&Fixture::new(&bad, &[latest()]), at, needle);
    }
}

#[test]
fn feed_file_rules() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "title = \"\"\n",
            "latest.toml:1:9",
            "title: must not be empty",
        ),
        (
            "description = \"x\"\n",
            "latest.toml:1:1",
            "missing required key `title`",
        ),
        (
            "title = \"L\"\nlimit = 10001\n",
            "latest.toml:2:9",
            "limit 10001 is out of range 1..=10000",
        ),
        (
            "title = \"L\"\nlimit = \"fifty\"\n",
            "latest.toml:2:9",
            "limit: invalid type",
        ),
        (
            "title = \"L\"\nrefresh = \"*/5 * * *\"\n",
            "latest.toml:2:11",
            "has 4 fields",
        ),
        (
            "title = \"L\"\nrefresh = \"99 * * * *\"\n",
            "latest.toml:2:11",
            "invalid cron expression",
        ),
        (
            "title = \"L\"\nformats = [\"rss\", \"gopher\"]\n",
            "latest.toml:2:19",
            "unknown variant `gopher`",
        ),
        (
            "title = \"L\"\nformats = []\n",
            "latest.toml:2:11",
            "must list at least one",
        ),
        (
            "title = \"L\"\nformats = [\"rss\", \"rss\"]\n",
            "latest.toml:2:11",
            "lists a format twice",
        ),
        (
            "title = \"L\"\nsections = [\"World\", \"\"]\n",
            "latest.toml:2:12",
            "sections: must not be empty",
        ),
        (
            "title = \"L\"\ntagz = [\"x\"]\n",
            "latest.toml:2:1",
            "tagz: unknown key `tagz`",
        ),
        ("title = \"L\"\nlimit = \n", "latest.toml:2:", "expected"),
    ];
    for (text, at, needle) in cases {
        let f = Fixture::new(MAIN, &[("latest.toml", text)]);
        fails_at(&f, &format!("DIR/feeds/{at}"), needle);
    }
}

#[test]
fn feed_names_come_from_file_stems() {
    let f = Fixture::new(MAIN, &[latest(), ("Top_Stories.toml", "title = \"T\"\n")]);
    fails_at(
        &f,
        "DIR/feeds/Top_Stories.toml",
        "may only contain a-z, 0-9 and '-'",
    );
    // Other files in the folder are not feeds.
    let f = Fixture::new(
        MAIN,
        &[
            latest(),
            ("README.md", "# not a feed"),
            ("latest.toml~", "junk"),
        ],
    );
    assert_eq!(f.load().expect("valid").feeds.len(), 1);
}

#[test]
fn feeds_folder_must_exist_and_hold_a_feed() {
    let f = Fixture::new(MAIN, &[]);
    fails_at(&f, "DIR/feedsmith.toml:13:7", "no feed files");
    let f = Fixture::new(&MAIN.replace("FEEDS", "/no/such/feeds"), &[]);
    fails_at(
        &f,
        "DIR/feedsmith.toml:13:7",
        "feeds.dir: cannot read /no/such/feeds",
    );
}

#[test]
fn missing_config_file_names_the_path() {
    let err = Config::load(Path::new("/no/such/feedsmith.toml")).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("/no/such/feedsmith.toml: cannot read config"),
        "{err}"
    );
}

#[test]
fn feed_settings_are_typed_and_refresh_overrides_the_global_schedule() {
    let f = Fixture::new(
        &MAIN.replace(
            "[feeds]",
            "[schedule]\nrefresh = \"0 */15 * * * *\"\n\n[feeds]",
        ),
        &[
            latest(),
            (
                "world.toml",
                "title = \"World\"\nlimit = 10000\nsections = [\"World\", \"Europe\"]\ntags = [\"UN\"]\nauthors = [\"Jane Doe\"]\nformats = [\"json\", \"rss\"]\nrefresh = \"*/2 * * * *\"\n",
            ),
        ],
    );
    let c = f.load().expect("valid");
    let world = &c.feeds[&"world".parse::<FeedName>().expect("name")];
    assert_eq!(world.limit, 10_000);
    assert_eq!(world.formats, vec![Format::Rss, Format::Json]);
    assert_eq!(world.refresh.source(), "*/2 * * * *");
    assert_eq!(world.filter.sections, vec!["europe", "world"]);
    assert_eq!(world.sections, vec!["World", "Europe"]);
    let latest = &c.feeds[&"latest".parse::<FeedName>().expect("name")];
    assert_eq!(latest.refresh.source(), "0 */15 * * * *");
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread_with_its_path() {
    let limit = usize::try_from(MAX_FILE_BYTES).expect("fits");
    // Valid TOML, so only the size can be why it is refused.
    let big_feed = format!("title = \"Big\"\n{}", "# padding\n".repeat(limit / 10));
    let f = Fixture::new(MAIN, &[latest(), ("big.toml", &big_feed)]);
    assert_eq!(
        f.problems(),
        vec![
            "DIR/feeds/big.toml: file is 1.1 MiB; a config file may be at most 1 MiB (is this the right file?)"
        ]
    );

    let big_main = format!("{MAIN}{}", "#".repeat(5 * limit));
    let f = Fixture::new(&big_main, &[latest()]);
    assert_eq!(
        f.problems(),
        vec![
            "DIR/feedsmith.toml: file is 5.1 MiB; a config file may be at most 1 MiB (is this the right file?)"
        ]
    );

    // Exactly at the limit is read.
    let at_limit = format!("title = \"Full\"\n{}", "#".repeat(limit - 16));
    assert_eq!(at_limit.len(), limit - 1);
    let f = Fixture::new(MAIN, &[latest(), ("full.toml", &format!("{at_limit}\n"))]);
    assert_eq!(f.load().expect("valid").feeds.len(), 2);
}

#[test]
fn a_file_that_grows_past_the_limit_while_read_is_refused() {
    let limit = usize::try_from(MAX_FILE_BYTES).expect("fits");
    // Its size said it was small; the reader keeps giving bytes.
    let endless = std::io::repeat(b'#');
    let err = read_bounded(endless, 10).expect_err("over the limit");
    assert_eq!(
        err.to_string(),
        "file is more than 1 MiB; a config file may be at most 1 MiB (is this the right file?)"
    );
    let text = read_bounded(std::io::repeat(b'#').take(MAX_FILE_BYTES), 10).expect("at the limit");
    assert_eq!(text.len(), limit);
}

#[test]
fn thousands_of_problems_list_the_first_hundred_and_count_the_rest() {
    let limit = usize::try_from(MAX_FILE_BYTES).expect("fits");
    // Just under the limit: a valid title, then unknown keys with their line.
    let mut text = String::from("title = \"Noisy\"\n");
    let mut keys = 0;
    while text.len() + 40 < limit {
        keys += 1;
        text.push_str(&format!("key{keys} = {keys}\n"));
    }
    let f = Fixture::new(MAIN, &[latest(), ("noisy.toml", &text)]);
    let err = f.load().expect_err("invalid");
    assert!(keys > 50_000, "{keys}");
    assert_eq!(err.problems.len(), MAX_PROBLEMS);
    assert_eq!(err.omitted, keys - MAX_PROBLEMS);
    assert_eq!(err.total(), keys);
    // File order, with exact positions: key1 is on line 2, keyN on line N+1.
    for (i, p) in err.problems.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            p.location.at,
            Some(LineCol {
                line: n + 1,
                col: 1
            }),
            "{p}"
        );
        assert!(
            p.message
                .starts_with(&format!("key{n}: unknown key `key{n}`")),
            "{p}"
        );
    }
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), MAX_PROBLEMS + 1);
    assert_eq!(
        lines[MAX_PROBLEMS],
        format!("… and {} more problems", keys - MAX_PROBLEMS)
    );

    // Syntax errors are capped the same way.
    let garbage = "=\n".repeat(limit / 4);
    let f = Fixture::new(MAIN, &[latest(), ("garbage.toml", &garbage)]);
    let err = f.load().expect_err("invalid");
    assert_eq!(err.problems.len(), MAX_PROBLEMS);
    assert!(err.omitted > limit / 4, "{}", err.omitted);
    assert_eq!(
        err.to_string().lines().last(),
        Some(format!("… and {} more problems", err.omitted).as_str())
    );
}

#[test]
fn problems_in_several_files_are_capped_in_file_order() {
    let unknown = |n: usize| -> String {
        let mut text = String::from("title = \"T\"\n");
        for i in 0..n {
            text.push_str(&format!("x{i} = 1\n"));
        }
        text
    };
    let main = MAIN.replace("[store]", "[store]\npool = 3");
    let f = Fixture::new(
        &main,
        &[("a.toml", &unknown(60)), ("b.toml", &unknown(60)), latest()],
    );
    let err = f.load().expect_err("invalid");
    let root = f.dir.path().display().to_string();
    let files: Vec<String> = err
        .problems
        .iter()
        .map(|p| p.location.path.display().to_string().replace(&root, "DIR"))
        .collect();
    assert_eq!(files[0], "DIR/feedsmith.toml");
    assert!(
        files[1..61].iter().all(|f| f == "DIR/feeds/a.toml"),
        "{files:?}"
    );
    assert!(
        files[61..].iter().all(|f| f == "DIR/feeds/b.toml"),
        "{files:?}"
    );
    assert_eq!((err.problems.len(), err.omitted), (100, 21));
    assert_eq!(
        ConfigError::new(err.problems.clone()).omitted_line(),
        None,
        "a hundred fit"
    );
    assert_eq!(
        err.omitted_line().as_deref(),
        Some("… and 21 more problems")
    );
}

#[test]
fn the_access_log_defaults_to_combined_on_stdout_and_the_service_log_to_text() {
    let c = Fixture::new(MAIN, &[latest()]).load().expect("valid");
    assert_eq!(c.server.access_log.format, AccessLogFormat::Combined);
    assert_eq!(c.server.access_log.path, LogDestination::Stdout);
    assert_eq!(c.server.access_log.buffer_bytes, 1 << 20);
    assert_eq!(c.log.format, LogFormat::Text);
    let set = MAIN.replace(
        "[site]",
        "[server.access_log]\nformat = \"json\"\npath = \"logs/access.log\"\nbuffer_kib = 64\n\n\
         [log]\nformat = \"json\"\n\n[site]",
    );
    let c = Fixture::new(&set, &[latest()]).load().expect("valid");
    assert_eq!(c.server.access_log.format, AccessLogFormat::Json);
    // Relative, like every path in the file: resolved against the working directory.
    assert_eq!(
        c.server.access_log.path,
        LogDestination::File(PathBuf::from("logs/access.log"))
    );
    assert_eq!(c.server.access_log.buffer_bytes, 64 * 1024);
    assert_eq!(c.log.format, LogFormat::Json);
    let off = MAIN.replace(
        "[site]",
        "[server.access_log]\nformat = \"off\"\npath = \"-\"\n\n[site]",
    );
    let c = Fixture::new(&off, &[latest()]).load().expect("valid");
    assert_eq!(c.server.access_log.format, AccessLogFormat::Off);
    assert_eq!(c.server.access_log.path, LogDestination::Stdout);
}

#[test]
fn access_log_and_log_mistakes_are_reported_with_positions() {
    for (lines, at, needle) in [
        (
            "[server.access_log]\nformat = \"common\"",
            "DIR/feedsmith.toml:6:10",
            "server.access_log.format: unknown variant `common`, expected one of `combined`, `json`, `off`",
        ),
        (
            "[server.access_log]\npath = \"\"",
            "DIR/feedsmith.toml:6:8",
            "server.access_log.path: must not be empty",
        ),
        (
            "[server.access_log]\nbuffer_kib = 1",
            "DIR/feedsmith.toml:6:14",
            "1 is out of range 4..=1048576",
        ),
        (
            "[server.access_log]\nfile = \"x\"",
            "DIR/feedsmith.toml:6:1",
            "server.access_log.file: unknown key `file`",
        ),
        (
            "[log]\nformat = \"xml\"",
            "DIR/feedsmith.toml:6:10",
            "log.format: unknown variant `xml`, expected `text` or `json`",
        ),
        (
            "[log]\nlevel = \"debug\"",
            "DIR/feedsmith.toml:6:1",
            "log.level: unknown key `level`",
        ),
    ] {
        let bad = MAIN.replace("[site]", &format!("{lines}\n\n[site]"));
        fails_at(&Fixture::new(&bad, &[latest()]), at, needle);
    }
}

/// A valid main config whose sources folder holds `sources`.
fn with_sources(sources: &[(&str, &str)]) -> Fixture {
    let f = Fixture::new(
        &format!("{MAIN}\n[sources]\ndir = \"SOURCES\"\n"),
        &[latest()],
    );
    let dir = f.dir.path().join("sources");
    fs::create_dir(&dir).expect("sources dir");
    let main = f.dir.path().join("feedsmith.toml");
    let text = fs::read_to_string(&main).expect("main");
    fs::write(&main, text.replace("SOURCES", &dir.display().to_string())).expect("main");
    for (name, text) in sources {
        fs::write(dir.join(name), text).expect("write source");
    }
    f
}

#[test]
fn source_files_are_read_with_their_defaults() {
    let f = with_sources(&[
        ("wire.toml", "url = \"https://wire.example/feed.xml\"\n"),
        (
            "partner.toml",
            "url = \"http://partner.example/rss\"\nrefresh = \"*/10 * * * *\"\nname = \"Partner\"\n\
             section = \"World\"\nrights = \"© Partner\"\nmax_bytes = 2000000\ntimeout = \"5s\"\n",
        ),
        ("README.md", "not a source"),
    ]);
    let c = f.load().expect("valid");
    assert_eq!(c.sources.len(), 2);
    let wire = &c.sources["wire"];
    assert_eq!(wire.url.as_str(), "https://wire.example/feed.xml");
    assert_eq!(wire.refresh.source(), DEFAULT_REFRESH);
    assert_eq!(wire.max_bytes, DEFAULT_SOURCE_MAX_BYTES);
    assert_eq!(wire.timeout, DEFAULT_SOURCE_TIMEOUT);
    assert_eq!(
        (
            wire.source_name.as_deref(),
            wire.section.as_deref(),
            wire.rights.as_deref()
        ),
        (None, None, None)
    );
    let partner = &c.sources["partner"];
    assert_eq!(partner.refresh.source(), "*/10 * * * *");
    assert_eq!(partner.source_name.as_deref(), Some("Partner"));
    assert_eq!(partner.section.as_deref(), Some("World"));
    assert_eq!(partner.rights.as_deref(), Some("© Partner"));
    assert_eq!(partner.max_bytes, 2_000_000);
    assert_eq!(partner.timeout, Duration::from_secs(5));
}

#[test]
fn no_sources_folder_means_no_sources() {
    let f = Fixture::new(MAIN, &[latest()]);
    let c = f.load().expect("valid");
    assert!(c.sources.is_empty());
    assert_eq!(c.sources_dir, PathBuf::from("sources"));
}

#[test]
fn source_file_rules() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "wire.toml",
            "name = \"W\"\n",
            "wire.toml:1:1",
            "missing required key `url`",
        ),
        (
            "wire.toml",
            "url = \"ftp://wire.example/feed.xml\"\n",
            "wire.toml:1:7",
            "only http and https are allowed",
        ),
        (
            "wire.toml",
            "url = \"https://w.example/\"\nrefresh = \"99 * * * *\"\n",
            "wire.toml:2:11",
            "invalid cron expression",
        ),
        (
            "wire.toml",
            "url = \"https://w.example/\"\nsection = \" \"\n",
            "wire.toml:2:11",
            "section: must not be empty",
        ),
        (
            "wire.toml",
            "url = \"https://w.example/\"\nmax_bytes = 0\n",
            "wire.toml:2:13",
            "max_bytes 0 is out of range",
        ),
        (
            "wire.toml",
            "url = \"https://w.example/\"\ntimeout = \"0s\"\n",
            "wire.toml:2:11",
            "timeout: must be longer than zero",
        ),
        (
            "wire.toml",
            "url = \"https://w.example/\"\nurls = \"x\"\n",
            "wire.toml:2:1",
            "unknown key `urls`",
        ),
        (
            "Wire.toml",
            "url = \"https://w.example/\"\n",
            "Wire.toml",
            "source name \"Wire\" may only contain",
        ),
    ];
    for (file, text, at, needle) in cases {
        let f = with_sources(&[(file, text)]);
        fails_at(&f, &format!("DIR/sources/{at}"), needle);
    }
}

#[test]
fn check_source_text_reports_what_load_reports() {
    let source = Source::new(
        PathBuf::from("sources/wire.toml"),
        "url = \"gopher://x\"\n".to_owned(),
    );
    let problems = check_source_text(&source);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .to_string()
            .starts_with("sources/wire.toml:1:7: "),
        "{}",
        problems[0]
    );
}

#[test]
fn tombstones_default_to_a_week_and_are_read_as_a_duration() {
    let config = Fixture::new(MAIN, &[latest()]).load().expect("valid");
    assert_eq!(config.tombstones, DEFAULT_TOMBSTONES);
    assert_eq!(config.tombstones, Duration::from_secs(604_800));
    let off = MAIN.replace("[feeds]", "[feeds]\ntombstones = \"0s\"");
    let config = Fixture::new(&off, &[latest()]).load().expect("valid");
    assert!(config.tombstones.is_zero());
    let bad = MAIN.replace("[feeds]", "[feeds]\ntombstones = \"a week\"");
    fails_at(
        &Fixture::new(&bad, &[latest()]),
        "DIR/feedsmith.toml:13:14",
        "\"a week\" is not a duration",
    );
}

#[test]
fn websub_is_off_by_default_and_read_with_its_defaults() {
    let config = Fixture::new(MAIN, &[latest()]).load().expect("valid");
    assert_eq!(config.websub, WebSubConfig::default());
    assert!(!config.websub.enabled);

    let main = format!(
        "{MAIN}\n[websub]\nenabled = true\nallow_callbacks = [\"127.0.0.1/32\", \"fd00::/8\"]\n\
         hubs = [\"https://hub.example/\"]\nlease_default = \"1h\"\nlease_max = \"2d\"\n\
         max_per_callback_host = 5\nrequests_per_minute = 10\ndelivery_timeout = \"3s\"\n"
    );
    let w = Fixture::new(&main, &[latest()])
        .load()
        .expect("valid")
        .websub;
    assert!(w.enabled);
    assert_eq!(
        w.allow_callbacks,
        vec![
            "127.0.0.1/32".parse::<ipnet::IpNet>().expect("net"),
            "fd00::/8".parse().expect("net")
        ]
    );
    assert_eq!(w.hubs[0].as_str(), "https://hub.example/");
    assert_eq!(w.lease_default, Duration::from_secs(3600));
    assert_eq!(w.lease_max, Duration::from_secs(2 * 86_400));
    assert_eq!(w.max_per_callback_host, 5);
    assert_eq!(w.requests_per_minute, 10);
    assert_eq!(w.delivery_timeout, Duration::from_secs(3));
    assert_eq!(
        w.max_subscriptions,
        WebSubConfig::default().max_subscriptions
    );
}

#[test]
fn websub_mistakes_are_reported_with_positions() {
    for (lines, at, needle) in [
        (
            "[websub]\nallow_callbacks = [\"localhost\"]",
            "DIR/feedsmith.toml:6:19",
            "\"localhost\" is not an address range such as \"127.0.0.1/32\"",
        ),
        (
            "[websub]\nlease_max = \"10d\"\nlease_default = \"20d\"",
            "DIR/feedsmith.toml:7:17",
            "websub.lease_default: 20days is longer than websub.lease_max (10days)",
        ),
        (
            "[websub]\nhubs = [\"ftp://hub.example/\"]",
            "DIR/feedsmith.toml:6:8",
            "websub.hubs: \"ftp://hub.example/\" uses scheme \"ftp\"; only http and https are allowed",
        ),
        (
            "[websub]\nsecret = \"x\"",
            "DIR/feedsmith.toml:6:1",
            "websub.secret: unknown key `secret`",
        ),
    ] {
        let bad = MAIN.replace("[site]", &format!("{lines}\n\n[site]"));
        fails_at(&Fixture::new(&bad, &[latest()]), at, needle);
    }
}
