//! One delivery attempt: the partner message POSTed as `application/json` with the Standard
//! Webhooks headers, and what counts as success (a 2xx) or which failure it was. Redirects are not
//! followed (a 3xx is a failure: the endpoint should be updated instead).

use crate::config::WebhooksConfig;
use crate::endpoint::Endpoint;
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
            Self::Invalid(invalid) => format!("invalid_{}", invalid.code()),
        }
    }

    /// Reads [`Failure::code`] back.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "timeout" => Some(Self::Timeout),
            "connect" => Some(Self::Connect),
            "request" => Some(Self::Request),
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

/// Posts partner messages.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    client: reqwest::Client,
}

impl Poster {
    pub(crate) fn new(config: &WebhooksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("wasl-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(Self { client })
    }

    /// One attempt, signed at `now`: the receiver's status on a 2xx, else why it failed.
    pub(crate) async fn post(
        &self,
        endpoint: &Endpoint,
        id: &str,
        body: &Bytes,
        now: SystemTime,
    ) -> Result<u16, Failure> {
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
