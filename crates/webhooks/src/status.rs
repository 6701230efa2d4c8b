//! Delivery status per organisation: what the worker last saw (kept in the KV bucket
//! `WASL_WEBHOOK_STATUS`), joined with what JetStream knows (messages pending in the consumer,
//! dead letters in the stream) when an administrator asks.

use crate::delivery::Failure;
use crate::endpoint::{format_time, parse_time};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;
use wasl_domain::ids::OrgId;

/// An organisation's webhook delivery, as shown to administrators (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct DeliveryStatus {
    pub org: OrgId,
    /// The endpoint URL; `None` when the organisation has no endpoint.
    pub url: Option<String>,
    /// Whether the worker delivers to it.
    pub enabled: bool,
    /// Messages in the organisation's feed not yet delivered (or dead-lettered), the one in
    /// flight included; `None` when the feed does not exist yet.
    pub pending: Option<u64>,
    /// The last successful delivery (by the worker or a redelivery).
    pub last_success_at: Option<SystemTime>,
    /// The last failed attempt.
    pub last_failure: Option<LastFailure>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// Dead letters waiting for redelivery.
    pub dead_letters: u64,
}

/// A failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastFailure {
    /// When.
    pub at: SystemTime,
    /// What.
    pub failure: Failure,
}

/// What is stored per organisation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StatusRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub consecutive_failures: u64,
}

impl StatusRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Self {
        // A record that cannot be read is only lost history; the next delivery rewrites it.
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    pub(crate) fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self).expect("a status serialises").into()
    }

    pub(crate) fn succeeded(&mut self, at: SystemTime) {
        self.last_success_at = Some(format_time(at));
        self.consecutive_failures = 0;
    }

    pub(crate) fn failed(&mut self, at: SystemTime, failure: Failure) {
        self.last_failure_at = Some(format_time(at));
        self.last_failure = Some(failure.code());
        self.consecutive_failures += 1;
    }

    pub(crate) fn last_success(&self) -> Option<SystemTime> {
        self.last_success_at.as_deref().and_then(parse_time)
    }

    pub(crate) fn last_failure(&self) -> Option<LastFailure> {
        Some(LastFailure {
            at: self.last_failure_at.as_deref().and_then(parse_time)?,
            failure: self.last_failure.as_deref().and_then(Failure::from_code)?,
        })
    }
}
