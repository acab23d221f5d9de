//! How fast the WebSub hub pushes a write: write → delivered to a
//! subscriber's callback, and one write fanned out to many subscribers.
//!
//! Usage:
//!
//! ```sh
//! CARGO_TARGET_DIR=... cargo run --release --example websub-latency -- \
//!     [--writes 20] [--subscribers 1000] [--postgres postgres://postgres@127.0.0.1:5432/test]
//! ```
//!
//! It runs the whole service (`app::run`) in-process on 127.0.0.1 with one
//! feed (`latest`) and `[websub]` on, and a subscriber (a plain HTTP/1.1
//! server on 127.0.0.1) that echoes challenges and records when each
//! delivery arrives. SQLite (default, a temporary file) is watched with
//! `[schedule] watch = "1s"`; with `--postgres URL` the store is a fresh
//! schema of that database (dropped at the end) and writes arrive through
//! LISTEN/NOTIFY, with no watch and no schedule firing.
//!
//! 1. One subscriber: `--writes` times, upsert an article through the store
//!    API (as `feedsmith import` does) and time until the callback receives
//!    the RSS document containing it. Prints median, p90, min and max.
//! 2. Fan-out: `--subscribers` callbacks (distinct paths on one server)
//!    subscribe to the same topic; one write, then the time until the first,
//!    the median and the last of them has received it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feedsmith::article::{Article, RawArticle, ValidationContext};
use feedsmith::store::{ArticleStore, PostgresStore, SqliteLocation, SqliteStore};

type Log = Arc<Mutex<Vec<(String, Vec<u8>, Instant)>>>;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn story(id: &str, headline: &str) -> Article {
    let raw: RawArticle = serde_json::from_value(serde_json::json!({
        "id": id,
        "url": format!("https://bench.example/{id}"),
        "headline": headline,
        "published_at": chrono::Utc::now().to_rfc3339(),
    }))
    .expect("a bench article has the import shape");
    raw.validate(ValidationContext {
        timezone: chrono_tz::UTC,
    })
    .expect("a bench article is valid")
    .article
}

/// The subscriber: answers GETs with their `hub.challenge`, POSTs with 204,
/// and logs each POST's path, body and arrival.
async fn subscriber(log: Log) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the subscriber");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let _ = serve(socket, log).await;
            });
        }
    });
    base
}

async fn serve(mut socket: tokio::net::TcpStream, log: Log) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let reply = if method == "GET" {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "hub.challenge")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    } else {
        let path = target.split('?').next().unwrap_or_default().to_owned();
        log.lock().expect("log").push((path, body, Instant::now()));
        String::new()
    };
    let status = if method == "GET" {
        "200 OK"
    } else {
        "204 No Content"
    };
    let out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{reply}",
        reply.len()
    );
    socket.write_all(out.as_bytes()).await?;
    socket.shutdown().await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let writes: usize = arg("--writes").and_then(|w| w.parse().ok()).unwrap_or(20);
    let subscribers: usize = arg("--subscribers")
        .and_then(|w| w.parse().ok())
        .unwrap_or(1000);
    let postgres = arg("--postgres");

    let dir = tempfile::tempdir().expect("temp dir");
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).expect("feeds dir");
    std::fs::write(feeds.join("latest.toml"), "title = \"Latest\"\n").expect("feed file");
    let schema = format!("feedsmith_websub_bench_{}", std::process::id());
    let (store_url, schedule) = match &postgres {
        Some(admin) => {
            let pool = sqlx::PgPool::connect(admin).await.expect("PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&pool)
                .await
                .expect("create the bench schema");
            let sep = if admin.contains('?') { '&' } else { '?' };
            (
                format!("{admin}{sep}options[search_path]={schema}"),
                "refresh = \"0 3 1 1 *\"".to_owned(),
            )
        }
        None => (
            format!("sqlite://{}", dir.path().join("articles.db").display()),
            "refresh = \"0 3 1 1 *\"\nwatch = \"1s\"".to_owned(),
        ),
    };
    let config_path = dir.path().join("feedsmith.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://bench.example\"\n\
             [server.access_log]\nformat = \"off\"\n\
             [site]\ntitle = \"Bench\"\ntimezone = \"UTC\"\n\
             [store]\nurl = \"{store_url}\"\n\
             [output]\ndir = \"{out}\"\n[schedule]\n{schedule}\n[feeds]\ndir = \"{feeds}\"\n\
             [websub]\nenabled = true\nallow_callbacks = [\"127.0.0.1/32\"]\n\
             max_per_callback_host = 100000\nrequests_per_minute = 1000000\n\
             delivery_concurrency = 64\n",
            out = dir.path().join("published").display(),
            feeds = feeds.display(),
        ),
    )
    .expect("config");
    let config = feedsmith::config::Config::load(&config_path).expect("bench config is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(feedsmith::app::run(config, listener, async {
        let _ = stopped.await;
    }));

    let log: Log = Arc::default();
    let sub = subscriber(log.clone()).await;
    let client = reqwest::Client::new();
    let wait = |what: &'static str, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        move || assert!(Instant::now() < deadline, "timed out waiting for {what}")
    };
    let check = wait("the first build", 60);
    loop {
        let ok = client
            .get(format!("{base}/feeds/latest.rss"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let subscriptions = |n: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let check = wait("the subscriptions", 300);
            loop {
                let body = client
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .expect("healthz")
                    .bytes()
                    .await
                    .expect("healthz body");
                let health: serde_json::Value =
                    serde_json::from_slice(&body).expect("healthz is JSON");
                if health["websub"]["subscriptions"] == serde_json::json!(n) {
                    return;
                }
                check();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let subscribe = |i: usize| {
        let (client, base, sub) = (client.clone(), base.clone(), sub.clone());
        async move {
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("hub.mode", "subscribe")
                .append_pair("hub.topic", "http://bench.example/feeds/latest.rss")
                .append_pair("hub.callback", &format!("{sub}/cb/{i}"))
                .finish();
            loop {
                let r = client
                    .post(format!("{base}/websub"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
                    .send()
                    .await
                    .expect("subscribe");
                match r.status().as_u16() {
                    202 => return,
                    // Verifications in flight fill the slots: wait and retry.
                    503 => tokio::time::sleep(Duration::from_millis(20)).await,
                    s => panic!("subscribing answered {s}"),
                }
            }
        }
    };
    let writer: Box<dyn ArticleStore> = match &postgres {
        Some(_) => Box::new(PostgresStore::open(&store_url).await.expect("writer")),
        None => Box::new(
            SqliteStore::open(&SqliteLocation::File(dir.path().join("articles.db")))
                .await
                .expect("writer"),
        ),
    };
    let arrived = |path: &str, marker: &str| -> Vec<Instant> {
        log.lock()
            .expect("log")
            .iter()
            .filter(|(p, body, _)| {
                p == path && memchr::memmem::find(body, marker.as_bytes()).is_some()
            })
            .map(|(_, _, at)| *at)
            .collect()
    };

    let backend = if postgres.is_some() {
        "PostgreSQL (NOTIFY)"
    } else {
        "SQLite (watch = 1s)"
    };
    println!(
        "store: {backend}; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }

    // 1. Write → delivered, one subscriber.
    subscribe(0).await;
    subscriptions(1).await;
    let mut latencies = Vec::new();
    for i in 0..writes {
        let marker = format!("Bench write {i} of the run");
        let start = Instant::now();
        writer
            .upsert(&[story(&format!("bench-{i}"), &marker)])
            .await
            .expect("write");
        let check = wait("a delivery", 30);
        let at = loop {
            if let Some(at) = arrived("/cb/0", &marker).first() {
                break *at;
            }
            check();
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        latencies.push(at.duration_since(start));
        // Spread the writes over the watch interval: waiting for each
        // delivery would otherwise line every write up with the same point
        // of the poll.
        tokio::time::sleep(Duration::from_millis((i as u64 * 379) % 1000)).await;
    }
    latencies.sort();
    println!(
        "write → delivered, {writes} writes: median {}, p90 {}, min {}, max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(latencies[0]),
        ms(latencies[latencies.len() - 1])
    );

    // 2. Fan-out to many subscribers of one topic.
    if subscribers > 1 {
        let started = Instant::now();
        let mut pending = futures_util::stream::FuturesUnordered::new();
        let mut next = 1;
        while next < subscribers || !pending.is_empty() {
            while next < subscribers && pending.len() < 32 {
                pending.push(subscribe(next));
                next += 1;
            }
            use futures_util::StreamExt;
            pending.next().await;
        }
        subscriptions(subscribers).await;
        println!(
            "{subscribers} subscriptions made and verified in {}",
            ms(started.elapsed())
        );
        let marker = "Fan-out write of the run";
        let start = Instant::now();
        writer
            .upsert(&[story("bench-fan-out", marker)])
            .await
            .expect("write");
        let check = wait("every fan-out delivery", 120);
        let mut times = loop {
            let times: Vec<Duration> = (0..subscribers)
                .filter_map(|i| arrived(&format!("/cb/{i}"), marker).first().copied())
                .map(|at| at.duration_since(start))
                .collect();
            if times.len() == subscribers {
                break times;
            }
            check();
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        times.sort();
        println!(
            "one write → {subscribers} subscribers: first {}, median {}, last {}",
            ms(times[0]),
            ms(percentile(&times, 0.5)),
            ms(times[times.len() - 1])
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average after: {}", load.trim());
    }

    let _ = stop.send(());
    let _ = service.await;
    if let Some(admin) = &postgres {
        let pool = sqlx::PgPool::connect(admin).await.expect("PostgreSQL");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await;
    }
}
