//! The access audit: every read of personal data is appended to the JetStream stream
//! `WASL_AUDIT` before the data is returned, hash-chained to the record before it.
//!
//! A record says who (user, organisation, roles), what (action and resource id), when, and why
//! (the route and the request id); never the data itself. Each record carries the SHA-256 of the
//! previous record's hash and its own body, and is appended with `Nats-Expected-Last-Sequence`,
//! so records from several API instances still form one chain: an instance that loses the race
//! reads the new head and chains onto it. [`verify`] walks the chain; a record removed, changed
//! or reordered breaks it. If the audit cannot be written, the read fails (503).

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wasl_domain::Actor;

/// The stream holding the audit.
pub const STREAM: &str = "WASL_AUDIT";
const SUBJECTS: &str = "wasl.audit.>";
/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The stream cannot be written or read now.
    #[error("the access audit is unavailable: {0}")]
    Unavailable(String),
    /// The chain is broken at a record.
    #[error("the audit chain is broken at sequence {sequence}: {reason}")]
    Broken {
        /// The record's stream sequence.
        sequence: u64,
        /// What does not hold.
        reason: String,
    },
}

fn unavailable(err: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(err.to_string())
}

/// What was read, by whom, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRecord {
    /// When (Unix ms).
    pub at: i64,
    /// The reader.
    pub user: String,
    /// The reader's organisation.
    pub org: String,
    /// The reader's roles.
    pub roles: Vec<String>,
    /// What was done (`case.read`, `referral.read`).
    pub action: String,
    /// What was read (`case/<id>`, `referral/<id>`).
    pub resource: String,
    /// Why: the route (`GET /v1/cases/{case_id}`).
    pub route: String,
    /// The request's id.
    pub request_id: String,
}

/// A record as stored: the body and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Chained {
    pub record: AccessRecord,
    /// The previous record's `hash` ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and the record's JSON.
    pub hash: String,
}

fn chain_hash(prev_hash: &str, record: &AccessRecord) -> Result<String, AuditError> {
    let body = serde_json::to_vec(record).map_err(unavailable)?;
    let mut hash = Sha256::new();
    hash.update(prev_hash.as_bytes());
    hash.update(b"\n");
    hash.update(&body);
    Ok(hex::encode(hash.finalize()))
}

#[derive(Debug)]
struct Head {
    sequence: u64,
    hash: String,
}

/// The audit writer.
#[derive(Debug)]
pub struct Audit {
    js: jetstream::Context,
    stream: stream::Stream,
    head: Mutex<Option<Head>>,
}

impl Audit {
    /// Creates the stream if needed.
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<Self, AuditError> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![SUBJECTS.to_owned()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                deny_delete: true,
                deny_purge: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self {
            js,
            stream,
            head: Mutex::new(None),
        })
    }

    async fn read_head(&self) -> Result<Head, AuditError> {
        let mut stream = self.stream.clone();
        let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
        if last == 0 {
            return Ok(Head {
                sequence: 0,
                hash: GENESIS.to_owned(),
            });
        }
        let message = self.stream.get_raw_message(last).await.map_err(unavailable)?;
        let chained: Chained = serde_json::from_slice(&message.payload).map_err(|err| AuditError::Broken {
            sequence: last,
            reason: format!("unreadable record: {err}"),
        })?;
        Ok(Head {
            sequence: last,
            hash: chained.hash,
        })
    }

    /// Appends a record of `actor` doing `action` to `resource` through `route`; returns once
    /// JetStream has stored it.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        resource: String,
        route: &str,
        request_id: &str,
    ) -> Result<(), AuditError> {
        let record = AccessRecord {
            at: crate::auth::accounts::now_millis(),
            user: actor.user.to_string(),
            org: actor.org.to_string(),
            roles: actor.roles.iter().map(|r| r.code().to_owned()).collect(),
            action: action.to_owned(),
            resource,
            route: route.to_owned(),
            request_id: request_id.to_owned(),
        };
        let subject = format!("wasl.audit.{}", actor.org);
        let mut head = self.head.lock().await;
        for _ in 0..16 {
            let current = match head.take() {
                Some(h) => h,
                None => self.read_head().await?,
            };
            let hash = chain_hash(&current.hash, &record)?;
            let chained = Chained {
                record: record.clone(),
                prev_hash: current.hash.clone(),
                hash: hash.clone(),
            };
            let payload = serde_json::to_vec(&chained).map_err(unavailable)?;
            let message = PublishMessage::build()
                .payload(payload.into())
                .expected_last_sequence(current.sequence);
            let sent = self
                .js
                .send_publish(subject.clone(), message)
                .await
                .map_err(unavailable)?;
            match sent.await {
                Ok(ack) => {
                    *head = Some(Head {
                        sequence: ack.sequence,
                        hash,
                    });
                    return Ok(());
                }
                // Another instance appended first: chain onto the new head.
                Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {}
                Err(err) => return Err(unavailable(err)),
            }
        }
        Err(unavailable("the audit head kept moving"))
    }
}

/// Walks the whole chain and returns how many records it holds.
pub async fn verify(stream: &stream::Stream) -> Result<u64, AuditError> {
    let mut stream = stream.clone();
    let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
    let mut prev = GENESIS.to_owned();
    for sequence in 1..=last {
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|err| AuditError::Broken {
                sequence,
                reason: format!("record missing: {err}"),
            })?;
        let chained: Chained = serde_json::from_slice(&message.payload).map_err(|err| AuditError::Broken {
            sequence,
            reason: format!("unreadable record: {err}"),
        })?;
        if chained.prev_hash != prev {
            return Err(AuditError::Broken {
                sequence,
                reason: "does not point at the record before it".to_owned(),
            });
        }
        if chain_hash(&chained.prev_hash, &chained.record)? != chained.hash {
            return Err(AuditError::Broken {
                sequence,
                reason: "its hash does not match its contents".to_owned(),
            });
        }
        prev = chained.hash;
    }
    Ok(last)
}

/// Reads every record (for tests and an operator's export).
pub async fn records(stream: &stream::Stream) -> Result<Vec<AccessRecord>, AuditError> {
    let mut stream = stream.clone();
    let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
    let mut out = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.map_err(unavailable)?;
        let chained: Chained = serde_json::from_slice(&message.payload).map_err(|err| AuditError::Broken {
            sequence,
            reason: format!("unreadable record: {err}"),
        })?;
        out.push(chained.record);
    }
    Ok(out)
}

impl Audit {
    /// The stream, for [`verify`] and [`records`].
    pub fn stream(&self) -> &stream::Stream {
        &self.stream
    }
}
