//! The article store contract, written once against `ArticleStore` and run for
//! every backend: SQLite always, PostgreSQL when `FEEDSMITH_TEST_POSTGRES_URL`
//! names a server (each test in a schema of its own, dropped afterwards).

mod common;

use common::{article, ids};
use feedsmith::article::{Article, ArticleFilter, Status};
use feedsmith::store::{
    ArchivePage, ArticleKey, ArticleStore, Revision, SourceState, Upserted, Walk,
};
use serde_json::json;

fn filter(sections: &[&str], tags: &[&str], authors: &[&str]) -> ArticleFilter {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    ArticleFilter::new(&s(sections), &s(tags), &s(authors))
}

async fn upsert_bumps_revision_only_on_change(store: &dyn ArticleStore) {
    assert_eq!(store.revision().await.expect("revision"), Revision(0));
    let a = article("a", "2025-01-01T10:00:00Z", json!({}));
    let b = article("b", "2025-01-01T11:00:00Z", json!({}));
    let out = store.upsert(&[a.clone(), b.clone()]).await.expect("insert");
    assert_eq!(
        out,
        vec![
            Upserted::Inserted(Revision(1)),
            Upserted::Inserted(Revision(2))
        ]
    );
    assert_eq!(store.revision().await.expect("revision"), Revision(2));

    let out = store
        .upsert(&[a.clone(), b.clone()])
        .await
        .expect("re-import");
    assert_eq!(out, vec![Upserted::Unchanged, Upserted::Unchanged]);
    assert_eq!(
        store.revision().await.expect("revision"),
        Revision(2),
        "identical content bumps nothing"
    );

    let mut a2 = a.clone();
    a2.headline = "Edited headline".into();
    let out = store.upsert(&[a2.clone(), b]).await.expect("update");
    assert_eq!(
        out,
        vec![Upserted::Updated(Revision(3)), Upserted::Unchanged]
    );
    let stored = store.get(&a.id).await.expect("get").expect("present");
    assert_eq!(stored.article, a2);
    assert_eq!(stored.revision, Revision(3));
    assert_eq!(store.upsert(&[]).await.expect("empty batch"), vec![]);
}

async fn get_returns_exactly_what_was_written(store: &dyn ArticleStore) {
    let full = article(
        "full.article_1",
        "2025-09-29T09:15:00+01:00",
        json!({
            "standfirst": "Summary with & < > \" ' ]]> and 🦀",
            "body_html": "<p>Body — naïve résumé 日本語</p>\r\n\t",
            "authors": [{"name": "Aoife Brennan", "email": "a@example.com", "url": "https://e.com/a"}, {"name": "Tomás Ó Briain"}],
            "source": {"name": "Northwire", "rights": "© Northwire, 2025", "url": "https://northwire.example.org/"},
            "section": "World",
            "tags": ["UN", "Climate"],
            "image": {"url": "https://e.com/i.jpg", "caption": "Cap", "credit": "Lena Vogt", "mime_type": "image/jpeg", "length": 48213},
            "related": [{"title": "Earlier", "url": "https://e.com/earlier?a=1&b=2"}],
            "updated_at": "2025-09-29T12:50:00.123456+01:00",
            "status": "draft"
        }),
    );
    let bare = article("bare", "2025-01-01T00:00:00Z", json!({}));
    store
        .upsert(&[full.clone(), bare.clone()])
        .await
        .expect("insert");
    assert_eq!(
        store.get(&full.id).await.expect("get").map(|s| s.article),
        Some(full)
    );
    assert_eq!(
        store.get(&bare.id).await.expect("get").map(|s| s.article),
        Some(bare)
    );
    let missing = "missing".parse().expect("id");
    assert_eq!(store.get(&missing).await.expect("get"), None);
}

async fn newest_orders_and_limits(store: &dyn ArticleStore) {
    store
        .upsert(&[
            article("c", "2025-01-02T00:00:00Z", json!({})),
            article("a", "2025-01-03T00:00:00Z", json!({})),
            article("b", "2025-01-03T00:00:00Z", json!({})),
            article("d", "2025-01-01T00:00:00Z", json!({})),
        ])
        .await
        .expect("insert");
    let all = ArticleFilter::default();
    assert_eq!(
        ids(&store.newest(&all, 10).await.expect("newest")),
        ["b", "a", "c", "d"]
    );
    assert_eq!(
        ids(&store.newest(&all, 2).await.expect("newest")),
        ["b", "a"]
    );
}

/// The streamed read is the same query: the same articles in the same
/// order, limit and filter applied.
async fn newest_stream_is_newest_one_by_one(store: &dyn ArticleStore) {
    use futures_util::TryStreamExt;
    store
        .upsert(&[
            article("c", "2025-01-02T00:00:00Z", json!({"section": "World"})),
            article("a", "2025-01-03T00:00:00Z", json!({"section": "World"})),
            article("b", "2025-01-03T00:00:00Z", json!({})),
            article("d", "2025-01-01T00:00:00Z", json!({"section": "World"})),
            article("e", "2025-01-04T00:00:00Z", json!({"status": "draft"})),
        ])
        .await
        .expect("insert");
    for (filter, limit) in [
        (ArticleFilter::default(), 10),
        (ArticleFilter::default(), 2),
        (filter(&["World"], &[], &[]), 10),
    ] {
        let whole = store.newest(&filter, limit).await.expect("newest");
        let streamed: Vec<_> = store
            .newest_stream(&filter, limit)
            .try_collect()
            .await
            .expect("newest_stream");
        assert_eq!(streamed, whole, "limit {limit}");
    }
    let all = ArticleFilter::default();
    let streamed: Vec<_> = store
        .newest_stream(&all, 10)
        .try_collect()
        .await
        .expect("newest_stream");
    assert_eq!(ids(&streamed), ["b", "a", "c", "d"]);
}

async fn newest_shows_only_published(store: &dyn ArticleStore) {
    let live = article("live", "2025-01-01T00:00:00Z", json!({"section": "World"}));
    store
        .upsert(&[
            live.clone(),
            article(
                "draft",
                "2025-01-02T00:00:00Z",
                json!({"status": "draft", "section": "World"}),
            ),
            article(
                "gone",
                "2025-01-03T00:00:00Z",
                json!({"status": "withdrawn", "section": "World"}),
            ),
        ])
        .await
        .expect("insert");
    let world = filter(&["World"], &[], &[]);
    assert_eq!(
        ids(&store
            .newest(&ArticleFilter::default(), 10)
            .await
            .expect("newest")),
        ["live"]
    );
    assert_eq!(
        ids(&store.newest(&world, 10).await.expect("newest")),
        ["live"]
    );

    let mut withdrawn = live.clone();
    withdrawn.status = Status::Withdrawn;
    store.upsert(&[withdrawn]).await.expect("withdraw");
    assert!(store.newest(&world, 10).await.expect("newest").is_empty());
}

async fn newest_applies_every_filter(store: &dyn ArticleStore) {
    store
        .upsert(&[
            article("w1", "2025-01-01T00:00:00Z", json!({"section": "World", "tags": ["UN", "Russia"], "authors": [{"name": "Jane Doe"}]})),
            article("w2", "2025-01-02T00:00:00Z", json!({"section": "world", "tags": ["Climate"]})),
            article("b1", "2025-01-03T00:00:00Z", json!({"section": "Business", "tags": ["russia", "Energy"], "authors": [{"name": "John Roe"}, {"name": "Jane Doe"}]})),
            article("n1", "2025-01-04T00:00:00Z", json!({"tags": ["UN"]})),
        ])
        .await
        .expect("insert");
    let cases: &[(ArticleFilter, &[&str])] = &[
        (filter(&["World"], &[], &[]), &["w2", "w1"]),
        (
            filter(&["WORLD", "business"], &[], &[]),
            &["b1", "w2", "w1"],
        ),
        (filter(&[], &["Russia"], &[]), &["b1", "w1"]),
        (filter(&[], &["Russia", "UN"], &[]), &["n1", "b1", "w1"]),
        (filter(&[], &[], &["jane doe"]), &["b1", "w1"]),
        (filter(&["World"], &["Russia"], &[]), &["w1"]),
        (
            filter(&["World", "Business"], &["Russia"], &["Jane Doe"]),
            &["b1", "w1"],
        ),
        (filter(&[], &["Russia"], &["John Roe"]), &["b1"]),
        (filter(&["Sport"], &[], &[]), &[]),
        (filter(&[], &["UN"], &["Nobody"]), &[]),
    ];
    for (f, want) in cases {
        assert_eq!(
            ids(&store.newest(f, 10).await.expect("newest")),
            *want,
            "{f:?}"
        );
    }
    // An article matching two tags appears once, and the limit still holds.
    assert_eq!(
        ids(&store
            .newest(&filter(&[], &["Russia", "UN"], &[]), 2)
            .await
            .expect("newest")),
        ["n1", "b1"]
    );
}

async fn filter_rows_follow_updates(store: &dyn ArticleStore) {
    let a = article(
        "a",
        "2025-01-01T00:00:00Z",
        json!({"section": "World", "tags": ["UN"], "authors": [{"name": "Jane Doe"}]}),
    );
    store
        .upsert(std::slice::from_ref(&a))
        .await
        .expect("insert");
    let mut moved = a.clone();
    moved.section = Some("Business".into());
    moved.tags = vec!["Energy".into()];
    moved.authors.clear();
    store.upsert(&[moved]).await.expect("update");
    for gone in [
        filter(&["World"], &[], &[]),
        filter(&[], &["UN"], &[]),
        filter(&[], &[], &["Jane Doe"]),
    ] {
        assert!(
            store.newest(&gone, 10).await.expect("newest").is_empty(),
            "{gone:?}"
        );
    }
    assert_eq!(
        ids(&store
            .newest(&filter(&["Business"], &["energy"], &[]), 10)
            .await
            .expect("newest")),
        ["a"]
    );
}

async fn changed_since_lists_later_changes_in_order(store: &dyn ArticleStore) {
    let a = article("a", "2025-01-01T00:00:00Z", json!({}));
    let b = article("b", "2025-01-02T00:00:00Z", json!({"status": "draft"}));
    let c = article("c", "2025-01-03T00:00:00Z", json!({}));
    store.upsert(&[a.clone(), b, c]).await.expect("insert");
    let mut a2 = a;
    a2.status = Status::Withdrawn;
    store.upsert(&[a2]).await.expect("withdraw");
    let changes = store
        .changed_since(Revision(1), 100)
        .await
        .expect("changes");
    let got: Vec<(String, i64)> = changes
        .iter()
        .map(|s| (s.article.id.to_string(), s.revision.0))
        .collect();
    assert_eq!(got, vec![("b".into(), 2), ("c".into(), 3), ("a".into(), 4)]);
    assert_eq!(
        changes[2].article.status,
        Status::Withdrawn,
        "withdrawals are changes too"
    );
    assert_eq!(
        store
            .changed_since(Revision(1), 2)
            .await
            .expect("changes")
            .len(),
        2
    );
    assert!(
        store
            .changed_since(Revision(4), 100)
            .await
            .expect("changes")
            .is_empty()
    );
}

async fn one_batch_may_touch_an_article_twice(store: &dyn ArticleStore) {
    let a = article("a", "2025-01-01T00:00:00Z", json!({"tags": ["UN"]}));
    let mut a2 = a.clone();
    a2.tags = vec!["Climate".into()];
    let out = store
        .upsert(&[a.clone(), a2.clone(), a2.clone()])
        .await
        .expect("upsert");
    assert_eq!(
        out,
        vec![
            Upserted::Inserted(Revision(1)),
            Upserted::Updated(Revision(2)),
            Upserted::Unchanged
        ]
    );
    assert_eq!(
        store.get(&a.id).await.expect("get").map(|s| s.article),
        Some(a2)
    );
    assert!(
        store
            .newest(&filter(&[], &["UN"], &[]), 10)
            .await
            .expect("newest")
            .is_empty()
    );
    assert_eq!(
        ids(&store
            .newest(&filter(&[], &["Climate"], &[]), 10)
            .await
            .expect("newest")),
        ["a"]
    );
}

async fn large_batches_keep_every_article_and_filter_row(store: &dyn ArticleStore) {
    let batch: Vec<_> = (0..2_345)
        .map(|i| {
            article(
                &format!("n{i:05}"),
                &format!("2025-01-01T00:00:{:02}Z", i % 60),
                json!({"tags": [format!("t{}", i % 3), "all"], "authors": [{"name": "Jane Doe"}, {"name": format!("A{}", i % 7)}]}),
            )
        })
        .collect();
    let out = store.upsert(&batch).await.expect("insert");
    assert_eq!(out.len(), batch.len());
    assert!(matches!(
        out.last(),
        Some(Upserted::Inserted(Revision(2345)))
    ));
    assert_eq!(
        store
            .newest(&filter(&[], &["all"], &[]), 10_000)
            .await
            .expect("newest")
            .len(),
        2_345
    );
    assert_eq!(
        store
            .newest(&filter(&[], &["t1"], &["a3"]), 10_000)
            .await
            .expect("newest")
            .len(),
        (0..2_345).filter(|i| i % 3 == 1 && i % 7 == 3).count()
    );
    // Re-importing with every tenth article edited updates exactly those.
    let edited: Vec<_> = batch
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut a = a.clone();
            if i % 10 == 0 {
                a.tags = vec!["edited".into()];
            }
            a
        })
        .collect();
    let out = store.upsert(&edited).await.expect("update");
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Upserted::Updated(_)))
            .count(),
        235
    );
    assert_eq!(
        out.iter().filter(|o| **o == Upserted::Unchanged).count(),
        2_110
    );
    assert_eq!(
        store
            .newest(&filter(&[], &["all"], &[]), 10_000)
            .await
            .expect("newest")
            .len(),
        2_110
    );
    assert_eq!(
        store
            .newest(&filter(&[], &["edited"], &[]), 10_000)
            .await
            .expect("newest")
            .len(),
        235
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        Revision(2_345 + 235)
    );
}

async fn source_state_is_saved_replaced_and_takes_no_revision(store: &dyn ArticleStore) {
    assert_eq!(store.source_states().await.expect("states"), vec![]);
    let at = |s: i64| chrono::DateTime::from_timestamp(1_750_000_000 + s, 0).expect("time");
    let wire = SourceState {
        url: "https://wire.example/feed.xml".into(),
        etag: Some("\"v1\"".into()),
        last_modified: Some("Mon, 07 Dec 2026 10:00:00 GMT".into()),
        last_success: Some(at(0)),
        last_status: Some(200),
        not_before: Some(at(300)),
        ..SourceState::default()
    };
    let gone = SourceState {
        url: "https://old.example/rss".into(),
        last_error: Some("the upstream answered 410 Gone ✗".into()),
        error_since: Some(at(5)),
        last_status: Some(410),
        failures: 3,
        gone: true,
        ..SourceState::default()
    };
    store.save_source_state("wire", &wire).await.expect("save");
    store.save_source_state("old", &gone).await.expect("save");
    assert_eq!(
        store.source_states().await.expect("states"),
        vec![
            ("old".to_owned(), gone.clone()),
            ("wire".to_owned(), wire.clone())
        ]
    );
    let revalidated = SourceState {
        last_success: Some(at(60)),
        last_status: Some(304),
        ..wire
    };
    store
        .save_source_state("wire", &revalidated)
        .await
        .expect("replace");
    assert_eq!(
        store.source_states().await.expect("states"),
        vec![("old".to_owned(), gone), ("wire".to_owned(), revalidated)]
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        Revision(0),
        "fetch state is no article change"
    );
}

/// The store keeps when a published article was withdrawn (its own clock),
/// for tombstones: never for an article withdrawn before it was published
/// (its id must not leak), kept while it stays withdrawn, cleared when it
/// is published again; `withdrawn` applies the feed's filters.
async fn withdrawal_time_is_kept_by_the_store(store: &dyn ArticleStore) {
    let world = json!({"section": "World", "tags": ["Climate"]});
    let live = article("live", "2025-01-01T00:00:00Z", world.clone());
    let other = article(
        "other",
        "2025-01-02T00:00:00Z",
        json!({"section": "Business"}),
    );
    let draft = article(
        "draft",
        "2025-01-03T00:00:00Z",
        json!({"status": "draft", "section": "World", "tags": ["Climate"]}),
    );
    let born = article(
        "born-withdrawn",
        "2025-01-04T00:00:00Z",
        json!({"status": "withdrawn", "section": "World", "tags": ["Climate"]}),
    );
    store
        .upsert(&[live.clone(), other.clone(), draft.clone(), born])
        .await
        .expect("insert");
    let all = ArticleFilter::default();
    assert!(
        store
            .withdrawn(&all, 10)
            .await
            .expect("withdrawn")
            .is_empty()
    );

    let withdraw = |a: &Article| {
        let mut a = a.clone();
        a.status = Status::Withdrawn;
        a
    };
    let before = chrono::Utc::now() - chrono::Duration::milliseconds(2);
    store
        .upsert(&[withdraw(&live), withdraw(&draft), withdraw(&other)])
        .await
        .expect("withdraw");
    let after = chrono::Utc::now() + chrono::Duration::milliseconds(2);
    let found = store.withdrawn(&all, 10).await.expect("withdrawn");
    assert_eq!(ids(&found), ["other", "live"], "newest published first");
    for f in &found {
        let at = f.withdrawn_at.expect("a withdrawal time");
        assert!(
            before <= at && at <= after,
            "{at} between {before} and {after}"
        );
    }
    let first = found[1].withdrawn_at;
    for filter in [filter(&["World"], &[], &[]), filter(&[], &["Climate"], &[])] {
        assert_eq!(
            ids(&store.withdrawn(&filter, 10).await.expect("withdrawn")),
            ["live"]
        );
    }
    assert_eq!(
        ids(&store.withdrawn(&all, 1).await.expect("withdrawn")),
        ["other"]
    );

    // An edit of the withdrawn article keeps its withdrawal time.
    let mut edited = withdraw(&live);
    edited.headline = "Withdrawn, and its headline edited".to_owned();
    store.upsert(&[edited]).await.expect("edit");
    let id = "live".parse().expect("id");
    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.withdrawn_at, first);

    // Published again: no longer withdrawn, and no time left behind.
    store.upsert(&[live]).await.expect("republish");
    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.withdrawn_at, None);
    assert_eq!(
        ids(&store.withdrawn(&all, 10).await.expect("withdrawn")),
        ["other"]
    );
}

async fn websub_rows_announce_once_claim_once_and_expire(store: &dyn ArticleStore) {
    use feedsmith::store::{DeliveryKind, Subscription, WebSubCounts};
    let ws = store.websub().expect("both SQL stores keep WebSub rows");
    let topic = "https://news.example/feeds/latest.rss";
    let sub = |callback: &str, expires_at: i64| Subscription {
        topic: topic.into(),
        callback: callback.into(),
        callback_host: "sub.example".into(),
        secret: String::new(),
        expires_at,
    };
    ws.save_subscription(&sub("https://sub.example/a", 10_000))
        .await
        .expect("save");
    ws.save_subscription(&sub("https://sub.example/b", 500))
        .await
        .expect("save");
    // A renewal replaces the row: still two subscriptions.
    let renewed = Subscription {
        secret: "s".into(),
        ..sub("https://sub.example/a", 20_000)
    };
    ws.save_subscription(&renewed).await.expect("renew");
    assert_eq!(
        ws.subscription(topic, "https://sub.example/a")
            .await
            .expect("read"),
        Some(renewed)
    );
    assert_eq!(
        ws.count_subscriptions("sub.example", 100)
            .await
            .expect("count"),
        (2, 2)
    );

    // The first sight of a topic queues nothing; a moved ETag queues a push
    // to each live subscriber (b's lease ended at 500) and a ping per hub,
    // once however many replicas announce it.
    let hubs = vec!["https://hub.example/".to_owned()];
    assert_eq!(
        ws.announce(topic, "\"e1\"", &hubs, 1_000)
            .await
            .expect("announce"),
        None
    );
    assert_eq!(
        ws.announce(topic, "\"e1\"", &hubs, 1_000)
            .await
            .expect("announce"),
        None
    );
    assert_eq!(
        ws.announce(topic, "\"e2\"", &hubs, 1_000)
            .await
            .expect("announce"),
        Some(2)
    );
    assert_eq!(
        ws.announce(topic, "\"e2\"", &hubs, 1_000)
            .await
            .expect("announce"),
        None
    );

    // A claim holds its rows until its lease lapses.
    let claimed = ws.claim_deliveries(1_000, 5_000, 10).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    assert!(
        ws.claim_deliveries(1_000, 5_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let push = claimed
        .iter()
        .find(|d| d.kind == DeliveryKind::Push)
        .expect("a push");
    assert_eq!(push.target, "https://sub.example/a");
    assert_eq!(push.etag, "\"e2\"");
    let ping = claimed
        .iter()
        .find(|d| d.kind == DeliveryKind::Ping)
        .expect("a ping");
    assert_eq!(ping.target, "https://hub.example/");

    // A change while the push is in flight replaces its ETag: finishing the
    // older one leaves the row, released, for the newer document.
    assert_eq!(
        ws.announce(topic, "\"e3\"", &hubs, 2_000)
            .await
            .expect("announce"),
        Some(2)
    );
    ws.delivered(push.id, &push.etag).await.expect("delivered");
    ws.delivered(ping.id, &ping.etag).await.expect("delivered");
    let again = ws.claim_deliveries(2_000, 6_000, 10).await.expect("claim");
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again.iter().all(|d| d.etag == "\"e3\""));
    // A failure puts it back for later, counted.
    let push = again
        .iter()
        .find(|d| d.kind == DeliveryKind::Push)
        .expect("a push");
    ws.retry_delivery(push.id, 9_000, true, "the callback answered 500")
        .await
        .expect("retry");
    let ping = again
        .iter()
        .find(|d| d.kind == DeliveryKind::Ping)
        .expect("a ping");
    ws.drop_delivery(ping.id).await.expect("drop");
    assert_eq!(
        ws.counts(2_000).await.expect("counts"),
        WebSubCounts {
            subscriptions: 1,
            deliveries_pending: 1,
            deliveries_failing: 1,
        }
    );
    assert!(
        ws.claim_deliveries(8_999, 20_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let retried = ws.claim_deliveries(9_000, 20_000, 10).await.expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);

    assert_eq!(ws.expire_subscriptions(600).await.expect("expire"), 1);
    assert!(
        ws.remove_subscription(topic, "https://sub.example/a")
            .await
            .expect("remove")
    );
    assert!(
        !ws.remove_subscription(topic, "https://sub.example/a")
            .await
            .expect("remove")
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        Revision(0),
        "hub rows are no article change"
    );
}

/// Walks between two feed-order keys (what an archive page reads): the
/// range bounds, inclusive or not, on every driving index; keys only; and
/// withdrawn rows in a range.
async fn walks_stay_within_their_key_range(store: &dyn ArticleStore) {
    let list: Vec<Article> = (0..12)
        .map(|i| {
            let tags = if i % 2 == 0 {
                json!(["Even"])
            } else {
                json!(["Odd"])
            };
            article(
                &format!("a{i:02}"),
                &format!("2025-02-01T{i:02}:00:00Z"),
                json!({"section": "World", "tags": tags, "authors": [{"name": "Ann"}]}),
            )
        })
        .collect();
    store.upsert(&list).await.expect("insert");
    let key = |i: usize| ArticleKey::of(&list[i]);
    let between = |after: usize, before: usize, inclusive: bool| Walk {
        after: Some(key(after)),
        before: Some((key(before), inclusive)),
        ..Walk::newest(Status::Published, 100)
    };
    for (what, f) in [
        ("everything", ArticleFilter::default()),
        ("a section", filter(&["World"], &[], &[])),
        ("tags", filter(&[], &["Even", "Odd"], &[])),
        ("an author", filter(&[], &[], &["Ann"])),
    ] {
        let walked = store.walk(&f, &between(3, 8, true)).await.expect("walk");
        assert_eq!(ids(&walked), ["a08", "a07", "a06", "a05", "a04"], "{what}");
        let walked = store.walk(&f, &between(3, 8, false)).await.expect("walk");
        assert_eq!(ids(&walked), ["a07", "a06", "a05", "a04"], "{what}");
        let keys = store
            .walk_keys(&f, &between(3, 8, true))
            .await
            .expect("walk keys");
        assert_eq!(keys, (4..=8).rev().map(key).collect::<Vec<_>>(), "{what}");
        let limited = Walk {
            limit: 2,
            ..between(3, 8, true)
        };
        let walked = store.walk(&f, &limited).await.expect("walk");
        assert_eq!(
            ids(&walked),
            ["a08", "a07"],
            "{what}: from the top of the range"
        );
        let open_below = Walk {
            after: None,
            ..between(0, 2, true)
        };
        let walked = store.walk(&f, &open_below).await.expect("walk");
        assert_eq!(ids(&walked), ["a02", "a01", "a00"], "{what}");
    }
    let even = filter(&[], &["Even"], &[]);
    let walked = store.walk(&even, &between(3, 8, true)).await.expect("walk");
    assert_eq!(ids(&walked), ["a08", "a06", "a04"]);

    let mut gone = list[5].clone();
    gone.status = Status::Withdrawn;
    store.upsert(&[gone]).await.expect("withdraw");
    let walked = store
        .walk(&ArticleFilter::default(), &between(3, 8, true))
        .await
        .expect("walk");
    assert_eq!(ids(&walked), ["a08", "a07", "a06", "a04"]);
    let withdrawn = Walk {
        status: Status::Withdrawn,
        ..between(3, 8, true)
    };
    let walked = store
        .walk(&filter(&[], &["Odd"], &[]), &withdrawn)
        .await
        .expect("walk");
    assert_eq!(ids(&walked), ["a05"]);
    assert!(walked[0].withdrawn_at.is_some());
}

/// Every sealed archive page of `feed` for `scope`.
async fn all(store: &dyn ArticleStore, feed: &str, scope: &str) -> Vec<ArchivePage> {
    store
        .archive_pages(feed, scope, 0..=u32::MAX)
        .await
        .expect("read")
}

/// Archive page bounds: the first writer's bounds stand, a feed's pages
/// belong to one scope, other feeds keep theirs, and a range of pages is
/// read by number.
async fn archive_pages_are_sealed_once_per_scope(store: &dyn ArticleStore) {
    let key = |id: &str, hour: u32| ArticleKey {
        published_at: format!("2025-03-01T{hour:02}:00:00.123456Z")
            .parse()
            .expect("time"),
        id: id.parse().expect("id"),
    };
    let page = |page: u32, id: &str, hour: u32| ArchivePage {
        page,
        newest: key(id, hour),
    };
    assert!(all(store, "latest", "s1").await.is_empty());
    assert_eq!(
        store
            .archive_page_count("latest", "s1")
            .await
            .expect("count"),
        0
    );
    let sealed = store
        .seal_archive_pages("latest", "s1", &[page(1, "a", 1), page(2, "b", 2)])
        .await
        .expect("seal");
    assert_eq!(sealed, 2);
    // Another replica sealing page 2 differently, and page 3, later.
    let sealed = store
        .seal_archive_pages("latest", "s1", &[page(2, "x", 9), page(3, "c", 3)])
        .await
        .expect("seal");
    assert_eq!(sealed, 3);
    assert_eq!(
        all(store, "latest", "s1").await,
        [page(1, "a", 1), page(2, "b", 2), page(3, "c", 3)]
    );
    assert_eq!(
        store
            .archive_pages("latest", "s1", 2..=3)
            .await
            .expect("read"),
        [page(2, "b", 2), page(3, "c", 3)]
    );
    assert_eq!(
        store
            .archive_pages("latest", "s1", 0..=1)
            .await
            .expect("read"),
        [page(1, "a", 1)]
    );
    store
        .seal_archive_pages("world", "w", &[page(1, "w", 4)])
        .await
        .expect("seal another feed");
    assert!(all(store, "latest", "s2").await.is_empty());
    // A new scope (the feed's filter or page size changed) starts afresh.
    let sealed = store
        .seal_archive_pages("latest", "s2", &[page(1, "d", 5)])
        .await
        .expect("seal");
    assert_eq!(sealed, 1);
    assert_eq!(all(store, "latest", "s2").await, [page(1, "d", 5)]);
    assert!(all(store, "latest", "s1").await.is_empty());
    assert_eq!(
        store
            .archive_page_count("latest", "s1")
            .await
            .expect("count"),
        0
    );
    assert_eq!(all(store, "world", "w").await, [page(1, "w", 4)]);
    assert_eq!(store.revision().await.expect("revision"), Revision(0));
}

macro_rules! store_suite {
    ($backend:ident, $open:expr, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    // `None` means the backend is not available here; the
                    // opener has printed why.
                    let Some((_guard, store)) = $open.await else {
                        return;
                    };
                    super::$test(&store).await;
                }
            )*
        }
    };
}

store_suite!(
    sqlite,
    crate::common::sqlite_store_opt(),
    [
        upsert_bumps_revision_only_on_change,
        get_returns_exactly_what_was_written,
        newest_orders_and_limits,
        newest_stream_is_newest_one_by_one,
        newest_shows_only_published,
        newest_applies_every_filter,
        filter_rows_follow_updates,
        changed_since_lists_later_changes_in_order,
        one_batch_may_touch_an_article_twice,
        large_batches_keep_every_article_and_filter_row,
        source_state_is_saved_replaced_and_takes_no_revision,
        withdrawal_time_is_kept_by_the_store,
        walks_stay_within_their_key_range,
        archive_pages_are_sealed_once_per_scope,
        websub_rows_announce_once_claim_once_and_expire,
    ]
);

store_suite!(
    postgres,
    crate::common::postgres_store(),
    [
        upsert_bumps_revision_only_on_change,
        get_returns_exactly_what_was_written,
        newest_orders_and_limits,
        newest_stream_is_newest_one_by_one,
        newest_shows_only_published,
        newest_applies_every_filter,
        filter_rows_follow_updates,
        changed_since_lists_later_changes_in_order,
        one_batch_may_touch_an_article_twice,
        large_batches_keep_every_article_and_filter_row,
        source_state_is_saved_replaced_and_takes_no_revision,
        withdrawal_time_is_kept_by_the_store,
        walks_stay_within_their_key_range,
        archive_pages_are_sealed_once_per_scope,
        websub_rows_announce_once_claim_once_and_expire,
    ]
);
