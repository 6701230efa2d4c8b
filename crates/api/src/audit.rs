//! The access audit: every read of personal data is appended to the JetStream stream
//! `WASL_AUDIT` before the data is returned, hash-chained to the record before it.
//!
//! A record says who (user, organisation, roles), what (action and resource id), when, and why
//! (the route and the request id); never the data itself. Each record carries an HMAC-SHA256,
//! under a key derived from the master key (so kept outside NATS: whoever can write the stream
//! cannot make a record that verifies), of the previous record's hash and its own body, and is
//! appended with `Nats-Expected-Last-Sequence`, so records from several API instances still form
//! one chain: an instance that loses the race reads the new head and chains onto it. [`verify`]
//! walks the chain; a record forged, removed, changed or reordered breaks it, and a chain that
//! no longer holds a head verified before (the stream deleted and started again) is refused.
//! If the audit cannot be written, the read fails (503).

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wasl_domain::Actor;
use zeroize::Zeroizing;

/// The key of the chain's HMAC: derived from the master key (see
/// [`wasl_vault::LocalMasterKey::derive`]), named by the master key's id in every record.
pub struct AuditKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({}, <redacted>)", self.id)
    }
}

impl AuditKey {
    /// The purpose the key is derived for.
    const PURPOSE: &'static str = "audit-chain";

    /// The chain key of `master`.
    pub fn from_master(master: &wasl_vault::LocalMasterKey) -> Self {
        use wasl_vault::MasterKey as _;
        Self {
            id: master.id().to_owned(),
            key: master.derive(Self::PURPOSE),
        }
    }

    /// The master key's id it was derived from.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, prev_hash: &str, record: &AccessRecord) -> Result<String, AuditError> {
        let body = serde_json::to_vec(record).map_err(unavailable)?;
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(self.key.as_ref()).map_err(unavailable)?;
        mac.update(prev_hash.as_bytes());
        mac.update(b"\n");
        mac.update(&body);
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// HMAC-SHA256 over `prev_hash` and the record's JSON under the chain key `key_id` names
    /// (plain SHA-256 in records written before the chain was keyed).
    pub hash: String,
    /// The id of the master key the chain key was derived from; absent only in records written
    /// before the chain was keyed, which may come only before the first keyed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
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
    key: AuditKey,
}

impl Audit {
    /// Creates the stream if needed; records are chained under `key`.
    pub async fn open(js: jetstream::Context, replicas: usize, key: AuditKey) -> Result<Self, AuditError> {
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
            key,
        })
    }

    /// The key records are chained under.
    pub fn key(&self) -> &AuditKey {
        &self.key
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
            let hash = self.key.mac(&current.hash, &record)?;
            let chained = Chained {
                record: record.clone(),
                prev_hash: current.hash.clone(),
                hash: hash.clone(),
                key_id: Some(self.key.id.clone()),
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

/// A point of the chain an operator saw verified: its sequence and hash. `wasl audit verify`
/// prints it; given back later, the chain must still hold it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The record's stream sequence (0: the empty chain).
    pub sequence: u64,
    /// Its hash ([`GENESIS`] for the empty chain).
    pub hash: String,
}

impl std::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.sequence, self.hash)
    }
}

impl std::str::FromStr for ChainHead {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (sequence, hash) = text.split_once(':').ok_or("expected <sequence>:<hash>")?;
        let sequence = sequence.parse().map_err(|_| "the sequence is not a whole number")?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the hash is not 64 hex characters".to_owned());
        }
        Ok(Self {
            sequence,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Walks the whole chain under `key` and returns its head. A record that is missing, changed,
/// inserted, reordered or made without the key breaks it, and so does a chain that does not
/// hold `seen` (a head verified before) where it was: the stream was deleted and started again,
/// or cut short.
pub async fn verify(
    stream: &stream::Stream,
    key: &AuditKey,
    seen: Option<&ChainHead>,
) -> Result<ChainHead, AuditError> {
    let mut stream = stream.clone();
    let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
    if let Some(seen) = seen.filter(|s| s.sequence > last) {
        return Err(AuditError::Broken {
            sequence: seen.sequence,
            reason: format!(
                "the chain ends at sequence {last}, before the head verified earlier: it was deleted or cut short"
            ),
        });
    }
    let mut prev = GENESIS.to_owned();
    let mut keyed = false;
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
        let broken = |reason: String| AuditError::Broken { sequence, reason };
        if chained.prev_hash != prev {
            return Err(broken("does not point at the record before it".to_owned()));
        }
        let expected = match &chained.key_id {
            Some(id) if id == key.id() => {
                keyed = true;
                key.mac(&chained.prev_hash, &chained.record)?
            }
            Some(id) => {
                return Err(broken(format!(
                    "it is keyed with master key {id}, not {}: verify with that key",
                    key.id()
                )));
            }
            // Written before the chain was keyed: only before the first keyed record.
            None if keyed => return Err(broken("an unkeyed record after keyed ones".to_owned())),
            None => chain_hash(&chained.prev_hash, &chained.record)?,
        };
        if expected != chained.hash {
            return Err(broken(
                "its hash does not match its contents and the chain key".to_owned(),
            ));
        }
        if let Some(seen) = seen.filter(|s| s.sequence == sequence)
            && seen.hash != chained.hash
        {
            return Err(broken(
                "it is not the record verified here before: the chain was started again".to_owned(),
            ));
        }
        prev = chained.hash;
    }
    Ok(ChainHead {
        sequence: last,
        hash: prev,
    })
}

/// Which records an export or `GET /v1/audit` wants; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// The reader's user id.
    pub user: Option<String>,
    /// The reader's organisation id.
    pub org: Option<String>,
    /// An id the resource names (a case, a referral).
    pub record: Option<String>,
    /// From this time on (Unix ms).
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms).
    pub to_ms: Option<i64>,
}

impl RecordFilter {
    /// Whether `record` is wanted.
    pub fn matches(&self, record: &AccessRecord) -> bool {
        self.user.as_ref().is_none_or(|u| &record.user == u)
            && self.org.as_ref().is_none_or(|o| &record.org == o)
            && self
                .record
                .as_ref()
                .is_none_or(|id| record.resource.split(['/', ',']).any(|part| part == id))
            && self.from_ms.is_none_or(|from| record.at >= from)
            && self.to_ms.is_none_or(|to| record.at < to)
    }
}

/// The records `filter` wants after stream sequence `after`, at most `limit`, oldest first,
/// with the sequence to continue after when more may follow.
pub async fn records_page(
    stream: &stream::Stream,
    after: u64,
    limit: usize,
    filter: &RecordFilter,
) -> Result<(Vec<AccessRecord>, Option<u64>), AuditError> {
    let mut stream = stream.clone();
    let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
    let mut out = Vec::new();
    let mut sequence = after;
    while sequence < last && out.len() < limit {
        sequence += 1;
        let message = stream.get_raw_message(sequence).await.map_err(unavailable)?;
        let chained: Chained = serde_json::from_slice(&message.payload).map_err(|err| AuditError::Broken {
            sequence,
            reason: format!("unreadable record: {err}"),
        })?;
        if filter.matches(&chained.record) {
            out.push(chained.record);
        }
    }
    Ok((out, (sequence < last).then_some(sequence)))
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
