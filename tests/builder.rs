//! The built documents, read back by independent parsers: feed-rs for all three
//! formats, quick-xml for the RSS elements feed-rs does not map, serde_json for
//! the JSON Feed extension, and jing with RFC 4287's RELAX NG schema for Atom.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use common::{repo_root, sample_feeds};
use feedsmith::article::Article;
use feedsmith::builder::{self, Document, Entry, tag_uri};
use feedsmith::config::Format;

fn parse(doc: &Document) -> feed_rs::model::Feed {
    feed_rs::parser::parse(&doc.body[..])
        .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", doc.format))
}

fn text(doc: &Document) -> &str {
    std::str::from_utf8(&doc.body).expect("utf-8")
}

/// RSS `<item>` children as (qualified name → [(attributes, text)]), read with
/// quick-xml so fields feed-rs ignores can be checked too.
type Element = (BTreeMap<String, String>, String);

fn rss_items(xml: &str) -> Vec<BTreeMap<String, Vec<Element>>> {
    use quick_xml::events::{BytesStart, Event};
    fn head(
        e: &BytesStart,
        decoder: quick_xml::encoding::Decoder,
    ) -> (String, BTreeMap<String, String>) {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    a.decoded_and_normalized_value(quick_xml::XmlVersion::Explicit1_0, decoder)
                        .expect("attribute value")
                        .into_owned(),
                )
            })
            .collect();
        (name, attrs)
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let decoder = reader.decoder();
    let mut items = Vec::new();
    let mut current: Option<BTreeMap<String, Vec<Element>>> = None;
    let mut open: Option<(String, BTreeMap<String, String>, String)> = None;
    let mut depth = 0;
    loop {
        match reader.read_event().expect("well-formed RSS") {
            Event::Start(e) if current.is_none() && e.name().as_ref() == b"item" => {
                current = Some(BTreeMap::new());
            }
            Event::Start(e) if current.is_some() => {
                if depth == 0 {
                    let (name, attrs) = head(&e, decoder);
                    open = Some((name, attrs, String::new()));
                }
                depth += 1;
            }
            Event::Empty(e) if current.is_some() && depth == 0 => {
                let (name, attrs) = head(&e, decoder);
                if let Some(item) = current.as_mut() {
                    item.entry(name).or_default().push((attrs, String::new()));
                }
            }
            Event::Text(t) if depth == 1 => {
                if let Some(o) = open.as_mut() {
                    o.2.push_str(&t.decode().expect("text"));
                }
            }
            Event::GeneralRef(r) if depth == 1 => {
                if let Some(o) = open.as_mut() {
                    // RSS writes `&` and `<` in plain text as `&#x26;` and `&#x3C;`.
                    if let Some(c) = r.resolve_char_ref().expect("character reference") {
                        o.2.push(c);
                        continue;
                    }
                    let name = r.decode().expect("ref");
                    o.2.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unexpected entity {other}"),
                    });
                }
            }
            Event::CData(t) if depth == 1 => {
                if let Some(o) = open.as_mut() {
                    o.2.push_str(std::str::from_utf8(&t).expect("cdata"));
                }
            }
            Event::End(_) if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let (Some((n, a, t)), Some(item)) = (open.take(), current.as_mut())
                {
                    item.entry(n).or_default().push((a, t));
                }
            }
            Event::End(e) if e.name().as_ref() == b"item" => items.extend(current.take()),
            Event::Eof => break,
            _ => {}
        }
    }
    items
}

fn rss_text<'a>(item: &'a BTreeMap<String, Vec<Element>>, name: &str) -> Vec<&'a str> {
    item.get(name)
        .map(|v| v.iter().map(|(_, t)| t.as_str()).collect())
        .unwrap_or_default()
}

fn categories(a: &Article) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in a.section.iter().chain(&a.tags) {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc 3339")
        .with_timezone(&Utc)
}

#[test]
fn every_sample_feed_parses_in_every_format_with_the_same_items() {
    let feeds = sample_feeds();
    assert!(feeds.len() >= 3);
    for b in &feeds {
        assert!(
            !b.articles.is_empty(),
            "feed {} selects no sample",
            b.spec.name
        );
        let expected: Vec<String> = b
            .articles
            .iter()
            .map(|a| tag_uri(&b.meta.tag_authority, a))
            .collect();
        for (format, doc) in &b.docs {
            let feed = parse(doc);
            let ids: Vec<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
            assert_eq!(ids, expected, "feed {} {format:?}", b.spec.name);
            assert_eq!(
                feed.title.as_ref().map(|t| t.content.as_str()),
                Some(b.meta.title.as_str())
            );
            let self_link = feed.links.iter().find(|l| l.rel.as_deref() == Some("self"));
            match format {
                Format::Json => assert!(
                    feed.links
                        .iter()
                        .any(|l| l.href == b.meta.self_url(Format::Json)),
                    "JSON feed_url"
                ),
                _ => assert_eq!(
                    self_link.map(|l| l.href.clone()),
                    Some(b.meta.self_url(*format)),
                    "{format:?} self link"
                ),
            }
        }
    }
}

#[test]
fn drafts_and_withdrawn_articles_never_appear() {
    for b in sample_feeds() {
        for doc in b.docs.values() {
            let t = text(doc);
            for hidden in [
                "world-2026-election-preview",
                "business-2025-retailer-results",
            ] {
                assert!(
                    !t.contains(hidden),
                    "{} {:?} shows {hidden}",
                    b.spec.name,
                    doc.format
                );
            }
        }
    }
}

#[test]
fn rss_items_carry_every_mapped_field() {
    for b in sample_feeds() {
        let doc = &b.docs[&Format::Rss];
        let feed = parse(doc);
        let items = rss_items(text(doc));
        assert_eq!(items.len(), b.articles.len());
        for ((a, item), parsed) in b.articles.iter().zip(&items).zip(&feed.entries) {
            let entry = Entry::prepare(a);
            let guid = &item["guid"][0];
            assert_eq!(guid.0.get("isPermaLink").map(String::as_str), Some("false"));
            assert_eq!(guid.1, tag_uri(&b.meta.tag_authority, a));
            assert_eq!(rss_text(item, "title"), [a.headline.as_str()]);
            assert_eq!(rss_text(item, "link"), [a.url.as_str()]);
            // Readers take `description` as HTML: the plain standfirst is escaped.
            assert_eq!(
                rss_text(item, "description"),
                a.standfirst
                    .as_deref()
                    .map(html_escape::encode_text)
                    .into_iter()
                    .collect::<Vec<_>>()
            );
            assert_eq!(
                rss_text(item, "content:encoded"),
                entry
                    .content_with_related
                    .as_deref()
                    .into_iter()
                    .collect::<Vec<_>>()
            );
            let creators: Vec<&str> = a.authors.iter().map(|x| x.name.as_str()).collect();
            assert_eq!(rss_text(item, "dc:creator"), creators);
            assert_eq!(
                parsed.published,
                Some(a.published_at),
                "pubDate of {}",
                a.id
            );
            let pub_date = DateTime::parse_from_rfc2822(rss_text(item, "pubDate")[0])
                .expect("RFC 822 pubDate");
            assert_eq!(pub_date, a.published_at);
            assert_eq!(
                pub_date.offset(),
                &a.published_at
                    .with_timezone(&b.meta.timezone)
                    .fixed_offset()
                    .timezone()
            );
            assert_eq!(instant(rss_text(item, "dcterms:modified")[0]), a.updated_at);
            assert_eq!(
                rss_text(item, "dc:rights"),
                a.source
                    .as_ref()
                    .and_then(|s| s.rights.as_deref())
                    .into_iter()
                    .collect::<Vec<_>>()
            );
            match a
                .source
                .as_ref()
                .and_then(|s| s.url.as_ref().map(|u| (s, u)))
            {
                Some((s, url)) => {
                    let src = &item["source"][0];
                    assert_eq!(src.0.get("url").map(String::as_str), Some(url.as_str()));
                    assert_eq!(src.1, s.name);
                }
                None => assert!(!item.contains_key("source")),
            }
            let cats: Vec<String> = rss_text(item, "category")
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(cats, categories(a));
            match &a.image {
                Some(image) => {
                    let enc = &item["enclosure"][0].0;
                    assert_eq!(enc.get("url").map(String::as_str), Some(image.url.as_str()));
                    assert_eq!(
                        enc.get("length").cloned(),
                        Some(image.length.unwrap_or(0).to_string())
                    );
                    let media = &parsed.media[0];
                    assert_eq!(
                        media.content[0].url.as_ref().map(|u| u.as_str()),
                        Some(image.url.as_str())
                    );
                    let credits: Vec<&str> =
                        media.credits.iter().map(|c| c.entity.as_str()).collect();
                    assert_eq!(
                        credits,
                        image.credit.as_deref().into_iter().collect::<Vec<_>>()
                    );
                    assert_eq!(
                        media.description.as_ref().map(|d| d.content.as_str()),
                        image.caption.as_deref()
                    );
                    let raw = text(doc);
                    if let Some(credit) = &image.credit {
                        assert!(raw.contains(&format!("<media:credit role=\"photographer\" scheme=\"urn:ebu\">{}</media:credit>", quick_xml::escape::escape(credit.as_str()))));
                    }
                }
                None => assert!(!item.contains_key("enclosure") && parsed.media.is_empty()),
            }
        }
    }
}

#[test]
fn atom_entries_carry_every_mapped_field() {
    for b in sample_feeds() {
        let doc = &b.docs[&Format::Atom];
        let feed = parse(doc);
        assert_eq!(
            feed.id,
            b.meta.self_url(Format::Atom),
            "feed id is stable: its self URL"
        );
        assert_eq!(feed.updated, b.articles.iter().map(|a| a.updated_at).max());
        for (a, e) in b.articles.iter().zip(&feed.entries) {
            let entry = Entry::prepare(a);
            assert_eq!(e.id, tag_uri(&b.meta.tag_authority, a));
            assert_eq!(
                e.title.as_ref().map(|t| t.content.as_str()),
                Some(a.headline.as_str())
            );
            assert_eq!(e.updated, Some(a.updated_at));
            assert_eq!(e.published, Some(a.published_at));
            // An entry with no text at all has its headline as summary.
            let summary = match (a.standfirst.as_deref(), entry.body()) {
                (None, None) => Some(a.headline.as_str()),
                (standfirst, _) => standfirst,
            };
            assert_eq!(e.summary.as_ref().map(|t| t.content.as_str()), summary);
            let content = e.content.as_ref().and_then(|c| c.body.clone());
            assert_eq!(content.as_deref(), entry.body(), "content of {}", a.id);
            let alternate: Vec<&str> = e
                .links
                .iter()
                .filter(|l| l.rel.as_deref() == Some("alternate"))
                .map(|l| l.href.as_str())
                .collect();
            assert_eq!(alternate, [a.url.as_str()]);
            let related: Vec<(String, Option<String>)> = e
                .links
                .iter()
                .filter(|l| l.rel.as_deref() == Some("related"))
                .map(|l| (l.href.clone(), l.title.clone()))
                .collect();
            let want: Vec<(String, Option<String>)> = a
                .related
                .iter()
                .map(|r| (r.url.to_string(), Some(r.title.clone())))
                .collect();
            assert_eq!(related, want);
            let enclosure: Vec<&str> = e
                .links
                .iter()
                .filter(|l| l.rel.as_deref() == Some("enclosure"))
                .map(|l| l.href.as_str())
                .collect();
            assert_eq!(
                enclosure,
                a.image.iter().map(|i| i.url.as_str()).collect::<Vec<_>>()
            );
            let authors: Vec<(Option<String>, Option<String>)> = e
                .authors
                .iter()
                .map(|p| (p.name.clone(), p.email.clone()))
                .collect();
            let want: Vec<(Option<String>, Option<String>)> = a
                .authors
                .iter()
                .map(|x| (Some(x.name.clone()), x.email.clone()))
                .collect();
            assert_eq!(authors, want);
            let cats: Vec<String> = e.categories.iter().map(|c| c.term.clone()).collect();
            assert_eq!(cats, categories(a));
            assert_eq!(
                e.rights.as_ref().map(|r| r.content.as_str()),
                a.source.as_ref().and_then(|s| s.rights.as_deref())
            );
            if let Some(image) = &a.image {
                let credits: Vec<&str> = e
                    .media
                    .iter()
                    .flat_map(|m| m.credits.iter().map(|c| c.entity.as_str()))
                    .collect();
                assert_eq!(
                    credits,
                    image.credit.as_deref().into_iter().collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn json_items_carry_every_mapped_field() {
    for b in sample_feeds() {
        let doc = &b.docs[&Format::Json];
        let feed = parse(doc);
        let raw: serde_json::Value = serde_json::from_slice(&doc.body).expect("json");
        assert_eq!(raw["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(raw["feed_url"], b.meta.self_url(Format::Json));
        for ((a, e), item) in b
            .articles
            .iter()
            .zip(&feed.entries)
            .zip(raw["items"].as_array().expect("items"))
        {
            let entry = Entry::prepare(a);
            assert_eq!(e.id, tag_uri(&b.meta.tag_authority, a));
            assert_eq!(item["url"], a.url.as_str());
            assert_eq!(
                e.title.as_ref().map(|t| t.content.as_str()),
                Some(a.headline.as_str())
            );
            assert_eq!(item["summary"].as_str(), a.standfirst.as_deref());
            assert_eq!(
                item["content_html"].as_str(),
                entry.content_with_related.as_deref()
            );
            // JSON Feed 1.1: content_html or content_text, always one.
            let text = match entry.content_with_related {
                Some(_) => None,
                None => Some(a.standfirst.as_deref().unwrap_or(&a.headline)),
            };
            assert_eq!(item["content_text"].as_str(), text, "{}", a.id);
            assert_eq!(
                instant(item["date_published"].as_str().expect("date")),
                a.published_at
            );
            assert_eq!(
                instant(item["date_modified"].as_str().expect("date")),
                a.updated_at
            );
            let names: Vec<&str> = item["authors"]
                .as_array()
                .map(|v| v.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                names,
                a.authors
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
            );
            let tags: Vec<String> = item["tags"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(tags, categories(a));
            assert_eq!(
                item["image"].as_str(),
                a.image.as_ref().map(|i| i.url.as_str())
            );
            let ext = &item["_feedsmith"];
            assert_eq!(ext["article_id"], a.id.as_str());
            assert_eq!(
                ext["rights"].as_str(),
                a.source.as_ref().and_then(|s| s.rights.as_deref())
            );
            assert_eq!(
                ext["source"]["name"].as_str(),
                a.source.as_ref().map(|s| s.name.as_str())
            );
            assert_eq!(
                ext["image"]["credit"].as_str(),
                a.image.as_ref().and_then(|i| i.credit.as_deref())
            );
            assert_eq!(
                ext["image"]["caption"].as_str(),
                a.image.as_ref().and_then(|i| i.caption.as_deref())
            );
            let related: Vec<&str> = ext["related"]
                .as_array()
                .map(|v| v.iter().filter_map(|r| r["url"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                related,
                a.related.iter().map(|r| r.url.as_str()).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn relative_body_urls_are_resolved_against_the_article() {
    let b = sample_feeds()
        .into_iter()
        .find(|b| b.spec.name.as_str() == "latest")
        .expect("latest");
    for doc in b.docs.values() {
        let t = text(doc);
        assert!(
            !t.contains("src=\\\"/images")
                && !t.contains("href=\"/world")
                && !t.contains("src=\"images/"),
            "{:?}",
            doc.format
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&b.docs[&Format::Json].body).expect("json");
    let battery = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["_feedsmith"]["article_id"] == "business-2025-grid-battery")
        .expect("battery");
    assert!(battery["content_html"].as_str().expect("html").contains(
        r#"<img src="https://news.example.com/business/2025/11/20/images/2025/11/battery-hall.jpg""#
    ));
}

#[test]
fn rss_has_what_rss_2_requires_and_dates_are_rfc_822() {
    for b in sample_feeds() {
        let xml = text(&b.docs[&Format::Rss]);
        let channel_end = xml.find("<item>").unwrap_or(xml.len());
        let head = &xml[..channel_end];
        for required in ["<title>", "<link>", "<description>"] {
            assert!(head.contains(required), "channel lacks {required}");
        }
        for item in rss_items(xml) {
            assert!(item.contains_key("title") || item.contains_key("description"));
            for date in rss_text(&item, "pubDate") {
                DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("{date:?}: {e}"));
            }
        }
        let build_date = head
            .split("<lastBuildDate>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .expect("lastBuildDate");
        let parsed = DateTime::parse_from_rfc2822(build_date).expect("RFC 822 lastBuildDate");
        assert_eq!(
            parsed,
            b.articles
                .iter()
                .map(|a| a.updated_at)
                .max()
                .expect("items")
        );
    }
}

#[test]
fn summer_and_winter_offsets_follow_the_site_zone() {
    let b = sample_feeds()
        .into_iter()
        .find(|b| b.spec.name.as_str() == "latest")
        .expect("latest");
    let rss = text(&b.docs[&Format::Rss]);
    // Published 09:15 Irish Summer Time; the Arctic story in January is GMT.
    assert!(rss.contains("<pubDate>Mon, 29 Sep 2025 09:15:00 +0100</pubDate>"));
    assert!(rss.contains("<pubDate>Wed, 14 Jan 2026 06:00:00 +0000</pubDate>"));
}

fn jing_available() -> bool {
    Command::new("jing").arg("-h").output().is_ok()
}

#[test]
fn atom_validates_against_the_rfc_4287_schema() {
    if !jing_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install jing (.ci/run does)"
        );
        eprintln!(
            "SKIPPED atom_validates_against_the_rfc_4287_schema: `jing` is not installed (apt-get install jing)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for b in sample_feeds() {
        let path = dir.path().join(format!("{}.atom", b.spec.name));
        std::fs::write(&path, &b.docs[&Format::Atom].body).expect("write");
        files.push(path);
    }
    // An empty feed must be valid too.
    let empty = builder::build(&sample_feeds()[0].meta, &[], &[Format::Atom]).expect("build");
    let path = dir.path().join("empty.atom");
    std::fs::write(&path, &empty[0].body).expect("write");
    files.push(path);
    // And one with RFC 6721 tombstones (foreign-namespace elements of the feed).
    let feed = &sample_feeds()[0];
    let gone = [builder::Tombstone {
        id: "withdrawn-story".parse().expect("id"),
        published_at: feed.articles[0].published_at,
        withdrawn_at: feed.articles[0].updated_at + chrono::Duration::hours(1),
    }];
    let with =
        builder::build_with(&feed.meta, &feed.articles, &gone, &[Format::Atom]).expect("build");
    let path = dir.path().join("tombstones.atom");
    std::fs::write(&path, &with[0].body).expect("write");
    files.push(path);
    // An RFC 5005 archive page (fh:archive, paging links) with a tombstone,
    // and the subscription document that links to it.
    for (name, paging) in [
        (
            "page.atom",
            builder::Paging::Archive {
                page: 2,
                newest_page: 3,
            },
        ),
        (
            "subscription.atom",
            builder::Paging::Subscription { newest_page: 3 },
        ),
    ] {
        let meta = builder::FeedMeta {
            paging,
            ..feed.meta.clone()
        };
        let doc =
            builder::build_with(&meta, &feed.articles, &gone, &[Format::Atom]).expect("build");
        let path = dir.path().join(name);
        std::fs::write(&path, &doc[0].body).expect("write");
        files.push(path);
    }
    let schema: &Path = &repo_root().join("tests/atom.rnc");
    let out = Command::new("jing")
        .arg("-c")
        .arg(schema)
        .args(&files)
        .output()
        .expect("run jing");
    assert!(
        out.status.success(),
        "jing rejected the Atom output:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn build_command_writes_identical_bytes_in_separate_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = repo_root().join("config/feedsmith.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let db = dir.path().join("articles.db");
    let local = text.replace(
        "sqlite://data/articles.db",
        &format!("sqlite://{}", db.display()),
    );
    let config_path = dir.path().join("feedsmith.toml");
    std::fs::write(&config_path, local).expect("write config");
    let mut outputs = Vec::new();
    for run in ["one", "two"] {
        let out_dir = dir.path().join(run);
        let status = Command::new(env!("CARGO_BIN_EXE_feedsmith"))
            .arg("--config")
            .arg(&config_path)
            .arg("build")
            .arg("--out")
            .arg(&out_dir)
            .current_dir(repo_root())
            .env("RUST_LOG", "warn")
            .status()
            .expect("run build");
        assert!(status.success());
        let mut files: Vec<_> = std::fs::read_dir(&out_dir)
            .expect("out dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        outputs.push(
            files
                .iter()
                .map(|f| {
                    (
                        f.file_name().map(|n| n.to_owned()),
                        std::fs::read(f).expect("read"),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0].len(), 12, "4 feeds × 3 formats");
    assert_eq!(outputs[0], outputs[1]);
    // Every file is the builder's bytes for the same articles (`build`
    // streams them; the service publishes `builder::build`'s).
    for feed in sample_feeds() {
        for (format, doc) in &feed.docs {
            let file = format!("one/{}.{}", feed.spec.name, format.extension());
            let on_disk = std::fs::read(dir.path().join(&file)).expect("read");
            assert!(on_disk == doc.body, "{file} is not the builder's bytes");
        }
    }
}

#[test]
fn snapshots_of_the_latest_feed() {
    let b = sample_feeds()
        .into_iter()
        .find(|b| b.spec.name.as_str() == "latest")
        .expect("latest");
    insta::assert_snapshot!("latest.rss", text(&b.docs[&Format::Rss]));
    insta::assert_snapshot!("latest.atom", text(&b.docs[&Format::Atom]));
    insta::assert_snapshot!("latest.json", text(&b.docs[&Format::Json]));
}

#[test]
fn the_feed_page_is_a_pure_function_of_the_feed() {
    let b = sample_feeds()
        .into_iter()
        .find(|b| b.spec.name.as_str() == "latest")
        .expect("latest");
    let page = builder::page::build(&b.meta, &b.articles, &b.spec.formats);
    let mut reversed = b.articles.clone();
    reversed.reverse();
    let again = builder::page::build(&b.meta, &reversed, &b.spec.formats);
    assert!(
        page.body == again.body,
        "the order articles come in changes nothing"
    );
    assert_eq!(
        page.updated,
        b.articles
            .iter()
            .map(|a| a.updated_at)
            .max()
            .expect("articles")
    );
    let html = String::from_utf8(page.body).expect("UTF-8");
    insta::assert_snapshot!("latest.page.html", html);
}
