use super::*;
use crate::article::{ArticleId, RawArticle, ValidationContext};
use crate::store::{ArticleStore, Revision};

fn article(id: &str, day: u32, section: &str, tags: &[&str], authors: &[&str]) -> Article {
    let authors: Vec<serde_json::Value> = authors
        .iter()
        .map(|a| serde_json::json!({"name": a}))
        .collect();
    let raw: RawArticle = serde_json::from_value(serde_json::json!({
        "id": id,
        "url": format!("https://news.example.com/{id}"),
        "headline": id,
        "section": section,
        "tags": tags,
        "authors": authors,
        "published_at": format!("2025-01-{:02}T{:02}:00:00Z", day % 28 + 1, day % 24),
    }))
    .expect("fixture shape");
    raw.validate(ValidationContext {
        timezone: chrono_tz::UTC,
    })
    .expect("fixture valid")
    .article
}

async fn populated() -> SqliteStore {
    let store = SqliteStore::open(&SqliteLocation::Memory)
        .await
        .expect("open");
    let sections = ["World", "Business", "Sport", "Culture"];
    let tags = ["UN", "Russia", "Climate", "Energy", "Housing"];
    let authors = ["Jane Doe", "John Roe", "Ann Lee"];
    let batch: Vec<Article> = (0..2_000u32)
        .map(|i| {
            let i_us = i as usize;
            article(
                &format!("a{i}"),
                i,
                sections[i_us % sections.len()],
                &[tags[i_us % tags.len()], tags[(i_us / 7) % tags.len()]],
                &[authors[i_us % authors.len()]],
            )
        })
        .collect();
    store.upsert(&batch).await.expect("insert");
    store
}

async fn plan(store: &SqliteStore, filter: &ArticleFilter) -> Vec<String> {
    let (sql, binds) = walk_query(
        filter,
        &crate::store::Walk::newest(crate::article::Status::Published, 50),
    );
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    bind_all(sqlx::query(AssertSqlSafe(explain)), binds)
        .expect("sqlite binds")
        .fetch_all(store.pool())
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}

fn filter(sections: &[&str], tags: &[&str], authors: &[&str]) -> ArticleFilter {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    ArticleFilter::new(&s(sections), &s(tags), &s(authors))
}

#[tokio::test]
async fn newest_queries_use_indexes_and_never_scan_a_table() {
    let store = populated().await;
    let shapes = [
        filter(&[], &[], &[]),
        filter(&["World"], &[], &[]),
        filter(&["World", "Business"], &[], &[]),
        filter(&[], &["UN"], &[]),
        filter(&[], &["UN", "Climate"], &[]),
        filter(&[], &[], &["Jane Doe"]),
        filter(&["World"], &["UN"], &["Jane Doe"]),
        filter(&[], &["Russia"], &["John Roe", "Ann Lee"]),
    ];
    for f in &shapes {
        let lines = plan(&store, f).await;
        println!("{f:?}\n  {}", lines.join("\n  "));
        for line in &lines {
            // `SCAN (subquery-N)` reads a co-routine's at most `limit` rows;
            // `SCAN name` without an index reads a whole table.
            let scans_table = line.starts_with("SCAN ")
                && !line.starts_with("SCAN (")
                && !line.contains("USING INDEX")
                && !line.contains("USING COVERING INDEX");
            assert!(!scans_table, "{f:?} scans a table: {line}\n{lines:#?}");
        }
        // The walk that finds candidates must read an index in order, not sort a section.
        let sorts = lines
            .iter()
            .filter(|l| l.contains("TEMP B-TREE FOR ORDER BY"))
            .count();
        let allowed = if f == &ArticleFilter::default() { 0 } else { 1 };
        assert!(sorts <= allowed, "{f:?} sorts {sorts} times:\n{lines:#?}");
    }
    // The plans answer correctly too.
    let got = store
        .newest(&filter(&["World"], &["UN"], &["Jane Doe"]), 50)
        .await
        .expect("newest");
    assert!(!got.is_empty());
    for s in &got {
        assert_eq!(s.article.section.as_deref(), Some("World"));
        assert!(s.article.tags.iter().any(|t| t == "UN"));
        assert!(s.article.authors.iter().any(|a| a.name == "Jane Doe"));
    }
}

#[tokio::test]
async fn revision_queries_use_indexes() {
    let store = populated().await;
    let plans: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT id FROM articles WHERE revision > ? ORDER BY revision LIMIT 100",
    )
    .bind(1_990i64)
    .fetch_all(store.pool())
    .await
    .expect("explain")
    .iter()
    .map(|r| r.get::<String, _>("detail"))
    .collect();
    assert!(
        plans.iter().any(|l| l.contains("articles_revision")),
        "{plans:?}"
    );
}

#[tokio::test]
async fn a_failed_batch_writes_nothing() {
    let store = SqliteStore::open(&SqliteLocation::Memory)
        .await
        .expect("open");
    store
        .upsert(&[article("keep", 1, "World", &[], &[])])
        .await
        .expect("first");
    // Make the database refuse one article mid-batch, as a crash or a full disk would.
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON articles WHEN NEW.id = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let batch = [
        article("new1", 2, "World", &["UN"], &["Jane Doe"]),
        article("poison", 3, "World", &[], &[]),
        article("new2", 4, "World", &[], &[]),
    ];
    assert!(store.upsert(&batch).await.is_err());
    assert_eq!(store.revision().await.expect("revision"), Revision(1));
    for id in ["new1", "poison", "new2"] {
        assert!(
            store
                .get(&id.parse().expect("id"))
                .await
                .expect("get")
                .is_none(),
            "{id} leaked"
        );
    }
    let tagged = store
        .newest(&filter(&[], &["UN"], &[]), 10)
        .await
        .expect("newest");
    assert!(
        tagged.is_empty(),
        "filter rows of a rolled-back article leaked"
    );
    assert_eq!(
        store
            .newest(&ArticleFilter::default(), 10)
            .await
            .expect("newest")
            .len(),
        1
    );
}

#[tokio::test]
async fn rows_decode_into_articles_and_bad_columns_are_named() {
    let store = SqliteStore::open(&SqliteLocation::Memory)
        .await
        .expect("open");
    let a = article("a", 1, "World", &["UN"], &["Jane Doe"]);
    store
        .upsert(std::slice::from_ref(&a))
        .await
        .expect("insert");
    let id: ArticleId = "a".parse().expect("id");

    // JSON `null` in an optional JSON column is "none", as SQL NULL is.
    sqlx::query("UPDATE articles SET source = 'null', image = NULL WHERE id = 'a'")
        .execute(store.pool())
        .await
        .expect("update");
    let got = store.get(&id).await.expect("get").expect("present");
    assert_eq!(got.article, a);

    // Each kind of damage names its column; nothing panics.
    for (set, column) in [
        ("authors = '{\"name\": 1}'", "authors"),
        ("authors = 'not json'", "authors"),
        ("tags = 'null'", "tags"),
        (
            "related = '[{\"title\": \"t\", \"url\": \"relative\"}]'",
            "related",
        ),
        (
            "image = '{\"url\": \"https://e.com/i.jpg\", \"length\": -1}'",
            "image",
        ),
        ("url = 'not a url'", "url"),
        ("published_at = 9223372036854775807", "published_at"),
        ("headline = x'ff'", "headline"),
    ] {
        let mut tx = store.pool().begin().await.expect("begin");
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE articles SET {set} WHERE id = 'a'"
        )))
        .execute(&mut *tx)
        .await
        .expect("damage");
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM articles WHERE id = 'a'"
        )))
        .fetch_one(&mut *tx)
        .await
        .expect("row");
        match codec::decode(&row) {
            Err(StoreError::Corrupt { id, reason }) => {
                assert_eq!(id, "a");
                assert!(reason.starts_with(column), "{set}: {reason}");
            }
            other => panic!("{set}: expected a corrupt row, got {other:?}"),
        }
        tx.rollback().await.expect("rollback");
    }
}
