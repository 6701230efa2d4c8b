//! Conversions between domain values and protobuf messages.
//!
//! Encoding is infallible: every domain value has a protobuf form. Decoding checks shapes and
//! vocabularies — ids are hyphenated UUIDv7, enums are known and not `UNSPECIFIED`, codes and
//! newtypes parse, required fields are present — in short everything the domain's types enforce
//! by construction. It does not re-run the domain's business rules (a reason text for `other`, a
//! non-empty service area list, …): stored events are facts, and rules may change after the fact.

mod case;
mod common;
mod directory;
mod referral;

use crate::envelope::DomainEvent;
use crate::error::DecodeError;
use crate::pb;
use crate::pb::event::Payload as P;
use std::str::FromStr;
use wasl_domain::ValidationError;
use wasl_domain::case::CaseEvent;
use wasl_domain::time::Timestamp;

pub(crate) use common::{actor_from_pb, actor_to_pb, pii_from_pb as sealed_from_pb, pii_to_pb as sealed_to_pb};

/// Attaches the protobuf field name to a domain validation error.
pub(crate) trait At<T> {
    /// Turns a [`ValidationError`] into [`DecodeError::Invalid`] for `field`.
    fn at(self, field: &'static str) -> Result<T, DecodeError>;
}

impl<T> At<T> for Result<T, ValidationError> {
    fn at(self, field: &'static str) -> Result<T, DecodeError> {
        self.map_err(|source| DecodeError::invalid(field, source))
    }
}

/// A required message field or oneof.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::missing(field))
}

/// An id in canonical hyphenated form. The domain's parser also takes the simple, braced and
/// URN forms; the wire takes only the canonical one, so that equal ids are equal strings.
pub(crate) fn id<T: FromStr<Err = ValidationError>>(text: &str, field: &'static str) -> Result<T, DecodeError> {
    const HYPHENATED_LEN: usize = 36;
    if text.len() != HYPHENATED_LEN {
        return Err(DecodeError::invalid_because(field, "is not a hyphenated UUID"));
    }
    text.parse().at(field)
}

/// An optional id.
pub(crate) fn opt_id<T: FromStr<Err = ValidationError>>(
    text: Option<&str>,
    field: &'static str,
) -> Result<Option<T>, DecodeError> {
    text.map(|t| id(t, field)).transpose()
}

/// A list of ids, in order.
pub(crate) fn ids<T: FromStr<Err = ValidationError>>(
    texts: &[String],
    field: &'static str,
) -> Result<Vec<T>, DecodeError> {
    texts.iter().map(|t| id(t, field)).collect()
}

const NANOS_PER_MILLI: i32 = 1_000_000;

/// A domain instant as a protobuf timestamp (whole milliseconds).
pub(crate) fn timestamp_to_pb(at: Timestamp) -> prost_types::Timestamp {
    let millis = at.unix_millis();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        // rem_euclid(1000) is in 0..1000, so the product fits an i32.
        nanos: millis.rem_euclid(1000) as i32 * NANOS_PER_MILLI,
    }
}

/// A protobuf timestamp as a domain instant; sub-millisecond precision is refused rather than
/// rounded, so that what is stored is exactly what the domain decided.
pub(crate) fn timestamp_from_pb(ts: &prost_types::Timestamp, field: &'static str) -> Result<Timestamp, DecodeError> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(DecodeError::invalid_because(field, "has nanos outside 0 to 999999999"));
    }
    if ts.nanos % NANOS_PER_MILLI != 0 {
        return Err(DecodeError::invalid_because(field, "has sub-millisecond precision"));
    }
    let millis = i128::from(ts.seconds) * 1000 + i128::from(ts.nanos / NANOS_PER_MILLI);
    let millis = i64::try_from(millis).map_err(|_| DecodeError::invalid_because(field, "is out of range"))?;
    Ok(Timestamp::from_unix_millis(millis))
}

/// A required timestamp field.
pub(crate) fn required_timestamp(
    ts: Option<prost_types::Timestamp>,
    field: &'static str,
) -> Result<Timestamp, DecodeError> {
    timestamp_from_pb(&required(ts, field)?, field)
}

/// A `u32` on the wire that the domain holds as a `u8`.
pub(crate) fn small(value: u32, field: &'static str) -> Result<u8, DecodeError> {
    u8::try_from(value).map_err(|_| DecodeError::invalid_because(field, "is larger than 255"))
}

/// A closed domain vocabulary that maps one to one to a protobuf enum.
pub(crate) trait ProtoEnum: Sized + Copy {
    /// The protobuf enum number.
    fn to_pb(self) -> i32;
    /// The domain value of a protobuf enum number; `UNSPECIFIED` and unknown numbers are errors.
    fn from_pb(number: i32, field: &'static str) -> Result<Self, DecodeError>;
}

/// Implements [`ProtoEnum`] with matches that are exhaustive both ways: a variant added on
/// either side without its counterpart fails to compile.
macro_rules! proto_enum {
    ($domain:ty => $pb:ident { $($d:ident => $p:ident),+ $(,)? }) => {
        impl $crate::convert::ProtoEnum for $domain {
            fn to_pb(self) -> i32 {
                match self {
                    $(Self::$d => $crate::pb::$pb::$p as i32,)+
                }
            }

            fn from_pb(number: i32, field: &'static str) -> Result<Self, $crate::error::DecodeError> {
                match $crate::pb::$pb::try_from(number) {
                    $(Ok($crate::pb::$pb::$p) => Ok(Self::$d),)+
                    Ok($crate::pb::$pb::Unspecified) | Err(_) => {
                        Err($crate::error::DecodeError::UnknownEnumValue { field, number })
                    }
                }
            }
        }
    };
}
pub(crate) use proto_enum;

/// Decodes a list of enum numbers, in order.
pub(crate) fn enums<E: ProtoEnum>(numbers: &[i32], field: &'static str) -> Result<Vec<E>, DecodeError> {
    numbers.iter().map(|n| E::from_pb(*n, field)).collect()
}

/// Encodes a list of enum values, in order.
pub(crate) fn enums_to_pb<'a, E: ProtoEnum + 'a>(values: impl IntoIterator<Item = &'a E>) -> Vec<i32> {
    values.into_iter().map(|v| v.to_pb()).collect()
}

/// The aggregate id and payload of a domain event.
pub(crate) fn payload_to_pb(event: &DomainEvent) -> (String, P) {
    match event {
        DomainEvent::Case(id, e) => (id.to_string(), case::to_pb(e)),
        DomainEvent::Referral(id, e) => (id.to_string(), referral::to_pb(e)),
        DomainEvent::Organisation(id, e) => (id.to_string(), directory::to_pb(e)),
    }
}

const AGGREGATE_ID: &str = "Event.aggregate_id";

/// The domain event of a payload in the stream of `aggregate_id`.
pub(crate) fn payload_from_pb(aggregate_id: &str, payload: P) -> Result<DomainEvent, DecodeError> {
    let case = |e| Ok::<_, DecodeError>(DomainEvent::Case(id(aggregate_id, AGGREGATE_ID)?, e));
    let referral = |e| Ok::<_, DecodeError>(DomainEvent::Referral(id(aggregate_id, AGGREGATE_ID)?, e));
    let org = |e| Ok::<_, DecodeError>(DomainEvent::Organisation(id(aggregate_id, AGGREGATE_ID)?, e));
    use wasl_domain::referral::ReferralEvent as R;
    let event = match payload {
        P::CaseOpened(m) => case(case::opened(m)?)?,
        P::CaseProfileUpdated(m) => case(case::profile_updated(m)?)?,
        P::CasePersonalDataUpdated(m) => case(case::personal_data_updated(m)?)?,
        P::CaseAssigned(m) => case(case::assigned(&m)?)?,
        P::CaseShared(m) => case(case::shared(&m)?)?,
        P::CaseUnshared(m) => case(case::unshared(&m)?)?,
        P::ConsentGiven(m) => case(case::consent_given(m)?)?,
        P::ConsentNarrowed(m) => case(case::consent_narrowed(m)?)?,
        P::ConsentWithdrawn(m) => case(case::consent_withdrawn(&m)?)?,
        P::CaseClosed(m) => case(case::closed(m)?)?,
        P::CaseReopened(m) => case(case::reopened(m)?)?,
        P::CasePersonalDataErased(m) => case(case::personal_data_erased(m)?)?,
        P::ReferralRequested(m) => referral(referral::requested(m)?)?,
        P::ReferralReceived(pb::ReferralReceived {}) => referral(R::Received)?,
        P::ReferralAccepted(pb::ReferralAccepted {}) => referral(R::Accepted)?,
        P::ReferralRejected(m) => referral(referral::rejected(m)?)?,
        P::ReferralStarted(pb::ReferralStarted {}) => referral(R::Started)?,
        P::ReferralPutOnHold(m) => referral(referral::put_on_hold(m)?)?,
        P::ReferralResumed(pb::ReferralResumed {}) => referral(R::Resumed)?,
        P::ReferralCompleted(pb::ReferralCompleted {}) => referral(R::Completed)?,
        P::ReferralFailed(m) => referral(referral::failed(m)?)?,
        P::ReferralCancelled(m) => referral(referral::cancelled(m)?)?,
        P::FollowUpRecorded(m) => referral(referral::follow_up_recorded(m)?)?,
        P::ReferralEnteredInError(m) => referral(referral::entered_in_error(m)?)?,
        P::ReferralResponseOverdue(m) => referral(referral::response_overdue(m)?)?,
        P::FollowUpOverdue(m) => referral(referral::follow_up_overdue(m)?)?,
        P::ReferralEscalated(m) => referral(referral::escalated(&m)?)?,
        P::EscalationAcknowledged(m) => referral(referral::escalation_acknowledged(m)?)?,
        P::OrganisationRegistered(m) => org(directory::registered(&m)?)?,
        P::OrganisationUpdated(m) => org(directory::updated(&m)?)?,
        P::ServiceAdded(m) => org(directory::service_added(m)?)?,
        P::ServiceUpdated(m) => org(directory::service_updated(m)?)?,
        P::ServiceAvailabilityChanged(m) => org(directory::service_availability_changed(&m)?)?,
        P::ServiceRetired(m) => org(directory::service_retired(&m)?)?,
    };
    check_creation_id(&event)?;
    Ok(event)
}

/// The first event of a stream names its aggregate a second time; the two must agree, or the
/// event is not the one its stream says it is.
fn check_creation_id(event: &DomainEvent) -> Result<(), DecodeError> {
    const PROBLEM: &str = "differs from Event.aggregate_id";
    let mismatch = match event {
        DomainEvent::Case(id, CaseEvent::Opened { case_id, .. }) => {
            (case_id != id).then_some(("CaseOpened.case_id", PROBLEM))
        }
        DomainEvent::Referral(id, wasl_domain::referral::ReferralEvent::Requested(r)) => {
            (r.referral_id != *id).then_some(("ReferralRequested.referral_id", PROBLEM))
        }
        DomainEvent::Organisation(id, wasl_domain::directory::OrganisationEvent::Registered { org_id, .. }) => {
            (org_id != id).then_some(("OrganisationRegistered.org_id", PROBLEM))
        }
        _ => None,
    };
    match mismatch {
        Some((field, problem)) => Err(DecodeError::invalid_because(field, problem)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasl_domain::ids::OrgId;

    #[test]
    fn timestamps_round_trip_at_the_edges_of_i64() {
        for millis in [i64::MIN, -1_001, -1, 0, 1, 999, 1_700_000_000_123, i64::MAX] {
            let at = Timestamp::from_unix_millis(millis);
            assert_eq!(timestamp_from_pb(&timestamp_to_pb(at), "t").unwrap(), at, "{millis}");
        }
    }

    #[test]
    fn negative_millis_encode_with_non_negative_nanos() {
        let ts = timestamp_to_pb(Timestamp::from_unix_millis(-1));
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_000_000));
    }

    #[test]
    fn sub_millisecond_and_out_of_range_nanos_are_refused() {
        for nanos in [1, 999_999, -1_000_000, 1_000_000_000] {
            let ts = prost_types::Timestamp { seconds: 0, nanos };
            assert!(matches!(
                timestamp_from_pb(&ts, "t"),
                Err(DecodeError::Invalid { field: "t", .. })
            ));
        }
    }

    #[test]
    fn ids_must_be_hyphenated_uuid_v7() {
        let canonical = "0190c1a0-0000-7000-8000-000000000001";
        assert!(id::<OrgId>(canonical, "f").is_ok());
        assert!(id::<OrgId>(&canonical.to_uppercase(), "f").is_ok());
        for bad in [
            "0190c1a000007000800000000000000 1",
            "0190c1a0000070008000000000000001",
            "{0190c1a0-0000-7000-8000-000000000001}",
            "3b241101-e2bb-4255-8caf-4136c566a962",
            "",
        ] {
            assert!(matches!(
                id::<OrgId>(bad, "f"),
                Err(DecodeError::Invalid { field: "f", .. })
            ));
        }
    }
}
