//! Erasure and retention: the command path that records the erasure and destroys the key, and
//! the job that finds closed cases past their retention period.

use crate::error::VaultError;
use crate::keys::MasterKey;
use crate::vault::Vault;
use async_nats::jetstream::stream::DirectGetErrorKind;
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use wasl_domain::case::{Case, CaseCommand, CaseEvent};
use wasl_domain::catalogue::{EraseCode, Reason};
use wasl_domain::ids::CaseId;
use wasl_domain::time::Timestamp;
use wasl_events::DomainEvent;
use wasl_store::{CommandError, CommandMeta, CommandOutcome, EventStore, StoreError};

/// Why an erasure did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The command was refused or failed; nothing was erased.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The erasure is recorded but the key could not be destroyed yet; run it again (it is
    /// idempotent) — until then the data is still readable by authorised readers.
    #[error("the erasure is recorded but the key is not destroyed yet: {0}")]
    KeyNotDestroyed(VaultError),
}

/// Erases a case's personal data: records `CasePersonalDataErased` (the domain checks who may),
/// then destroys the key. Running it again after a partial failure finishes the job.
pub async fn erase_case<M: MasterKey>(
    store: &EventStore,
    vault: &Vault<M>,
    case: CaseId,
    reason: Reason<EraseCode>,
    meta: &CommandMeta,
) -> Result<CommandOutcome, EraseError> {
    let command = CaseCommand::ErasePersonalData { reason };
    let outcome = match store.execute::<Case>(case, &command, meta).await {
        Ok(outcome) => outcome,
        // Erased before (by this or another command): make sure the key is gone as well.
        Err(CommandError::Rejected(wasl_domain::DomainError::AlreadyRecorded)) => {
            let loaded = store.load::<Case>(case).await.map_err(CommandError::from)?;
            CommandOutcome {
                version: loaded.version,
                position: loaded.last_sequence,
                replayed: true,
            }
        }
        Err(err) => return Err(err.into()),
    };
    vault.erase(case).await.map_err(EraseError::KeyNotDestroyed)?;
    Ok(outcome)
}

/// A case whose personal data is due for erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The case.
    pub case: CaseId,
    /// When it was closed.
    pub closed_at: Timestamp,
}

/// The closed cases whose retention period has passed at `now` and whose personal data is not
/// erased yet, read from the event log (oldest closure first).
pub async fn due_for_erasure(store: &EventStore, retention: Duration, now: Timestamp) -> Result<Vec<Due>, StoreError> {
    let mut closed: BTreeMap<CaseId, Option<Timestamp>> = BTreeMap::new();
    let mut erased: BTreeSet<CaseId> = BTreeSet::new();
    // The feed never ends; read up to the last case event there is now.
    let case_last = match store
        .stream()
        .direct_get_builder()
        .last_by_subject("wasl.evt.case.>")
        .send()
        .await
    {
        Ok(message) => message.sequence,
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => 0,
        Err(err) => return Err(StoreError::Unavailable(err.to_string())),
    };
    if case_last > 0 {
        let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, Some("wasl.evt.case.>")).await?;
        loop {
            let Some(recorded) = feed.next().await else {
                return Err(StoreError::Unavailable("the event feed ended early".to_owned()));
            };
            let recorded = recorded?;
            if let DomainEvent::Case(id, event) = &recorded.event.event {
                match event {
                    CaseEvent::Closed { .. } => {
                        closed.insert(*id, Some(recorded.event.meta.occurred_at));
                    }
                    CaseEvent::Reopened { .. } => {
                        closed.insert(*id, None);
                    }
                    CaseEvent::PersonalDataErased { .. } => {
                        erased.insert(*id);
                    }
                    _ => {}
                }
            }
            if recorded.sequence >= case_last {
                break;
            }
        }
    }
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut due: Vec<Due> = closed
        .into_iter()
        .filter(|(case, _)| !erased.contains(case))
        .filter_map(|(case, closed_at)| closed_at.map(|closed_at| Due { case, closed_at }))
        .filter(|d| d.closed_at.plus_millis(retention_ms) <= now)
        .collect();
    due.sort_by_key(|d| (d.closed_at, d.case));
    Ok(due)
}

/// What a retention run found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// The cases due, oldest closure first.
    pub due: Vec<Due>,
    /// The cases erased by this run (empty in a dry run).
    pub erased: Vec<CaseId>,
}

/// Finds the cases due for erasure and, when `vault` and `actor` are given, erases each as
/// `actor` (Wasl's system principal) with reason `retention_expired`. Without them it is a dry
/// run that only lists. Stops at the first failure; running it again continues where it stopped.
pub async fn run_retention<M: MasterKey>(
    store: &EventStore,
    apply: Option<(&Vault<M>, &wasl_domain::Actor)>,
    retention: Duration,
    now: Timestamp,
) -> Result<RetentionReport, EraseError> {
    let due = due_for_erasure(store, retention, now)
        .await
        .map_err(CommandError::from)?;
    let mut report = RetentionReport {
        due,
        erased: Vec::new(),
    };
    let Some((vault, actor)) = apply else { return Ok(report) };
    for d in report.due.clone() {
        let command_id = wasl_domain::ids::CommandId::from_uuid(wasl_domain::ids::uuid_v7_from_parts(
            u64::try_from(now.unix_millis()).unwrap_or(0),
            random_bits().map_err(EraseError::KeyNotDestroyed)?,
        ))
        .map_err(|e| CommandError::Rejected(e.into()))?;
        let meta = CommandMeta {
            command_id,
            context: wasl_domain::Context {
                now,
                actor: actor.clone(),
            },
            traceparent: None,
        };
        erase_case(store, vault, d.case, Reason::coded(EraseCode::RetentionExpired), &meta).await?;
        report.erased.push(d.case);
    }
    Ok(report)
}

fn random_bits() -> Result<[u8; 10], VaultError> {
    let mut bits = [0u8; 10];
    getrandom::fill(&mut bits).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(bits)
}
