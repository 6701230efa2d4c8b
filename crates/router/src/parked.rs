//! Events the router set aside: a message in the event log it cannot read (bytes that are not a
//! Wasl event, an unknown schema version, missing headers) or a referral event it cannot route
//! (no receiving organisation in its history). Nothing a stranger puts on a subject stops the
//! router: it records the event here, counts it (`wasl_poison_messages_total{service="router"}`),
//! reports it (`/readyz`, `wasl router parked`) and delivers the rest. A later event of the same
//! referral is delivered from the history the router can read, and carries the referral's
//! whole state, so the partner is never left with a stale status.
//!
//! An operator resolves a parked event with a recorded reason (`wasl router resolve`), or — for a
//! message that is not a Wasl event — skips it in the log for every reader (`wasl log skip`),
//! which resolves it here too.

use crate::error::RouterError;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// The key prefix of parked events in the router's bucket (`parked.<sequence>`).
const PREFIX: &str = "parked.";

/// An event the router set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedEvent {
    /// Its sequence in the event log.
    pub sequence: u64,
    /// Its subject (names the aggregate).
    pub subject: String,
    /// The event type its headers named, if any (cut to 100 characters).
    pub event_type: Option<String>,
    /// Why it was set aside (field names and codes, never contents).
    pub error: String,
    /// When, RFC 3339 UTC.
    pub parked_at: String,
    /// How an operator resolved it, once resolved.
    pub resolution: Option<Resolution>,
}

/// An operator's decision on a parked event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Why (free text from the operator; never personal data).
    pub reason: String,
    /// Who (the operator's user name where the command ran).
    pub by: String,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

fn key(sequence: u64) -> String {
    format!("{PREFIX}{sequence}")
}

/// Records `event` (again: a second park of the same sequence keeps the first record).
pub(crate) async fn park(bucket: &kv::Store, event: &ParkedEvent) -> Result<(), RouterError> {
    let value = serde_json::to_vec(event).map_err(|e| RouterError::Encode(e.to_string()))?;
    match bucket.create(key(event.sequence), value.into()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(RouterError::unavailable(e)),
    }
}

/// Every parked event, in log order.
pub(crate) async fn list(bucket: &kv::Store) -> Result<Vec<ParkedEvent>, RouterError> {
    let mut keys = bucket.keys().await.map_err(RouterError::unavailable)?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(RouterError::unavailable)?;
        if key.starts_with(PREFIX) {
            names.push(key);
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(bytes) = bucket.get(&name).await.map_err(RouterError::unavailable)? {
            let event: ParkedEvent = serde_json::from_slice(&bytes)
                .map_err(|e| RouterError::Unavailable(format!("the parked record {name} is not readable: {e}")))?;
            out.push(event);
        }
    }
    out.sort_by_key(|e| e.sequence);
    Ok(out)
}

/// Records `resolution` on the parked event at `sequence`; `None` when nothing is parked there.
pub(crate) async fn resolve(
    bucket: &kv::Store,
    sequence: u64,
    resolution: Resolution,
) -> Result<Option<ParkedEvent>, RouterError> {
    let Some(entry) = bucket.entry(key(sequence)).await.map_err(RouterError::unavailable)? else {
        return Ok(None);
    };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    let mut event: ParkedEvent = serde_json::from_slice(&entry.value)
        .map_err(|e| RouterError::Unavailable(format!("the parked record {sequence} is not readable: {e}")))?;
    event.resolution = Some(resolution);
    let value = serde_json::to_vec(&event).map_err(|e| RouterError::Encode(e.to_string()))?;
    bucket
        .update(key(sequence), value.into(), entry.revision)
        .await
        .map_err(RouterError::unavailable)?;
    Ok(Some(event))
}
