//! One delivery attempt: the partner message POSTed as `application/json` with the Standard
//! Webhooks headers, and what counts as success (a 2xx) or which failure it was. Redirects are not
//! followed (a 3xx is a failure: the endpoint should be updated instead), and no proxy from the
//! environment is used.
//!
//! Every attempt resolves the endpoint's host again and connects only to addresses that pass
//! [`Destinations`]: the client's DNS resolver is the check itself, so the addresses it hands to
//! the connector are the ones it checked (no second lookup that a rebinding DNS answer could
//! change), and a host with any address that is not public fails as [`Failure::NotPublic`]
//! without a connection. An address written in the URL is checked before the request.

use crate::config::WebhooksConfig;
use crate::endpoint::Endpoint;
use crate::net::{Destinations, Refused};
use crate::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, signature_header, unix_seconds};
use bytes::Bytes;
use std::fmt;
use std::time::SystemTime;

/// Why a delivery attempt failed, or why a message was never attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The receiver answered with this non-2xx status.
    Status(u16),
    /// No answer within the request timeout.
    Timeout,
    /// No connection (refused, DNS, TLS handshake).
    Connect,
    /// Any other transport error (reset, malformed response).
    Request,
    /// The endpoint's host is, or now resolves to, an address that is not public and not
    /// allowed: nothing was sent.
    NotPublic,
    /// The message in the feed is not a partner message: it was dead-lettered at once, without
    /// an attempt, and is never sent (not even by a redelivery).
    Invalid(Invalid),
}

impl Failure {
    /// A short stable code: `http_503`, `timeout`, `connect`, `request`, `invalid_not_json`, ….
    pub fn code(&self) -> String {
        match self {
            Self::Status(status) => format!("http_{status}"),
            Self::Timeout => "timeout".to_owned(),
            Self::Connect => "connect".to_owned(),
            Self::Request => "request".to_owned(),
            Self::NotPublic => "not_public".to_owned(),
            Self::Invalid(invalid) => format!("invalid_{}", invalid.code()),
        }
    }

    /// Reads [`Failure::code`] back.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "timeout" => Some(Self::Timeout),
            "connect" => Some(Self::Connect),
            "request" => Some(Self::Request),
            "not_public" => Some(Self::NotPublic),
            other => match other.strip_prefix("invalid_") {
                Some(invalid) => Invalid::from_code(invalid).map(Self::Invalid),
                None => other.strip_prefix("http_")?.parse().ok().map(Self::Status),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Connect => f.write_str("connection failed"),
            Self::Request => f.write_str("request failed"),
            Self::NotPublic => f.write_str("the host is not at a public address"),
            Self::Invalid(invalid) => write!(f, "not a partner message ({invalid})"),
        }
    }
}

/// Why a message in a feed is not a partner message. Anyone who may publish to the feed's
/// subjects can put anything there; the worker signs and sends only what the router wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// The body is not JSON (garbage bytes, not UTF-8, truncated).
    NotJson,
    /// JSON, but not a partner message: not an object, or a field the message must have is
    /// missing or of the wrong type.
    WrongShape,
    /// A `schema` other than `wasl.partner.referral.v1` and `wasl.partner.redaction.v1`.
    UnknownSchema,
    /// No `Nats-Msg-Id` header (the message id the router gives it, which becomes the `webhook-id`).
    MissingHeaders,
    /// The `Nats-Msg-Id` header or the subject names another message than the body does.
    Mismatch,
}

impl Invalid {
    /// Every kind.
    pub const ALL: &'static [Invalid] = &[
        Self::NotJson,
        Self::WrongShape,
        Self::UnknownSchema,
        Self::MissingHeaders,
        Self::Mismatch,
    ];

    /// A short stable code: `not_json`, `wrong_shape`, `unknown_schema`, `missing_headers`,
    /// `mismatch`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::WrongShape => "wrong_shape",
            Self::UnknownSchema => "unknown_schema",
            Self::MissingHeaders => "missing_headers",
            Self::Mismatch => "mismatch",
        }
    }

    /// Reads [`Invalid::code`] back.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|invalid| invalid.code() == code)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "the body is not JSON",
            Self::WrongShape => "JSON of another shape",
            Self::UnknownSchema => "an unknown schema",
            Self::MissingHeaders => "no Nats-Msg-Id header",
            Self::Mismatch => "its header or subject names another message",
        })
    }
}

/// The client's DNS resolver: resolves, and hands over the addresses only if every one is
/// permitted.
struct CheckingResolver {
    destinations: Destinations,
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.destinations.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs = destinations.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Posts partner messages.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    client: reqwest::Client,
    destinations: Destinations,
}

impl Poster {
    pub(crate) fn new(config: &WebhooksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("wasl-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf to wherever the URL points, unchecked.
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(CheckingResolver {
                destinations: config.destinations.clone(),
            }))
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(Self {
            client,
            destinations: config.destinations.clone(),
        })
    }

    /// One attempt, signed at `now`: the receiver's status on a 2xx, else why it failed.
    pub(crate) async fn post(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &Bytes,
        now: SystemTime,
    ) -> Result<u16, Failure> {
        // The resolver is not asked about an address in the URL.
        let literal = endpoint.url.host_str().and_then(|host| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok()
        });
        if literal.is_some_and(|ip| !self.destinations.permits(ip)) {
            return Err(Failure::NotPublic);
        }
        let timestamp = unix_seconds(now);
        let signature = signature_header(&endpoint.signing_secrets(now), id, timestamp, body);
        let response = self
            .client
            .post(endpoint.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body.clone())
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        // The body is not read: nothing the receiver says is used, and the connection is freed.
        drop(response);
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

fn classify(err: reqwest::Error) -> Failure {
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        match cause.downcast_ref::<Refused>() {
            Some(Refused::NotPublic) => return Failure::NotPublic,
            Some(Refused::Unresolved) => return Failure::Connect,
            None => source = cause.source(),
        }
    }
    if err.is_timeout() {
        Failure::Timeout
    } else if err.is_connect() {
        Failure::Connect
    } else {
        Failure::Request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_round_trip() {
        for failure in [
            Failure::Status(503),
            Failure::Status(404),
            Failure::Timeout,
            Failure::Connect,
            Failure::Request,
            Failure::NotPublic,
        ]
        .into_iter()
        .chain(Invalid::ALL.iter().copied().map(Failure::Invalid))
        {
            assert_eq!(Failure::from_code(&failure.code()), Some(failure));
        }
        assert_eq!(Failure::from_code("http_x"), None);
        assert_eq!(Failure::from_code("invalid_other"), None);
        assert_eq!(Failure::from_code("other"), None);
    }
}
