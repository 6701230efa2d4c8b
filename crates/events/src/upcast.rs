//! Reading events written under older schema versions.
//!
//! Every stored message carries its schema version in the `wasl-schema` header
//! ([`crate::headers::WASL_SCHEMA`]). Version [`CURRENT_SCHEMA_VERSION`] is protobuf package
//! `wasl.v1` as it stands in `proto/wasl/v1/`.
//!
//! Most evolution needs no new version: adding a field, a message, an event type (a new oneof
//! case) or an enum value keeps old bytes readable by new code, and the golden fixtures in
//! `proto/testdata/` prove it. A new version is needed only when old bytes would *mean* something
//! else under the new schema: a field whose meaning changes, a split or merged event, a change of
//! units. Then:
//!
//! 1. Write the new schema (a new message, or a `wasl.v2` package) and make it current:
//!    [`crate::decode`] reads it and [`CURRENT_SCHEMA_VERSION`] becomes 2.
//! 2. Keep the old generated types (e.g. `pb::v1`) and add an upcaster here: a pure function
//!    `fn v1_to_v2(old: pb::v1::Event) -> Result<pb::v2::Event, DecodeError>` that rewrites old
//!    bytes' meaning into the current message, without IO, the clock or randomness, so that every
//!    replay gives the same result.
//! 3. Add its arm to [`decode_versioned`]: `1 => decode_current(v1_to_v2(decode_v1(bytes)?)?)`.
//!    Upcasters chain: version 1 goes through `v1_to_v2`, then `v2_to_v3`, and so on.
//! 4. Keep the old fixtures; add fixtures for the new version beside them.
//!
//! Stored bytes are never rewritten: the log is append-only, and replays, mirrors and backups
//! hold the old bytes too.

use crate::envelope::{StoredEvent, decode};
use crate::error::DecodeError;

/// The schema version [`crate::encode`] writes and [`crate::decode`] reads.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Decodes the bytes of an event written under `schema_version` (from the `wasl-schema` header)
/// into the current domain form, upcasting older versions.
pub fn decode_versioned(schema_version: u32, bytes: &[u8]) -> Result<StoredEvent, DecodeError> {
    match schema_version {
        CURRENT_SCHEMA_VERSION => decode(bytes),
        version => Err(DecodeError::UnsupportedSchemaVersion { version }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_other_than_the_current_one_are_refused_before_reading_the_bytes() {
        for version in [0, 2, u32::MAX] {
            assert_eq!(
                decode_versioned(version, b"\xff garbage"),
                Err(DecodeError::UnsupportedSchemaVersion { version })
            );
        }
    }
}
