//! Verification of intent and denial: the hub's `GET`s to a callback.
//!
//! W3C WebSub §5.3: before a subscription or an unsubscription takes effect
//! the hub asks the callback, with `hub.mode`, `hub.topic`, a fresh
//! `hub.challenge` and (to subscribe) `hub.lease_seconds` appended to the
//! callback's own query; the subscriber agrees only by answering `2xx` with
//! the challenge as the whole body. §5.2: a subscription the hub refuses is
//! reported with `hub.mode=denied` and `hub.reason`. This module makes those
//! requests and judges the answers; it never writes the store.

use std::time::Duration;

use url::Url;

use super::client::{ClientError, HubClient, Reach};

/// What a subscriber asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Start or renew deliveries.
    Subscribe,
    /// Stop them.
    Unsubscribe,
}

impl Mode {
    /// The `hub.mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}

/// Why a callback did not confirm.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An answer other than a `2xx`.
    #[error("the callback answered {0}")]
    Status(u16),
    /// A `2xx` whose body is not the challenge.
    #[error("the callback did not echo the challenge")]
    Echo,
}

/// A challenge no one can guess: 32 random bytes as hex.
pub fn challenge() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `callback` with `params` appended to whatever query it already has.
fn with_query(callback: &Url, params: &[(&str, &str)]) -> Url {
    let mut url = callback.clone();
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    url
}

/// Asks `callback` to confirm `mode` of `topic`; `lease` for a subscribe.
pub async fn verify(
    client: &HubClient,
    callback: &Url,
    mode: Mode,
    topic: &str,
    lease: Option<Duration>,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let challenge = challenge().map_err(|e| {
        VerifyError::Client(ClientError::BadUrl {
            url: callback.to_string(),
            reason: format!("no randomness for a challenge: {e}"),
        })
    })?;
    let lease_text = lease.map(|l| l.as_secs().to_string());
    let mut params = vec![
        ("hub.mode", mode.as_str()),
        ("hub.topic", topic),
        ("hub.challenge", challenge.as_str()),
    ];
    if let Some(l) = &lease_text {
        params.push(("hub.lease_seconds", l.as_str()));
    }
    let url = with_query(callback, &params);
    // A little more than the challenge is read, so an echo with anything
    // after it is told from the challenge itself.
    let answer = client
        .send(
            Reach::Callback,
            http::Method::GET,
            &url,
            Vec::new(),
            bytes::Bytes::new(),
            timeout,
            challenge.len() + 64,
        )
        .await?;
    if !(200..300).contains(&answer.status) {
        return Err(VerifyError::Status(answer.status));
    }
    match answer.body {
        Some(body) if body.as_ref() == challenge.as_bytes() => Ok(()),
        _ => Err(VerifyError::Echo),
    }
}

/// Tells `callback` that its subscription to `topic` is denied, and why.
pub async fn deny(
    client: &HubClient,
    callback: &Url,
    topic: &str,
    reason: &str,
    timeout: Duration,
) -> Result<(), ClientError> {
    let url = with_query(
        callback,
        &[
            ("hub.mode", "denied"),
            ("hub.topic", topic),
            ("hub.reason", reason),
        ],
    );
    client
        .send(
            Reach::Callback,
            http::Method::GET,
            &url,
            Vec::new(),
            bytes::Bytes::new(),
            timeout,
            1024,
        )
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_keeps_the_callbacks_own_query() {
        let cb = Url::parse("https://sub.example/cb?id=7").expect("url");
        let url = with_query(
            &cb,
            &[("hub.mode", "subscribe"), ("hub.topic", "https://x/a b")],
        );
        assert_eq!(
            url.as_str(),
            "https://sub.example/cb?id=7&hub.mode=subscribe&hub.topic=https%3A%2F%2Fx%2Fa+b"
        );
    }

    #[test]
    fn challenges_differ() {
        let (a, b) = (challenge().expect("random"), challenge().expect("random"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
