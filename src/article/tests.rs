use super::*;
use chrono_tz::Europe::Dublin;
use serde_json::json;

fn ctx() -> ValidationContext {
    ValidationContext { timezone: Dublin }
}

fn minimal() -> serde_json::Value {
    json!({
        "id": "world-1",
        "url": "https://news.example.com/world/1",
        "headline": "Headline",
        "published_at": "2025-09-29T09:15:00+01:00"
    })
}

fn validate(value: serde_json::Value) -> Result<Checked, Vec<FieldError>> {
    let raw: RawArticle = serde_json::from_value(value).expect("raw shape");
    raw.validate(ctx())
}

/// Asserts validation fails and one error names `field` with text containing `needle`.
fn rejects(value: serde_json::Value, field: &str, needle: &str) {
    let errors = validate(value).expect_err("should be rejected");
    assert!(
        errors
            .iter()
            .any(|e| e.field == field && e.message.contains(needle)),
        "expected {field}: …{needle}…, got {errors:?}"
    );
}

fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = minimal();
    v[key] = value;
    v
}

#[test]
fn minimal_article_gets_defaults() {
    let a = validate(minimal()).expect("valid").article;
    assert_eq!(a.status, Status::Published);
    assert_eq!(
        a.updated_at, a.published_at,
        "updated_at defaults to published_at"
    );
    assert!(a.authors.is_empty() && a.tags.is_empty() && a.related.is_empty());
    assert_eq!(a.published_at.to_rfc3339(), "2025-09-29T08:15:00+00:00");
}

#[test]
fn full_article_keeps_every_field() {
    let v = json!({
        "id": "world-2015-un-talks",
        "url": "https://news.example.com/world/un",
        "headline": "Talks",
        "standfirst": "Summary",
        "body_html": "<p>Body</p>",
        "authors": [{"name": "Jane Doe", "email": "jane@example.com", "url": "https://example.com/jane"}],
        "source": {"name": "AFP", "rights": "© AFP, 2015", "url": "https://www.afp.com/"},
        "section": "World",
        "tags": ["UN", "Russia"],
        "image": {"url": "https://img.example.com/a.jpg", "caption": "Cap", "credit": "Photo Grapher", "mime_type": "image/jpeg", "length": 48213},
        "related": [{"title": "Earlier", "url": "https://news.example.com/earlier"}],
        "published_at": "2015-09-29T09:15:00+01:00",
        "updated_at": "2015-09-29T12:50:00+01:00",
        "status": "draft"
    });
    let a = validate(v).expect("valid").article;
    assert_eq!(a.id.as_str(), "world-2015-un-talks");
    assert_eq!(a.authors[0].email.as_deref(), Some("jane@example.com"));
    assert_eq!(
        a.source.as_ref().and_then(|s| s.rights.as_deref()),
        Some("© AFP, 2015")
    );
    assert_eq!(a.tags, vec!["UN", "Russia"]);
    let image = a.image.expect("image");
    assert_eq!(image.credit.as_deref(), Some("Photo Grapher"));
    assert_eq!(image.length, Some(48213));
    assert_eq!(a.related[0].title, "Earlier");
    assert_eq!(a.status, Status::Draft);
    assert_eq!(a.updated_at.to_rfc3339(), "2015-09-29T11:50:00+00:00");
}

#[test]
fn id_rules() {
    rejects(with("id", json!("has space")), "id", "contains ' '");
    rejects(with("id", json!("")), "id", "must not be empty");
    rejects(with("id", json!("x".repeat(129))), "id", "at most 128");
    rejects(with("id", json!("caf\u{e9}")), "id", "contains");
    assert!(validate(with("id", json!("A.b_c-9"))).is_ok());
    assert!(validate(with("id", json!("x".repeat(128)))).is_ok());
    let mut v = minimal();
    v.as_object_mut().expect("object").remove("id");
    rejects(v, "id", "is required");
}

#[test]
fn url_rules() {
    rejects(with("url", json!("/world/1")), "url", "not an absolute URL");
    rejects(
        with("url", json!("ftp://example.com/x")),
        "url",
        "only http and https",
    );
    rejects(
        with("url", json!("javascript:alert(1)")),
        "url",
        "only http and https",
    );
    let mut v = minimal();
    v["image"] = json!({"url": "relative.jpg"});
    rejects(v, "image.url", "not an absolute URL");
    let mut v = minimal();
    v["related"] = json!([{"title": "t", "url": "mailto:x@example.com"}]);
    rejects(v, "related[0].url", "only http and https");
    let mut v = minimal();
    v["authors"] = json!([{"name": "A", "url": "nope"}]);
    rejects(v, "authors[0].url", "not an absolute URL");
}

#[test]
fn headline_is_required_and_not_blank() {
    rejects(
        with("headline", json!("   ")),
        "headline",
        "must not be empty",
    );
    let mut v = minimal();
    v.as_object_mut().expect("object").remove("headline");
    rejects(v, "headline", "is required");
}

#[test]
fn nested_required_fields() {
    rejects(
        with("authors", json!([{"email": "a@example.com"}])),
        "authors[0].name",
        "is required",
    );
    rejects(
        with("authors", json!([{"name": "A", "email": "not-an-email"}])),
        "authors[0].email",
        "not an email",
    );
    rejects(
        with("source", json!({"rights": "© X"})),
        "source.name",
        "is required",
    );
    rejects(
        with("related", json!([{"url": "https://example.com"}])),
        "related[0].title",
        "is required",
    );
    rejects(
        with(
            "image",
            json!({"url": "https://e.com/a.jpg", "mime_type": "jpeg"}),
        ),
        "image.mime_type",
        "not a media type",
    );
    rejects(
        with("tags", json!(["ok", " "])),
        "tags[1]",
        "must not be empty",
    );
}

#[test]
fn status_rules() {
    rejects(
        with("status", json!("archived")),
        "status",
        "unknown status",
    );
    for (s, want) in [
        ("published", Status::Published),
        ("draft", Status::Draft),
        ("withdrawn", Status::Withdrawn),
    ] {
        assert_eq!(
            validate(with("status", json!(s)))
                .expect("valid")
                .article
                .status,
            want
        );
    }
}

#[test]
fn time_rules() {
    rejects(
        with("published_at", json!("yesterday")),
        "published_at",
        "not a date-time",
    );
    rejects(
        with("updated_at", json!("2025-13-01T00:00:00")),
        "updated_at",
        "not a date-time",
    );
    rejects(
        with("published_at", json!("2025-03-30T01:30:00")),
        "published_at",
        "does not exist in Europe/Dublin",
    );
    let mut v = minimal();
    v["updated_at"] = json!("2025-09-29T09:14:59+01:00");
    rejects(v, "updated_at", "is before published_at");
    let mut v = minimal();
    v.as_object_mut().expect("object").remove("published_at");
    rejects(v, "published_at", "is required");
    // Same instant written two ways is not "before".
    let mut v = minimal();
    v["updated_at"] = json!("2025-09-29T08:15:00Z");
    assert!(validate(v).is_ok());
}

#[test]
fn local_times_use_the_site_zone() {
    let mut v = minimal();
    v["published_at"] = json!("2025-01-10T12:50:00");
    v["updated_at"] = json!("2025-07-10T12:50:00");
    let a = validate(v).expect("valid").article;
    assert_eq!(a.published_at.to_rfc3339(), "2025-01-10T12:50:00+00:00");
    assert_eq!(a.updated_at.to_rfc3339(), "2025-07-10T11:50:00+00:00");
}

#[test]
fn every_problem_is_reported_at_once() {
    let v = json!({"id": "bad id", "url": "nope", "headline": "", "published_at": "never"});
    let fields: Vec<String> = validate(v)
        .expect_err("invalid")
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, vec!["id", "url", "headline", "published_at"]);
}

#[test]
fn forbidden_characters_are_removed_and_counted_text_otherwise_exact() {
    let mut v = minimal();
    v["headline"] = json!("Bell\u{7} and  spaces\ttab ]]> & <b>");
    v["body_html"] = json!("<p>x\u{0}y\u{FFFF}</p>\r\n");
    v["tags"] = json!(["a\u{1b}b"]);
    let checked = validate(v).expect("valid");
    assert_eq!(checked.removed_chars, 4);
    assert_eq!(checked.article.headline, "Bell and  spaces\ttab ]]> & <b>");
    assert_eq!(checked.article.body_html.as_deref(), Some("<p>xy</p>\r\n"));
    assert_eq!(checked.article.tags, vec!["ab"]);
}

#[test]
fn repeated_tags_keep_the_first_spelling() {
    let a = validate(with("tags", json!(["UN", "un", " UN ", "Russia"])))
        .expect("valid")
        .article;
    assert_eq!(a.tags, vec!["UN", "Russia"]);
}

#[test]
fn unknown_fields_are_refused_by_the_raw_shape() {
    let mut v = minimal();
    v["headine"] = json!("typo");
    let err = serde_json::from_value::<RawArticle>(v).expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `headine`"), "{err}");
}

#[test]
fn filter_matches_case_insensitively_and_needs_every_list() {
    let a = validate(json!({
        "id": "x", "url": "https://e.com/x", "headline": "h", "published_at": "2025-01-01T00:00:00Z",
        "section": "World", "tags": ["UN", "Russia"], "authors": [{"name": "Jane Doe"}]
    }))
    .expect("valid")
    .article;
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(ArticleFilter::default().matches(&a));
    assert!(ArticleFilter::new(&s(&["world"]), &[], &[]).matches(&a));
    assert!(ArticleFilter::new(&s(&["Business", "World"]), &s(&["russia"]), &[]).matches(&a));
    assert!(ArticleFilter::new(&[], &s(&["UN"]), &s(&[" jane doe "])).matches(&a));
    assert!(!ArticleFilter::new(&s(&["World"]), &s(&["Climate"]), &[]).matches(&a));
    assert!(!ArticleFilter::new(&[], &[], &s(&["John Roe"])).matches(&a));
}
