//! One HTTP exchange with an upstream feed, as a good feed client makes it.
//!
//! This module owns the HTTP client (hyper over rustls with the Mozilla
//! roots), the request a fetch sends (User-Agent, `Accept-Encoding: gzip,
//! br`, the stored validators), following redirects (at most
//! [`MAX_REDIRECTS`], noting a permanent one), the size limit enforced while
//! the body is read (and decompressed), and the reading of the response
//! headers that decide what happens next (`Cache-Control: max-age`,
//! `Retry-After`). It answers with a [`Fetched`] and decides nothing about
//! schedules or state (that is `state`'s job), and it never touches the store.
//! Nothing that comes from the network may panic here: every header is
//! optional and every parse can fail.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

/// Redirects followed before a fetch gives up.
pub const MAX_REDIRECTS: usize = 5;
/// How long connecting to an upstream may take (the whole fetch has the
/// source's own `timeout` on top).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any upstream may make us wait (`Retry-After`) or keep us
/// from asking (`max-age`): a day. A bigger value is more likely a mistake
/// than a wish, and a source waits for at most this long.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// What feedsmith asks upstreams for: feeds first, any XML next.
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/xml;q=0.9, \
                      text/xml;q=0.9, */*;q=0.1";

/// Why a fetch got no usable answer. Messages are lower-case and name what
/// went wrong, for `/healthz` and the log.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be requested (a redirect to something odd, mostly).
    #[error("cannot request {url}: {reason}")]
    BadUrl {
        /// The URL, as given or redirected to.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting, TLS or the exchange itself failed.
    #[error("cannot reach {host}: {reason}")]
    Connect {
        /// The host asked.
        host: String,
        /// The client's description, with its causes.
        reason: String,
    },
    /// The whole fetch took longer than the source's `timeout`.
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than 5 redirects")]
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    #[error("redirect {status} without a usable location")]
    BadRedirect {
        /// The redirect's status code.
        status: u16,
    },
    /// The body (as sent or decompressed) is over the source's `max_bytes`.
    #[error("the body is over the limit of {limit} bytes (max_bytes)")]
    TooLarge {
        /// The source's limit.
        limit: u64,
    },
    /// The body broke off or could not be decompressed.
    #[error("cannot read the body: {0}")]
    Body(String),
    /// A `Content-Encoding` that was not asked for.
    #[error("the body has content encoding {0:?}, which was not asked for")]
    Encoding(String),
}

/// What one fetch sends.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The source's URL.
    pub url: &'a Url,
    /// The stored `ETag`, sent as `If-None-Match`.
    pub etag: Option<&'a str>,
    /// The stored `Last-Modified`, sent as `If-Modified-Since`.
    pub last_modified: Option<&'a str>,
    /// The most bytes the body may have, decompressed.
    pub max_bytes: u64,
    /// How long the whole fetch may take.
    pub timeout: Duration,
    /// `feedsmith/VERSION (+BASE_URL)`.
    pub user_agent: &'a str,
}

/// What the upstream's final answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `304 Not Modified`: what is stored is current.
    NotModified {
        /// `Cache-Control: max-age`, capped at [`MAX_WAIT`].
        max_age: Option<Duration>,
    },
    /// A `2xx` with its body, decompressed and within the limit.
    Body {
        /// The body.
        body: Vec<u8>,
        /// The response's `ETag`.
        etag: Option<String>,
        /// The response's `Last-Modified`.
        last_modified: Option<String>,
        /// `Cache-Control: max-age`, capped at [`MAX_WAIT`].
        max_age: Option<Duration>,
    },
    /// `429 Too Many Requests` or `503 Service Unavailable`: come back later.
    Throttled {
        /// 429 or 503.
        status: u16,
        /// `Retry-After`, as a delay from now, capped at [`MAX_WAIT`].
        retry_after: Option<Duration>,
    },
    /// `410 Gone`: the feed is no more.
    Gone,
    /// Any other status: an error on one side or the other.
    Status(u16),
}

/// One fetch's outcome: the answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// What the final response said.
    pub answer: Answer,
    /// Where a permanent redirect (`301`/`308`) of the source's URL leads,
    /// when its first hop was one: the admin should update the file.
    pub moved_to: Option<Url>,
}

/// `http` wrapped for `http` and `https` URLs, HTTP/1.1 and HTTP/2 (by
/// ALPN), verifying certificates against the Mozilla roots: the one TLS
/// set-up of every outbound client (pulled sources, the WebSub hub), whatever
/// resolves their names.
// rustls 0.23.48 deprecates ring's provider (no post-quantum key
// exchange); ring is kept because aws-lc-rs needs a C/CMake build in CI
// and fuzzing. Fetching public feeds with classical key exchange is what
// every feed reader does today.
#[allow(deprecated)]
pub(crate) fn tls_connector<R>(
    mut http: HttpConnector<R>,
) -> Result<HttpsConnector<HttpConnector<R>>, rustls::Error> {
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

/// The HTTP client every source fetches with; cheap to clone (one pool).
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetcher")
    }
}

impl Fetcher {
    /// A client for `http` and `https` URLs, HTTP/1.1 and HTTP/2 (by ALPN),
    /// verifying certificates against the Mozilla roots.
    pub fn new() -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(tls_connector(http)?);
        Ok(Self { client })
    }

    /// Fetches `request.url` once (following redirects), within its timeout.
    pub async fn fetch(
        &self,
        request: &Request<'_>,
        now: DateTime<Utc>,
    ) -> Result<Fetched, FetchError> {
        tokio::time::timeout(request.timeout, self.exchange(request, now))
            .await
            .map_err(|_| FetchError::Timeout(request.timeout))?
    }

    async fn exchange(
        &self,
        request: &Request<'_>,
        now: DateTime<Utc>,
    ) -> Result<Fetched, FetchError> {
        let mut url = request.url.clone();
        let mut moved_to = None;
        for hop in 0..=MAX_REDIRECTS {
            let response = self.send(&url, request).await?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l.trim()).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or(FetchError::BadRedirect {
                        status: status.as_u16(),
                    })?;
                let permanent = matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                if hop == 0 && permanent {
                    moved_to = Some(next.clone());
                }
                url = next;
                continue;
            }
            let answer = read_answer(response, request.max_bytes, now).await?;
            return Ok(Fetched { answer, moved_to });
        }
        Err(FetchError::TooManyRedirects)
    }

    async fn send(
        &self,
        url: &Url,
        request: &Request<'_>,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let bad = |reason: String| FetchError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.as_str().parse().map_err(|e| bad(format!("{e}")))?;
        let mut builder = http::Request::get(uri)
            .header(header::ACCEPT, ACCEPT)
            .header(header::ACCEPT_ENCODING, "gzip, br");
        if let Ok(agent) = HeaderValue::from_str(request.user_agent) {
            builder = builder.header(header::USER_AGENT, agent);
        }
        // Validators are sent back as they came; one that is no header value
        // (it came from a header, so it cannot be) is left out.
        if let Some(etag) = request.etag.and_then(|v| HeaderValue::from_str(v).ok()) {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = request
            .last_modified
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            builder = builder.header(header::IF_MODIFIED_SINCE, date);
        }
        let req = builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| bad(e.to_string()))?;
        self.client
            .request(req)
            .await
            .map_err(|e| FetchError::Connect {
                host: url.host_str().unwrap_or_default().to_owned(),
                reason: describe(&e),
            })
    }
}

/// The final response, read: a body only for a `2xx`.
async fn read_answer(
    response: http::Response<hyper::body::Incoming>,
    max_bytes: u64,
    now: DateTime<Utc>,
) -> Result<Answer, FetchError> {
    let status = response.status();
    let headers = response.headers().clone();
    let max_age = header_str(&headers, header::CACHE_CONTROL).and_then(parse_max_age);
    let answer = match status.as_u16() {
        304 => Answer::NotModified { max_age },
        200..=299 => {
            let body = read_body(response, &headers, max_bytes).await?;
            Answer::Body {
                body,
                etag: header_str(&headers, header::ETAG).map(str::to_owned),
                last_modified: header_str(&headers, header::LAST_MODIFIED).map(str::to_owned),
                max_age,
            }
        }
        410 => Answer::Gone,
        code @ (429 | 503) => Answer::Throttled {
            status: code,
            retry_after: header_str(&headers, header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, now)),
        },
        code => Answer::Status(code),
    };
    Ok(answer)
}

/// The body, refused as soon as it is known to be over `max_bytes`: by its
/// `Content-Length` before reading, while reading, and while decompressing.
async fn read_body(
    response: http::Response<hyper::body::Incoming>,
    headers: &HeaderMap,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    let too_large = FetchError::TooLarge { limit: max_bytes };
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(too_large);
    }
    let encoding = header_str(headers, header::CONTENT_ENCODING)
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity");
    if let Some(e) = &encoding
        && !matches!(e.as_str(), "gzip" | "x-gzip" | "br")
    {
        return Err(FetchError::Encoding(e.clone()));
    }
    let mut body = response.into_body();
    let mut bytes: Vec<u8> = Vec::with_capacity(
        usize::try_from(declared.unwrap_or(0).min(max_bytes).min(1 << 20)).unwrap_or(0),
    );
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Body(describe(&e)))?;
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > max_bytes {
                return Err(too_large);
            }
            bytes.extend_from_slice(&data);
        }
    }
    match encoding {
        None => Ok(bytes),
        // Decompressing is CPU work: off the runtime's threads.
        Some(encoding) => tokio::task::spawn_blocking(move || decode(&encoding, &bytes, max_bytes))
            .await
            .map_err(|e| FetchError::Body(format!("the decompressing task failed: {e}")))?,
    }
}

/// `bytes` decompressed per `encoding` (gzip or br), refused past `max_bytes`
/// of output so that a small bomb cannot fill memory.
pub fn decode(encoding: &str, bytes: &[u8], max_bytes: u64) -> Result<Vec<u8>, FetchError> {
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        "br" => Box::new(brotli::Decompressor::new(bytes, 4096)),
        other => return Err(FetchError::Encoding(other.to_owned())),
    };
    let mut out = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| FetchError::Body(format!("cannot decompress the {encoding} body: {e}")))?;
    if out.len() as u64 > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

/// A header's value as text, when it is there and is text.
fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `Retry-After` (RFC 9110 §10.2.3) as a delay from `now`: delay-seconds or
/// an HTTP-date (a date in the past is no delay), capped at [`MAX_WAIT`].
/// `None` when it is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_WAIT))
}

/// `Cache-Control`'s `max-age` (RFC 9111 §5.2.2.1), capped at [`MAX_WAIT`];
/// `None` when absent or malformed. `no-store` and `no-cache` mean nothing
/// here: the next fetch revalidates anyway.
pub fn parse_max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, arg) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let digits = arg.trim().trim_matches('"');
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs = digits.parse::<u64>().unwrap_or(u64::MAX);
        Some(Duration::from_secs(secs).min(MAX_WAIT))
    })
}

/// An error and its causes, `: `-separated, as one line.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("valid")
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        assert_eq!(
            parse_retry_after("120", at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", at(0)), Some(Duration::ZERO));
        let date = httpdate::fmt_http_date((at(90)).into());
        assert_eq!(
            parse_retry_after(&date, at(0)),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after(&date, at(200)),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(
            parse_retry_after("999999999999999999999999", at(0)),
            Some(MAX_WAIT)
        );
        assert_eq!(parse_retry_after("604800", at(0)), Some(MAX_WAIT));
        for junk in ["", "-5", "soon", "1.5", "Mon, 99 Foo 2026"] {
            assert_eq!(parse_retry_after(junk, at(0)), None, "{junk:?}");
        }
    }

    #[test]
    fn max_age_is_read_among_other_directives_and_capped() {
        assert_eq!(parse_max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_max_age("public, MAX-AGE=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("s-maxage=60"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
        assert_eq!(parse_max_age("max-age="), None);
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("max-age=31536000"), Some(MAX_WAIT));
    }

    #[test]
    fn decompression_is_bounded_by_the_limit() {
        use std::io::Write;
        let plain = vec![b'a'; 10_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(decode("gzip", &gz, 10_000).expect("fits"), plain);
        assert!(matches!(
            decode("gzip", &gz, 9_999),
            Err(FetchError::TooLarge { limit: 9_999 })
        ));
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&plain).expect("br");
        }
        assert_eq!(decode("br", &br, 10_000).expect("fits"), plain);
        assert!(matches!(
            decode("br", &br, 100),
            Err(FetchError::TooLarge { .. })
        ));
        assert!(matches!(
            decode("gzip", b"not gzip", 100),
            Err(FetchError::Body(_))
        ));
        assert!(matches!(
            decode("zstd", b"", 100),
            Err(FetchError::Encoding(_))
        ));
    }
}
