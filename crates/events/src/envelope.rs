//! The envelope: an event of any aggregate with the metadata the log keeps about it, and its
//! protobuf encoding (`wasl.v1.Event`).

use crate::convert::{
    actor_from_pb, actor_to_pb, id, payload_from_pb, payload_to_pb, required, required_timestamp, timestamp_to_pb,
};
use crate::error::DecodeError;
use crate::pb;
use prost::Message;
use std::fmt;
use uuid::Uuid;
use wasl_domain::case::CaseEvent;
use wasl_domain::directory::OrganisationEvent;
use wasl_domain::ids::{CaseId, CommandId, EventId, OrgId, ReferralId};
use wasl_domain::referral::ReferralEvent;
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, AggregateKind};

/// What the log records about an event besides the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's id, unique across the log (also the CloudEvents `id`).
    pub event_id: EventId,
    /// The command that caused it; every event of one command shares it.
    pub command_id: CommandId,
    /// When the command was decided (the domain's `now`).
    pub occurred_at: Timestamp,
    /// Who caused it.
    pub actor: Actor,
}

/// An event of one of the three aggregates, with the id of the aggregate it belongs to.
// A case event is large (an opened case holds the profile and four sealed values inline);
// boxing it here would make every match on a stored event clumsier for a few hundred bytes per
// event in flight. The domain boxes its largest referral event; it could do the same for
// `CaseEvent::Opened`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// An event of a case.
    Case(CaseId, CaseEvent),
    /// An event of a referral.
    Referral(ReferralId, ReferralEvent),
    /// An event of an organisation (the service directory).
    Organisation(OrgId, OrganisationEvent),
}

/// An event as the log stores it: metadata and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct StoredEvent {
    /// Metadata.
    pub meta: EventMeta,
    pub event: DomainEvent,
}

macro_rules! event_types {
    ($($variant:ident => $kind:ident, $name:literal;)+) => {
        /// Every type of event, one per variant of the domain's event enums. Its
        /// [name](EventType::as_str) is the CloudEvents `type`: `wasl.<aggregate>.<event>.v<n>`.
        /// Names never change; a new meaning gets a new name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        impl EventType {
            /// Every event type, grouped by aggregate.
            pub const ALL: &'static [EventType] = &[$(Self::$variant),+];

            /// The stable name, e.g. `wasl.referral.requested.v1`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The kind of aggregate whose events are of this type.
            pub const fn aggregate_kind(self) -> AggregateKind {
                match self {
                    $(Self::$variant => AggregateKind::$kind,)+
                }
            }

            /// The event type of a stable name, if it is one this version knows.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    CaseOpened => Case, "wasl.case.opened.v1";
    CaseProfileUpdated => Case, "wasl.case.profile_updated.v1";
    CasePersonalDataUpdated => Case, "wasl.case.personal_data_updated.v1";
    CaseAssigned => Case, "wasl.case.assigned.v1";
    CaseShared => Case, "wasl.case.shared.v1";
    CaseUnshared => Case, "wasl.case.unshared.v1";
    ConsentGiven => Case, "wasl.case.consent_given.v1";
    ConsentNarrowed => Case, "wasl.case.consent_narrowed.v1";
    ConsentWithdrawn => Case, "wasl.case.consent_withdrawn.v1";
    CaseClosed => Case, "wasl.case.closed.v1";
    CaseReopened => Case, "wasl.case.reopened.v1";
    CasePersonalDataErased => Case, "wasl.case.personal_data_erased.v1";
    ReferralRequested => Referral, "wasl.referral.requested.v1";
    ReferralReceived => Referral, "wasl.referral.received.v1";
    ReferralAccepted => Referral, "wasl.referral.accepted.v1";
    ReferralRejected => Referral, "wasl.referral.rejected.v1";
    ReferralStarted => Referral, "wasl.referral.started.v1";
    ReferralPutOnHold => Referral, "wasl.referral.put_on_hold.v1";
    ReferralResumed => Referral, "wasl.referral.resumed.v1";
    ReferralCompleted => Referral, "wasl.referral.completed.v1";
    ReferralFailed => Referral, "wasl.referral.failed.v1";
    ReferralCancelled => Referral, "wasl.referral.cancelled.v1";
    FollowUpRecorded => Referral, "wasl.referral.follow_up_recorded.v1";
    ReferralEnteredInError => Referral, "wasl.referral.entered_in_error.v1";
    ReferralResponseOverdue => Referral, "wasl.referral.response_overdue.v1";
    FollowUpOverdue => Referral, "wasl.referral.follow_up_overdue.v1";
    ReferralEscalated => Referral, "wasl.referral.escalated.v1";
    EscalationAcknowledged => Referral, "wasl.referral.escalation_acknowledged.v1";
    OrganisationRegistered => Organisation, "wasl.org.registered.v1";
    OrganisationUpdated => Organisation, "wasl.org.updated.v1";
    ServiceAdded => Organisation, "wasl.org.service_added.v1";
    ServiceUpdated => Organisation, "wasl.org.service_updated.v1";
    ServiceAvailabilityChanged => Organisation, "wasl.org.service_availability_changed.v1";
    ServiceRetired => Organisation, "wasl.org.service_retired.v1";
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DomainEvent {
    /// The event's type. The match is exhaustive, so a new domain event variant does not
    /// compile until it has a type (and, through the golden-fixture test, a sample).
    pub const fn kind(&self) -> EventType {
        use EventType as T;
        match self {
            Self::Case(_, e) => match e {
                CaseEvent::Opened { .. } => T::CaseOpened,
                CaseEvent::ProfileUpdated { .. } => T::CaseProfileUpdated,
                CaseEvent::PersonalDataUpdated { .. } => T::CasePersonalDataUpdated,
                CaseEvent::Assigned { .. } => T::CaseAssigned,
                CaseEvent::Shared { .. } => T::CaseShared,
                CaseEvent::Unshared { .. } => T::CaseUnshared,
                CaseEvent::ConsentGiven { .. } => T::ConsentGiven,
                CaseEvent::ConsentNarrowed { .. } => T::ConsentNarrowed,
                CaseEvent::ConsentWithdrawn { .. } => T::ConsentWithdrawn,
                CaseEvent::Closed { .. } => T::CaseClosed,
                CaseEvent::Reopened { .. } => T::CaseReopened,
                CaseEvent::PersonalDataErased { .. } => T::CasePersonalDataErased,
            },
            Self::Referral(_, e) => match e {
                ReferralEvent::Requested(_) => T::ReferralRequested,
                ReferralEvent::Received => T::ReferralReceived,
                ReferralEvent::Accepted => T::ReferralAccepted,
                ReferralEvent::Rejected(_) => T::ReferralRejected,
                ReferralEvent::Started => T::ReferralStarted,
                ReferralEvent::PutOnHold(_) => T::ReferralPutOnHold,
                ReferralEvent::Resumed => T::ReferralResumed,
                ReferralEvent::Completed => T::ReferralCompleted,
                ReferralEvent::Failed(_) => T::ReferralFailed,
                ReferralEvent::Cancelled(_) => T::ReferralCancelled,
                ReferralEvent::FollowUpRecorded(_) => T::FollowUpRecorded,
                ReferralEvent::EnteredInError(_) => T::ReferralEnteredInError,
                ReferralEvent::ResponseOverdue { .. } => T::ReferralResponseOverdue,
                ReferralEvent::FollowUpOverdue { .. } => T::FollowUpOverdue,
                ReferralEvent::Escalated { .. } => T::ReferralEscalated,
                ReferralEvent::EscalationAcknowledged { .. } => T::EscalationAcknowledged,
            },
            Self::Organisation(_, e) => match e {
                OrganisationEvent::Registered { .. } => T::OrganisationRegistered,
                OrganisationEvent::Updated { .. } => T::OrganisationUpdated,
                OrganisationEvent::ServiceAdded { .. } => T::ServiceAdded,
                OrganisationEvent::ServiceUpdated { .. } => T::ServiceUpdated,
                OrganisationEvent::ServiceAvailabilityChanged { .. } => T::ServiceAvailabilityChanged,
                OrganisationEvent::ServiceRetired { .. } => T::ServiceRetired,
            },
        }
    }

    /// The stable type name, e.g. `wasl.referral.requested.v1`: the CloudEvents `type`.
    pub const fn event_type(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The kind of aggregate the event belongs to.
    pub const fn aggregate_kind(&self) -> AggregateKind {
        match self {
            Self::Case(..) => AggregateKind::Case,
            Self::Referral(..) => AggregateKind::Referral,
            Self::Organisation(..) => AggregateKind::Organisation,
        }
    }

    /// The id of the aggregate the event belongs to.
    pub fn aggregate_id(&self) -> Uuid {
        match self {
            Self::Case(id, _) => id.as_uuid(),
            Self::Referral(id, _) => id.as_uuid(),
            Self::Organisation(id, _) => id.as_uuid(),
        }
    }

    /// The NATS subject of the aggregate's stream: `wasl.evt.<case|referral|org>.<id>`.
    pub fn subject(&self) -> String {
        format!(
            "wasl.evt.{}.{}",
            self.aggregate_kind().subject_token(),
            self.aggregate_id().hyphenated()
        )
    }
}

impl From<&StoredEvent> for pb::Event {
    fn from(stored: &StoredEvent) -> Self {
        let (aggregate_id, payload) = payload_to_pb(&stored.event);
        let meta = &stored.meta;
        pb::Event {
            event_id: meta.event_id.to_string(),
            command_id: meta.command_id.to_string(),
            aggregate_id,
            occurred_at: Some(timestamp_to_pb(meta.occurred_at)),
            actor: Some(actor_to_pb(&meta.actor)),
            payload: Some(payload),
        }
    }
}

impl TryFrom<pb::Event> for StoredEvent {
    type Error = DecodeError;

    fn try_from(event: pb::Event) -> Result<Self, DecodeError> {
        let meta = EventMeta {
            event_id: id(&event.event_id, "Event.event_id")?,
            command_id: id(&event.command_id, "Event.command_id")?,
            occurred_at: required_timestamp(event.occurred_at, "Event.occurred_at")?,
            actor: actor_from_pb(&required(event.actor, "Event.actor")?)?,
        };
        let payload = event.payload.ok_or(DecodeError::MissingPayload)?;
        Ok(Self {
            meta,
            event: payload_from_pb(&event.aggregate_id, payload)?,
        })
    }
}

/// The protobuf bytes of an event (`wasl.v1.Event`, schema version
/// [`CURRENT_SCHEMA_VERSION`](crate::upcast::CURRENT_SCHEMA_VERSION)).
pub fn encode(event: &StoredEvent) -> Vec<u8> {
    pb::Event::from(event).encode_to_vec()
}

/// An event from protobuf bytes of the current schema version. Use
/// [`decode_versioned`](crate::upcast::decode_versioned) when the bytes carry a version header.
pub fn decode(bytes: &[u8]) -> Result<StoredEvent, DecodeError> {
    StoredEvent::try_from(pb::Event::decode(bytes)?)
}

/// A sealed value on its own as bytes (`wasl.v1.EncryptedPii`), for stores outside the log such
/// as read-model columns; [`decode_sealed`] reads it back.
pub fn encode_sealed(value: &wasl_domain::pii::EncryptedPii) -> Vec<u8> {
    crate::convert::sealed_to_pb(value).encode_to_vec()
}

/// Reads a sealed value written by [`encode_sealed`]; anything else is a typed error.
pub fn decode_sealed(bytes: &[u8]) -> Result<wasl_domain::pii::EncryptedPii, DecodeError> {
    let message = pb::EncryptedPii::decode(bytes)?;
    crate::convert::sealed_from_pb(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn event_type_names_are_unique_versioned_and_prefixed_by_their_subject_token() {
        let mut seen = HashSet::new();
        for t in EventType::ALL {
            let name = t.as_str();
            assert!(seen.insert(name), "{name} twice");
            let prefix = format!("wasl.{}.", t.aggregate_kind().subject_token());
            assert!(name.starts_with(&prefix) && name.ends_with(".v1"), "{name}");
            let middle = &name[prefix.len()..name.len() - 3];
            assert!(middle.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert_eq!(EventType::parse(name), Some(*t));
        }
        assert_eq!(EventType::parse("wasl.case.opened.v2"), None);
    }

    #[test]
    fn an_unknown_payload_field_decodes_to_missing_payload() {
        // Field 2047 of Event, length-delimited, empty: what an older reader sees of a newer
        // event type. Protobuf drops it as unknown; the empty oneof must then be an error.
        let meta = pb::Event {
            event_id: "0190c1a0-0000-7000-8000-000000000001".into(),
            command_id: "0190c1a0-0000-7000-8000-000000000002".into(),
            aggregate_id: "0190c1a0-0000-7000-8000-000000000003".into(),
            occurred_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            actor: Some(pb::Actor {
                user_id: "0190c1a0-0000-7000-8000-000000000004".into(),
                org_id: "0190c1a0-0000-7000-8000-000000000005".into(),
                roles: vec![],
            }),
            payload: None,
        };
        let mut bytes = meta.encode_to_vec();
        bytes.extend_from_slice(&[0xFA, 0x7F, 0x00]);
        assert_eq!(decode(&bytes), Err(DecodeError::MissingPayload));
    }

    #[test]
    fn a_sealed_value_round_trips_alone_and_garbage_is_an_error() {
        use wasl_domain::pii::{Cipher, EncryptedPii, KeyId};
        let key = KeyId::parse("case-key-1").expect("key id");
        let sealed = EncryptedPii::new(Cipher::XChaCha20Poly1305, key, vec![7; 24], vec![9; 40]).expect("shape");
        assert_eq!(decode_sealed(&encode_sealed(&sealed)).expect("round trip"), sealed);
        assert!(decode_sealed(&[0xff, 0x01, 0x02]).is_err());
        assert!(decode_sealed(&[]).is_err(), "an empty value is not a sealed value");
    }
}
