//! The hub's outbound HTTP: requests to URLs that strangers gave it.
//!
//! This module owns the [`AddressPolicy`] (which addresses a callback may
//! reach) and the [`HubClient`] that enforces it where it matters, at
//! connect time: names resolve through [`GuardedResolver`], which hands the
//! connector only the addresses the policy allows, so a name that points at
//! `127.0.0.1` is refused as surely as the literal; an address literal never
//! reaches a resolver, so it is checked before the request. Redirects are
//! never followed. Every exchange has a deadline and reads at most a bounded
//! body. External hubs an admin configured are trusted and reached without
//! the policy. It decides nothing about subscriptions or retries.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use ipnet::IpNet;
use url::Url;

use crate::source::fetch::{CONNECT_TIMEOUT, describe, tls_connector};

/// Which addresses callbacks may reach: every public address, and the
/// refused ranges (loopback, private, link-local, unique-local and the like)
/// only where an admin allowed them.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Arc<Vec<IpNet>>,
}

impl AddressPolicy {
    /// Public addresses, plus `allow`.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    /// Whether a callback may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip)) || !is_internal(ip)
    }
}

/// Addresses that are not somebody's public server: this host, the local
/// networks, and addresses no callback can sensibly have.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT: shared address space.
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking networks.
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7, unique local.
                || (first & 0xfe00) == 0xfc00
                // fe80::/10, link-local.
                || (first & 0xffc0) == 0xfe80
                // fec0::/10, the deprecated site-local.
                || (first & 0xffc0) == 0xfec0
                // 2001:db8::/32, documentation.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// A resolver that answers only with the addresses the policy permits, and
/// fails for a name that has none: the connector connects to nothing else.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves to {} address(es), none of which callbacks may reach",
                        found.len()
                    ),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// Why an exchange got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL's address is one the policy refuses.
    #[error(
        "callback address {0} is not allowed (loopback, private or local; see websub.allow_callbacks)"
    )]
    Refused(String),
    /// The URL cannot be requested.
    #[error("cannot request {url}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting, TLS or the exchange failed (a refused name included).
    #[error("cannot reach {host}: {reason}")]
    Connect {
        /// The host asked.
        host: String,
        /// The client's description, with its causes.
        reason: String,
    },
    /// No complete answer in time.
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

/// An answer: its status and the start of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, or `None` when it was longer than asked for.
    pub body: Option<Bytes>,
}

type Connector<R> = HttpsConnector<HttpConnector<R>>;

/// The hub's two clients: one held to the [`AddressPolicy`] for callbacks,
/// one for the admin's external hubs. Cheap to clone (shared pools).
#[derive(Clone)]
pub struct HubClient {
    guarded: Client<Connector<GuardedResolver>, Full<Bytes>>,
    trusted: Client<Connector<hyper_util::client::legacy::connect::dns::GaiResolver>, Full<Bytes>>,
    policy: AddressPolicy,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Whom a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A URL a stranger gave: held to the policy.
    Callback,
    /// An external hub from the configuration.
    Trusted,
}

impl HubClient {
    /// Clients whose callbacks may reach what `policy` permits; requests say
    /// `user_agent`.
    pub fn new(policy: AddressPolicy, user_agent: &str) -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            policy: policy.clone(),
        });
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let guarded = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(tls_connector(http)?);
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let trusted = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(tls_connector(http)?);
        Ok(Self {
            guarded,
            trusted,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("feedsmith")),
            policy,
        })
    }

    /// Whether `url` may be asked at all: an address literal the policy
    /// refuses may not (names are checked when they resolve).
    pub fn check(&self, url: &Url) -> Result<(), ClientError> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        match literal {
            Some(ip) if !self.policy.permits(ip) => Err(ClientError::Refused(ip.to_string())),
            _ => Ok(()),
        }
    }

    /// Sends one request and reads at most `max_body` bytes of the answer,
    /// all within `timeout`.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        reach: Reach,
        method: http::Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Answer, ClientError> {
        if reach == Reach::Callback {
            self.check(url)?;
        }
        let bad = |reason: String| ClientError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.as_str().parse().map_err(|e| bad(format!("{e}")))?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, self.user_agent.clone());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(body)).map_err(|e| bad(e.to_string()))?;
        let exchange = async {
            let response = match reach {
                Reach::Callback => self.guarded.request(req).await,
                Reach::Trusted => self.trusted.request(req).await,
            }
            .map_err(|e| ClientError::Connect {
                host: url.host_str().unwrap_or_default().to_owned(),
                reason: describe(&e),
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), max_body)
                .collect()
                .await
                .ok()
                .map(|c| c.to_bytes());
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn local_addresses_are_refused_unless_allowed() {
        let policy = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused} must be refused");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(policy.permits(ip(public)), "{public} must be allowed");
        }
        let policy = AddressPolicy::new(vec!["127.0.0.1/32".parse().expect("net")]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(
            !policy.permits(ip("::1")),
            "allowing 127.0.0.1 does not allow [::1]"
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_resolves_to_nothing() {
        use tower_service::Service as _;
        let mut resolver = GuardedResolver {
            policy: AddressPolicy::default(),
        };
        let name: Name = "localhost".parse().expect("name");
        let err = resolver.call(name).await.expect_err("localhost is refused");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    }
}
