//! Skipped log messages: the operator's recorded decision that a message in the event log is not
//! a Wasl event — bytes a stranger or a broken tool put on a `wasl.evt.…` subject — so that every
//! reader passes over it. The log itself denies deletes, so this is how such a message is
//! repaired; only messages that cannot be read as Wasl events can be skipped.
//!
//! Until a message is skipped, each reader does what is safe for it: the command handler refuses
//! commands on the aggregate whose history holds it ([`crate::StoreError::Undecodable`], a 503 over
//! HTTP), the projector parks it (and what follows it on the same aggregate), the router parks it
//! and delivers the rest. The decisions live in the KV bucket [`BUCKET`], created by the first
//! skip, keyed by stream sequence; each records who skipped it, when and why.

use crate::error::StoreError;
use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The KV bucket of skip decisions.
pub const BUCKET: &str = "WASL_LOG_SKIPS";

/// One skip decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// The message's stream sequence in the event log.
    pub sequence: u64,
    /// Its subject (names the aggregate whose history it sits in).
    pub subject: String,
    /// Why it could not be read, as the reader said.
    pub error: String,
    /// Why the operator skipped it (free text from the operator; never personal data).
    pub reason: String,
    /// Who skipped it (the operator's user name on the machine that ran the command).
    pub by: String,
    /// When, RFC 3339 UTC.
    pub skipped_at: String,
}

/// The skip decisions, read on demand (only an unreadable message is ever looked up) and cached
/// once found: a decision is never taken back.
#[derive(Clone)]
pub struct Skips {
    js: jetstream::Context,
    known: Arc<Mutex<HashSet<u64>>>,
}

impl std::fmt::Debug for Skips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Skips").finish_non_exhaustive()
    }
}

impl Skips {
    /// The decisions on the server behind `js`.
    pub fn new(js: jetstream::Context) -> Self {
        Self {
            js,
            known: Arc::default(),
        }
    }

    /// Whether the message at `sequence` was skipped.
    pub async fn contains(&self, sequence: u64) -> Result<bool, StoreError> {
        if self.known.lock().unwrap_or_else(|p| p.into_inner()).contains(&sequence) {
            return Ok(true);
        }
        let Some(bucket) = self.bucket().await? else {
            return Ok(false);
        };
        let found = bucket
            .get(sequence.to_string())
            .await
            .map_err(StoreError::unavailable)?
            .is_some();
        if found {
            self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(sequence);
        }
        Ok(found)
    }

    /// Every decision, in log order.
    pub async fn list(&self) -> Result<Vec<Skip>, StoreError> {
        let Some(bucket) = self.bucket().await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut keys = bucket.keys().await.map_err(StoreError::unavailable)?;
        let mut names = Vec::new();
        while let Some(key) = futures_util::StreamExt::next(&mut keys).await {
            names.push(key.map_err(StoreError::unavailable)?);
        }
        for key in names {
            if let Some(bytes) = bucket.get(&key).await.map_err(StoreError::unavailable)? {
                let skip: Skip = serde_json::from_slice(&bytes).map_err(|e| StoreError::Undecodable {
                    sequence: key.parse().unwrap_or(0),
                    reason: format!("a skip decision in {BUCKET} is not readable: {e}"),
                })?;
                out.push(skip);
            }
        }
        out.sort_by_key(|s| s.sequence);
        Ok(out)
    }

    /// Records a decision (creating the bucket with `replicas` on the first one). Refuses a
    /// message that is already skipped.
    pub async fn record(&self, skip: &Skip, replicas: usize) -> Result<(), StoreError> {
        let bucket = match self.bucket().await? {
            Some(bucket) => bucket,
            None => self
                .js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    description: "Wasl: log messages an operator skipped (not Wasl events)".to_owned(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(StoreError::unavailable)?,
        };
        let value = serde_json::to_vec(skip).map_err(|e| StoreError::Encode(e.to_string()))?;
        bucket
            .create(skip.sequence.to_string(), value.into())
            .await
            .map_err(|e| match e.kind() {
                kv::CreateErrorKind::AlreadyExists => StoreError::Api {
                    code: 409,
                    err_code: 0,
                    description: format!("the message at sequence {} is skipped already", skip.sequence),
                },
                _ => StoreError::unavailable(e),
            })?;
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(skip.sequence);
        Ok(())
    }

    async fn bucket(&self) -> Result<Option<kv::Store>, StoreError> {
        match self.js.get_stream(format!("KV_{BUCKET}")).await {
            Ok(_) => {}
            // No bucket: nothing was ever skipped.
            Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(api) if api.code() == 404) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::unavailable(e)),
        }
        self.js
            .get_key_value(BUCKET)
            .await
            .map(Some)
            .map_err(StoreError::unavailable)
    }
}
