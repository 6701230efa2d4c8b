//! Identifiers. Every id is a UUIDv7: time-ordered, so ids sort by creation, and unique without
//! coordination. Ids are generated outside the domain (the command handler) and passed in.

use crate::error::ValidationError;
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_v7_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID, refusing anything but version 7.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, ValidationError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(ValidationError::new($field, "must be a UUIDv7"))
                }
            }

            /// Parses the hyphenated text form of a UUIDv7.
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                let uuid = Uuid::try_parse(text)
                    .map_err(|_| ValidationError::new($field, "is not a UUID"))?;
                Self::from_uuid(uuid)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = ValidationError;
            fn try_from(uuid: Uuid) -> Result<Self, Self::Error> {
                Self::from_uuid(uuid)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ValidationError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

uuid_v7_id!(
    /// A case: one person supported by one organisation.
    CaseId, "case_id");
uuid_v7_id!(
    /// A referral of a case to another organisation's service.
    ReferralId, "referral_id");
uuid_v7_id!(
    /// An organisation in the service directory.
    OrgId, "org_id");
uuid_v7_id!(
    /// A service offered by an organisation.
    ServiceId, "service_id");
uuid_v7_id!(
    /// A person or machine account acting in Wasl.
    UserId, "user_id");
uuid_v7_id!(
    /// One consent given by a client; narrowed or withdrawn later by the same id.
    ConsentId, "consent_id");
uuid_v7_id!(
    /// The id a client gives a command; retries carry the same id.
    CommandId, "command_id");
uuid_v7_id!(
    /// The id of one stored event.
    EventId, "event_id");

/// Builds a UUIDv7 from a millisecond timestamp and 10 random bytes (74 bits are used).
/// The domain never draws randomness itself; callers (and tests) pass it in.
pub fn uuid_v7_from_parts(unix_millis: u64, random: [u8; 10]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v7_uuid_round_trips_through_text() {
        let id = ReferralId::from_uuid(uuid_v7_from_parts(1_700_000_000_000, [7; 10])).unwrap();
        assert_eq!(ReferralId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn a_v4_uuid_is_refused() {
        let err = CaseId::parse("3b241101-e2bb-4255-8caf-4136c566a962").unwrap_err();
        assert_eq!(err.field, "case_id");
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let err = OrgId::parse("not-a-uuid-Amira").unwrap_err();
        assert!(!err.to_string().contains("Amira"));
    }

    #[test]
    fn v7_ids_sort_by_time() {
        let a = EventId::from_uuid(uuid_v7_from_parts(1_000, [0xff; 10])).unwrap();
        let b = EventId::from_uuid(uuid_v7_from_parts(1_001, [0; 10])).unwrap();
        assert!(a < b);
    }
}
