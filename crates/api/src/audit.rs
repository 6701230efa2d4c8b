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
//!
//! The API keeps the last head it appended or verified outside NATS, in its own table of the
//! read-model database ([`Checkpoint`]), and [`Audit::anchor`] refuses to start on a stream that
//! went backwards: deleted, cut short, or holding another record where that head was. The
//! checkpoint follows the acknowledged appends a moment behind, so a crash leaves it behind the
//! stream, never ahead of it.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row as _};
use std::sync::OnceLock;
use tokio::sync::{Mutex, watch};
use wasl_domain::Actor;

/// The key of the chain's HMAC: derived from the master key (see
/// [`wasl_vault::LocalMasterKey::derive`]), named by the master key's id in every record.
#[derive(Debug)]
pub struct AuditKey(wasl_vault::DerivedKey);

impl AuditKey {
    /// The purpose the key is derived for.
    const PURPOSE: &'static str = "audit-chain";

    /// The chain key of `master`.
    pub fn from_master(master: &wasl_vault::LocalMasterKey) -> Self {
        Self(wasl_vault::DerivedKey::from_master(master, Self::PURPOSE))
    }

    /// The master key's id it was derived from.
    pub fn id(&self) -> &str {
        self.0.id()
    }

    fn mac(&self, prev_hash: &str, record: &AccessRecord) -> Result<String, AuditError> {
        let body = serde_json::to_vec(record).map_err(unavailable)?;
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(self.0.bytes()).map_err(unavailable)?;
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
    /// The stream went backwards since the checkpoint: deleted, cut short, or replaced.
    #[error("the audit stream no longer holds the head {checkpoint} this API last saw: {reason}")]
    WentBack {
        /// The head the API last appended or verified.
        checkpoint: ChainHead,
        /// What the stream holds instead.
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
    /// The last acknowledged head, for the checkpoint writer.
    acked: watch::Sender<Option<ChainHead>>,
    /// Set by [`Audit::anchor`].
    checkpoint: OnceLock<Checkpoint>,
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
            acked: watch::Sender::new(None),
            checkpoint: OnceLock::new(),
        })
    }

    /// Checks the stream against `checkpoint` before the API serves, then keeps the checkpoint
    /// following every acknowledged append (a task that ends with the `Audit`).
    ///
    /// With a checkpoint, the stream must still hold its record at its sequence; a stream that
    /// ends before it (deleted, cut short) or holds another record there (replaced) is
    /// [`AuditError::WentBack`]. The records after it (all of them on the first start on this
    /// database) are walked: each must link onto the one before it and carry a valid HMAC when
    /// keyed with this API's master key (records keyed with an earlier master key, before a
    /// rotation, are only linked). A record that does not is logged as an error, naming it, but
    /// does not stop the start: whoever can publish on `wasl.audit.>` must not be able to keep
    /// the API down, and `wasl audit verify` names every such record. The checkpoint moves to the
    /// last readable record.
    ///
    /// `accept_reset` is the operator's word that a reset was deliberate (a restore from a
    /// backup): the refusal is logged and the checkpoint anchored at the stream's current head.
    pub async fn anchor(&self, checkpoint: Checkpoint, accept_reset: bool) -> Result<ChainHead, AuditError> {
        let saved = checkpoint.load().await?;
        let mut stream = self.stream.clone();
        let last = stream.info().await.map_err(unavailable)?.state.last_sequence;
        let genesis = ChainHead {
            sequence: 0,
            hash: GENESIS.to_owned(),
        };
        let from = match &saved {
            Some(seen) => self.holds(seen, last).await.map(|()| seen.clone()),
            None => Ok(genesis.clone()),
        };
        let (head, intact) = match from {
            Ok(from) => {
                let (head, broken) = self.walk(&from, last).await?;
                checkpoint.advance(&head).await?;
                match &broken {
                    Some(err) => tracing::error!(
                        error = %err,
                        head = %head,
                        "the access audit's chain is broken: run `wasl audit verify`, which names every such record"
                    ),
                    None => tracing::info!(head = %head, "the access audit's chain holds; checkpoint anchored"),
                }
                (head, broken.is_none())
            }
            Err(err @ AuditError::WentBack { .. }) if accept_reset => {
                let (head, broken) = self.walk(&genesis, last).await?;
                tracing::error!(
                    refused = %err,
                    head = %head,
                    "ACCESS AUDIT RESET ACCEPTED (--accept-audit-reset): the audit is trusted from this head on; \
                     check the records before it with `wasl audit verify`"
                );
                checkpoint.reset(&head).await?;
                (head, broken.is_none())
            }
            Err(err) => return Err(err),
        };
        if intact {
            *self.head.lock().await = Some(Head {
                sequence: head.sequence,
                hash: head.hash.clone(),
            });
        }
        let mut acked = self.acked.subscribe();
        let writer = checkpoint.clone();
        tokio::spawn(async move {
            // The latest head only: appends in between are covered by it.
            while acked.changed().await.is_ok() {
                let head = acked.borrow_and_update().clone();
                if let Some(head) = head
                    && let Err(error) = writer.advance(&head).await
                {
                    tracing::warn!(%error, "cannot move the audit checkpoint; it stays behind");
                }
            }
        });
        let _ = self.checkpoint.set(checkpoint);
        Ok(head)
    }

    /// Writes the last acknowledged head to the checkpoint now (on shutdown).
    pub async fn flush_checkpoint(&self) -> Result<(), AuditError> {
        let head = self.acked.borrow().clone();
        match (self.checkpoint.get(), head) {
            (Some(checkpoint), Some(head)) => checkpoint.advance(&head).await,
            _ => Ok(()),
        }
    }

    /// Whether the stream, `last` records long, still holds `seen` where it was.
    async fn holds(&self, seen: &ChainHead, last: u64) -> Result<(), AuditError> {
        let went_back = |reason: String| AuditError::WentBack {
            checkpoint: seen.clone(),
            reason,
        };
        if last < seen.sequence {
            return Err(went_back(format!(
                "the stream ends at sequence {last}: it was deleted (or recreated) or cut short"
            )));
        }
        if seen.sequence == 0 {
            return Ok(());
        }
        let chained = match read_record(&self.stream, seen.sequence).await {
            Err(AuditError::Broken { reason, .. }) => {
                return Err(went_back(format!("record {} {reason}", seen.sequence)));
            }
            other => other?,
        };
        if chained.hash != seen.hash {
            return Err(went_back(format!(
                "another record stands at sequence {}: the stream was replaced",
                seen.sequence
            )));
        }
        Ok(())
    }

    /// Walks the records after `from` up to `last`: each must link onto the one before it, and
    /// carry a valid HMAC when keyed with this API's master key. Returns the last readable
    /// record (or `from`) and the first break found, if any. The records are read through an
    /// ordered consumer (a stream of records, not a request per record): 100 000 records take
    /// about a second, not half a minute (docs/operations.md).
    async fn walk(&self, from: &ChainHead, last: u64) -> Result<(ChainHead, Option<AuditError>), AuditError> {
        use futures_util::StreamExt as _;
        let mut readable = from.clone();
        let mut broken = None;
        if from.sequence >= last {
            return Ok((readable, broken));
        }
        let mut messages = in_order(&self.stream, from.sequence + 1).await?;
        // The previous record's hash; `None` after a record that could not be read.
        let mut prev = Some(from.hash.clone());
        let mut expected_sequence = from.sequence + 1;
        while expected_sequence <= last {
            let message = messages
                .next()
                .await
                .ok_or_else(|| unavailable("the audit stream ended while it was read"))?
                .map_err(unavailable)?;
            let sequence = message.info().map_err(unavailable)?.stream_sequence;
            let mut note = |sequence: u64, reason: String| {
                broken.get_or_insert(AuditError::Broken { sequence, reason });
            };
            if sequence != expected_sequence {
                note(expected_sequence, "is missing".to_owned());
                prev = None;
            }
            expected_sequence = sequence + 1;
            let chained: Chained = match serde_json::from_slice(&message.payload) {
                Ok(chained) => chained,
                Err(err) => {
                    note(sequence, format!("unreadable record: {err}"));
                    prev = None;
                    continue;
                }
            };
            if prev.as_ref().is_some_and(|prev| &chained.prev_hash != prev) {
                note(sequence, "does not point at the record before it".to_owned());
            }
            let expected = match &chained.key_id {
                Some(id) if id == self.key.id() => Some(self.key.mac(&chained.prev_hash, &chained.record)?),
                Some(_) => None,
                None => Some(chain_hash(&chained.prev_hash, &chained.record)?),
            };
            if expected.is_some_and(|hash| hash != chained.hash) {
                note(
                    sequence,
                    "its hash does not match its contents and the chain key".to_owned(),
                );
            }
            readable = ChainHead {
                sequence,
                hash: chained.hash.clone(),
            };
            prev = Some(chained.hash);
        }
        Ok((readable, broken))
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
        // Bytes that are no record (put there by whoever could publish on `wasl.audit.>`) must
        // not stop every audited read: the next record chains onto the last readable one, and
        // `wasl audit verify` names what lies between. Its publish still expects the stream's
        // real last sequence.
        let mut sequence = last;
        let mut skipped = 0u64;
        let hash = loop {
            if sequence == 0 {
                break GENESIS.to_owned();
            }
            match read_record(&self.stream, sequence).await {
                Ok(chained) => break chained.hash,
                Err(AuditError::Broken { .. }) if skipped < MAX_UNREADABLE_AT_HEAD => {
                    skipped += 1;
                    sequence -= 1;
                }
                Err(err) => return Err(err),
            }
        };
        if skipped > 0 {
            tracing::error!(
                unreadable = skipped,
                last,
                "the access audit ends in records that cannot be read; chaining onto the last readable one (run wasl audit verify)"
            );
        }
        Ok(Head { sequence: last, hash })
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
                key_id: Some(self.key.id().to_owned()),
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
                    self.acked.send_replace(Some(ChainHead {
                        sequence: ack.sequence,
                        hash: hash.clone(),
                    }));
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

/// How many unreadable records at the end of the audit a new record may chain past. More than
/// this is not a stray message but a flood: audited reads then fail closed.
const MAX_UNREADABLE_AT_HEAD: u64 = 1000;

/// The record at `sequence`; a record that is missing or unreadable is [`AuditError::Broken`].
async fn read_record(stream: &stream::Stream, sequence: u64) -> Result<Chained, AuditError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let message = stream.get_raw_message(sequence).await.map_err(|err| match err.kind() {
        RawMessageErrorKind::NoMessageFound => AuditError::Broken {
            sequence,
            reason: "is missing".to_owned(),
        },
        _ => unavailable(err),
    })?;
    serde_json::from_slice(&message.payload).map_err(|err| AuditError::Broken {
        sequence,
        reason: format!("unreadable record: {err}"),
    })
}

/// Where the API keeps the last audit head it appended or verified: the table
/// `api_audit_checkpoint` in the read-model database (migrated under `_api_migrations`).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pool: AnyPool,
}

fn database(err: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(format!("the audit checkpoint: {err}"))
}

impl Checkpoint {
    /// Applies the API's migrations to the database behind `pool` (the read models' pool).
    pub async fn open(pool: AnyPool) -> Result<Self, AuditError> {
        // One set for both databases: the table uses only the SQL they share (ADR 0005).
        let mut migrator = sqlx::migrate!("./migrations");
        // Beside the projections' `_sqlx_migrations` in the same database.
        migrator.dangerous_set_table_name("_api_migrations");
        migrator.run(&pool).await.map_err(database)?;
        Ok(Self { pool })
    }

    /// The head saved last, if any.
    pub async fn load(&self) -> Result<Option<ChainHead>, AuditError> {
        let row = sqlx::query("SELECT sequence, hash FROM api_audit_checkpoint WHERE stream = $1")
            .bind(STREAM)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        row.map(|row| {
            let sequence: i64 = row.try_get("sequence").map_err(database)?;
            Ok(ChainHead {
                sequence: u64::try_from(sequence).map_err(database)?,
                hash: row.try_get("hash").map_err(database)?,
            })
        })
        .transpose()
    }

    /// Moves the checkpoint to `head` if it is further on (several instances write it).
    async fn advance(&self, head: &ChainHead) -> Result<(), AuditError> {
        self.write(
            head,
            concat!(
                "INSERT INTO api_audit_checkpoint (stream, sequence, hash, updated_at) VALUES ($1, $2, $3, $4) ",
                "ON CONFLICT (stream) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, ",
                "updated_at = excluded.updated_at WHERE api_audit_checkpoint.sequence < excluded.sequence"
            ),
        )
        .await
    }

    /// Sets the checkpoint to `head`, wherever it was (an accepted reset).
    async fn reset(&self, head: &ChainHead) -> Result<(), AuditError> {
        self.write(
            head,
            concat!(
                "INSERT INTO api_audit_checkpoint (stream, sequence, hash, updated_at) VALUES ($1, $2, $3, $4) ",
                "ON CONFLICT (stream) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, ",
                "updated_at = excluded.updated_at"
            ),
        )
        .await
    }

    async fn write(&self, head: &ChainHead, sql: &'static str) -> Result<(), AuditError> {
        sqlx::query(sql)
            .bind(STREAM)
            .bind(i64::try_from(head.sequence).map_err(database)?)
            .bind(&head.hash)
            .bind(crate::auth::accounts::now_millis())
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(())
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
    use futures_util::StreamExt as _;
    let mut prev = GENESIS.to_owned();
    let mut keyed = false;
    let mut messages = in_order(&stream, 1).await?;
    for sequence in 1..=last {
        let message = messages
            .next()
            .await
            .ok_or_else(|| unavailable("the audit stream ended while it was read"))?
            .map_err(unavailable)?;
        let read = message.info().map_err(unavailable)?.stream_sequence;
        if read != sequence {
            return Err(AuditError::Broken {
                sequence,
                reason: "record missing".to_owned(),
            });
        }
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

/// The records of the audit from `start` on, in order, through an ordered consumer: a stream of
/// records rather than a request per record (100,000 records in about a second, not half a
/// minute).
async fn in_order(stream: &stream::Stream, start: u64) -> Result<jetstream::consumer::pull::Ordered, AuditError> {
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await
        .map_err(unavailable)?;
    consumer.messages().await.map_err(unavailable)
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
