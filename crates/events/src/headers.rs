//! The headers that travel beside an event's bytes: CloudEvents 1.0 attributes in binary content
//! mode (`ce-*` headers, the body is the protobuf event), plus Wasl's own.
//!
//! The store sets them on every JetStream message it appends; consumers can route and filter on
//! them without decoding the body. Header values hold ids, type names and times only — never
//! personal data. Everything here is plain strings, so the crate needs no NATS client: the store
//! copies the pairs into `async_nats::HeaderMap` and back.

use crate::envelope::{EventType, StoredEvent};
use crate::upcast::CURRENT_SCHEMA_VERSION;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;
use wasl_domain::AggregateKind;
use wasl_domain::ids::{CommandId, EventId};
use wasl_domain::time::Timestamp;

/// CloudEvents `id`: the event id.
pub const CE_ID: &str = "ce-id";
/// CloudEvents `type`: the event type name, e.g. `wasl.referral.requested.v1`.
pub const CE_TYPE: &str = "ce-type";
/// CloudEvents `source`: the producing system, e.g. `/wasl`.
pub const CE_SOURCE: &str = "ce-source";
/// CloudEvents `subject`: the aggregate, `<case|referral|org>/<id>`.
pub const CE_SUBJECT: &str = "ce-subject";
/// CloudEvents `time`: when it occurred, RFC 3339 UTC with milliseconds.
pub const CE_TIME: &str = "ce-time";
/// CloudEvents `specversion`: always [`SPEC_VERSION`].
pub const CE_SPECVERSION: &str = "ce-specversion";
/// CloudEvents `datacontenttype` in binary mode: always [`PROTOBUF_CONTENT_TYPE`].
pub const CONTENT_TYPE: &str = "content-type";
/// The id of the command that caused the event.
pub const WASL_COMMAND_ID: &str = "wasl-command-id";
/// The schema version of the body, a decimal number; see [`crate::upcast`].
pub const WASL_SCHEMA: &str = "wasl-schema";
/// W3C trace context, set by the telemetry layer (not by [`build_headers`]).
pub const TRACEPARENT: &str = "traceparent";

/// The CloudEvents version spoken.
pub const SPEC_VERSION: &str = "1.0";
/// The media type of the body.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf";
/// The `source` Wasl's own services use.
pub const DEFAULT_SOURCE: &str = "/wasl";

/// The last millisecond that RFC 3339 with a four-digit year can carry (9999-12-31T23:59:59.999Z).
const MAX_RFC3339_MILLIS: i64 = 253_402_300_799_999;

/// The aggregate an event belongs to, as in `ce-subject`: `<kind>/<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct AggregateRef {
    /// Which kind of aggregate.
    pub kind: AggregateKind,
    pub id: Uuid,
}

impl fmt::Display for AggregateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.subject_token(), self.id.hyphenated())
    }
}

/// The typed content of an event's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEventHeaders {
    /// `ce-id`.
    pub id: EventId,
    /// `ce-type`.
    pub event_type: EventType,
    /// `ce-source`.
    pub source: String,
    /// `ce-subject`.
    pub subject: AggregateRef,
    /// `ce-time`.
    pub time: Timestamp,
    /// `wasl-command-id`.
    pub command_id: CommandId,
    /// `wasl-schema`.
    pub schema_version: u32,
}

/// Headers that are missing or malformed. Messages name the header, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required header is absent.
    #[error("header {name} is missing")]
    Missing {
        /// The header.
        name: &'static str,
    },
    /// A header appears more than once.
    #[error("header {name} appears more than once")]
    Duplicate {
        /// The header.
        name: &'static str,
    },
    /// A header's value is malformed.
    #[error("header {name} is invalid: {problem}")]
    Invalid {
        /// The header.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `ce-type` names an event type this version does not know (a newer producer); the
    /// consumer may skip the message or stop, but cannot decode it.
    #[error("header ce-type names an event type this version does not know")]
    UnknownEventType,
}

impl CloudEventHeaders {
    /// The headers of a stored event, produced by `source`.
    pub fn for_event(event: &StoredEvent, source: &str) -> Self {
        Self {
            id: event.meta.event_id,
            event_type: event.event.kind(),
            source: source.to_owned(),
            subject: AggregateRef {
                kind: event.event.aggregate_kind(),
                id: event.event.aggregate_id(),
            },
            time: event.meta.occurred_at,
            command_id: event.meta.command_id,
            schema_version: CURRENT_SCHEMA_VERSION,
        }
    }

    /// The headers as `(name, value)` pairs, CloudEvents attributes first.
    ///
    /// Fails only when the source is empty or the time lies outside what RFC 3339 can carry
    /// (before 1970 or after 9999), which no clock of a running system produces.
    pub fn to_pairs(&self) -> Result<Vec<(&'static str, String)>, HeaderError> {
        if self.source.is_empty() {
            return Err(HeaderError::Invalid {
                name: CE_SOURCE,
                problem: "must not be empty",
            });
        }
        Ok(vec![
            (CE_SPECVERSION, SPEC_VERSION.to_owned()),
            (CE_ID, self.id.to_string()),
            (CE_TYPE, self.event_type.as_str().to_owned()),
            (CE_SOURCE, self.source.clone()),
            (CE_SUBJECT, self.subject.to_string()),
            (CE_TIME, format_time(self.time)?),
            (CONTENT_TYPE, PROTOBUF_CONTENT_TYPE.to_owned()),
            (WASL_COMMAND_ID, self.command_id.to_string()),
            (WASL_SCHEMA, self.schema_version.to_string()),
        ])
    }
}

/// The headers to send with `event`, produced by `source` (e.g. [`DEFAULT_SOURCE`]).
pub fn build_headers(event: &StoredEvent, source: &str) -> Result<Vec<(&'static str, String)>, HeaderError> {
    CloudEventHeaders::for_event(event, source).to_pairs()
}

/// Reads the headers of a message. Names match case-insensitively; headers this module does not
/// know (`traceparent`, `Nats-Msg-Id`, …) are ignored; a known header given twice is an error.
pub fn parse_headers<N, V>(headers: impl IntoIterator<Item = (N, V)>) -> Result<CloudEventHeaders, HeaderError>
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    const KNOWN: [&str; 9] = [
        CE_SPECVERSION,
        CE_ID,
        CE_TYPE,
        CE_SOURCE,
        CE_SUBJECT,
        CE_TIME,
        CONTENT_TYPE,
        WASL_COMMAND_ID,
        WASL_SCHEMA,
    ];
    let mut values: [Option<String>; 9] = Default::default();
    for (name, value) in headers {
        let name = name.as_ref();
        if let Some(i) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            if values[i].is_some() {
                return Err(HeaderError::Duplicate { name: KNOWN[i] });
            }
            values[i] = Some(value.as_ref().to_owned());
        }
    }
    let [
        specversion,
        id,
        event_type,
        source,
        subject,
        time,
        content_type,
        command_id,
        schema,
    ] = values;
    let get = |value: Option<String>, name: &'static str| value.ok_or(HeaderError::Missing { name });

    if get(specversion, CE_SPECVERSION)?.trim() != SPEC_VERSION {
        return Err(HeaderError::Invalid {
            name: CE_SPECVERSION,
            problem: "must be 1.0",
        });
    }
    let content_type = get(content_type, CONTENT_TYPE)?;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case(PROTOBUF_CONTENT_TYPE) {
        return Err(HeaderError::Invalid {
            name: CONTENT_TYPE,
            problem: "must be application/protobuf",
        });
    }
    let event_type = EventType::parse(get(event_type, CE_TYPE)?.trim()).ok_or(HeaderError::UnknownEventType)?;
    let source = get(source, CE_SOURCE)?;
    if source.is_empty() {
        return Err(HeaderError::Invalid {
            name: CE_SOURCE,
            problem: "must not be empty",
        });
    }
    let subject = parse_subject(&get(subject, CE_SUBJECT)?)?;
    if subject.kind != event_type.aggregate_kind() {
        return Err(HeaderError::Invalid {
            name: CE_SUBJECT,
            problem: "names another kind of aggregate than ce-type",
        });
    }
    Ok(CloudEventHeaders {
        id: parse_id(&get(id, CE_ID)?, CE_ID)?,
        event_type,
        source,
        subject,
        time: parse_time(&get(time, CE_TIME)?)?,
        command_id: parse_id(&get(command_id, WASL_COMMAND_ID)?, WASL_COMMAND_ID)?,
        schema_version: get(schema, WASL_SCHEMA)?
            .trim()
            .parse()
            .map_err(|_| HeaderError::Invalid {
                name: WASL_SCHEMA,
                problem: "must be a decimal number",
            })?,
    })
}

fn parse_id<T: std::str::FromStr>(value: &str, name: &'static str) -> Result<T, HeaderError> {
    let invalid = HeaderError::Invalid {
        name,
        problem: "must be a hyphenated UUIDv7",
    };
    if value.len() != 36 {
        return Err(invalid);
    }
    value.parse().map_err(|_| invalid)
}

fn parse_subject(value: &str) -> Result<AggregateRef, HeaderError> {
    let invalid = |problem| HeaderError::Invalid {
        name: CE_SUBJECT,
        problem,
    };
    let (token, id) = value
        .split_once('/')
        .ok_or(invalid("must be <case|referral|org>/<id>"))?;
    let kind = [
        AggregateKind::Case,
        AggregateKind::Referral,
        AggregateKind::Organisation,
    ]
    .into_iter()
    .find(|k| k.subject_token() == token)
    .ok_or(invalid("names an unknown kind of aggregate"))?;
    let id = Uuid::try_parse(id)
        .ok()
        .filter(|u| id.len() == 36 && u.get_version_num() == 7)
        .ok_or(invalid("must end in a hyphenated UUIDv7"))?;
    Ok(AggregateRef { kind, id })
}

fn format_time(at: Timestamp) -> Result<String, HeaderError> {
    let millis = at.unix_millis();
    match u64::try_from(millis) {
        Ok(ms) if millis <= MAX_RFC3339_MILLIS => {
            let time = UNIX_EPOCH + Duration::from_millis(ms);
            Ok(humantime::format_rfc3339_millis(time).to_string())
        }
        _ => Err(HeaderError::Invalid {
            name: CE_TIME,
            problem: "lies outside the years 1970 to 9999",
        }),
    }
}

fn parse_time(value: &str) -> Result<Timestamp, HeaderError> {
    let invalid = |problem| HeaderError::Invalid { name: CE_TIME, problem };
    let time: SystemTime =
        humantime::parse_rfc3339(value.trim()).map_err(|_| invalid("must be RFC 3339 in UTC, from 1970"))?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid("must not lie before 1970"))?;
    if since_epoch.subsec_nanos() % 1_000_000 != 0 {
        return Err(invalid("has sub-millisecond precision"));
    }
    let millis = i64::try_from(since_epoch.as_millis()).map_err(|_| invalid("is out of range"))?;
    Ok(Timestamp::from_unix_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_with_milliseconds_in_utc() {
        let at = Timestamp::from_unix_millis(1_767_225_600_042);
        assert_eq!(format_time(at).unwrap(), "2026-01-01T00:00:00.042Z");
        assert_eq!(parse_time("2026-01-01T00:00:00.042Z").unwrap(), at);
        assert_eq!(parse_time("2026-01-01T00:00:00.042+00:00").unwrap(), at);
    }

    #[test]
    fn the_edges_of_rfc3339_are_refused_rather_than_panicking() {
        assert!(format_time(Timestamp::from_unix_millis(0)).is_ok());
        assert!(format_time(Timestamp::from_unix_millis(MAX_RFC3339_MILLIS)).is_ok());
        for millis in [-1, MAX_RFC3339_MILLIS + 1, i64::MIN, i64::MAX] {
            assert!(matches!(
                format_time(Timestamp::from_unix_millis(millis)),
                Err(HeaderError::Invalid { name: CE_TIME, .. })
            ));
        }
    }

    #[test]
    fn sub_millisecond_times_are_refused() {
        assert!(matches!(
            parse_time("2026-01-01T00:00:00.0421Z"),
            Err(HeaderError::Invalid { name: CE_TIME, .. })
        ));
    }

    #[test]
    fn subjects_read_kind_and_id() {
        let id = "0190c1a0-0000-7000-8000-000000000001";
        let parsed = parse_subject(&format!("org/{id}")).unwrap();
        assert_eq!(parsed.kind, AggregateKind::Organisation);
        assert_eq!(parsed.to_string(), format!("org/{id}"));
        for bad in [
            id.to_owned(),
            format!("person/{id}"),
            "case/42".to_owned(),
            format!("case/{id}/x"),
        ] {
            assert!(matches!(
                parse_subject(&bad),
                Err(HeaderError::Invalid { name: CE_SUBJECT, .. })
            ));
        }
    }
}
