use super::*;
use bytes::Bytes;
use chrono::DateTime;
use http::HeaderValue;

fn rep() -> Representation {
    Representation::compressed_now(
        Bytes::from("<rss>".repeat(400)),
        "application/rss+xml; charset=utf-8",
        // Tue, 29 Sep 2015 11:50:00.5 GMT
        DateTime::from_timestamp(1_443_527_400, 500_000_000).expect("time"),
        "public, max-age=300".into(),
        None,
    )
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000)
}

fn outcome(pairs: &[(&str, &str)]) -> Outcome {
    let r = rep();
    evaluate(&headers(pairs), &r, &r.identity, now())
}

#[test]
fn if_none_match_cases() {
    let r = rep();
    let tag = r.identity.etag.as_str().to_owned();
    let bare = tag.trim_matches('"').to_owned();
    let cases: Vec<(String, Outcome)> = vec![
        (tag.clone(), Outcome::NotModified),
        (format!("W/{tag}"), Outcome::NotModified),
        (format!("w/{tag}"), Outcome::NotModified),
        (format!("\"other\", {tag}"), Outcome::NotModified),
        (format!("\"a\",W/\"b\" ,  {tag} "), Outcome::NotModified),
        ("*".into(), Outcome::NotModified),
        ("\"other\"".into(), Outcome::Full),
        ("\"\"".into(), Outcome::Full),
        (String::new(), Outcome::Full),
        (bare, Outcome::NotModified), // unquoted, as some clients send it
        (format!("{tag}-gzip"), Outcome::Full),
        (
            r.gzip().expect("gzip").etag.as_str().to_owned(),
            Outcome::Full,
        ),
    ];
    for (value, want) in cases {
        assert_eq!(
            outcome(&[("if-none-match", &value)]),
            want,
            "If-None-Match: {value:?}"
        );
    }
}

#[test]
fn if_modified_since_cases() {
    let cases = [
        ("Tue, 29 Sep 2015 11:50:00 GMT", Outcome::NotModified), // equal, to the second
        ("Tue, 29 Sep 2015 11:50:01 GMT", Outcome::NotModified),
        ("Tue, 29 Sep 2015 11:49:59 GMT", Outcome::Full),
        ("Tuesday, 29-Sep-15 11:50:00 GMT", Outcome::NotModified), // RFC 850
        ("Tue Sep 29 11:50:00 2015", Outcome::NotModified),        // asctime
        ("yesterday", Outcome::Full),                              // unparseable: ignored
        ("Sat, 01 Jan 2050 00:00:00 GMT", Outcome::Full),          // future: ignored
    ];
    for (value, want) in cases {
        assert_eq!(
            outcome(&[("if-modified-since", value)]),
            want,
            "If-Modified-Since: {value:?}"
        );
    }
}

#[test]
fn if_none_match_takes_precedence_over_if_modified_since() {
    let tag = rep().identity.etag.as_str().to_owned();
    let current = "Tue, 29 Sep 2015 11:50:00 GMT";
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    // A stale tag with a current date: the tag decides, so the full response.
    assert_eq!(
        outcome(&[
            ("if-none-match", "\"stale\""),
            ("if-modified-since", current)
        ]),
        Outcome::Full
    );
    // A matching tag with an old date: still not modified.
    assert_eq!(
        outcome(&[("if-none-match", &tag), ("if-modified-since", old)]),
        Outcome::NotModified
    );
}

#[test]
fn if_match_and_if_unmodified_since() {
    let tag = rep().identity.etag.as_str().to_owned();
    assert_eq!(outcome(&[("if-match", &tag)]), Outcome::Full);
    assert_eq!(outcome(&[("if-match", "*")]), Outcome::Full);
    assert_eq!(
        outcome(&[("if-match", "\"other\"")]),
        Outcome::PreconditionFailed
    );
    assert_eq!(
        outcome(&[("if-match", &format!("W/{tag}"))]),
        Outcome::PreconditionFailed,
        "strong comparison"
    );
    assert_eq!(
        outcome(&[("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT")]),
        Outcome::PreconditionFailed
    );
    assert_eq!(
        outcome(&[("if-unmodified-since", "Tue, 29 Sep 2015 11:50:00 GMT")]),
        Outcome::Full
    );
    // If-Match wins over If-Unmodified-Since.
    assert_eq!(
        outcome(&[
            ("if-match", &tag),
            ("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        ]),
        Outcome::Full
    );
}

#[test]
fn accept_encoding_negotiation() {
    let r = rep();
    let pick = |value: Option<&str>| {
        let h = match value {
            Some(v) => headers(&[("accept-encoding", v)]),
            None => HeaderMap::new(),
        };
        negotiate(&h, &r).map(|v| v.encoding)
    };
    use crate::publish::Encoding::*;
    assert_eq!(pick(None), Some(Identity));
    assert_eq!(pick(Some("")), Some(Identity));
    assert_eq!(pick(Some("gzip")), Some(Gzip));
    assert_eq!(pick(Some("gzip, br")), Some(Brotli));
    assert_eq!(pick(Some("br;q=0.5, gzip;q=0.8")), Some(Gzip));
    assert_eq!(pick(Some("br;q=0, gzip")), Some(Gzip));
    assert_eq!(pick(Some("gzip;q=0, br;q=0")), Some(Identity));
    assert_eq!(pick(Some("*")), Some(Brotli));
    assert_eq!(pick(Some("*;q=0.5, identity;q=1")), Some(Identity));
    assert_eq!(pick(Some("deflate")), Some(Identity));
    assert_eq!(pick(Some("identity;q=0")), None);
    assert_eq!(pick(Some("identity;q=0, gzip")), Some(Gzip));
    assert_eq!(pick(Some("*;q=0")), None);
    assert_eq!(pick(Some("GZIP;Q=1")), Some(Gzip));
    assert_eq!(pick(Some("x-gzip")), Some(Gzip));
    assert_eq!(
        pick(Some("gzip;q=abc")),
        Some(Identity),
        "a bad q-value counts as 0"
    );

    // A document too small to compress has only identity.
    let small = Representation::compressed_now(
        Bytes::from_static(b"<rss/>"),
        "text/xml",
        DateTime::UNIX_EPOCH,
        String::new(),
        None,
    );
    assert_eq!(
        negotiate(&headers(&[("accept-encoding", "br, gzip")]), &small).map(|v| v.encoding),
        Some(Identity)
    );
    assert!(negotiate(&headers(&[("accept-encoding", "br, identity;q=0")]), &small).is_none());
}
