//! PostgreSQL-only behaviour: direct writes from a CMS, query plans on a
//! large table, and several replicas on one store. Skipped, saying why, when
//! `FEEDSMITH_TEST_POSTGRES_URL` is not set (`.ci/run` sets it).

mod common;

use common::{PgScratch, Service, ServiceOptions, article, postgres_store};
use feedsmith::article::ArticleFilter;
use feedsmith::store::{ArticleStore, ConnectOptions, PostgresStore, Revision};
use serde_json::json;

const CMS_INSERT: &str = "INSERT INTO articles (id, url, headline, section, tags, authors, published_at, updated_at) \
     VALUES ($1, 'https://news.example.com/' || $1, $2, 'World', '[\"Diplomacy\", \" UN \"]', \
             '[{\"name\": \"Jane Doe\"}]', $3::timestamptz, $3::timestamptz)";

/// A CMS that withdraws a story by updating its row gets the same
/// withdrawal time (the trigger's) as an import, so the feeds that listed
/// it carry a tombstone; a row it inserts already withdrawn gets none.
#[tokio::test]
async fn a_cms_withdrawal_is_timed_by_the_store() {
    let Some((_scratch, store)) = postgres_store().await else {
        return;
    };
    let pool = store.pool();
    sqlx::query(CMS_INSERT)
        .bind("cms-gone")
        .bind("To be withdrawn")
        .bind("2026-03-05T10:00:00Z")
        .execute(pool)
        .await
        .expect("a CMS insert");
    let before = chrono::Utc::now() - chrono::Duration::milliseconds(50);
    sqlx::query("UPDATE articles SET status = 'withdrawn' WHERE id = 'cms-gone'")
        .execute(pool)
        .await
        .expect("a CMS withdrawal");
    let after = chrono::Utc::now() + chrono::Duration::milliseconds(50);
    let found = store
        .withdrawn(&ArticleFilter::new(&[], &["diplomacy".into()], &[]), 10)
        .await
        .expect("withdrawn");
    assert_eq!(common::ids(&found), ["cms-gone"]);
    let at = found[0].withdrawn_at.expect("a withdrawal time");
    assert!(before <= at && at <= after, "{at}");
    // Even a CMS writing the column itself cannot set it on an insert.
    sqlx::query(
        "INSERT INTO articles (id, url, headline, section, tags, authors, published_at, updated_at, status, withdrawn_at) \
         VALUES ('cms-never', 'https://news.example.com/never', 'Never out', 'World', '[]', '[]', now(), now(), 'withdrawn', now())",
    )
    .execute(pool)
    .await
    .expect("a withdrawn insert");
    let never = store
        .get(&"cms-never".parse().expect("id"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(never.withdrawn_at, None);
}

#[tokio::test]
async fn direct_sql_writes_follow_the_revision_contract() {
    let Some((_scratch, store)) = postgres_store().await else {
        return;
    };
    let pool = store.pool();
    let start = store.revision().await.expect("revision");
    sqlx::query(CMS_INSERT)
        .bind("cms-1")
        .bind("Written by the CMS")
        .bind("2026-03-05T10:00:00Z")
        .execute(pool)
        .await
        .expect("a CMS insert");
    let after_insert = store.revision().await.expect("revision");
    assert_eq!(after_insert, Revision(start.0 + 1));

    // The article reads back like an imported one, keys included.
    let stored = store
        .get(&"cms-1".parse().expect("id"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.revision, after_insert);
    assert_eq!(stored.article.headline, "Written by the CMS");
    let by_tag = ArticleFilter::new(&[], &["un".into()], &["JANE DOE".into()]);
    let found = store.newest(&by_tag, 10).await.expect("newest");
    assert_eq!(common::ids(&found), ["cms-1"]);

    // Saving the same content again takes no revision; a real edit does.
    sqlx::query("UPDATE articles SET headline = headline WHERE id = 'cms-1'")
        .execute(pool)
        .await
        .expect("no-op update");
    assert_eq!(store.revision().await.expect("revision"), after_insert);
    sqlx::query("UPDATE articles SET headline = 'Edited' WHERE id = 'cms-1'")
        .execute(pool)
        .await
        .expect("edit");
    let edited = store.revision().await.expect("revision");
    assert_eq!(edited, Revision(after_insert.0 + 1));
    let changed = store
        .changed_since(after_insert, 10)
        .await
        .expect("changed");
    assert_eq!(common::ids(&changed), ["cms-1"]);

    // An import of different content after a CMS write updates it normally.
    let imported = article(
        "cms-1",
        "2026-03-05T10:00:00Z",
        json!({"headline": "Imported"}),
    );
    store
        .upsert(std::slice::from_ref(&imported))
        .await
        .expect("upsert");
    assert_eq!(
        store.revision().await.expect("revision"),
        Revision(edited.0 + 1)
    );
    assert_eq!(
        store.upsert(&[imported]).await.expect("again"),
        [feedsmith::store::Upserted::Unchanged]
    );

    // Re-tagging, re-dating and withdrawing from the CMS move articles
    // between tag and author feeds (the trigger rewrites their filter rows).
    let newest = |tags: &[&str], authors: &[&str]| {
        let filter = ArticleFilter::new(
            &[],
            &tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            &authors.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        );
        let store = store.clone();
        async move { common::ids(&store.newest(&filter, 10).await.expect("newest")) }
    };
    for (id, at) in [
        ("cms-2", "2026-03-01T10:00:00Z"),
        ("cms-3", "2026-03-02T10:00:00Z"),
    ] {
        sqlx::query(CMS_INSERT)
            .bind(id)
            .bind("From the CMS")
            .bind(at)
            .execute(pool)
            .await
            .expect("a CMS insert");
    }
    assert_eq!(newest(&["un"], &[]).await, ["cms-3", "cms-2"]);
    assert_eq!(newest(&[], &["jane doe"]).await, ["cms-3", "cms-2"]);
    sqlx::query(
        "UPDATE articles SET tags = '[\"Climate\"]', authors = '[{\"name\": \"Li Wei\"}]' \
         WHERE id = 'cms-3'",
    )
    .execute(pool)
    .await
    .expect("re-tag");
    assert_eq!(newest(&["un"], &[]).await, ["cms-2"]);
    assert_eq!(newest(&[], &["jane doe"]).await, ["cms-2"]);
    assert_eq!(newest(&["climate"], &["li wei"]).await, ["cms-3"]);
    assert!(newest(&["climate"], &["jane doe"]).await.is_empty());
    sqlx::query(
        "UPDATE articles SET published_at = '2026-03-09T10:00:00Z', \
         updated_at = '2026-03-09T10:00:00Z', tags = '[\"Climate\", \"UN\"]' WHERE id = 'cms-2'",
    )
    .execute(pool)
    .await
    .expect("re-date");
    assert_eq!(newest(&["climate"], &[]).await, ["cms-2", "cms-3"]);
    sqlx::query("UPDATE articles SET status = 'withdrawn' WHERE id = 'cms-2'")
        .execute(pool)
        .await
        .expect("withdraw");
    assert_eq!(newest(&["climate", "un"], &[]).await, ["cms-3"]);
    assert!(newest(&[], &["jane doe"]).await.is_empty());

    let err = sqlx::query("DELETE FROM articles WHERE id = 'cms-1'")
        .execute(pool)
        .await
        .expect_err("deletes are refused");
    assert!(err.to_string().contains("withdrawn"), "{err}");
}

/// `feedsmith build` and `import` open the store without LISTEN: no
/// notifications are promised, and reads and writes work as ever.
#[tokio::test]
async fn a_store_opened_for_a_command_does_not_listen() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    let once = PostgresStore::open_with(
        &scratch.url,
        ConnectOptions {
            listen: false,
            ..ConnectOptions::default()
        },
    )
    .await
    .expect("open without listening");
    assert!(once.changes().is_none());
    assert_eq!(once.notification_fault(), None);
    let a = article("once", "2026-01-01T00:00:00Z", json!({}));
    once.upsert(std::slice::from_ref(&a)).await.expect("write");
    let found = once
        .newest(&ArticleFilter::new(&[], &[], &[]), 10)
        .await
        .expect("read");
    assert_eq!(common::ids(&found), ["once"]);
    let service = PostgresStore::open(&scratch.url).await.expect("open");
    assert!(service.changes().is_some(), "a service's store listens");
}

#[tokio::test]
async fn a_store_from_the_first_schema_is_upgraded_with_its_filter_rows() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    // The store as the first release left it: only migration 0001 applied.
    let mut first = sqlx::migrate::Migrator::new(common::repo_root().join("migrations/postgres"))
        .await
        .expect("read the migrations");
    first.migrations = first
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = sqlx::PgPool::connect(&scratch.url).await.expect("connect");
    first.run(&pool).await.expect("apply 0001");
    for (id, at) in [
        ("old-1", "2026-02-01T10:00:00Z"),
        ("old-2", "2026-02-02T10:00:00Z"),
    ] {
        sqlx::query(CMS_INSERT)
            .bind(id)
            .bind("Before the upgrade")
            .bind(at)
            .execute(&pool)
            .await
            .expect("a CMS insert under 0001");
    }
    pool.close().await;

    let store = PostgresStore::open(&scratch.url)
        .await
        .expect("open upgrades the store");
    for (tags, authors) in [
        (vec!["un".to_owned()], vec![]),
        (vec![], vec!["jane doe".to_owned()]),
    ] {
        let found = store
            .newest(&ArticleFilter::new(&[], &tags, &authors), 10)
            .await
            .expect("newest");
        assert_eq!(
            common::ids(&found),
            ["old-2", "old-1"],
            "{tags:?} {authors:?}"
        );
    }

    // During a rolling upgrade the previous version's importer still writes:
    // it sets revision and keys itself under `feedsmith.writer = 'on'` and
    // knows nothing of the filter rows, which the trigger must then write.
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("SET LOCAL feedsmith.writer = 'on'")
        .execute(&mut *tx)
        .await
        .expect("set writer");
    sqlx::query(
        "WITH next AS (UPDATE store_state SET revision = revision + 1 RETURNING revision) \
         INSERT INTO articles (id, revision, url, headline, section, section_key, tags, tag_keys, \
                               authors, author_keys, published_at, updated_at) \
         SELECT 'old-importer', next.revision, 'https://news.example.com/old-importer', \
                'From the previous importer', 'World', 'world', '[\"UN\"]', '{un}', \
                '[{\"name\": \"Jane Doe\"}]', '{jane doe}', \
                '2026-02-03T10:00:00Z', '2026-02-03T10:00:00Z' FROM next",
    )
    .execute(&mut *tx)
    .await
    .expect("an insert as the previous importer made it");
    tx.commit().await.expect("commit");
    let found = store
        .newest(
            &ArticleFilter::new(&[], &["un".into()], &["jane doe".into()]),
            10,
        )
        .await
        .expect("newest");
    assert_eq!(common::ids(&found), ["old-importer", "old-2", "old-1"]);
}

#[tokio::test]
async fn feed_queries_use_indexes_on_a_large_table() {
    let Some((_scratch, store)) = postgres_store().await else {
        return;
    };
    let sections = ["World", "Business", "Sport", "Culture", "Science"];
    let batch: Vec<_> = (0..20_000)
        .map(|i| {
            article(
                &format!("a{i:05}"),
                &format!(
                    "2025-{:02}-{:02}T{:02}:00:00Z",
                    1 + i % 12,
                    1 + i % 28,
                    i % 24
                ),
                json!({
                    "section": sections[i % sections.len()],
                    "tags": [format!("tag{}", i % 300), "Common"],
                    "authors": [{"name": format!("Author {}", i % 150)}],
                }),
            )
        })
        .collect();
    for chunk in batch.chunks(5_000) {
        store.upsert(chunk).await.expect("load");
    }
    for table in ["articles", "article_tags", "article_authors"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(store.pool())
            .await
            .expect("analyze");
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let shapes = [
        ("no filter", ArticleFilter::new(&[], &[], &[])),
        ("one section", ArticleFilter::new(&s(&["World"]), &[], &[])),
        (
            "two sections",
            ArticleFilter::new(&s(&["World", "Sport"]), &[], &[]),
        ),
        ("a rare tag", ArticleFilter::new(&[], &s(&["tag7"]), &[])),
        (
            "a common tag",
            ArticleFilter::new(&[], &s(&["Common"]), &[]),
        ),
        ("an author", ArticleFilter::new(&[], &[], &s(&["Author 3"]))),
        (
            "two tags and an author",
            ArticleFilter::new(&[], &s(&["tag7", "Common"]), &s(&["Author 3"])),
        ),
        (
            "section and tag",
            ArticleFilter::new(&s(&["World"]), &s(&["tag10"]), &[]),
        ),
    ];
    for (what, filter) in shapes {
        let plan = store.explain_newest(&filter, 50).await.expect("explain");
        // Tag and author feeds must walk their value's newest-first index, not
        // collect every match and sort it.
        let walks = if !filter.sections.is_empty() {
            "articles_section_newest"
        } else if !filter.tags.is_empty() {
            "article_tags_newest"
        } else if !filter.authors.is_empty() {
            "article_authors_newest"
        } else {
            "articles_newest"
        };
        assert!(
            plan.contains(walks),
            "{what}: the plan does not walk {walks}:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan"),
            "{what}: the newest-50 query reads the whole table:\n{plan}"
        );
        assert!(
            plan.contains("Index"),
            "{what}: no index in the plan:\n{plan}"
        );
    }
    for (what, sql) in [
        (
            "revision",
            "SELECT revision FROM store_state WHERE singleton = 1",
        ),
        (
            "changes",
            "SELECT id FROM articles WHERE revision > 19990 ORDER BY revision LIMIT 1000",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .fetch_all(store.pool())
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan on articles"), "{what}:\n{plan}");
    }
}

#[tokio::test]
async fn a_replica_whose_listen_connection_drops_reconnects_and_catches_up() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    let service = Service::start(ServiceOptions {
        schedule: "refresh = \"0 3 1 1 *\"".into(),
        store_url: Some(scratch.url.clone()),
        ..ServiceOptions::default()
    })
    .await;
    let before = service.first_refresh(30).await;
    let writer = PostgresStore::open(&scratch.url).await.expect("writer");
    // Cut every LISTEN connection of this user on this database (other tests'
    // replicas reconnect too, which is what they are for; the one test whose
    // replica runs as a role of its own counts its connections, so it is
    // left alone), then write at once.
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND usename = current_user \
           AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(writer.pool())
    .await
    .expect("terminate listeners");
    assert!(!cut.is_empty(), "found the replica's LISTEN connection");
    sqlx::query(CMS_INSERT)
        .bind("after-the-cut")
        .bind("Written while the replica reconnected")
        .bind("2026-03-08T10:00:00Z")
        .execute(writer.pool())
        .await
        .expect("a CMS insert");
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let (_, _, body) = service.get("/feeds/latest.json").await;
    assert!(String::from_utf8_lossy(&body).contains("after-the-cut"));
}

#[tokio::test]
async fn a_replica_reports_lost_write_notifications_until_it_listens_again() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    // The replica connects as a role of its own, so its logins can be refused
    // without disturbing other tests.
    let role = format!("{}_replica", scratch.schema);
    let admin = sqlx::PgPool::connect(&scratch.url).await.expect("connect");
    let sql = |s: String| sqlx::query(sqlx::AssertSqlSafe(s));
    sql(format!("CREATE ROLE {role} LOGIN"))
        .execute(&admin)
        .await
        .expect("create a role");
    sql(format!("GRANT ALL ON SCHEMA {} TO {role}", scratch.schema))
        .execute(&admin)
        .await
        .expect("grant");
    let mut replica_url = url::Url::parse(&scratch.url).expect("a URL");
    replica_url.set_username(&role).expect("a user");
    replica_url.set_password(None).expect("no password");
    let service = Service::start(ServiceOptions {
        schedule: "refresh = \"0 3 1 1 *\"".into(),
        store_url: Some(replica_url.to_string()),
        // One query connection: only works because LISTEN has its own.
        store_extra: "pool_size = 1".into(),
        ..ServiceOptions::default()
    })
    .await;
    let before = service.first_refresh(30).await;
    assert_eq!(service.health().await["status"], "ok");
    // store.pool_size bounds the query connections; LISTEN has its own.
    let connections = listening_connections(&admin, &role).await;
    assert!(
        connections.len() <= 2,
        "pool_size = 1 plus LISTEN: {connections:?}"
    );

    // Cut the replica's connections, LISTEN included, and refuse new ones.
    sql(format!("ALTER ROLE {role} NOLOGIN"))
        .execute(&admin)
        .await
        .expect("refuse logins");
    let cut = listening_connections(&admin, &role).await;
    for (pid, _) in &cut {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&admin)
            .await
            .expect("terminate a connection of the replica");
    }
    let reason = service
        .wait_for(30, "/healthz to report lost notifications", || async {
            let health = service.health().await;
            let errors = health["errors"].as_array().cloned().unwrap_or_default();
            errors
                .iter()
                .find(|e| e["component"] == "store notifications")
                .map(|e| (health["status"].clone(), e["reason"].clone()))
        })
        .await;
    assert_eq!(reason.0, "degraded");
    assert!(
        reason
            .1
            .as_str()
            .is_some_and(|r| r.contains("article writes")),
        "{reason:?}"
    );

    // A write while it cannot hear; then it may log in again.
    sqlx::query(CMS_INSERT)
        .bind("while-deaf")
        .bind("Written while the replica could not listen")
        .bind("2026-03-08T10:00:00Z")
        .execute(&admin)
        .await
        .expect("a CMS insert");
    sql(format!("ALTER ROLE {role} LOGIN"))
        .execute(&admin)
        .await
        .expect("allow logins");
    service
        .wait_for(40, "/healthz ok again", || async {
            (service.health().await["status"] == "ok").then_some(())
        })
        .await;
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let (_, _, body) = service.get("/feeds/latest.json").await;
    assert!(String::from_utf8_lossy(&body).contains("while-deaf"));
    service.stop().await;

    // The role owns the tables its migrations made: drop them with it.
    sql(format!("DROP OWNED BY {role}"))
        .execute(&admin)
        .await
        .expect("drop what the role owns");
    sql(format!("DROP ROLE {role}"))
        .execute(&admin)
        .await
        .expect("drop the role");
}

/// `role`'s connections as (pid, query); one of them must be LISTENing.
async fn listening_connections(admin: &sqlx::PgPool, role: &str) -> Vec<(i32, String)> {
    let connections: Vec<(i32, String)> =
        sqlx::query_as("SELECT pid, query FROM pg_stat_activity WHERE usename = $1")
            .bind(role)
            .fetch_all(admin)
            .await
            .expect("list the replica's connections");
    assert!(
        connections.iter().any(|(_, q)| q.starts_with("LISTEN")),
        "found the replica's LISTEN connection among {connections:?}"
    );
    connections
}

/// Every feed document in every encoding, as (path, encoding, status, etag, body).
async fn snapshot(service: &Service) -> Vec<(String, String, u16, String, Vec<u8>)> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for feed in ["latest", "world", "business", "climate"] {
        for ext in ["rss", "atom", "json"] {
            for encoding in ["identity", "gzip", "br"] {
                let path = format!("/feeds/{feed}.{ext}");
                let r = client
                    .get(format!("{}{path}", service.base))
                    .header("accept-encoding", encoding)
                    .send()
                    .await
                    .expect("request");
                let status = r.status().as_u16();
                let etag = r
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                out.push((
                    path,
                    encoding.to_owned(),
                    status,
                    etag,
                    r.bytes().await.expect("body").to_vec(),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn two_replicas_serve_identical_bytes_and_converge_after_writes() {
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    // Refreshes once a year: only the store's notifications can bring writes in.
    let options = ServiceOptions {
        schedule: "refresh = \"0 3 1 1 *\"".into(),
        store_url: Some(scratch.url.clone()),
        ..ServiceOptions::default()
    };
    let (a, b) = tokio::join!(Service::start(options.clone()), Service::start(options));
    for replica in [&a, &b] {
        replica.first_refresh(30).await;
    }
    // Seeding the empty store takes one transaction per seed file, so the
    // replica that did not seed may first build from part of them; the
    // notifications of the rest bring it level.
    let first = converged(&a, &b).await;
    assert!(first.iter().all(|d| d.2 == 200), "every document served");
    let before = a.etag("/feeds/latest.rss").await;

    // A CMS writes straight into the database.
    let writer = PostgresStore::open(&scratch.url).await.expect("writer");
    sqlx::query(CMS_INSERT)
        .bind("from-the-cms")
        .bind("Written by the CMS")
        .bind("2026-03-06T10:00:00Z")
        .execute(writer.pool())
        .await
        .expect("a CMS insert");
    let new_a = a.wait_for_new_etag("/feeds/latest.rss", &before).await;
    let new_b = b.wait_for_new_etag("/feeds/latest.rss", &before).await;
    assert_eq!(new_a, new_b, "both converge on the same new document");
    let (_, _, body) = a.get("/feeds/world.atom").await;
    assert!(String::from_utf8_lossy(&body).contains("Written by the CMS"));

    // And feedsmith's own import path, into the same store.
    writer
        .upsert(&[article(
            "imported",
            "2026-03-07T10:00:00Z",
            json!({"section": "Business"}),
        )])
        .await
        .expect("import");
    a.wait_for_new_etag(
        "/feeds/business.rss",
        &first_etag(&first, "/feeds/business.rss"),
    )
    .await;
    b.wait_for_new_etag(
        "/feeds/business.rss",
        &first_etag(&first, "/feeds/business.rss"),
    )
    .await;
    converged(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

type Snapshot = [(String, String, u16, String, Vec<u8>)];

/// Waits until both replicas serve the same documents (failing with the
/// differences after 15 s) and returns them.
async fn converged(a: &Service, b: &Service) -> Vec<(String, String, u16, String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (x, y) = (snapshot(a).await, snapshot(b).await);
        if x == y || tokio::time::Instant::now() > deadline {
            assert_same(&x, &y);
            return x;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Compares two replicas' documents, naming each that differs (not the bytes).
fn assert_same(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.len(), b.len());
    let differ: Vec<String> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| {
            let (tx, ty) = (String::from_utf8_lossy(&x.4), String::from_utf8_lossy(&y.4));
            let at = tx
                .chars()
                .zip(ty.chars())
                .take_while(|(p, q)| p == q)
                .count();
            let context = |t: &str| {
                t.chars()
                    .skip(at.saturating_sub(40))
                    .take(120)
                    .collect::<String>()
            };
            format!(
                "{} ({}): {} {} vs {} {}\n  a: {}\n  b: {}",
                x.0,
                x.1,
                x.2,
                x.3,
                y.2,
                y.3,
                context(&tx),
                context(&ty)
            )
        })
        .collect();
    assert!(differ.is_empty(), "replicas differ:\n{}", differ.join("\n"));
}

fn first_etag(snapshot: &[(String, String, u16, String, Vec<u8>)], path: &str) -> String {
    snapshot
        .iter()
        .find(|d| d.0 == path && d.1 == "identity")
        .map(|d| d.3.clone())
        .unwrap_or_default()
}
