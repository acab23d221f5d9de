use super::*;
use crate::article::{RawArticle, ValidationContext};
use chrono_tz::Europe::Dublin;
use serde_json::json;

fn meta() -> FeedMeta {
    FeedMeta {
        name: "latest".parse().expect("name"),
        title: "Latest".into(),
        description: "Every story".into(),
        site_title: "Example News".into(),
        site_url: Url::parse("https://news.example.com/").expect("url"),
        base_url: Url::parse("https://feeds.example.com/").expect("url"),
        language: Some("en-IE".into()),
        rights: None,
        logo: None,
        icon: None,
        timezone: Dublin,
        ttl_minutes: 5,
        categories: vec![],
        tag_authority: "feeds.example.com".into(),
        hubs: Vec::new(),
        paging: Default::default(),
    }
}

fn article(v: serde_json::Value) -> Article {
    let mut base = json!({"url": "https://news.example.com/a/b", "headline": "H", "published_at": "2025-01-01T00:00:00Z"});
    if let (Some(b), serde_json::Value::Object(more)) = (base.as_object_mut(), v) {
        b.extend(more);
    }
    let raw: RawArticle = serde_json::from_value(base).expect("shape");
    raw.validate(ValidationContext { timezone: Dublin })
        .expect("valid")
        .article
}

fn text(doc: &Document) -> String {
    String::from_utf8(doc.body.to_vec()).expect("utf-8")
}

fn build_one(articles: &[Article], format: Format) -> Document {
    build(&meta(), articles, &[format])
        .expect("build")
        .remove(0)
}

#[test]
fn times_no_format_can_write_are_clamped_not_written_with_five_digits() {
    // Only a row written straight into the store can hold such a time.
    let mut far = article(json!({"id": "far"}));
    far.published_at = DateTime::from_timestamp(400_000_000_000, 0).expect("year 14645");
    far.updated_at = far.published_at;
    for format in Format::ALL {
        let doc = text(&build_one(std::slice::from_ref(&far), format));
        assert!(!doc.contains("+1464") && !doc.contains("14645"), "{doc}");
        assert!(
            doc.contains("9999-12-30T23:59:59") || doc.contains("30 Dec 9999 23:59:59"),
            "{doc}"
        );
    }
    let early = DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(rfc3339(early, chrono_tz::UTC), "0000-01-02T00:00:00+00:00");
}

#[test]
fn rss_dates_carry_the_site_offset() {
    let summer = article(json!({"id": "s", "published_at": "2025-09-29T12:50:00"}));
    let winter = article(json!({"id": "w", "published_at": "2025-01-29T12:50:00"}));
    let rss = text(&build_one(&[summer, winter], Format::Rss));
    assert!(
        rss.contains("<pubDate>Mon, 29 Sep 2025 12:50:00 +0100</pubDate>"),
        "{rss}"
    );
    assert!(
        rss.contains("<pubDate>Wed, 29 Jan 2025 12:50:00 +0000</pubDate>"),
        "{rss}"
    );
    assert!(
        rss.contains("<lastBuildDate>Mon, 29 Sep 2025 12:50:00 +0100</lastBuildDate>"),
        "{rss}"
    );
    let atom = text(&build_one(
        &[article(
            json!({"id": "s", "published_at": "2025-09-29T12:50:00"}),
        )],
        Format::Atom,
    ));
    assert!(
        atom.contains("<published>2025-09-29T12:50:00+01:00</published>"),
        "{atom}"
    );
}

#[test]
fn rfc822_uses_two_digit_days() {
    let t = DateTime::parse_from_rfc3339("2017-01-01T12:00:00Z")
        .expect("literal")
        .with_timezone(&Utc);
    assert_eq!(rfc822(t, Dublin), "Sun, 01 Jan 2017 12:00:00 +0000");
}

#[test]
fn tag_uri_depends_only_on_host_publish_date_and_id() {
    let a = article(json!({"id": "world-1", "published_at": "2015-09-29T23:30:00+01:00"}));
    assert_eq!(
        tag_uri("feeds.example.com", &a),
        "tag:feeds.example.com,2015-09-29:world-1"
    );
    let mut edited = a.clone();
    edited.url = Url::parse("https://news.example.com/moved").expect("url");
    edited.headline = "New headline".into();
    edited.body_html = Some("<p>new</p>".into());
    edited.updated_at = edited.published_at + chrono::Duration::hours(5);
    assert_eq!(
        tag_uri("feeds.example.com", &edited),
        tag_uri("feeds.example.com", &a)
    );
}

#[test]
fn items_are_newest_first_with_ties_by_id_whatever_the_input_order() {
    let a = article(json!({"id": "a", "published_at": "2025-01-02T00:00:00Z"}));
    let b = article(json!({"id": "b", "published_at": "2025-01-02T00:00:00Z"}));
    let c = article(json!({"id": "c", "published_at": "2025-01-03T00:00:00Z"}));
    let d = article(json!({"id": "d", "published_at": "2025-01-01T00:00:00Z"}));
    let orders = [
        vec![a.clone(), b.clone(), c.clone(), d.clone()],
        vec![d.clone(), c.clone(), b.clone(), a.clone()],
        vec![b.clone(), d.clone(), a.clone(), c.clone()],
    ];
    for format in Format::ALL {
        let docs: Vec<Document> = orders.iter().map(|o| build_one(o, format)).collect();
        assert!(
            docs.windows(2).all(|w| w[0] == w[1]),
            "{format:?} depends on input order"
        );
        let t = text(&docs[0]);
        let pos = |id: &str| {
            t.find(&format!(":{id}<"))
                .or_else(|| t.find(&format!(":{id}\"")))
                .expect("item present")
        };
        assert!(
            pos("c") < pos("b") && pos("b") < pos("a") && pos("a") < pos("d"),
            "{format:?} order wrong"
        );
    }
}

#[test]
fn feed_updated_is_the_newest_item_update_and_empty_feeds_use_the_epoch() {
    let a = article(
        json!({"id": "a", "published_at": "2025-01-01T00:00:00Z", "updated_at": "2025-03-01T10:00:00Z"}),
    );
    let b = article(json!({"id": "b", "published_at": "2025-02-01T00:00:00Z"}));
    let docs = build(&meta(), &[a, b], &Format::ALL).expect("build");
    for d in &docs {
        assert_eq!(d.last_modified.to_rfc3339(), "2025-03-01T10:00:00+00:00");
    }
    assert!(text(&docs[1]).contains("<updated>2025-03-01T10:00:00+00:00</updated>"));
    let empty = build(&meta(), &[], &Format::ALL).expect("build");
    for d in &empty {
        assert_eq!(d.last_modified, EMPTY_FEED_UPDATED);
    }
    assert!(
        text(&empty[0]).contains("<lastBuildDate>Thu, 01 Jan 1970 01:00:00 +0100</lastBuildDate>"),
        "{}",
        text(&empty[0])
    );
    assert!(text(&empty[1]).contains("<updated>1970-01-01T01:00:00+01:00</updated>"));
}

#[test]
fn etag_is_the_specified_hash_of_the_bytes() {
    let doc = build_one(&[article(json!({"id": "a"}))], Format::Json);
    assert_eq!(
        doc.etag.as_str(),
        format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(&doc.body))
    );
    // The published XXH3-128 value for empty input (seed 0), so anyone can
    // recompute a tag from the bytes.
    assert_eq!(
        ETag::of(b"").as_str(),
        "\"99aa06d3014798d86001c324468d497f\""
    );
}

#[test]
fn content_types_are_the_contract_ones() {
    let docs = build(&meta(), &[], &Format::ALL).expect("build");
    let types: Vec<&str> = docs.iter().map(|d| d.content_type).collect();
    assert_eq!(
        types,
        [
            "application/rss+xml; charset=utf-8",
            "application/atom+xml; charset=utf-8",
            "application/feed+json; charset=utf-8"
        ]
    );
}

#[test]
fn forbidden_characters_in_the_store_never_reach_a_document() {
    // A CMS writing to the store directly may bypass import's sanitising.
    let mut a = article(
        json!({"id": "a", "tags": ["t"], "authors": [{"name": "N"}], "source": {"name": "S", "rights": "R"}}),
    );
    a.headline = "bell\u{7}".into();
    a.standfirst = Some("nul\u{0}".into());
    a.body_html = Some("<p>\u{FFFE}x</p>".into());
    a.tags = vec!["t\u{1b}".into()];
    a.authors[0].name = "N\u{FFFF}".into();
    if let Some(s) = a.source.as_mut() {
        s.rights = Some("R\u{b}".into());
    }
    for doc in build(&meta(), &[a], &Format::ALL).expect("build") {
        let t = text(&doc);
        assert!(
            t.chars().all(crate::article::is_xml_char),
            "{:?} leaks a forbidden character",
            doc.format
        );
        assert!(
            !t.contains("&#"),
            "{:?} must not smuggle them as references",
            doc.format
        );
        assert!(
            !t.contains("\\u0007") && !t.contains("\\u0000"),
            "{:?}",
            doc.format
        );
    }
}

#[test]
fn related_links_are_a_list_in_rss_and_json_and_links_in_atom() {
    let a = article(
        json!({"id": "a", "body_html": "<p>b</p>", "related": [{"title": "Earlier", "url": "https://e.com/x"}]}),
    );
    let rss = text(&build_one(std::slice::from_ref(&a), Format::Rss));
    assert!(rss.contains("<p>b</p><aside class=\"related\"><h2>Related</h2><ul><li><a href=\"https://e.com/x\">Earlier</a></li></ul></aside>"), "{rss}");
    let atom = text(&build_one(std::slice::from_ref(&a), Format::Atom));
    assert!(
        atom.contains(
            r#"<link rel="related" type="text/html" href="https://e.com/x" title="Earlier"/>"#
        ),
        "{atom}"
    );
    assert!(
        !atom.contains("aside"),
        "Atom carries related links as links only"
    );
    let json = text(&build_one(&[a], Format::Json));
    assert!(json.contains("aside class=\\\"related\\\""));
}

#[test]
fn ttl_and_self_links_come_from_the_meta() {
    let rss = text(&build_one(&[], Format::Rss));
    assert!(rss.contains("<ttl>5</ttl>"));
    assert!(rss.contains(r#"<atom:link href="https://feeds.example.com/feeds/latest.rss" rel="self" type="application/rss+xml"/>"#), "{rss}");
    let atom = text(&build_one(&[], Format::Atom));
    assert!(atom.contains("<id>https://feeds.example.com/feeds/latest.atom</id>"));
    let mut m = meta();
    m.base_url = Url::parse("https://example.com/news/").expect("url");
    assert_eq!(
        m.self_url(Format::Json),
        "https://example.com/news/feeds/latest.json"
    );
}

#[test]
fn namespaces_are_declared_once_on_the_root() {
    let rss = text(&build_one(
        &[article(
            json!({"id": "a", "image": {"url": "https://e.com/i.jpg", "credit": "C"}}),
        )],
        Format::Rss,
    ));
    for prefix in ["atom", "content", "dc", "dcterms", "media"] {
        assert_eq!(
            rss.matches(&format!("xmlns:{prefix}=")).count(),
            1,
            "{prefix}"
        );
    }
    let root = rss.lines().nth(1).expect("root line");
    assert!(
        root.starts_with("<rss version=\"2.0\" xmlns:atom="),
        "{root}"
    );
}

#[test]
fn rss_description_is_the_standfirst_html_escaped() {
    let a = article(json!({"id": "pct", "standfirst": "5% < 10% > 0% & <bold>not markup</bold>"}));
    let rss = text(&build_one(std::slice::from_ref(&a), Format::Rss));
    assert!(
        rss.contains(
            "<description><![CDATA[5% &lt; 10% &gt; 0% &amp; &lt;bold&gt;not markup&lt;/bold&gt;]]></description>"
        ),
        "{rss}"
    );
    // Atom and JSON say the summary is plain text: no HTML escaping there.
    let atom = text(&build_one(std::slice::from_ref(&a), Format::Atom));
    assert!(
        atom.contains("5% &lt; 10% &gt; 0% &amp; &lt;bold&gt;not markup&lt;/bold&gt;</summary>"),
        "{atom}"
    );
}

#[test]
fn rss_plain_text_writes_ampersand_and_less_than_as_hex_references() {
    let a = article(json!({
        "id": "amp",
        "headline": "AT&T <b> 2 > 1",
        "tags": ["R&D", "a<b"],
        "authors": [{"name": "Smith & Jones"}],
        "source": {"name": "A&B", "rights": "© A&B <2015>"},
    }));
    let rss = text(&build_one(std::slice::from_ref(&a), Format::Rss));
    for want in [
        "<title>AT&#x26;T &#x3C;b&gt; 2 &gt; 1</title>",
        "<category>R&#x26;D</category>",
        "<category>a&#x3C;b</category>",
        "<dc:creator>Smith &#x26; Jones</dc:creator>",
        "<dc:rights>© A&#x26;B &#x3C;2015&gt;</dc:rights>",
    ] {
        assert!(rss.contains(want), "{want} missing in\n{rss}");
    }
    assert!(!rss.contains("&amp;") && !rss.contains("&lt;"), "{rss}");
    // The same text reads back unchanged through an RSS parser.
    let channel = ::rss::Channel::read_from(rss.as_bytes()).expect("rss parses");
    let item = &channel.items()[0];
    assert_eq!(item.title(), Some("AT&T <b> 2 > 1"));
    let cats: Vec<&str> = item.categories().iter().map(|c| c.name()).collect();
    assert_eq!(cats, ["R&D", "a<b"]);
    // Atom keeps the usual entity references.
    let atom = text(&build_one(std::slice::from_ref(&a), Format::Atom));
    assert!(
        atom.contains("AT&amp;T &lt;b&gt; 2 &gt; 1</title>"),
        "{atom}"
    );
}

#[test]
fn atom_source_has_id_title_and_updated() {
    let with_url = article(json!({
        "id": "wire",
        "published_at": "2015-09-29T12:50:00+01:00",
        "updated_at": "2015-09-29T14:00:00+01:00",
        "source": {"name": "AFP", "rights": "© AFP, 2015", "url": "https://www.afp.com/"},
    }));
    let without_url = article(json!({
        "id": "wire2",
        "published_at": "2015-09-29T12:50:00+01:00",
        "source": {"name": "Agence France-Presse"},
    }));
    let atom = text(&build_one(&[with_url, without_url], Format::Atom));
    assert!(
        atom.contains(
            "<source>\n      <id>https://www.afp.com/</id>\n      <link rel=\"alternate\" href=\"https://www.afp.com/\"/>\n      <title type=\"text\">AFP</title>\n      <updated>2015-09-29T14:00:00+01:00</updated>\n    </source>"
        ),
        "{atom}"
    );
    assert!(
        atom.contains(
            "<source>\n      <id>tag:feeds.example.com,2015-09-29:source:Agence+France-Presse</id>\n      <title type=\"text\">Agence France-Presse</title>\n      <updated>2015-09-29T12:50:00+01:00</updated>\n    </source>"
        ),
        "{atom}"
    );
    let feed = ::atom_syndication::Feed::read_from(atom.as_bytes()).expect("atom parses");
    // Equal publish times: newest first by id, so "wire2" comes first.
    let source = feed.entries()[1].source().expect("source");
    assert_eq!(source.id(), "https://www.afp.com/");
    assert_eq!(source.updated().to_rfc3339(), "2015-09-29T14:00:00+01:00");
}

#[test]
fn an_article_with_no_text_still_gives_readers_some() {
    let bare = article(json!({"id": "bare", "headline": "Only a headline"}));
    let briefed = article(json!({"id": "brief", "headline": "H2", "standfirst": "Just this."}));
    let atom = text(&build_one(std::slice::from_ref(&bare), Format::Atom));
    assert!(
        atom.contains("<summary type=\"text\">Only a headline</summary>")
            && !atom.contains("<content"),
        "{atom}"
    );
    let json = build_one(&[bare, briefed], Format::Json);
    let v: serde_json::Value = serde_json::from_slice(&json.body).expect("json");
    // Newest first by id at equal times: "brief", then "bare".
    assert_eq!(v["items"][0]["content_text"], "Just this.");
    assert_eq!(v["items"][1]["content_text"], "Only a headline");
    assert!(v["items"][1].get("content_html").is_none());
    let with_body = article(json!({"id": "b", "body_html": "<p>x</p>"}));
    let json = build_one(std::slice::from_ref(&with_body), Format::Json);
    let v: serde_json::Value = serde_json::from_slice(&json.body).expect("json");
    assert!(v["items"][0].get("content_text").is_none(), "{v}");
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

fn tombstone(id: &str, published: &str, withdrawn: &str) -> Tombstone {
    Tombstone {
        id: id.parse().expect("id"),
        published_at: at(published),
        withdrawn_at: at(withdrawn),
    }
}

#[test]
fn atom_marks_tombstones_as_deleted_entries_and_the_others_only_drop_them() {
    let listed = [article(
        json!({"id": "kept", "updated_at": "2025-01-02T00:00:00Z"}),
    )];
    let gone = [tombstone(
        "gone",
        "2024-12-31T10:00:00Z",
        "2025-01-03T12:30:00.250Z",
    )];
    let docs = build_with(&meta(), &listed, &gone, &Format::ALL).expect("build");
    let by = |f: Format| text(docs.iter().find(|d| d.format == f).expect("format"));
    let atom = by(Format::Atom);
    assert!(
        atom.contains("xmlns:at=\"http://purl.org/atompub/tombstones/1.0\""),
        "{atom}"
    );
    assert!(
        atom.contains(
            "<at:deleted-entry ref=\"tag:feeds.example.com,2024-12-31:gone\" \
             when=\"2025-01-03T12:30:00.250+00:00\"/>\n  <entry>"
        ),
        "just before the entries, in the site's zone: {atom}"
    );
    // The withdrawal is the feed's newest change.
    assert!(atom.contains("<updated>2025-01-03T12:30:00.250+00:00</updated>"));
    for doc in &docs {
        assert_eq!(doc.last_modified, at("2025-01-03T12:30:00.250Z"));
    }
    for format in [Format::Rss, Format::Json] {
        assert!(!by(format).contains("gone"), "{format:?} has no tombstones");
    }
    // Without tombstones, not even the namespace: the bytes of `build`.
    let plain = build_with(&meta(), &listed, &[], &Format::ALL).expect("build");
    assert_eq!(plain, build(&meta(), &listed, &Format::ALL).expect("build"));
    assert!(!text(&plain[1]).contains("tombstones"));
}

#[test]
fn tombstones_shown_are_those_within_the_window_and_the_period() {
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let listed: Vec<Article> = (1..=3)
        .map(|d| {
            article(json!({
                "id": format!("a{d}"),
                "published_at": format!("2025-01-0{d}T00:00:00Z"),
            }))
        })
        .collect();
    let window = Window::of(&listed);
    let candidates = vec![
        // Older than the oldest listed: outside a full window.
        tombstone("old", "2024-12-30T00:00:00Z", "2025-01-20T00:00:00Z"),
        tombstone("recent", "2025-01-02T12:00:00Z", "2025-01-20T00:00:00Z"),
        // Withdrawn more than a week before the newest event (the 20th).
        tombstone("stale", "2025-01-02T06:00:00Z", "2025-01-12T23:59:59Z"),
        tombstone("edge", "2025-01-01T00:00:00Z", "2025-01-13T00:00:00Z"),
    ];
    let ids = |shown: Vec<Tombstone>| {
        shown
            .into_iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(tombstones_to_show(&window, 3, candidates.clone(), week)),
        ["recent", "edge"],
        "a full window: only what sorts within it, newest withdrawal first"
    );
    assert_eq!(
        ids(tombstones_to_show(&window, 50, candidates.clone(), week)),
        ["old", "recent", "edge"],
        "a window not full lists everything, so everything counts; by id on a tie"
    );
    assert!(
        tombstones_to_show(&window, 3, candidates.clone(), std::time::Duration::ZERO).is_empty()
    );
    // The period runs from the feed's newest event, not the wall clock: an
    // update listed later than every withdrawal moves it on.
    let mut later = listed.clone();
    later.push(article(json!({"id": "a9", "published_at": "2025-01-09T00:00:00Z", "updated_at": "2025-01-26T00:00:00Z"})));
    assert_eq!(
        ids(tombstones_to_show(&Window::of(&later), 4, candidates, week)),
        ["recent"]
    );
}

#[test]
fn archived_feeds_link_their_pages_and_pages_are_marked_as_archives() {
    let listed = [article(json!({"id": "kept"}))];
    let with = |paging: Paging| {
        let meta = FeedMeta { paging, ..meta() };
        let docs = build(&meta, &listed, &Format::ALL).expect("build");
        docs.iter().map(text).collect::<Vec<_>>()
    };
    let base = "https://feeds.example.com/feeds/latest";
    let subscription = with(Paging::Subscription { newest_page: 4 });
    let [rss, atom, json] = &subscription[..] else {
        panic!("three formats")
    };
    assert!(rss.contains(&format!(
        "<atom:link href=\"{base}/archive/4.rss\" rel=\"prev-archive\" type=\"application/rss+xml\"/>"
    )));
    assert!(atom.contains(&format!(
        "<link rel=\"prev-archive\" type=\"application/atom+xml\" href=\"{base}/archive/4.atom\"/>"
    )));
    assert!(json.contains(&format!("\"next_url\":\"{base}/archive/4.json\"")));
    for doc in &subscription {
        assert!(!doc.contains("fh:archive") && !doc.contains("\"archive\""));
    }

    let middle = with(Paging::Archive {
        page: 2,
        newest_page: 4,
    });
    let [rss, atom, json] = &middle[..] else {
        panic!("three formats")
    };
    for (doc, ext) in [(rss, "rss"), (atom, "atom")] {
        assert!(doc.contains(&format!("xmlns:fh=\"{HISTORY_NS}\"")), "{ext}");
        assert!(doc.contains("<fh:archive/>"), "{ext}");
        for (rel, url) in [
            ("self", format!("{base}/archive/2.{ext}")),
            ("current", format!("{base}.{ext}")),
            ("prev-archive", format!("{base}/archive/1.{ext}")),
            ("next-archive", format!("{base}/archive/3.{ext}")),
        ] {
            assert!(
                doc.contains(&url) && doc.contains(&format!("rel=\"{rel}\"")),
                "{ext} {rel}"
            );
        }
    }
    // One feed split into documents: the Atom id stays the feed's.
    assert!(atom.contains(&format!("<id>{base}.atom</id>")));
    assert!(json.contains(&format!("\"feed_url\":\"{base}/archive/2.json\"")));
    assert!(json.contains(&format!("\"next_url\":\"{base}/archive/1.json\"")));
    assert!(json.contains(&format!("\"next-archive\":\"{base}/archive/3.json\"")));

    // The oldest page has no prev-archive; the newest no next-archive.
    let oldest = with(Paging::Archive {
        page: 1,
        newest_page: 4,
    });
    assert!(!oldest[1].contains("prev-archive") && oldest[1].contains("next-archive"));
    assert!(!oldest[2].contains("next_url"));
    let newest = with(Paging::Archive {
        page: 4,
        newest_page: 4,
    });
    assert!(newest[1].contains("prev-archive") && !newest[1].contains("next-archive"));
}
