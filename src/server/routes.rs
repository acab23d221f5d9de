//! The URL space of `docs/contract.md` §4, matched on the raw request path.
//!
//! Paths are compared as sent, without percent-decoding or normalising: only
//! the exact spellings below name anything, so encoded dots, doubled slashes,
//! backslashes or NUL bytes simply find nothing. No path ever reaches the
//! filesystem. A query string is ignored (readers add tracking parameters).

use crate::config::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Index,
    Opml,
    Health,
    /// The WebSub hub's endpoint, `POST /websub`.
    Hub,
    /// Prometheus metrics, `GET /metrics`.
    Metrics,
    Feed {
        name: &'a str,
        format: Format,
    },
    /// Page `page` of a feed's RFC 5005 archive,
    /// `/feeds/{name}/archive/{page}.{ext}`.
    Archive {
        name: &'a str,
        page: u32,
        format: Format,
    },
    /// A feed's HTML page for people: `/feeds/{name}` or `/feeds/{name}.html`.
    Page {
        name: &'a str,
    },
    NotFound,
}

/// `[a-z0-9-]+`, the feed names `docs/contract.md` §2 allows.
fn feed_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn route(path: &str) -> Route<'_> {
    match path {
        "/" => Route::Index,
        "/feeds.opml" => Route::Opml,
        "/healthz" => Route::Health,
        "/websub" => Route::Hub,
        "/metrics" => Route::Metrics,
        _ => path
            .strip_prefix("/feeds/")
            .and_then(|file| match file.rsplit_once('.') {
                Some((name, "html")) => feed_name(name).then_some(Route::Page { name }),
                Some((stem, ext)) => {
                    let format = Format::ALL.into_iter().find(|f| f.extension() == ext)?;
                    match stem.split_once("/archive/") {
                        None => feed_name(stem).then_some(Route::Feed { name: stem, format }),
                        Some((name, page)) => {
                            // Digits only, no leading zero: one spelling per page.
                            let canonical = !page.is_empty()
                                && !page.starts_with('0')
                                && page.bytes().all(|b| b.is_ascii_digit());
                            let page = page.parse().ok().filter(|_| canonical)?;
                            feed_name(name).then_some(Route::Archive { name, page, format })
                        }
                    }
                }
                None => feed_name(file).then_some(Route::Page { name: file }),
            })
            .unwrap_or(Route::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_pages_route_with_one_spelling_per_page() {
        assert_eq!(
            route("/feeds/world-2/archive/12.atom"),
            Route::Archive {
                name: "world-2",
                page: 12,
                format: Format::Atom
            }
        );
        for path in [
            "/feeds/latest/archive/0.rss",
            "/feeds/latest/archive/012.rss",
            "/feeds/latest/archive/.rss",
            "/feeds/latest/archive/1x.rss",
            "/feeds/latest/archive/-1.rss",
            "/feeds/latest/archive/99999999999.rss",
            "/feeds/Latest/archive/1.rss",
            "/feeds/latest/archive/1.xml",
            "/feeds//archive/1.rss",
            "/feeds/latest/archive/1/2.rss",
        ] {
            assert_eq!(route(path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn contract_paths_route() {
        assert_eq!(route("/"), Route::Index);
        assert_eq!(route("/feeds.opml"), Route::Opml);
        assert_eq!(route("/healthz"), Route::Health);
        assert_eq!(route("/websub"), Route::Hub);
        assert_eq!(route("/metrics"), Route::Metrics);
        assert_eq!(route("/feeds/latest"), Route::Page { name: "latest" });
        assert_eq!(
            route("/feeds/world-2.html"),
            Route::Page { name: "world-2" }
        );
        assert_eq!(
            route("/feeds/latest.rss"),
            Route::Feed {
                name: "latest",
                format: Format::Rss
            }
        );
        assert_eq!(
            route("/feeds/world-2.atom"),
            Route::Feed {
                name: "world-2",
                format: Format::Atom
            }
        );
        assert_eq!(
            route("/feeds/x.json"),
            Route::Feed {
                name: "x",
                format: Format::Json
            }
        );
    }

    #[test]
    fn anything_else_is_not_found() {
        for path in [
            "",
            "/feeds/",
            "/feeds/.rss",
            "/feeds/latest.xml",
            "/feeds/.html",
            "/feeds/Latest",
            "/feeds/latest/",
            "/feeds/lat%20est",
            "/metrics/",
            "/feeds/Latest.rss",
            "/feeds/../config/feedsmith.toml",
            "/feeds/%2e%2e/x.rss",
            "/feeds//latest.rss",
            "/feeds/latest.rss/",
            "/feeds\\latest.rss",
            "/feeds/lat%00est.rss",
            "/feeds/a.b.rss",
            "//feeds/latest.rss",
            "/FEEDS/latest.rss",
            "/index.html",
            "/feeds/latest.rss.gz",
            "/feeds/%C0%AE%C0%AE/latest.rss",
            "/feeds/ü.rss",
        ] {
            assert_eq!(route(path), Route::NotFound, "{path:?}");
        }
    }
}
