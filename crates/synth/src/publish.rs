//! Bulk publishing of a history into the event stream, message by message as the store's
//! `append` would have written it: the aggregate's subject, the protobuf body of
//! `wasl_events::encode`, the CloudEvents headers of `wasl_events::build_headers`, the store's
//! `Nats-Msg-Id` and `traceparent`, `Nats-Expected-Last-Subject-Sequence` on the first event of
//! each command, and the atomic-batch headers for commands of several events. Acknowledgements
//! are pipelined, so a million events load in seconds rather than one round trip each.
//!
//! The header logic of `wasl_store::append` is private; the few lines that build the same set
//! are repeated here from its public constants and functions.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, publish::PublishAck};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use uuid::Uuid;
use wasl_domain::AggregateKind;
use wasl_events::StoredEvent;
use wasl_store::StoreConfig;
use wasl_store::append::{BATCH_COMMIT, BATCH_ID, BATCH_SEQUENCE, EXPECTED_LAST_SUBJECT_SEQUENCE, MSG_ID};

/// Acknowledgements outstanding at a time.
const IN_FLIGHT: usize = 2_000;

/// Why a history could not be published (completely). Events are named by their position in
/// the history (from 0), never by their contents.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event stream is missing or its state cannot be read.
    #[error("the event stream {stream} cannot be used: {reason}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// What went wrong.
        reason: String,
    },
    /// An event's headers cannot be built (an empty source, a time RFC 3339 cannot carry).
    #[error("event {index} cannot be encoded: {reason}")]
    Encode {
        /// The event's position in the history.
        index: u64,
        /// What went wrong.
        reason: String,
    },
    /// The message was not sent, or its acknowledgement did not arrive in time.
    #[error("event {index} could not be published: {reason}")]
    Publish {
        /// The event's position in the history.
        index: u64,
        /// What went wrong.
        reason: String,
    },
    /// JetStream refused the message, e.g. a wrong last subject sequence because the stream
    /// already held events of the same aggregate.
    #[error("JetStream refused event {index}: {reason}")]
    Refused {
        /// The event's position in the history.
        index: u64,
        /// JetStream's description.
        reason: String,
    },
    /// The message was stored, but not where it should be: the stream was written to by
    /// someone else meanwhile.
    #[error("event {index} was stored at sequence {actual} of stream {stream}, expected sequence {expected}")]
    Misplaced {
        /// The event's position in the history.
        index: u64,
        /// The stream that stored it.
        stream: String,
        /// The sequence it should have had.
        expected: u64,
        /// The sequence it got.
        actual: u64,
    },
    /// JetStream took the message for a duplicate of one stored before (same message id): the
    /// history, or part of it, was published into this stream already.
    #[error("event {index} duplicates a message already in the stream")]
    Duplicate {
        /// The event's position in the history.
        index: u64,
    },
}

/// Publishes `events` into the event stream of `config` in order, as the store would have
/// stored them, keeping up to 2,000 acknowledgements in flight. Meant for a fresh stream (or
/// one that holds none of these aggregates and has no other writer meanwhile), created by
/// `wasl_store::provision::ensure_stream`. Returns the stream sequence of the last event (the
/// stream's last sequence when `events` is empty).
///
/// Every event is checked to land at exactly the next sequence. On a replicated stream the
/// `Nats-Expected-Last-Subject-Sequence` header is left out, because JetStream refuses a
/// pipelined second write to a subject with that header while the first is still being
/// replicated; on a single replica it is set as the store sets it.
pub async fn publish(
    js: &jetstream::Context,
    config: &StoreConfig,
    events: impl IntoIterator<Item = StoredEvent>,
) -> Result<u64, PublishError> {
    Publisher::new(js, config).await?.publish(events).await
}

/// Publishes a history in parts, as [`publish`] does at once: each call continues where the
/// last one ended (the subjects' last sequences and the events' positions carry over), so a
/// benchmark can pace a history over time.
#[derive(Debug)]
pub struct Publisher<'a> {
    js: &'a jetstream::Context,
    config: &'a StoreConfig,
    with_expected: bool,
    last_sequence: u64,
    subjects: HashMap<(AggregateKind, Uuid), u64>,
    index: u64,
}

impl<'a> Publisher<'a> {
    /// Reads the stream's state; the first event published goes after its last message.
    pub async fn new(js: &'a jetstream::Context, config: &'a StoreConfig) -> Result<Self, PublishError> {
        let stream_error = |reason: String| PublishError::Stream {
            stream: config.stream.clone(),
            reason,
        };
        let mut stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let info = stream.info().await.map_err(|e| stream_error(e.to_string()))?;
        Ok(Self {
            js,
            config,
            with_expected: info.config.num_replicas <= 1,
            last_sequence: info.state.last_sequence,
            subjects: HashMap::new(),
            index: 0,
        })
    }

    /// The stream sequence of the last event published (or of the stream's last message).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Publishes `events` after those of the earlier calls; returns the last one's sequence.
    /// Every acknowledgement has arrived when it returns.
    pub async fn publish(&mut self, events: impl IntoIterator<Item = StoredEvent>) -> Result<u64, PublishError> {
        let (js, config) = (self.js, self.config);
        let mut window = FuturesUnordered::new();
        let mut events = events.into_iter().peekable();
        while let Some(first) = events.next() {
            let mut command = vec![first];
            while let Some(next) = events.peek() {
                let same = next.meta.command_id == command[0].meta.command_id
                    && next.event.aggregate_kind() == command[0].event.aggregate_kind()
                    && next.event.aggregate_id() == command[0].event.aggregate_id();
                if !same {
                    break;
                }
                command.extend(events.next());
            }
            let key = (command[0].event.aggregate_kind(), command[0].event.aggregate_id());
            let expected_last = self
                .with_expected
                .then(|| self.subjects.get(&key).copied().unwrap_or(0));
            let subject = command[0].event.subject();
            if command.len() > 1 {
                // An atomic batch answers only at its commit: settle everything before it first.
                while let Some((at, expected, ack)) = window.next().await {
                    check(config, at, expected, ack)?;
                }
            }
            for (position, event) in command.iter().enumerate() {
                let headers = headers(config, event, position, command.len(), expected_last).map_err(|reason| {
                    PublishError::Encode {
                        index: self.index + position as u64,
                        reason,
                    }
                })?;
                let payload = wasl_events::encode(event);
                let at = self.index + position as u64;
                let expected = self.last_sequence + 1 + position as u64;
                if command.len() > 1 && position + 1 < command.len() {
                    batch_message(js, config, &subject, headers, payload, at).await?;
                    continue;
                }
                let ack = js
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await
                    .map_err(|e| PublishError::Publish {
                        index: at,
                        reason: e.to_string(),
                    })?;
                window.push(async move { (at, expected, ack.await) });
                if (command.len() > 1 || window.len() >= IN_FLIGHT)
                    && let Some((at, expected, ack)) = window.next().await
                {
                    check(config, at, expected, ack)?;
                }
            }
            self.index += command.len() as u64;
            self.last_sequence += command.len() as u64;
            self.subjects.insert(key, self.last_sequence);
        }
        while let Some((at, expected, ack)) = window.next().await {
            check(config, at, expected, ack)?;
        }
        Ok(self.last_sequence)
    }
}

/// The headers `wasl_store::append` gives the `position`th of the `count` events of a command.
fn headers(
    config: &StoreConfig,
    event: &StoredEvent,
    position: usize,
    count: usize,
    expected_last: Option<u64>,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in wasl_events::build_headers(event, &config.source).map_err(|e| e.to_string())? {
        headers.insert(name, value);
    }
    headers.insert(MSG_ID, wasl_store::append::message_id(event, position));
    headers.insert(
        wasl_events::headers::TRACEPARENT,
        wasl_store::append::traceparent(None, event),
    );
    if let (0, Some(expected)) = (position, expected_last) {
        headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, expected.to_string());
    }
    if count > 1 {
        headers.insert(BATCH_ID, format!("{}.0", event.meta.command_id.as_uuid().simple()));
        headers.insert(BATCH_SEQUENCE, (position + 1).to_string());
        if position + 1 == count {
            headers.insert(BATCH_COMMIT, "1");
        }
    }
    Ok(headers)
}

/// Sends a message of an atomic batch before its commit; JetStream answers it with an empty
/// message, or with an error.
async fn batch_message(
    js: &jetstream::Context,
    config: &StoreConfig,
    subject: &str,
    headers: HeaderMap,
    payload: Vec<u8>,
    index: u64,
) -> Result<(), PublishError> {
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(payload.into())
        .timeout(Some(config.request_timeout));
    let reply = js
        .client()
        .send_request(subject.to_owned(), request)
        .await
        .map_err(|e| PublishError::Publish {
            index,
            reason: e.to_string(),
        })?;
    if reply.payload.is_empty() {
        Ok(())
    } else {
        // A JetStream API error: codes and a description, never the message's contents.
        Err(PublishError::Refused {
            index,
            reason: String::from_utf8_lossy(&reply.payload).into_owned(),
        })
    }
}

/// Checks one acknowledgement: stored, not as a duplicate, in the right stream at the expected
/// sequence.
fn check(
    config: &StoreConfig,
    index: u64,
    expected: u64,
    ack: Result<PublishAck, jetstream::context::PublishError>,
) -> Result<(), PublishError> {
    let ack = ack.map_err(|e| match e.kind() {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => PublishError::Publish {
            index,
            reason: e.to_string(),
        },
        PublishErrorKind::StreamNotFound => PublishError::Stream {
            stream: config.stream.clone(),
            reason: e.to_string(),
        },
        _ => PublishError::Refused {
            index,
            reason: e.to_string(),
        },
    })?;
    if ack.duplicate {
        return Err(PublishError::Duplicate { index });
    }
    if ack.stream != config.stream || ack.sequence != expected {
        return Err(PublishError::Misplaced {
            index,
            stream: ack.stream,
            expected,
            actual: ack.sequence,
        });
    }
    Ok(())
}
