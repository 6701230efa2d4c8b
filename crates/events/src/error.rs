//! Why bytes could not become a [`StoredEvent`](crate::StoredEvent).
//!
//! Every message names fields and numbers only, never a decoded value: values may be personal
//! data, and decode errors end up in logs.

use wasl_domain::ValidationError;

/// Bytes that do not hold a valid event of a supported schema version.
///
/// Fields are named `<Message>.<field>` after the protobuf schema, e.g. `Event.occurred_at` or
/// `Location.governorate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum DecodeError {
    /// The bytes are not a protobuf `wasl.v1.Event` at all (truncated, wrong wire type, bad
    /// UTF-8 in a string field).
    #[error("not a valid protobuf event: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A required field is absent (a message field or a oneof that must be set).
    #[error("required field {field} is missing")]
    MissingField { field: &'static str },
    /// An enum field holds `UNSPECIFIED` (0) or a number this version does not know.
    #[error("field {field} holds unknown or unspecified enum number {number}")]
    UnknownEnumValue {
        field: &'static str,
        /// The number found; 0 is `UNSPECIFIED`.
        number: i32,
    },
    /// A field holds a value the domain refuses (a malformed id, an unknown governorate, a
    /// timestamp with sub-millisecond precision, …).
    #[error("field {field} is invalid: {}", .source.problem)]
    Invalid {
        field: &'static str,
        /// What the domain found wrong with it (never the value).
        source: ValidationError,
    },
    /// The event's payload oneof is empty, or holds an event type this version does not know.
    #[error("the event has no payload this version knows")]
    MissingPayload,
    /// The schema version is not one this version can read.
    #[error("unsupported schema version {version}")]
    UnsupportedSchemaVersion {
        /// The version asked for.
        version: u32,
    },
}

impl DecodeError {
    /// A missing required field.
    pub(crate) const fn missing(field: &'static str) -> Self {
        Self::MissingField { field }
    }

    /// An invalid value in `field`, with the domain's explanation.
    pub(crate) const fn invalid(field: &'static str, source: ValidationError) -> Self {
        Self::Invalid { field, source }
    }

    /// An invalid value in `field`, explained by `problem`.
    pub(crate) const fn invalid_because(field: &'static str, problem: &'static str) -> Self {
        Self::Invalid {
            field,
            source: ValidationError::new(field, problem),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_problem() {
        let err = DecodeError::invalid(
            "Location.governorate",
            ValidationError::new("governorate", "is unknown"),
        );
        assert_eq!(err.to_string(), "field Location.governorate is invalid: is unknown");
        let err = DecodeError::UnknownEnumValue {
            field: "ClientProfile.sex",
            number: 0,
        };
        assert_eq!(
            err.to_string(),
            "field ClientProfile.sex holds unknown or unspecified enum number 0"
        );
    }
}
