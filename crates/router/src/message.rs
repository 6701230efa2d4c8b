//! The partner message: what a receiving organisation learns about a referral event, and
//! nothing more. Built only from codes, ids and times the router folds from referral events —
//! never from a case event, never from an `EncryptedPii` (notes, reason texts), so no name,
//! phone, address, free text or survivor code can reach it. Details are redeemed over the
//! authenticated, audited HTTP API through the claim check.
//!
//! The schema is documented field by field in `docs/partners.md`; changes follow the same rule
//! as events: add optional fields, never change one; a change in meaning is a new schema name.

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use wasl_domain::Aggregate;
use wasl_domain::catalogue::CancelCode;
use wasl_domain::ids::ReferralId;
use wasl_domain::referral::{ClientSummary, OverdueKind, Referral, ReferralEvent};
use wasl_domain::time::Timestamp;
use wasl_events::EventMeta;
use wasl_events::headers as ce;

/// The schema name every partner message carries in `schema`.
pub const SCHEMA: &str = "wasl.partner.referral.v1";
/// CloudEvents `source` of partner messages.
pub const SOURCE: &str = "/wasl/router";
/// Header: the sequence of the source event in `WASL_EVENTS`. The router reads it back from
/// the last message of each feed to know what was delivered already.
pub const SOURCE_SEQUENCE: &str = "Wasl-Source-Seq";
/// Header: JetStream's idempotency key; the source event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The media type of partner messages.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// One partner message (`wasl.partner.referral.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerMessage {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The source event's id (also `Nats-Msg-Id` and `ce-id`).
    pub event_id: String,
    /// What happened: the source event's type, e.g. `wasl.referral.accepted.v1`.
    pub event_type: String,
    /// The referral.
    pub referral_id: String,
    /// The referral's version after this event (how many events it has).
    pub version: u64,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub occurred_at: String,
    /// The referral's status after this event.
    pub status: String,
    /// Service category code.
    pub category: String,
    /// The service asked for (one of the receiving organisation's).
    pub service_id: String,
    /// Priority code.
    pub priority: String,
    /// The client, as little as the partner needs to decide.
    pub client: PartnerClient,
    /// Deadlines recorded as missed, by kind, with their due time.
    pub overdue: Vec<PartnerDeadline>,
    /// The claim check: the referral over the authenticated, audited HTTP API.
    pub details_url: String,
    /// The partner must delete what it holds about this referral (details fetched over the
    /// API, notes of its own about the client): the client withdrew the consent the referral
    /// rested on (cancelled with `consent_withdrawn`), or the referral was entered in error.
    /// Once true it stays true in every later message of the referral.
    pub redact: bool,
}

/// The client in a partner message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerClient {
    /// Sex code.
    pub sex: String,
    /// Age group code.
    pub age_group: String,
    /// Preferred language, BCP 47.
    pub language: String,
    /// Governorate, ISO 3166-2:IQ.
    pub governorate: String,
    /// District code, when known.
    pub district: Option<String>,
}

/// A deadline in a partner message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerDeadline {
    /// `acknowledgement`, `decision` or `follow_up`.
    pub kind: String,
    /// When it was due, RFC 3339 UTC with milliseconds.
    pub due_at: String,
}

/// What the router knows about one referral, folded from its events in log order.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteState {
    /// The domain's own state.
    referral: Referral,
    /// From `requested`; the domain state does not keep it.
    client: Option<ClientSummary>,
    /// Missed deadlines and their due times.
    overdue: BTreeMap<OverdueKind, Timestamp>,
    /// Whether the partner must delete what it holds (see [`PartnerMessage::redact`]).
    redact: bool,
    /// Events applied.
    pub(crate) version: u64,
    /// Sequence of the last event applied.
    pub(crate) last_sequence: u64,
}

impl RouteState {
    /// Applies the referral's next event.
    pub(crate) fn apply(&mut self, sequence: u64, event: &ReferralEvent) {
        match event {
            ReferralEvent::Requested(request) if self.client.is_none() => {
                self.client = Some(request.client.clone());
            }
            ReferralEvent::ResponseOverdue { kind, due_at } => {
                self.overdue.entry(*kind).or_insert(*due_at);
            }
            ReferralEvent::FollowUpOverdue { due_at } => {
                self.overdue.entry(OverdueKind::FollowUp).or_insert(*due_at);
            }
            ReferralEvent::Cancelled(reason) if reason.code == CancelCode::ConsentWithdrawn => self.redact = true,
            ReferralEvent::EnteredInError(_) => self.redact = true,
            _ => {}
        }
        self.referral = std::mem::take(&mut self.referral).evolve(event);
        self.version += 1;
        self.last_sequence = sequence;
    }

    /// The receiving organisation, once the referral exists.
    pub(crate) fn to_org(&self) -> Option<wasl_domain::ids::OrgId> {
        self.referral.state().map(|s| s.to_org)
    }

    /// The partner message for the event just applied.
    pub(crate) fn message(
        &self,
        id: ReferralId,
        meta: &EventMeta,
        event_type: &str,
        api_base_url: &str,
    ) -> Result<PartnerMessage, String> {
        let state = self.referral.state().ok_or("the referral does not exist")?;
        let client = self.client.as_ref().ok_or("the referral has no client summary")?;
        let overdue = self
            .overdue
            .iter()
            .map(|(kind, due)| {
                Ok(PartnerDeadline {
                    kind: kind.code().to_owned(),
                    due_at: rfc3339(*due)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PartnerMessage {
            schema: SCHEMA.to_owned(),
            event_id: meta.event_id.to_string(),
            event_type: event_type.to_owned(),
            referral_id: id.to_string(),
            version: self.version,
            occurred_at: rfc3339(meta.occurred_at)?,
            status: state.status.code().to_owned(),
            category: state.category.code().to_owned(),
            service_id: state.service_id.to_string(),
            priority: state.priority.code().to_owned(),
            client: PartnerClient {
                sex: client.sex.code().to_owned(),
                age_group: client.age_group.code().to_owned(),
                language: client.language.as_str().to_owned(),
                governorate: client.location.governorate().code().to_owned(),
                district: client.location.district().map(|d| d.code().to_owned()),
            },
            overdue,
            details_url: details_url(api_base_url, id),
            redact: self.redact,
        })
    }
}

/// The claim check of a referral.
pub fn details_url(api_base_url: &str, id: ReferralId) -> String {
    format!("{}/v1/referrals/{id}", api_base_url.trim_end_matches('/'))
}

/// RFC 3339 UTC with milliseconds, as in `ce-time`.
fn rfc3339(at: Timestamp) -> Result<String, String> {
    let millis = u64::try_from(at.unix_millis()).map_err(|_| "a time before 1970".to_owned())?;
    if millis > 253_402_300_799_999 {
        return Err("a time after 9999".to_owned());
    }
    Ok(humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string())
}

/// The headers of a partner message: CloudEvents binary mode (the body is the JSON message),
/// the idempotency key and the source sequence. Ids, type names and times only.
pub(crate) fn headers(message: &PartnerMessage, source_sequence: u64, traceparent: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ce::CE_SPECVERSION, ce::SPEC_VERSION);
    headers.insert(ce::CE_ID, message.event_id.as_str());
    headers.insert(ce::CE_TYPE, message.event_type.as_str());
    headers.insert(ce::CE_SOURCE, SOURCE);
    headers.insert(ce::CE_SUBJECT, format!("referral/{}", message.referral_id).as_str());
    headers.insert(ce::CE_TIME, message.occurred_at.as_str());
    headers.insert(ce::CONTENT_TYPE, JSON_CONTENT_TYPE);
    headers.insert(MSG_ID, message.event_id.as_str());
    headers.insert(SOURCE_SEQUENCE, source_sequence.to_string().as_str());
    if let Some(traceparent) = traceparent {
        headers.insert(ce::TRACEPARENT, traceparent);
    }
    headers
}

/// The source sequence recorded in a partner message's headers.
pub fn source_sequence(headers: &HeaderMap) -> Option<u64> {
    headers.get(SOURCE_SEQUENCE)?.as_str().trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(
            rfc3339(Timestamp::from_unix_millis(1_767_225_600_007)).unwrap(),
            "2026-01-01T00:00:00.007Z"
        );
        assert!(rfc3339(Timestamp::from_unix_millis(-1)).is_err());
    }

    #[test]
    fn the_claim_check_ignores_a_trailing_slash() {
        let id = ReferralId::parse("0190b2c4-0000-7000-8000-00000000000b").unwrap();
        assert_eq!(
            details_url("https://wasl.example/", id),
            "https://wasl.example/v1/referrals/0190b2c4-0000-7000-8000-00000000000b"
        );
    }
}
