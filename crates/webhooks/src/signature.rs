//! Signing and verification after the Standard Webhooks specification (standardwebhooks.com,
//! version 1.0.0, symmetric scheme): the signed content is `{webhook-id}.{webhook-timestamp}.{body}`,
//! the signature HMAC-SHA256 keyed by the secret's decoded bytes, sent base64-encoded as
//! `v1,<signature>`; several space-separated signatures are allowed so a secret can be rotated
//! without downtime. Secrets are shown as `whsec_<base64>`.
//!
//! [`verify`] is the helper partners (and our tests) use on the receiving side.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Header: the message's id, the same on every attempt (the partner message's source event id);
/// receivers dedupe on it.
pub const HEADER_ID: &str = "webhook-id";
/// Header: when this attempt was signed, integer unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: one or more space-separated `v1,<base64 HMAC-SHA256>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a serialised secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The version identifier of symmetric (HMAC-SHA256) signatures.
pub const SIGNATURE_VERSION: &str = "v1";
/// How many random bytes a generated secret has (the specification asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// The smallest secret [`Secret::parse`] accepts, in bytes.
pub const MIN_SECRET_BYTES: usize = 24;
/// The largest secret [`Secret::parse`] accepts, in bytes.
pub const MAX_SECRET_BYTES: usize = 64;
/// The replay window receivers should use unless they have a reason not to: five minutes, as
/// the specification's reference libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

type HmacSha256 = Hmac<Sha256>;

/// A signing secret. Its bytes are zeroed on drop and never printed: `Debug` shows
/// `Secret(whsec_…)`; [`Secret::expose`] gives the serialised form, to hand out once.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A new random secret of [`SECRET_BYTES`] bytes from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Parses `whsec_<base64>` (the prefix may be left out), 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.trim().strip_prefix(SECRET_PREFIX).unwrap_or(text.trim());
        let bytes = Zeroizing::new(STANDARD.decode(encoded).map_err(|_| InvalidSecret::Encoding)?);
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(InvalidSecret::Length(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The serialised secret, `whsec_<base64>`: what the organisation configures in its receiver.
    pub fn expose(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0.as_slice())))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

/// Why a text is not a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    /// Not base64 after the `whsec_` prefix.
    #[error("the secret is not base64 after `whsec_`")]
    Encoding,
    /// Too short or too long.
    #[error("the secret has {0} bytes; 24 to 64 are allowed")]
    Length(usize),
}

fn mac_over(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One signature, `v1,<base64>`, over `{id}.{timestamp}.{body}`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac_over(secret, id, timestamp, body).finalize().into_bytes();
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
}

/// The `webhook-signature` value: one signature per secret, space-separated (the current secret
/// and, during a rotation's overlap, the previous one).
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Unix seconds of `time` (negative before 1970).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Where [`verify`] reads the three headers from. Header names are looked up in lower case;
/// implementations for `http`/`reqwest`/`axum` header maps (case-insensitive) and plain maps
/// (keys given in lower case) are provided.
pub trait HeaderSource {
    /// The value of header `name` (lower case), when present and text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderSource for reqwest::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl HeaderSource for HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl HeaderSource for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl HeaderSource for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

impl<const N: usize> HeaderSource for [(&str, &str); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

/// Why a webhook was refused by [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing (or not text).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not an integer")]
    InvalidTimestamp,
    /// The timestamp is older than the tolerance: possibly a replay.
    #[error("webhook-timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance.
    #[error("webhook-timestamp is too far in the future")]
    TimestampTooNew,
    /// No `v1` signature in the header matches the body, id and timestamp under this secret.
    #[error("no valid signature")]
    BadSignature,
}

/// Verifies a received webhook: the three headers are present, the timestamp lies within
/// `tolerance` of `now` (replay protection), and one of the `v1` signatures matches
/// `{webhook-id}.{webhook-timestamp}.{body}` under `secret`, compared in constant time.
/// `body` must be the raw bytes received, not JSON parsed and serialised again.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wasl_webhooks::signature::{Secret, sign, unix_seconds, verify};
///
/// let secret = Secret::generate().unwrap();
/// let now = SystemTime::now();
/// let body = br#"{"schema":"wasl.partner.referral.v1"}"#;
/// let signature = sign(&secret, "evt-1", unix_seconds(now), body);
/// let timestamp = unix_seconds(now).to_string();
/// let headers = [
///     ("webhook-id", "evt-1"),
///     ("webhook-timestamp", timestamp.as_str()),
///     ("webhook-signature", signature.as_str()),
/// ];
/// verify(&secret, &headers, body, now, Duration::from_secs(300)).unwrap();
/// ```
pub fn verify<H: HeaderSource + ?Sized>(
    secret: &Secret,
    headers: &H,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = headers.header(HEADER_ID).ok_or(VerifyError::MissingHeader(HEADER_ID))?;
    let timestamp = headers
        .header(HEADER_TIMESTAMP)
        .ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = headers
        .header(HEADER_SIGNATURE)
        .ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    let now = unix_seconds(now);
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(timestamp) > tolerance {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp.saturating_sub(now) > tolerance {
        return Err(VerifyError::TimestampTooNew);
    }
    let expected = mac_over(secret, id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter_map(|candidate| candidate.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        // `verify_slice` compares in constant time.
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known-answer vector of the Standard Webhooks reference libraries.
    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SPEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SPEC_TIMESTAMP: i64 = 1_649_367_553;
    const SPEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SPEC_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn at(unix: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap())
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> HashMap<String, String> {
        HashMap::from([
            (HEADER_ID.to_owned(), id.to_owned()),
            (HEADER_TIMESTAMP.to_owned(), timestamp.to_string()),
            (HEADER_SIGNATURE.to_owned(), signature.to_owned()),
        ])
    }

    #[test]
    fn signature_matches_the_specification_vector() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(sign(&secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        verify(
            &secret,
            &received,
            SPEC_BODY,
            at(SPEC_TIMESTAMP + 10),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn tampered_body_is_rejected() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        let tampered = br#"{"email":"test@example.com","username":"test_usex"}"#;
        assert_eq!(
            verify(&secret, &received, tampered, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampered_id_or_timestamp_is_rejected() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        let other_id = headers("msg_other", SPEC_TIMESTAMP, SPEC_SIGNATURE);
        assert_eq!(
            verify(&secret, &other_id, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
        let other_time = headers(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_SIGNATURE);
        assert_eq!(
            verify(&secret, &other_time, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let wrong = Secret::generate().unwrap();
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        assert_eq!(
            verify(&wrong, &received, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn old_and_future_timestamps_are_rejected() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        let tolerance = DEFAULT_TOLERANCE.as_secs() as i64;
        assert_eq!(
            verify(
                &secret,
                &received,
                SPEC_BODY,
                at(SPEC_TIMESTAMP + tolerance + 1),
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify(
                &secret,
                &received,
                SPEC_BODY,
                at(SPEC_TIMESTAMP - tolerance - 1),
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::TimestampTooNew)
        );
        // The edges of the window are inside it.
        verify(
            &secret,
            &received,
            SPEC_BODY,
            at(SPEC_TIMESTAMP + tolerance),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        verify(
            &secret,
            &received,
            SPEC_BODY,
            at(SPEC_TIMESTAMP - tolerance),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn missing_headers_are_named() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
            received.remove(name);
            assert_eq!(
                verify(&secret, &received, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
                Err(VerifyError::MissingHeader(name))
            );
        }
        let mut received = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE);
        received.insert(HEADER_TIMESTAMP.to_owned(), "yesterday".to_owned());
        assert_eq!(
            verify(&secret, &received, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let current = Secret::generate().unwrap();
        let previous = Secret::parse(SPEC_SECRET).unwrap();
        let both = signature_header(&[&current, &previous], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(both.split(' ').count(), 2);
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, &both);
        for secret in [&current, &previous] {
            verify(secret, &received, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE).unwrap();
        }
        // Garbage and other versions around a valid signature are skipped.
        let noisy = format!("v1a,AAAA v1,!!notbase64 {SPEC_SIGNATURE} v2,xyz");
        let received = headers(SPEC_ID, SPEC_TIMESTAMP, &noisy);
        verify(&previous, &received, SPEC_BODY, at(SPEC_TIMESTAMP), DEFAULT_TOLERANCE).unwrap();
    }

    #[test]
    fn generated_secrets_round_trip_and_never_print() {
        let secret = Secret::generate().unwrap();
        let exposed = secret.expose();
        assert!(exposed.starts_with(SECRET_PREFIX));
        assert_eq!(Secret::parse(&exposed).unwrap(), secret);
        let printed = format!("{secret:?}");
        assert!(!printed.contains(&exposed[SECRET_PREFIX.len()..]));
        assert_ne!(Secret::generate().unwrap(), secret);
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        assert_eq!(Secret::parse("whsec_AAAA"), Err(InvalidSecret::Length(3)));
        assert_eq!(Secret::parse("whsec_***"), Err(InvalidSecret::Encoding));
    }

    #[test]
    fn header_slices_are_case_insensitive() {
        let headers = [("Webhook-Id", "x")];
        assert_eq!(headers.header("webhook-id"), Some("x"));
    }
}
