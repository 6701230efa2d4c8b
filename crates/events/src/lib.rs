//! Wasl's events on the wire. This crate owns the protobuf schemas (`proto/wasl/v1/`, package
//! `wasl.v1`), the lossless conversion between them and the domain's events, the envelope with
//! its metadata, the CloudEvents headers that travel beside it, and the reading of older schema
//! versions.
//!
//! It exists so that the domain stays free of serialisation and the rest of Wasl speaks one
//! format: the store appends [`encode`]d events with [`build_headers`], and every consumer
//! (projector, router, followup, dashboard) reads them back with [`parse_headers`] and
//! [`decode_versioned`]. Decoding is strict — an unknown enum number, a missing field or an
//! empty payload is an error, never a silent default — and its errors never contain decoded
//! values, which may be personal data. The events themselves are documented in `docs/events.md`.
//!
//! ```
//! # use wasl_domain::{Actor, Role, ids::*, referral::ReferralEvent, time::Timestamp};
//! # use wasl_events::{DomainEvent, EventMeta, StoredEvent};
//! let id = |n: u8| uuid::Uuid::from_bytes([1, 2, 3, 4, 5, 6, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, n]);
//! let event = StoredEvent {
//!     meta: EventMeta {
//!         event_id: EventId::from_uuid(id(1))?,
//!         command_id: CommandId::from_uuid(id(2))?,
//!         occurred_at: Timestamp::from_unix_millis(1_767_225_600_000),
//!         actor: Actor { user: UserId::from_uuid(id(3))?, org: OrgId::from_uuid(id(4))?, roles: vec![Role::FocalPoint] },
//!     },
//!     event: DomainEvent::Referral(ReferralId::from_uuid(id(5))?, ReferralEvent::Accepted),
//! };
//! assert_eq!(event.event.event_type(), "wasl.referral.accepted.v1");
//! let bytes = wasl_events::encode(&event);
//! let headers = wasl_events::build_headers(&event, wasl_events::headers::DEFAULT_SOURCE)?;
//! let parsed = wasl_events::parse_headers(headers)?;
//! assert_eq!(wasl_events::decode_versioned(parsed.schema_version, &bytes)?, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
pub mod envelope;
pub mod error;
pub mod headers;
pub mod partner;
pub mod pb;
pub mod upcast;

pub use envelope::{DomainEvent, EventMeta, EventType, StoredEvent, decode, decode_sealed, encode, encode_sealed};
pub use error::DecodeError;
pub use headers::{CloudEventHeaders, HeaderError, build_headers, parse_headers};
pub use upcast::{CURRENT_SCHEMA_VERSION, decode_versioned};
