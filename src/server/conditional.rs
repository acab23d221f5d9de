//! Conditional requests (RFC 9110 §13) and content-coding negotiation
//! (§12.5.3), as pure functions of request headers and a representation.
//!
//! Readers echo validators back byte for byte, CDNs weaken strong tags to
//! `W/"…"` when they recompress, and some send dates we did not write; the rules
//! here accept all of that the way the RFC says to, so nearly every poll can end
//! in a `304 Not Modified`.

use std::time::SystemTime;

use http::HeaderMap;
use http::header::{
    ACCEPT_ENCODING, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE,
};

use crate::publish::{Representation, Variant};

/// What a conditional GET or HEAD comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the representation.
    Full,
    /// `304 Not Modified`: the client's copy is current.
    NotModified,
    /// `412 Precondition Failed`: an `If-Match` / `If-Unmodified-Since` failed.
    PreconditionFailed,
}

/// Which request headers made a request conditional, for the access log.
pub fn is_conditional(headers: &HeaderMap) -> bool {
    [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|h| headers.contains_key(h))
}

/// Evaluates the preconditions of a GET or HEAD in the order of RFC 9110
/// §13.2.2: `If-Match`, then `If-Unmodified-Since` (only without `If-Match`),
/// then `If-None-Match`, then `If-Modified-Since` (only without
/// `If-None-Match`). `now` is only used to ignore dates in the future.
pub fn evaluate(
    headers: &HeaderMap,
    rep: &Representation,
    variant: &Variant,
    now: SystemTime,
) -> Outcome {
    let tag = variant.etag.as_str();
    let last_modified = last_modified_secs(rep);

    if let Some(value) = header_str(headers, IF_MATCH) {
        if !matches_strong(value, tag) {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(since) = header_date(headers, IF_UNMODIFIED_SINCE, now)
        && last_modified > since
    {
        return Outcome::PreconditionFailed;
    }

    if let Some(value) = header_str(headers, IF_NONE_MATCH) {
        return if matches_weak(value, tag) {
            Outcome::NotModified
        } else {
            Outcome::Full
        };
    }
    if let Some(since) = header_date(headers, IF_MODIFIED_SINCE, now)
        && last_modified <= since
    {
        return Outcome::NotModified;
    }
    Outcome::Full
}

fn header_str(headers: &HeaderMap, name: http::HeaderName) -> Option<&str> {
    // A header that is not visible ASCII cannot match anything we sent: treat
    // a garbled validator as a non-matching one rather than as absent.
    headers.get(&name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// A date header as seconds since the epoch; unparseable or future dates are ignored.
fn header_date(headers: &HeaderMap, name: http::HeaderName, now: SystemTime) -> Option<u64> {
    let value = headers.get(&name)?.to_str().ok()?;
    let date = httpdate::parse_http_date(value.trim()).ok()?;
    if date > now {
        return None;
    }
    date.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn last_modified_secs(rep: &Representation) -> u64 {
    u64::try_from(rep.last_modified.timestamp()).unwrap_or(0)
}

/// The entity tags in an `If-None-Match` / `If-Match` value, or `None` for `*`.
fn entity_tags(value: &str) -> Option<Vec<(bool, &str)>> {
    let value = value.trim();
    if value == "*" {
        return None;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with("W/") || rest.starts_with("w/");
        if weak {
            rest = &rest[2..];
        }
        let element_end = |from: usize| rest[from..].find(',').map_or(rest.len(), |i| from + i);
        if let Some(inner) = rest.strip_prefix('"') {
            let Some(close) = inner.find('"') else {
                break; // unterminated: nothing after it can be read
            };
            let end = element_end(close + 2);
            // Anything but spaces between the closing quote and the comma makes
            // the element malformed; it matches nothing.
            if rest[close + 2..end].trim().is_empty() {
                tags.push((weak, &rest[..close + 2]));
            }
            rest = &rest[end..];
        } else {
            // Some clients drop the quotes; take the token up to the next comma.
            let end = element_end(0);
            tags.push((weak, rest[..end].trim()));
            rest = &rest[end..];
        }
    }
    Some(tags)
}

fn opaque(tag: &str) -> &str {
    tag.trim_matches('"')
}

/// Weak comparison (RFC 9110 §8.8.3.2), for `If-None-Match`: `W/` is ignored,
/// and `*` matches any current representation.
pub fn matches_weak(value: &str, ours: &str) -> bool {
    match entity_tags(value) {
        None => true,
        Some(tags) => tags.iter().any(|(_, t)| opaque(t) == opaque(ours)),
    }
}

/// Strong comparison, for `If-Match`: a weak tag never matches.
pub fn matches_strong(value: &str, ours: &str) -> bool {
    match entity_tags(value) {
        None => true,
        Some(tags) => tags
            .iter()
            .any(|(weak, t)| !weak && t.starts_with('"') && *t == ours),
    }
}

/// Picks the variant to send from `Accept-Encoding` (RFC 9110 §12.5.3). Without
/// the header, identity. The highest q-value wins; on a tie the smaller coding
/// (brotli, then gzip, then identity). `None` when every available coding,
/// identity included, was refused with `q=0`.
pub fn negotiate<'a>(headers: &HeaderMap, rep: &'a Representation) -> Option<&'a Variant> {
    let Some(accept) = headers.get(ACCEPT_ENCODING) else {
        return Some(&rep.identity);
    };
    let accept = accept.to_str().unwrap_or("");
    let mut explicit: [Option<f32>; 3] = [None; 3]; // br, gzip, identity
    let mut star: Option<f32> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
            }
        }
        let slot = match coding.as_str() {
            "br" => Some(0),
            "gzip" | "x-gzip" => Some(1),
            "identity" => Some(2),
            "*" => {
                star = Some(q);
                None
            }
            _ => None,
        };
        if let Some(i) = slot {
            explicit[i] = Some(q);
        }
    }
    let q_of = |i: usize| -> f32 {
        match (explicit[i], star) {
            (Some(q), _) => q,
            (None, Some(q)) => q,
            // Identity is acceptable unless refused, but a client that names
            // codings prefers them: unnamed identity ranks below any of them.
            (None, None) if i == 2 => 0.001,
            (None, None) => 0.0,
        }
    };
    let candidates = [
        (q_of(0), rep.brotli()),
        (q_of(1), rep.gzip()),
        (q_of(2), Some(&rep.identity)),
    ];
    let mut best: Option<(f32, &Variant)> = None;
    for (q, variant) in candidates {
        if let Some(v) = variant
            && q > 0.0
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, v));
        }
    }
    best.map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
