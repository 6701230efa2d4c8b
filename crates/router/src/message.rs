//! The partner messages: what a receiving organisation learns about a referral event, and
//! nothing more ([`PartnerMessage`], `wasl.partner.referral.v1`); and the notice that the
//! personal data of a case behind its referrals was erased ([`RedactionNotice`],
//! `wasl.partner.redaction.v1`). A referral message is built only from codes, ids and times the
//! router folds from referral events — never from a case event, never from an `EncryptedPii`
//! (notes, reason texts), so no name, phone, address, free text or survivor code can reach it.
//! Details are redeemed over the authenticated, audited HTTP API through the claim check.
//!
//! A redaction notice carries only ids of the organisation's own referrals and a time: no case
//! id (partners never see one), no erasure reason (it says something about the client).
//!
//! The schemas are documented field by field in `docs/partners.md`; changes follow the same rule
//! as events: add optional fields, never change one; a change in meaning is a new schema name.

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};
use wasl_domain::Aggregate;
use wasl_domain::catalogue::CancelCode;
use wasl_domain::ids::{CaseId, EventId, OrgId, ReferralId, uuid_v7_from_parts};
use wasl_domain::referral::{ClientSummary, OverdueKind, Referral, ReferralEvent};
use wasl_domain::time::Timestamp;
use wasl_events::EventMeta;
use wasl_events::headers as ce;

/// The schema name every partner message about a referral event carries in `schema`.
pub const SCHEMA: &str = "wasl.partner.referral.v1";
/// The schema name of a redaction notice ([`RedactionNotice`]).
pub const REDACTION_SCHEMA: &str = "wasl.partner.redaction.v1";
/// The event type a redaction notice is sent for (`event_type`, `ce-type`).
pub const ERASED_EVENT_TYPE: &str = "wasl.case.personal_data_erased.v1";
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
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PartnerMessage {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The source event's id (also `Nats-Msg-Id` and `ce-id`).
    pub event_id: String,
    /// What happened: the source event's type, e.g. `wasl.referral.accepted.v1`.
    pub event_type: String,
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
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PartnerClient {
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

/// A redaction notice (`wasl.partner.redaction.v1`): the personal data of the case behind these
/// referrals was erased; the organisation must delete what it holds about each of them. One
/// notice per organisation and erased case, naming every referral of that case the organisation
/// ever received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionNotice {
    /// Always [`REDACTION_SCHEMA`].
    pub schema: String,
    /// The notice's id (also `Nats-Msg-Id`, `ce-id` and the last token of the subject):
    /// derived from the erasure and the organisation ([`redaction_notice_id`]), so the same in
    /// every redelivery and different for every organisation.
    pub notice_id: String,
    /// Why: [`ERASED_EVENT_TYPE`].
    pub event_type: String,
    /// When the personal data was erased, RFC 3339 UTC with milliseconds.
    pub occurred_at: String,
    /// The organisation's referrals of the case, ascending.
    pub referral_ids: Vec<String>,
    /// Always true: delete what you hold about each referral in `referral_ids`.
    pub redact: bool,
}

impl RedactionNotice {
    /// The notice `id` (see [`redaction_notice_id`]) for the erasure `erasure`, about
    /// `referrals`.
    pub(crate) fn new(id: uuid::Uuid, erasure: &EventMeta, referrals: &BTreeSet<ReferralId>) -> Result<Self, String> {
        Ok(Self {
            schema: REDACTION_SCHEMA.to_owned(),
            notice_id: id.to_string(),
            event_type: ERASED_EVENT_TYPE.to_owned(),
            occurred_at: rfc3339(erasure.occurred_at)?,
            referral_ids: referrals.iter().map(ToString::to_string).collect(),
            redact: true,
        })
    }
}

/// The id of the redaction notice to `org` for the erasure event `erasure` (at `at`): a UUIDv7
/// with the erasure's time and 74 bits of SHA-256 over the erasure's event id and the
/// organisation. Deterministic, so a restart or a replay sends the same id (`Nats-Msg-Id`,
/// `webhook-id`); per organisation, so two organisations comparing notices do not find the
/// same id, and the case's own event id never leaves the hub.
pub fn redaction_notice_id(erasure: EventId, org: OrgId, at: Timestamp) -> uuid::Uuid {
    let mut hash = Sha256::new();
    for part in [
        b"wasl redaction notice v1".as_slice(),
        erasure.as_uuid().as_bytes(),
        org.as_uuid().as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.unix_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    uuid_v7_from_parts(millis, random)
}

/// A message of a partner feed, read back by its `schema`.
// Read one at a time by partners' tools; boxing the common variant would cost an allocation per
// message to save a few hundred bytes that are never held in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedMessage {
    /// A referral event (`wasl.partner.referral.v1`).
    Referral(PartnerMessage),
    /// A redaction notice (`wasl.partner.redaction.v1`).
    Redaction(RedactionNotice),
}

/// Why a message of a feed is not one this version can read. Names the kind, never contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAPartnerMessage {
    /// Not JSON (garbage bytes, not UTF-8, truncated).
    #[error("not JSON")]
    NotJson,
    /// JSON, but not of the shape its schema says.
    #[error("JSON of another shape")]
    WrongShape,
    /// A `schema` this version does not know.
    #[error("not of schema wasl.partner.referral.v1 or wasl.partner.redaction.v1")]
    UnknownSchema,
}

impl FeedMessage {
    /// Reads a feed message by its `schema`.
    pub fn parse(payload: &[u8]) -> Result<Self, NotAPartnerMessage> {
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| NotAPartnerMessage::NotJson)?;
        let shape = |_| NotAPartnerMessage::WrongShape;
        match value.get("schema").and_then(serde_json::Value::as_str) {
            Some(SCHEMA) => serde_json::from_value(value).map(Self::Referral).map_err(shape),
            Some(REDACTION_SCHEMA) => serde_json::from_value(value).map(Self::Redaction).map_err(shape),
            Some(_) => Err(NotAPartnerMessage::UnknownSchema),
            None => Err(NotAPartnerMessage::WrongShape),
        }
    }
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
    pub(crate) fn to_org(&self) -> Option<OrgId> {
        self.referral.state().map(|s| s.to_org)
    }

    /// The case the referral belongs to, once it exists.
    pub(crate) fn case_id(&self) -> Option<CaseId> {
        self.referral.state().map(|s| s.case_id)
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

/// The headers of a redaction notice, as for a referral message; `ce-subject` names the notice,
/// since the case is never named to a partner.
pub(crate) fn redaction_headers(
    notice: &RedactionNotice,
    source_sequence: u64,
    traceparent: Option<&str>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ce::CE_SPECVERSION, ce::SPEC_VERSION);
    headers.insert(ce::CE_ID, notice.notice_id.as_str());
    headers.insert(ce::CE_TYPE, notice.event_type.as_str());
    headers.insert(ce::CE_SOURCE, SOURCE);
    headers.insert(ce::CE_SUBJECT, format!("redaction/{}", notice.notice_id).as_str());
    headers.insert(ce::CE_TIME, notice.occurred_at.as_str());
    headers.insert(ce::CONTENT_TYPE, JSON_CONTENT_TYPE);
    headers.insert(MSG_ID, notice.notice_id.as_str());
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

    fn id<T: TryFrom<uuid::Uuid>>(n: u128) -> T
    where
        T::Error: std::fmt::Debug,
    {
        T::try_from(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_0000_0000 + n)).unwrap()
    }

    #[test]
    fn a_notice_id_is_the_same_for_an_erasure_and_an_organisation_and_differs_between_them() {
        let at = Timestamp::from_unix_millis(1_767_225_600_007);
        let (erasure, a, b) = (id::<EventId>(0xe), id::<OrgId>(0xa), id::<OrgId>(0xb));
        let for_a = redaction_notice_id(erasure, a, at);
        assert_eq!(for_a, redaction_notice_id(erasure, a, at));
        assert_ne!(for_a, redaction_notice_id(erasure, b, at));
        assert_ne!(for_a, redaction_notice_id(id(0xf), a, at));
        assert_ne!(for_a, erasure.as_uuid(), "the case's event id is not handed out");
        assert_eq!(for_a.get_version_num(), 7);
        assert!(EventId::from_uuid(for_a).is_ok());
    }

    #[test]
    fn feed_messages_are_read_by_their_schema() {
        let erasure = EventMeta {
            event_id: id(0xe),
            command_id: id(0xc),
            occurred_at: Timestamp::from_unix_millis(1_767_225_600_007),
            actor: wasl_domain::Actor {
                user: id(0x1),
                org: id(0x2),
                roles: vec![wasl_domain::Role::Supervisor],
            },
        };
        let referrals: BTreeSet<ReferralId> = [id(0x20), id(0x10)].into_iter().collect();
        let notice_id = redaction_notice_id(erasure.event_id, id(0xa), erasure.occurred_at);
        let notice = RedactionNotice::new(notice_id, &erasure, &referrals).unwrap();
        assert_eq!(notice.notice_id, notice_id.to_string());
        assert_eq!(
            notice.referral_ids,
            [id::<ReferralId>(0x10).to_string(), id::<ReferralId>(0x20).to_string()],
            "ascending"
        );
        assert!(notice.redact);
        assert_eq!(notice.occurred_at, "2026-01-01T00:00:00.007Z");
        let bytes = serde_json::to_vec(&notice).unwrap();
        assert_eq!(FeedMessage::parse(&bytes), Ok(FeedMessage::Redaction(notice.clone())));
        let headers = redaction_headers(&notice, 42, None);
        assert_eq!(source_sequence(&headers), Some(42));
        assert_eq!(headers.get(MSG_ID).map(|v| v.as_str()), Some(notice.notice_id.as_str()));
        let text = String::from_utf8(bytes).unwrap();
        for (payload, error) in [
            (b"\xff".to_vec(), NotAPartnerMessage::NotJson),
            (b"[1]".to_vec(), NotAPartnerMessage::WrongShape),
            (
                text.replace(REDACTION_SCHEMA, "wasl.partner.redaction.v9").into_bytes(),
                NotAPartnerMessage::UnknownSchema,
            ),
            (
                text.replace("referral_ids", "referral_id").into_bytes(),
                NotAPartnerMessage::WrongShape,
            ),
        ] {
            assert_eq!(FeedMessage::parse(&payload), Err(error));
        }
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
