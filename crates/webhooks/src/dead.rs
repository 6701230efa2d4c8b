//! Dead letters: a partner message the worker gave up on, kept in the stream `WASL_WEBHOOK_DEAD`
//! under `wasl.webhook.dead.<org>` with its payload, its original headers (JetStream's own
//! `Nats-*` headers aside) and why it failed, until an administrator redelivers it.

use crate::delivery::Failure;
use crate::endpoint::{format_time, parse_time};
use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use std::time::SystemTime;
use wasl_domain::ids::OrgId;

/// Header: the organisation.
pub const ORG: &str = "Wasl-Webhook-Org";
/// Header: the webhook id (`webhook-id`) the message was sent with.
pub const ID: &str = "Wasl-Webhook-Id";
/// Header: the subject the message had in the organisation's feed.
pub const SUBJECT: &str = "Wasl-Webhook-Subject";
/// Header: its sequence in the organisation's feed.
pub const SOURCE_SEQUENCE: &str = "Wasl-Webhook-Source-Seq";
/// Header: how many attempts were made.
pub const ATTEMPTS: &str = "Wasl-Webhook-Attempts";
/// Header: the last failure ([`Failure::code`]: `http_503`, `timeout`, …).
pub const LAST_FAILURE: &str = "Wasl-Webhook-Last-Failure";
/// Header: when the worker gave up, RFC 3339.
pub const DEAD_AT: &str = "Wasl-Webhook-Dead-At";
/// Header: the size in bytes of a payload too big to be kept with its dead letter (only a
/// message that is not a partner message can be: the router's are about 1 KB). Such a dead
/// letter has neither the payload nor the original headers.
pub const PAYLOAD_DROPPED: &str = "Wasl-Webhook-Payload-Dropped";

/// Every dead letter's subject starts with this, then the organisation id.
pub const SUBJECT_PREFIX: &str = "wasl.webhook.dead";

/// The subject of `org`'s dead letters.
pub fn dead_subject(org: OrgId) -> String {
    format!("{SUBJECT_PREFIX}.{org}")
}

/// A dead letter as listed to administrators (its payload is not shown).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream: what [`crate::Webhooks::redeliver`] takes.
    pub sequence: u64,
    pub org: OrgId,
    /// The webhook id (the partner message's source event id).
    pub webhook_id: String,
    /// The subject in the organisation's feed (`wasl.out.<org>.referral.<id>`).
    pub subject: String,
    /// Attempts made before giving up.
    pub attempts: u32,
    pub last_failure: Option<Failure>,
    /// When the worker gave up.
    pub dead_at: Option<SystemTime>,
}

/// What the worker knows when it gives up on a message.
pub(crate) struct Giving<'a> {
    pub org: OrgId,
    pub webhook_id: &'a str,
    pub subject: &'a str,
    pub source_sequence: u64,
    pub attempts: u32,
    pub last_failure: Failure,
    pub original: Option<&'a HeaderMap>,
}

impl Giving<'_> {
    pub(crate) fn headers(&self, now: SystemTime) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(original) = self.original {
            for (name, values) in original.iter() {
                // JetStream's own headers would act on the dead-letter stream (dedupe,
                // expectations), in whatever case a stranger wrote them; the id is kept below as
                // the webhook id. Ours are set below and never taken from the message.
                let name_text: &str = name.as_ref();
                let starts = |prefix: &str| {
                    name_text
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                };
                if starts("Nats-") || starts("Wasl-Webhook-") {
                    continue;
                }
                for value in values {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        headers.insert(ORG, self.org.to_string().as_str());
        headers.insert(ID, self.webhook_id);
        headers.insert(SUBJECT, self.subject);
        headers.insert(SOURCE_SEQUENCE, self.source_sequence.to_string().as_str());
        headers.insert(ATTEMPTS, self.attempts.to_string().as_str());
        headers.insert(LAST_FAILURE, self.last_failure.code().as_str());
        headers.insert(DEAD_AT, format_time(now).as_str());
        // A worker that crashes between storing the dead letter and acknowledging the original
        // stores it again on redelivery: the same id makes JetStream drop the copy.
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}:{}", self.org, self.source_sequence, self.webhook_id).as_str(),
        );
        headers
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.as_str())
}

/// Reads a stored dead letter; `None` when it is not one of `org`'s.
pub(crate) fn read(org: OrgId, message: &StreamMessage) -> Option<DeadLetter> {
    if message.subject.as_str() != dead_subject(org) {
        return None;
    }
    let headers = &message.headers;
    Some(DeadLetter {
        sequence: message.sequence,
        org,
        webhook_id: header(headers, ID).unwrap_or_default().to_owned(),
        subject: header(headers, SUBJECT).unwrap_or_default().to_owned(),
        attempts: header(headers, ATTEMPTS).and_then(|a| a.parse().ok()).unwrap_or(0),
        last_failure: header(headers, LAST_FAILURE).and_then(Failure::from_code),
        dead_at: header(headers, DEAD_AT).and_then(parse_time),
    })
}
