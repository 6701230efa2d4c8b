//! Appending the events of one command to an aggregate's subject.
//!
//! - Optimistic concurrency: the first message carries `Nats-Expected-Last-Subject-Sequence`,
//!   the stream sequence of the aggregate's last event as the handler loaded it (0 = the
//!   aggregate must be new). A lost race is [`AppendError::Conflict`].
//! - Idempotency: every message carries `Nats-Msg-Id = <command id>:<event index>`, so JetStream
//!   drops a resend within its duplicate window and answers with the original sequence.
//! - Atomicity: two or more events go as one atomic batch (`Nats-Batch-Id`,
//!   `Nats-Batch-Sequence`, `Nats-Batch-Commit`): all are stored or none.
//! - Every message carries the CloudEvents headers and a W3C `traceparent`.
//!
//! Publishing goes through plain requests so that JetStream's own error codes reach us: 10071
//! and 10164 (wrong last sequence) and 10163 (expected sequence not ready) are conflicts,
//! 10158 (the same message id in flight) and time-outs leave the outcome open.

use crate::config::StoreConfig;
use crate::error::StoreError;
use async_nats::header::HeaderMap;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use serde::Deserialize;
use wasl_events::StoredEvent;

/// Header: JetStream's idempotency key.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Header: optimistic concurrency on the subject's last sequence.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// Header: atomic batch id.
pub const BATCH_ID: &str = "Nats-Batch-Id";
/// Header: position in the atomic batch, from 1.
pub const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
/// Header: marks the last message of an atomic batch.
pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// What to append.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// The aggregate's subject.
    pub subject: &'a str,
    /// The subject's last stream sequence as loaded; 0 when the aggregate must be new.
    pub expected_last_sequence: u64,
    /// The events of one command, in order, all of this aggregate.
    pub events: &'a [StoredEvent],
    /// The caller's W3C trace context, if any; otherwise one is derived from the command id.
    pub traceparent: Option<&'a str>,
    /// The how-manieth attempt of this append (distinguishes batch ids of resends).
    pub attempt: u32,
}

/// JetStream's acknowledgement of a stored append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The stream sequence of the last event of the append.
    pub last_sequence: u64,
    /// JetStream recognised the message id: this append was stored before.
    pub duplicate: bool,
}

/// Why an append did not (certainly) happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The subject moved on since it was loaded: reload and decide again.
    #[error("the aggregate changed since it was loaded")]
    Conflict,
    /// The outcome is unknown (the answer was lost, or the same append is in flight): send the
    /// same append again; its ids make that safe.
    #[error("the outcome of the append is unknown: {0}")]
    Unsettled(String),
    /// Nothing can be stored now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Store(StoreError),
}

/// The message id of the `index`th event of a command.
pub fn message_id(event: &StoredEvent, index: usize) -> String {
    format!("{}:{index}", event.meta.command_id)
}

/// A W3C trace context: the caller's when well-formed, else trace id = the command id, so all
/// events of a command (and its retries) share one trace; span id from the event id.
pub fn traceparent(given: Option<&str>, event: &StoredEvent) -> String {
    if let Some(tp) = given.filter(|tp| is_traceparent(tp)) {
        return tp.to_owned();
    }
    let trace = event.meta.command_id.as_uuid().simple().to_string();
    let event_id = event.meta.event_id.as_uuid().simple().to_string();
    format!("00-{trace}-{}-01", &event_id[16..])
}

fn is_traceparent(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "0".repeat(32)
        && parts[2] != "0".repeat(16)
}

/// Builds the headers of one message.
fn headers(
    config: &StoreConfig,
    append: &Append<'_>,
    index: usize,
    event: &StoredEvent,
) -> Result<HeaderMap, StoreError> {
    let mut headers = HeaderMap::new();
    let cloud = wasl_events::build_headers(event, &config.source).map_err(|e| StoreError::Encode(e.to_string()))?;
    for (name, value) in cloud {
        headers.insert(name, value);
    }
    headers.insert(MSG_ID, message_id(event, index));
    headers.insert(
        wasl_events::headers::TRACEPARENT,
        traceparent(append.traceparent, event),
    );
    if index == 0 {
        headers.insert(
            EXPECTED_LAST_SUBJECT_SEQUENCE,
            append.expected_last_sequence.to_string(),
        );
    }
    if append.events.len() > 1 {
        headers.insert(
            BATCH_ID,
            format!("{}.{}", event.meta.command_id.as_uuid().simple(), append.attempt),
        );
        headers.insert(BATCH_SEQUENCE, (index + 1).to_string());
        if index + 1 == append.events.len() {
            headers.insert(BATCH_COMMIT, "1");
        }
    }
    Ok(headers)
}

/// Appends the events; `Ok` only once JetStream has stored all of them.
#[tracing::instrument(skip_all, fields(subject = append.subject, events = append.events.len(), expected = append.expected_last_sequence), err(level = "debug"))]
pub async fn append(client: &Client, config: &StoreConfig, append: Append<'_>) -> Result<Ack, AppendError> {
    if append.events.is_empty() {
        return Err(AppendError::Store(StoreError::Encode("nothing to append".to_owned())));
    }
    let mut last = None;
    for (index, event) in append.events.iter().enumerate() {
        if event.event.subject() != append.subject {
            return Err(AppendError::Store(StoreError::Encode(format!(
                "event {index} belongs to another subject than the append"
            ))));
        }
        let headers = headers(config, &append, index, event).map_err(AppendError::Store)?;
        let payload = Bytes::from(wasl_events::encode(event));
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(payload)
            .timeout(Some(config.request_timeout));
        let reply = client
            .send_request(append.subject.to_owned(), request)
            .await
            .map_err(|err| match err.kind() {
                RequestErrorKind::TimedOut => AppendError::Unsettled("no answer from JetStream in time".to_owned()),
                RequestErrorKind::NoResponders => {
                    AppendError::Unavailable("no JetStream stream answers on the event subjects".to_owned())
                }
                _ => AppendError::Unsettled(err.to_string()),
            })?;
        last = parse_reply(&reply.payload)?;
    }
    last.ok_or_else(|| AppendError::Unsettled("the batch was not acknowledged".to_owned()))
}

#[derive(Deserialize)]
struct Reply {
    seq: Option<u64>,
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

/// Reads JetStream's answer to one message: an acknowledgement, an empty answer (a batch message
/// before the commit), or an error.
fn parse_reply(payload: &[u8]) -> Result<Option<Ack>, AppendError> {
    if payload.is_empty() {
        return Ok(None);
    }
    let reply: Reply = serde_json::from_slice(payload).map_err(|_| {
        AppendError::Store(StoreError::Encode(
            "JetStream's answer is not a publish acknowledgement".into(),
        ))
    })?;
    if let Some(error) = reply.error {
        return Err(classify(error));
    }
    match reply.seq {
        Some(seq) => Ok(Some(Ack {
            last_sequence: seq,
            duplicate: reply.duplicate,
        })),
        None => Ok(None),
    }
}

fn classify(error: ApiError) -> AppendError {
    match error.err_code {
        // wrong last sequence (with and without the current sequence); expected sequence not
        // ready while another write to the subject is in flight
        10071 | 10164 | 10163 => AppendError::Conflict,
        // the same message id is being stored right now: its outcome decides ours
        10158 => AppendError::Unsettled(error.description),
        _ if error.code == 503 => AppendError::Unavailable(error.description),
        _ => AppendError::Store(StoreError::Api {
            code: error.code,
            err_code: error.err_code,
            description: error.description,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_last_sequence_in_every_form_is_a_conflict() {
        for code in [10071, 10164, 10163] {
            let body = format!(r#"{{"error":{{"code":400,"err_code":{code},"description":"wrong last sequence"}}}}"#);
            assert!(
                matches!(parse_reply(body.as_bytes()), Err(AppendError::Conflict)),
                "{code}"
            );
        }
    }

    #[test]
    fn an_in_flight_duplicate_leaves_the_outcome_open() {
        let body = br#"{"error":{"code":409,"err_code":10158,"description":"duplicate message id is in process"}}"#;
        assert!(matches!(parse_reply(body), Err(AppendError::Unsettled(_))));
    }

    #[test]
    fn an_acknowledgement_carries_the_sequence_and_the_duplicate_flag() {
        let ack = parse_reply(br#"{"stream":"WASL_EVENTS","seq":42,"duplicate":true}"#).unwrap();
        assert_eq!(
            ack,
            Some(Ack {
                last_sequence: 42,
                duplicate: true
            })
        );
        assert_eq!(parse_reply(b"").unwrap(), None);
    }

    #[test]
    fn service_unavailable_is_unavailable_and_other_errors_are_reported() {
        let body =
            br#"{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}"#;
        assert!(matches!(parse_reply(body), Err(AppendError::Unavailable(_))));
        let body = br#"{"error":{"code":400,"err_code":10999,"description":"something else"}}"#;
        assert!(matches!(
            parse_reply(body),
            Err(AppendError::Store(StoreError::Api { err_code: 10999, .. }))
        ));
    }

    #[test]
    fn only_well_formed_trace_contexts_are_passed_on() {
        assert!(is_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent("garbage\r\nx: y"));
    }
}
