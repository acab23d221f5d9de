//! The WebSub hub end to end: the whole service (`app::run_with`) with
//! `[websub]` on, and a subscriber on 127.0.0.1 in the test that records
//! every request it gets. These follow the websub.rocks hub tests (100–104
//! for subscriptions, 100–101 for distribution), which need a public address
//! and so cannot be run against a test service.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{PgScratch, Service, ServiceOptions, article};
use feedsmith::store::ArticleStore;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// The topic every test subscribes to (the service's base URL is
/// `http://news.example.com`).
const TOPIC: &str = "http://news.example.com/feeds/latest.rss";

/// One request the subscriber got.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    /// Path and query, as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter of the target, decoded.
    fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How the subscriber answers verifications and deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Echo the challenge; 200 to deliveries.
    Agree,
    /// Echo something else.
    WrongEcho,
    /// Echo the challenge; 500 to deliveries.
    FailDeliveries,
}

/// A WebSub subscriber: an HTTP/1.1 server on 127.0.0.1:0.
struct Subscriber {
    base: String,
    got: Arc<Mutex<Vec<Got>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the subscriber");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let (log, how) = (got.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, how) = (log.clone(), how.clone());
                tokio::spawn(async move {
                    let _ = answer(socket, log, how).await;
                });
            }
        });
        Self {
            base,
            got,
            behaviour,
            task,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("behaviour") = behaviour;
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("log").clone()
    }

    fn posts(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.method == "POST")
            .collect()
    }

    fn gets(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.method == "GET")
            .collect()
    }

    /// Waits (up to `secs`) until `check` holds for what was received.
    async fn wait(&self, secs: u64, what: &str, check: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.got();
            if check(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut socket: tokio::net::TcpStream,
    log: Arc<Mutex<Vec<Got>>>,
    how: Arc<Mutex<Behaviour>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let got = Got {
        method,
        target,
        headers,
        body,
    };
    let behaviour = *how.lock().expect("behaviour");
    let (status, reply) = match (got.method.as_str(), behaviour) {
        ("GET", Behaviour::WrongEcho) => (200, "not the challenge".to_owned()),
        ("GET", _) => (200, got.param("hub.challenge").unwrap_or_default()),
        (_, Behaviour::FailDeliveries) => (500, String::new()),
        _ => (200, String::new()),
    };
    log.lock().expect("log").push(got);
    let out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{reply}",
        reply.len()
    );
    socket.write_all(out.as_bytes()).await?;
    socket.shutdown().await
}

/// `[websub]` on, callbacks on 127.0.0.1 allowed, and `extra` lines.
fn options(extra: &str) -> ServiceOptions {
    ServiceOptions {
        main_extra: format!(
            "[websub]\nenabled = true\nallow_callbacks = [\"127.0.0.1/32\"]\n{extra}"
        ),
        ..ServiceOptions::default()
    }
}

/// POSTs a subscription request form; the status and the body.
async fn hub_request(service: &Service, form: &[(&str, &str)]) -> (u16, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = reqwest::Client::new()
        .post(format!("{}/websub", service.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("hub request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn subscribe(service: &Service, callback: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let mut form = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", callback),
    ];
    form.extend_from_slice(extra);
    hub_request(service, &form).await
}

async fn websub_health(service: &Service) -> Value {
    service.health().await["websub"].clone()
}

/// Waits until `/healthz` counts `n` subscriptions.
async fn wait_for_subscriptions(service: &Service, n: i64) {
    service
        .wait_for(
            15,
            &format!("{n} websub subscriptions in /healthz"),
            || async { (websub_health(service).await["subscriptions"] == json!(n)).then_some(()) },
        )
        .await;
}

/// Writes an article into the latest feed, as a CMS would.
async fn write_story(service: &Service, id: &str, headline: &str) {
    service
        .writer()
        .await
        .upsert(&[article(
            id,
            "2026-12-07T10:00:00Z",
            json!({"headline": headline, "section": "World"}),
        )])
        .await
        .expect("write an article");
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_subscriber_is_verified_then_gets_each_change_signed() {
    let sub = Subscriber::start(Behaviour::Agree).await;
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;

    // Discovery: the Link headers and the document's hub link.
    let r = reqwest::get(format!("{}/feeds/latest.rss", service.base))
        .await
        .expect("feed");
    let link = r
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        link.contains("<http://news.example.com/websub>; rel=\"hub\"")
            && link.contains(&format!("<{TOPIC}>; rel=\"self\"")),
        "{link}"
    );
    let text = r.text().await.expect("body");
    assert!(
        text.contains("<atom:link href=\"http://news.example.com/websub\" rel=\"hub\"/>"),
        "{text}"
    );
    let (_, _, json_feed) = service.get("/feeds/latest.json").await;
    let json_feed: Value = serde_json::from_slice(&json_feed).expect("json feed");
    assert_eq!(
        json_feed["hubs"],
        json!([{"type": "WebSub", "url": "http://news.example.com/websub"}])
    );

    // websub.rocks 100-102: a typical request, with a secret and with
    // parameters the hub does not know.
    let callback = format!("{}/cb?subscriber=1", sub.base);
    let (status, text) = subscribe(
        &service,
        &callback,
        &[
            ("hub.secret", "s3cret"),
            ("hub.lease_seconds", "3600"),
            ("foo", "bar"),
        ],
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let got = sub
        .wait(10, "the verification GET", |g| !g.is_empty())
        .await;
    let verify = &got[0];
    assert_eq!(verify.method, "GET");
    assert_eq!(
        verify.param("subscriber").as_deref(),
        Some("1"),
        "the callback's query is kept"
    );
    assert_eq!(verify.param("hub.mode").as_deref(), Some("subscribe"));
    assert_eq!(verify.param("hub.topic").as_deref(), Some(TOPIC));
    assert_eq!(verify.param("hub.lease_seconds").as_deref(), Some("3600"));
    assert!(verify.param("hub.challenge").is_some_and(|c| c.len() >= 32));
    wait_for_subscriptions(&service, 1).await;

    // websub.rocks distribution 100-101: a change is pushed, signed.
    write_story(&service, "websub-pushed", "Pushed to subscribers").await;
    let posts = sub
        .wait(20, "a content delivery", |g| {
            g.iter().any(|r| {
                r.method == "POST"
                    && String::from_utf8_lossy(&r.body).contains("Pushed to subscribers")
            })
        })
        .await;
    let post = posts
        .iter()
        .rev()
        .find(|r| r.method == "POST")
        .expect("a POST");
    assert_eq!(post.target, "/cb?subscriber=1");
    assert_eq!(
        post.header("content-type"),
        Some("application/rss+xml; charset=utf-8")
    );
    let link = post.header("link").unwrap_or_default();
    assert!(
        link.contains("rel=\"hub\"") && link.contains(&format!("<{TOPIC}>; rel=\"self\"")),
        "{link}"
    );
    assert_eq!(
        post.header("x-hub-signature"),
        Some(format!("sha256={}", hmac_hex("s3cret", &post.body)).as_str())
    );
    // What was pushed is exactly what the feed serves.
    let (_, _, served) = service.get("/feeds/latest.rss").await;
    assert_eq!(post.body, served);
    let health = websub_health(&service).await;
    assert!(health["delivered"].as_u64() >= Some(1), "{health}");
}

#[tokio::test]
async fn a_wrong_challenge_echo_leaves_no_subscription() {
    let sub = Subscriber::start(Behaviour::WrongEcho).await;
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;
    let (status, _) = subscribe(&service, &format!("{}/cb", sub.base), &[]).await;
    assert_eq!(status, 202);
    service
        .wait_for(10, "a failed verification", || async {
            (websub_health(&service).await["verify_failed"] == json!(1)).then_some(())
        })
        .await;
    wait_for_subscriptions(&service, 0).await;
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-unseen", "Never pushed").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sub.posts().is_empty(), "{:#?}", sub.posts());
}

#[tokio::test]
async fn a_renewal_keeps_one_subscription_and_unsubscribing_stops_deliveries() {
    let sub = Subscriber::start(Behaviour::Agree).await;
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;
    let callback = format!("{}/cb", sub.base);

    // websub.rocks 103: subscribing again before the lease ends renews it.
    for _ in 0..2 {
        let before = sub.gets().len();
        assert_eq!(subscribe(&service, &callback, &[]).await.0, 202);
        sub.wait(10, "a verification", |g| {
            g.iter().filter(|r| r.method == "GET").count() > before
        })
        .await;
        wait_for_subscriptions(&service, 1).await;
    }
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-once", "Delivered once").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    sub.wait(20, "one delivery", |g| g.iter().any(|r| r.method == "POST"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sub.posts().len(), 1, "one subscription, one delivery");

    // websub.rocks 104: unsubscribing is verified too, then nothing comes.
    let (status, _) = hub_request(
        &service,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 202);
    let got = sub
        .wait(10, "the unsubscribe verification", |g| {
            g.iter()
                .any(|r| r.param("hub.mode").as_deref() == Some("unsubscribe"))
        })
        .await;
    let check = got
        .iter()
        .find(|r| r.param("hub.mode").as_deref() == Some("unsubscribe"))
        .expect("found");
    assert_eq!(check.param("hub.lease_seconds"), None);
    wait_for_subscriptions(&service, 0).await;
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-after", "After unsubscribing").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sub.posts().len(), 1, "no delivery after unsubscribing");
}

#[tokio::test]
async fn an_ended_lease_gets_no_more_deliveries() {
    let sub = Subscriber::start(Behaviour::Agree).await;
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;
    let (status, _) = subscribe(
        &service,
        &format!("{}/cb", sub.base),
        &[("hub.lease_seconds", "1")],
    )
    .await;
    assert_eq!(status, 202);
    let got = sub.wait(10, "a verification", |g| !g.is_empty()).await;
    assert_eq!(got[0].param("hub.lease_seconds").as_deref(), Some("1"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_for_subscriptions(&service, 0).await;
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-expired", "After the lease").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sub.posts().is_empty(), "{:#?}", sub.posts());
}

#[tokio::test]
async fn a_callback_on_a_refused_address_is_refused_without_a_connection() {
    // A listener on [::1] shows whether anything connects to it.
    let ipv6 = tokio::net::TcpListener::bind("[::1]:0").await.ok();
    let port = ipv6
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(9, |a| a.port());
    if ipv6.is_none() {
        eprintln!("note: no IPv6 loopback here; checking the refusal without watching [::1]");
    }
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;
    for callback in [
        format!("http://[::1]:{port}/cb"),
        format!("http://127.0.0.2:{port}/cb"),
        "http://10.0.0.1/cb".to_owned(),
        "http://[::ffff:192.168.1.1]/cb".to_owned(),
    ] {
        let (status, text) = subscribe(&service, &callback, &[]).await;
        assert_eq!(status, 403, "{callback}: {text}");
        assert!(text.contains("not allowed"), "{text}");
    }
    if let Some(listener) = ipv6 {
        let accepted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
        assert!(accepted.is_err(), "something connected to [::1]");
    }
    let health = websub_health(&service).await;
    assert_eq!(health["requests_invalid"], json!(4), "{health}");
}

#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_is_never_connected_to() {
    // No internal address allowed at all: `localhost` resolves to 127.0.0.1,
    // where the subscriber listens and would confirm.
    let sub = Subscriber::start(Behaviour::Agree).await;
    let port = sub.base.rsplit(':').next().unwrap_or_default().to_owned();
    let service = Service::start(ServiceOptions {
        main_extra: "[websub]\nenabled = true\n".into(),
        ..ServiceOptions::default()
    })
    .await;
    service.first_refresh(30).await;
    // The name is not refused at the door (it could resolve anywhere by the
    // time of the request); it is refused where it resolves.
    let (status, text) = subscribe(&service, &format!("http://localhost:{port}/cb"), &[]).await;
    assert_eq!(status, 202, "{text}");
    service
        .wait_for(15, "the verification to fail", || async {
            (websub_health(&service).await["verify_failed"] == json!(1)).then_some(())
        })
        .await;
    assert!(sub.got().is_empty(), "the hub connected: {:#?}", sub.got());
    assert_eq!(websub_health(&service).await["subscriptions"], json!(0));
}

#[tokio::test]
async fn bad_requests_and_limits_get_clear_statuses() {
    let sub = Subscriber::start(Behaviour::Agree).await;
    let service = Service::start(options(
        "requests_per_minute = 4\nmax_request_bytes = 1024\nmax_per_callback_host = 1\n",
    ))
    .await;
    service.first_refresh(30).await;
    let callback = format!("{}/cb", sub.base);

    // An unknown topic: 404 with the reason, and a denial to the callback.
    let mut form = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", "http://news.example.com/feeds/nope.rss"),
        ("hub.callback", callback.as_str()),
    ];
    let (status, text) = hub_request(&service, &form).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("not a feed of this hub"), "{text}");
    let got = sub.wait(10, "the denial", |g| !g.is_empty()).await;
    assert_eq!(got[0].param("hub.mode").as_deref(), Some("denied"));
    assert!(got[0].param("hub.reason").is_some());

    // A missing mode: 400 saying so.
    let (status, text) = hub_request(&service, &form[1..]).await;
    assert_eq!((status, text.trim()), (400, "hub.mode is missing"));

    // Over the size limit: 413.
    let big = "x".repeat(2000);
    form.push(("padding", &big));
    let (status, _) = hub_request(&service, &form).await;
    assert_eq!(status, 413);

    // One subscription per callback host: the second topic is refused.
    assert_eq!(subscribe(&service, &callback, &[]).await.0, 202);
    wait_for_subscriptions(&service, 1).await;
    let (status, text) = hub_request(
        &service,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", "http://news.example.com/feeds/latest.atom"),
            ("hub.callback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("as many subscriptions"), "{text}");

    // Four requests reached the hub this minute (the 413 did not): the
    // fifth is over the rate.
    let (status, _) = subscribe(&service, &callback, &[]).await;
    assert_eq!(status, 429);
    let health = websub_health(&service).await;
    assert_eq!(health["requests_rate_limited"], json!(1), "{health}");
    assert_eq!(health["requests_too_large"], json!(1), "{health}");
    assert_eq!(health["requests_over_limit"], json!(1), "{health}");

    // GET on the hub: 405 naming POST.
    let r = reqwest::get(format!("{}/websub", service.base))
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_a_restart() {
    let sub = Subscriber::start(Behaviour::FailDeliveries).await;
    let service = Service::start(options("")).await;
    service.first_refresh(30).await;
    assert_eq!(
        subscribe(&service, &format!("{}/cb", sub.base), &[])
            .await
            .0,
        202
    );
    wait_for_subscriptions(&service, 1).await;
    write_story(&service, "websub-retried", "Retried after a restart").await;
    sub.wait(20, "a failed delivery", |g| {
        g.iter().any(|r| r.method == "POST")
    })
    .await;
    service
        .wait_for(10, "a failing delivery in /healthz", || async {
            (websub_health(&service).await["deliveries_failing"] == json!(1)).then_some(())
        })
        .await;
    let dir = service.stop().await;

    sub.set(Behaviour::Agree);
    let service = Service::start_in(dir, options("")).await;
    service.first_refresh(30).await;
    wait_for_subscriptions(&service, 1).await;
    let failed = sub.posts().len();
    // The first retry is due 5 s after the failure.
    sub.wait(30, "the retried delivery", |g| {
        g.iter().filter(|r| r.method == "POST").count() > failed
    })
    .await;
    let last = sub.posts().pop().expect("a delivery");
    assert!(String::from_utf8_lossy(&last.body).contains("Retried after a restart"));
    service
        .wait_for(10, "no delivery pending", || async {
            (websub_health(&service).await["deliveries_pending"] == json!(0)).then_some(())
        })
        .await;
}

#[tokio::test]
async fn external_hubs_are_advertised_and_pinged_on_each_change() {
    // The recording server stands in for a public hub.
    let hub = Subscriber::start(Behaviour::Agree).await;
    let hub_url = format!("{}/hub", hub.base);
    let service = Service::start(options(&format!("hubs = [\"{hub_url}\"]\n"))).await;
    service.first_refresh(30).await;
    let r = reqwest::get(format!("{}/feeds/latest.atom", service.base))
        .await
        .expect("feed");
    let link = r
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        link.starts_with(&format!(
            "<http://news.example.com/websub>; rel=\"hub\", <{hub_url}>; rel=\"hub\", "
        )),
        "{link}"
    );
    let atom = r.text().await.expect("body");
    assert!(
        atom.contains(&format!("<link rel=\"hub\" href=\"{hub_url}\"/>")),
        "{atom}"
    );
    assert!(hub.got().is_empty(), "no ping before anything changed");

    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-pinged", "Pinged to the hub").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let got = hub
        .wait(20, "a publish ping for the RSS topic", |g| {
            g.iter()
                .any(|r| form_urlencoded::parse(&r.body).any(|(k, v)| k == "hub.url" && v == TOPIC))
        })
        .await;
    let ping = got
        .iter()
        .find(|r| form_urlencoded::parse(&r.body).any(|(k, v)| k == "hub.url" && v == TOPIC))
        .expect("found");
    assert_eq!(ping.method, "POST");
    assert_eq!(ping.target, "/hub");
    assert_eq!(
        ping.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        form_urlencoded::parse(&ping.body).any(|(k, v)| k == "hub.mode" && v == "publish"),
        "{:?}",
        String::from_utf8_lossy(&ping.body)
    );
}

#[tokio::test]
async fn a_reload_turns_the_hub_on_and_off() {
    let sub = Subscriber::start(Behaviour::Agree).await;
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(30).await;
    let hub_status = || async {
        reqwest::get(format!("{}/websub", service.base))
            .await
            .expect("hub")
            .status()
            .as_u16()
    };
    let hub_link = || async {
        let (_, _, body) = service.get("/feeds/latest.rss").await;
        String::from_utf8_lossy(&body).contains("rel=\"hub\"")
    };
    assert_eq!(hub_status().await, 404, "off: no hub");
    assert!(!hub_link().await);

    let config = service.path("feedsmith.toml");
    let off = std::fs::read_to_string(&config).expect("config");
    let on = format!("{off}\n[websub]\nenabled = true\nallow_callbacks = [\"127.0.0.1/32\"]\n");
    std::fs::write(&config, &on).expect("turn websub on");
    service
        .wait_for(15, "the hub to answer and the feeds to name it", || async {
            (hub_status().await == 405 && hub_link().await).then_some(())
        })
        .await;
    assert_eq!(
        subscribe(&service, &format!("{}/cb", sub.base), &[])
            .await
            .0,
        202
    );
    wait_for_subscriptions(&service, 1).await;
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-reloaded", "After turning it on").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    sub.wait(20, "a delivery", |g| g.iter().any(|r| r.method == "POST"))
        .await;

    std::fs::write(&config, &off).expect("turn websub off");
    service
        .wait_for(15, "the hub to go and the feeds to drop it", || async {
            (hub_status().await == 404 && !hub_link().await).then_some(())
        })
        .await;
    let r = reqwest::get(format!("{}/feeds/latest.rss", service.base))
        .await
        .expect("feed");
    assert!(
        r.headers().get("link").is_none(),
        "no Link header while off"
    );
    let delivered = sub.posts().len();
    let before = service.etag("/feeds/latest.rss").await;
    write_story(&service, "websub-off", "After turning it off").await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sub.posts().len(), delivered, "nothing is pushed while off");
}

#[tokio::test]
async fn two_replicas_on_postgresql_deliver_each_change_once() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    let sub = Subscriber::start(Behaviour::Agree).await;
    // Refreshes once a year: only the store's notifications bring writes in.
    let options = ServiceOptions {
        schedule: "refresh = \"0 3 1 1 *\"".into(),
        store_url: Some(scratch.url.clone()),
        ..options("")
    };
    let (a, b) = tokio::join!(Service::start(options.clone()), Service::start(options));
    for replica in [&a, &b] {
        replica.first_refresh(30).await;
    }
    // Both replicas serve the same bytes before anyone subscribes.
    a.wait_for(30, "the replicas to converge", || async {
        let (x, y) = (
            a.etag("/feeds/latest.rss").await,
            b.etag("/feeds/latest.rss").await,
        );
        (x == y).then_some(())
    })
    .await;
    assert_eq!(subscribe(&a, &format!("{}/cb", sub.base), &[]).await.0, 202);
    wait_for_subscriptions(&b, 1).await;

    let writer = feedsmith::store::PostgresStore::open(&scratch.url)
        .await
        .expect("writer");
    for i in 0..3 {
        let before = a.etag("/feeds/latest.rss").await;
        writer
            .upsert(&[article(
                &format!("replicated-{i}"),
                "2026-12-07T10:00:00Z",
                json!({"headline": format!("Replicated {i}"), "section": "World"}),
            )])
            .await
            .expect("write");
        a.wait_for_new_etag("/feeds/latest.rss", &before).await;
        sub.wait(20, "the change's delivery", |g| {
            g.iter().any(|r| {
                r.method == "POST"
                    && String::from_utf8_lossy(&r.body).contains(&format!("Replicated {i}"))
            })
        })
        .await;
    }
    // Time for a second replica's duplicate, were there one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bodies: Vec<Vec<u8>> = sub.posts().into_iter().map(|p| p.body).collect();
    let distinct: std::collections::HashSet<&Vec<u8>> = bodies.iter().collect();
    assert_eq!(
        distinct.len(),
        bodies.len(),
        "a document was delivered twice"
    );
    // The replicas announce the seeded document asynchronously, so a push of
    // it may come first; after it, each write is pushed once, in order.
    let writes: Vec<String> = bodies
        .iter()
        .map(|b| {
            let body = String::from_utf8_lossy(b);
            (0..3)
                .filter(|i| body.contains(&format!("Replicated {i}")))
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("+")
        })
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(writes, ["0", "0+1", "0+1+2"], "each change once, in order");
    assert!(bodies.len() <= 4, "{} deliveries", bodies.len());
}
