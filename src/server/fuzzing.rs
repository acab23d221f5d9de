//! An entry point for the `http1` fuzz target (`fuzz/`): arbitrary bytes
//! through the fast path's request parser and, for a request it answers
//! itself, through the response decision and the response head it writes.
//!
//! It exists so the fuzzer exercises the real code rather than a copy; it is
//! not part of the service and nothing else calls it. Each broken invariant
//! panics, which is how the fuzzer reports it.

use std::sync::Arc;

use bytes::Bytes;
use chrono::DateTime;
use http::StatusCode;
use http::header::CONTENT_LENGTH;

use super::http1::{Connection, Parsed, head_bytes, parse};
use super::{ReplyBody, decide};
use crate::config::{FeedName, Format};
use crate::publish::{PublishedFeed, PublishedSet, Representation};

/// A published set to answer from: one feed in every format (large enough to
/// have compressed variants), the index, a retired and a pending feed.
#[doc(hidden)]
pub struct Http1Harness {
    set: PublishedSet,
}

impl Default for Http1Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Harness {
    pub fn new() -> Self {
        let modified = DateTime::from_timestamp(1_443_520_200, 0).unwrap_or_default();
        let page = |body: String, content_type| {
            Representation::compressed_now(
                Bytes::from(body),
                content_type,
                modified,
                "public, max-age=300".to_owned(),
                None,
            )
        };
        let mut feed = PublishedFeed::new();
        for format in Format::ALL {
            let body = format!(
                "<{}>{}</x>",
                format.extension(),
                "<item>x</item>".repeat(200)
            );
            feed.insert(format, Arc::new(page(body, "application/xml")));
        }
        let name = |n: &str| n.parse::<FeedName>().unwrap_or_else(|e| panic!("{e}"));
        let mut set = PublishedSet::starting([(name("latest"), feed)].into(), [name("coming")]);
        set.retire(&name("retired"));
        set.set_site(
            page("<html></html>".to_owned(), "text/html"),
            page("<opml/>".to_owned(), "text/x-opml"),
        );
        Self { set }
    }

    /// Checks one input; panics when an invariant breaks.
    pub fn run(&self, input: &[u8]) {
        let parsed = parse(input);
        let Parsed::Simple(request, len) = parsed else {
            return;
        };
        assert!(len <= input.len(), "consumed more than was read");
        assert!(request.path().starts_with('/'), "path {:?}", request.path());
        // Any shorter read of the same head is still incomplete: the answer
        // must not depend on how the bytes were split into packets.
        for cut in [len / 2, len.saturating_sub(1)] {
            if cut > 0 && cut < len {
                assert!(
                    matches!(parse(&input[..cut]), Parsed::Partial),
                    "a prefix of {cut} of {len} bytes was not partial"
                );
            }
        }
        let reply = decide(
            &self.set,
            &super::Probes {
                health: &|| Bytes::from_static(b"{}"),
                metrics: Some(&|| Bytes::from_static(b"")),
            },
            &request.method,
            request.path(),
            &request.headers,
            false,
            None,
        );
        assert!(
            reply.status != StatusCode::INTERNAL_SERVER_ERROR,
            "a request caused a 500"
        );
        let declared = reply
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match (&reply.body, reply.status) {
            (ReplyBody::Empty, _) => {}
            (body, status) => {
                assert!(status != StatusCode::NOT_MODIFIED, "a 304 with a body");
                assert_eq!(declared, Some(body.len()), "content-length is the body's");
            }
        }
        for connection in [
            Connection::Default,
            Connection::KeepAlive,
            Connection::Close,
        ] {
            let head = head_bytes(&reply, connection);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&head) {
                Ok(httparse::Status::Complete(n)) => assert_eq!(n, head.len()),
                other => panic!("our own response head does not parse: {other:?}"),
            }
            assert_eq!(response.code, Some(reply.status.as_u16()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_accepts_what_the_server_does() {
        let harness = Http1Harness::new();
        for input in [
            &b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /feeds/latest.atom HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n",
            b"HEAD /feeds/latest.json HTTP/1.0\r\n\r\n",
            b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n",
            b"GET /feeds/retired.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /feeds/coming.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Tue, 29 Sep 2015 09:50:00 GMT\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\xff\x00garbage",
        ] {
            harness.run(input);
        }
    }
}
