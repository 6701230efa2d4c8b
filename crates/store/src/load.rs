//! Reading an aggregate's events back from the stream, and reading any stored message as an
//! event. Two ways to read one subject: direct gets (one request per event, served by any
//! replica) and an ordered consumer (one consumer per read, events pushed in a stream); `wasl
//! bench store` measures both.

use crate::error::StoreError;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use futures_util::StreamExt;
use wasl_events::StoredEvent;

/// How to read an aggregate's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadStrategy {
    /// Direct gets, `next_by_subj` from a sequence (the default; see `docs/performance.md`).
    #[default]
    DirectGet,
    /// An ordered consumer filtered to the subject.
    OrderedConsumer,
}

/// A stored event with its stream sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Recorded {
    /// The stream sequence (the event's position in the log).
    pub sequence: u64,
    pub event: StoredEvent,
    /// The W3C trace context it was appended in (`traceparent` header), when well-formed.
    pub traceparent: Option<String>,
}

/// The `traceparent` header of a stored message, when present and well-formed.
pub fn traceparent_of(headers: Option<&HeaderMap>) -> Option<String> {
    let value = headers?.get(wasl_events::headers::TRACEPARENT)?.as_str();
    wasl_telemetry::context::parse(value)
        .is_some()
        .then(|| value.to_owned())
}

/// Reads one stored message as an event: headers, then the body in the schema version they
/// name; the subject must be the event's own. Any failure names the sequence and never the
/// contents.
pub fn decode_message(
    sequence: u64,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<StoredEvent, StoreError> {
    let undecodable = |reason: String| StoreError::Undecodable { sequence, reason };
    let headers = headers.ok_or_else(|| undecodable("it has no headers".to_owned()))?;
    let pairs = headers.iter().flat_map(|(name, values)| {
        values
            .iter()
            .map(move |v| (<_ as AsRef<str>>::as_ref(name), v.as_str()))
    });
    let parsed = wasl_events::parse_headers(pairs).map_err(|e| undecodable(e.to_string()))?;
    let event =
        wasl_events::decode_versioned(parsed.schema_version, payload).map_err(|e| undecodable(e.to_string()))?;
    if event.event.subject() != subject {
        return Err(undecodable("the event belongs to another subject".to_owned()));
    }
    if parsed.id != event.meta.event_id || parsed.event_type.as_str() != event.event.event_type() {
        return Err(undecodable(
            "the headers do not describe the event in the body".to_owned(),
        ));
    }
    Ok(event)
}

/// One message of a subject as read back: an event, or a message that is not a readable event.
// Nearly every message read is an event: boxing it would cost an allocation per event to save
// space only in the rare unreadable case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A readable event.
    Event(Recorded),
    /// A message that cannot be read as an event (see [`decode_message`]).
    Unreadable {
        /// Its stream sequence.
        sequence: u64,
        /// Why (field names and codes only, never contents).
        reason: String,
    },
}

impl Read {
    /// The message's stream sequence.
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Event(recorded) => recorded.sequence,
            Self::Unreadable { sequence, .. } => *sequence,
        }
    }
}

/// The events of `subject` from stream sequence `from` on, in order; the first message that is
/// not a readable event is [`StoreError::Undecodable`].
pub async fn read_subject(
    stream: &Stream,
    strategy: LoadStrategy,
    subject: &str,
    from: u64,
) -> Result<Vec<Recorded>, StoreError> {
    read_messages(stream, strategy, subject, from)
        .await?
        .into_iter()
        .map(|read| match read {
            Read::Event(recorded) => Ok(recorded),
            Read::Unreadable { sequence, reason } => Err(StoreError::Undecodable { sequence, reason }),
        })
        .collect()
}

/// Every message of `subject` from stream sequence `from` on, in order, each read as an event
/// or marked unreadable: for readers that decide themselves what an unreadable message means.
pub async fn read_messages(
    stream: &Stream,
    strategy: LoadStrategy,
    subject: &str,
    from: u64,
) -> Result<Vec<Read>, StoreError> {
    match strategy {
        LoadStrategy::DirectGet => read_direct(stream, subject, from).await,
        LoadStrategy::OrderedConsumer => read_ordered(stream, subject, from).await,
    }
}

/// Reads one message: an event, or why it is not one.
fn read_one(sequence: u64, subject: &str, headers: Option<&HeaderMap>, payload: &[u8]) -> Read {
    match decode_message(sequence, subject, headers, payload) {
        Ok(event) => Read::Event(Recorded {
            sequence,
            event,
            traceparent: traceparent_of(headers),
        }),
        Err(StoreError::Undecodable { reason, .. }) => Read::Unreadable { sequence, reason },
        Err(other) => Read::Unreadable {
            sequence,
            reason: other.to_string(),
        },
    }
}

/// How often a direct get that failed (no responder yet, a time-out) is tried: a stream just
/// created, or just moved to another leader, answers direct gets a moment later.
const DIRECT_GET_ATTEMPTS: u32 = 6;

async fn read_direct(stream: &Stream, subject: &str, from: u64) -> Result<Vec<Read>, StoreError> {
    let mut next = from.max(1);
    let mut out = Vec::new();
    let mut failures = 0;
    loop {
        match stream
            .direct_get_builder()
            .sequence(next)
            .next_by_subject(subject)
            .send()
            .await
        {
            Ok(message) => {
                failures = 0;
                out.push(read_one(
                    message.sequence,
                    &message.subject,
                    Some(&message.headers),
                    &message.payload,
                ));
                next = message.sequence + 1;
            }
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(out),
            Err(err) => {
                failures += 1;
                if failures >= DIRECT_GET_ATTEMPTS {
                    return Err(StoreError::unavailable(err));
                }
                tracing::debug!(attempt = failures, error = %err, "direct get failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(50 << failures)).await;
            }
        }
    }
}

async fn read_ordered(stream: &Stream, subject: &str, from: u64) -> Result<Vec<Read>, StoreError> {
    let config = OrderedConfig {
        filter_subject: subject.to_owned(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: from.max(1),
        },
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(StoreError::unavailable)?;
    let pending = consumer.cached_info().num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(StoreError::unavailable)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(StoreError::unavailable)?;
        let info = message.info().map_err(StoreError::unavailable)?;
        let (sequence, remaining) = (info.stream_sequence, info.pending);
        out.push(read_one(
            sequence,
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        ));
        if remaining == 0 {
            break;
        }
    }
    Ok(out)
}
