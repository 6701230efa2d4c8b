//! Fixtures for tests; never in production builds (feature `testing`, turned on only by
//! `[dev-dependencies]`).
//!
//! How a test reaches the store — [`connect`], [`open_store`], [`meta`] for a command — and
//! [`Poison`]: what a stranger or a broken tool can put on an event subject, so every reader of
//! the log can be shown to park it, report it and go on. The ids, people and client of the
//! commands are `wasl_domain::testing`'s.

use crate::{CommandMeta, EventStore, StoreConfig};
use async_nats::HeaderMap;
use bytes::Bytes;
use std::time::Duration;
use wasl_domain::ids::{CommandId, EventId, uuid_v7_from_parts};
use wasl_domain::time::Timestamp;
use wasl_domain::{AggregateKind, Context};
use wasl_events::headers::AggregateRef;
use wasl_events::{CloudEventHeaders, EventType};

/// A client of the test nats-server at `url`: waits up to 5 s per attempt and retries until the
/// server answers, so a test may connect while a restarted server comes up.
pub async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to the test nats-server")
}

/// The event store on the test nats-server at `url`, created if it does not exist.
pub async fn open_store(url: &str, config: StoreConfig) -> EventStore {
    EventStore::open(connect(url).await, config)
        .await
        .expect("open the event store")
}

/// A command's metadata in `context`, with a fresh command id and no trace.
pub fn meta(context: Context) -> CommandMeta {
    CommandMeta {
        command_id: wasl_domain::testing::fresh(),
        context,
        traceparent: None,
    }
}

/// The log's last sequence (0 when empty).
pub async fn last_sequence(store: &EventStore) -> u64 {
    store
        .stream()
        .get_info()
        .await
        .expect("the event stream's info")
        .state
        .last_sequence
}

/// A kind of message on a `wasl.evt.…` subject that is not a Wasl event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// Bytes that are no protobuf at all, under headers that look like a Wasl event's.
    GarbageWithHeaders,
    /// The same bytes with no headers at all.
    GarbageWithoutHeaders,
    /// A valid protobuf message of another type (`google.protobuf.Timestamp`), under headers
    /// that look like a Wasl event's.
    WrongProtobufType,
    /// Headers naming a schema version this Wasl does not know (a newer producer).
    UnknownSchemaVersion,
}

impl Poison {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::GarbageWithHeaders,
        Self::GarbageWithoutHeaders,
        Self::WrongProtobufType,
        Self::UnknownSchemaVersion,
    ];

    /// The message to publish on `subject` (`wasl.evt.<case|referral|org>.<uuid>`).
    pub fn message(self, subject: &str) -> (Option<HeaderMap>, Bytes) {
        let garbage = Bytes::from_static(b"\xff\xfe not a wasl event \x00\x01");
        // google.protobuf.Timestamp { seconds: 1700000000 }: field 1, varint.
        let timestamp = Bytes::from_static(&[0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06]);
        match self {
            Self::GarbageWithHeaders => (Some(headers(subject, None)), garbage),
            Self::GarbageWithoutHeaders => (None, garbage),
            Self::WrongProtobufType => (Some(headers(subject, None)), timestamp),
            Self::UnknownSchemaVersion => (Some(headers(subject, Some(99))), timestamp),
        }
    }

    /// Publishes it on `subject` and returns its stream sequence.
    pub async fn publish(self, client: &async_nats::Client, subject: &str) -> u64 {
        let js = async_nats::jetstream::new(client.clone());
        let subject = subject.to_owned();
        let ack = match self.message(&subject) {
            (Some(headers), payload) => js.publish_with_headers(subject, headers, payload).await,
            (None, payload) => js.publish(subject, payload).await,
        }
        .expect("publish the poison");
        ack.await.expect("the poison is stored").sequence
    }
}

/// Headers a Wasl event on `subject` would carry, with a fresh id.
fn headers(subject: &str, schema_version: Option<u32>) -> HeaderMap {
    let mut parts = subject.split('.').skip(2);
    let kind = match parts.next() {
        Some("case") => AggregateKind::Case,
        Some("referral") => AggregateKind::Referral,
        _ => AggregateKind::Organisation,
    };
    let id = parts
        .next()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .unwrap_or_default();
    let event_type = match kind {
        AggregateKind::Case => EventType::CaseOpened,
        AggregateKind::Referral => EventType::ReferralAccepted,
        AggregateKind::Organisation => EventType::OrganisationRegistered,
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&(millis ^ 0x5a5a_5a5a).to_be_bytes());
    random[9] = (schema_version.unwrap_or(1) & 0xff) as u8;
    let uuid = uuid_v7_from_parts(millis, random);
    let pairs = CloudEventHeaders {
        id: EventId::from_uuid(uuid).expect("a v7 id"),
        event_type,
        source: "/test-poison".to_owned(),
        subject: AggregateRef { kind, id },
        time: Timestamp::from_unix_millis(millis as i64),
        command_id: CommandId::from_uuid(uuid).expect("a v7 id"),
        schema_version: schema_version.unwrap_or(wasl_events::CURRENT_SCHEMA_VERSION),
    }
    .to_pairs()
    .expect("headers");
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name, value.as_str());
    }
    map
}
