//! Erasure and retention: the command path that records the erasure and destroys the key, and
//! the job that finds closed cases past their retention period.
//!
//! Anyone allowed to publish on `wasl.evt.case.>` can put there what is not an event, and a
//! newer Wasl may write events this one cannot read. Such a message never stops the retention
//! job: it is reported ([`UnreadableEvent`], in [`RetentionReport::unreadable`], and a warning
//! naming its sequence) and the rest of the log is read. The case it sits in is left alone (not
//! listed as due, not erased), since its state cannot be known; the report says whether the
//! message's `ce-type` names an erasure. (A restore, which must never bring back an erased key,
//! takes such a message for an erasure: [`UnreadableEvent::erased_case`].)

use crate::error::VaultError;
use crate::keys::MasterKey;
use crate::vault::Vault;
use async_nats::HeaderMap;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
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

/// Every case event's subject starts with this, then the case id.
pub const CASE_SUBJECT_PREFIX: &str = "wasl.evt.case.";

/// The event type of an erasure, less its schema version.
const ERASURE_TYPE_PREFIX: &str = "wasl.case.personal_data_erased.";

/// A message on a case subject of the log that is not a readable event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadableEvent {
    /// Its sequence in `WASL_EVENTS`.
    pub sequence: u64,
    /// The case its subject names, when it names one.
    pub case: Option<CaseId>,
    /// Whether its `ce-type` header names a personal-data erasure (of any schema version).
    pub erasure: bool,
}

impl UnreadableEvent {
    /// What the subject and headers of an unreadable message tell (never its body).
    pub fn describe(sequence: u64, subject: &str, headers: Option<&HeaderMap>) -> Self {
        let case = subject
            .strip_prefix(CASE_SUBJECT_PREFIX)
            .and_then(|id| CaseId::parse(id).ok());
        let erasure = headers
            .and_then(|headers| headers.get(wasl_events::headers::CE_TYPE))
            .is_some_and(|kind| kind.as_str().trim().starts_with(ERASURE_TYPE_PREFIX));
        Self {
            sequence,
            case,
            erasure,
        }
    }

    /// Reads the subject and headers of the message at `sequence` of `stream` to describe it.
    pub async fn read(stream: &Stream, sequence: u64) -> Result<Self, StoreError> {
        let message = stream
            .direct_get(sequence)
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        Ok(Self::describe(sequence, &message.subject, Some(&message.headers)))
    }

    /// The case it is taken to have erased: its own, when its type says erasure. Whoever can
    /// write such a message could as well write a readable erasure; a real erasure of a newer
    /// schema must not be undone by a reader that cannot decode it.
    pub fn erased_case(&self) -> Option<CaseId> {
        self.case.filter(|_| self.erasure)
    }

    /// Logs it: sequence, case and whether it is taken for an erasure; never contents.
    pub fn report(&self, reader: &'static str) {
        tracing::warn!(
            reader,
            sequence = self.sequence,
            case = ?self.case,
            taken_for_erasure = self.erasure && self.case.is_some(),
            "a message on a case subject is not a readable event; passed over"
        );
    }
}

/// A case whose personal data is due for erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Due {
    pub case: CaseId,
    /// When it was closed.
    pub closed_at: Timestamp,
}

/// What [`due_for_erasure`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DueScan {
    /// The cases due, oldest closure first.
    pub due: Vec<Due>,
    /// Messages on case subjects that are not readable events, in log order. Their cases are
    /// not in `due` (their state is unknown).
    pub unreadable: Vec<UnreadableEvent>,
}

/// The closed cases whose retention period has passed at `now` and whose personal data is not
/// erased yet, read from the event log (oldest closure first), and the messages on case
/// subjects that could not be read (passed over and reported).
pub async fn due_for_erasure(store: &EventStore, retention: Duration, now: Timestamp) -> Result<DueScan, StoreError> {
    let mut closed: BTreeMap<CaseId, Option<Timestamp>> = BTreeMap::new();
    let mut erased: BTreeSet<CaseId> = BTreeSet::new();
    // Cases with a message that cannot be read: their state is unknown, so they are not due.
    let mut unknown: BTreeSet<CaseId> = BTreeSet::new();
    let mut unreadable = Vec::new();
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
            let recorded = match recorded {
                Ok(recorded) => recorded,
                Err(StoreError::Undecodable { sequence, .. }) => {
                    let found = UnreadableEvent::read(store.stream(), sequence).await?;
                    found.report("retention");
                    // Even one typed as an erasure: retention acts only on what it can read,
                    // and an erasure needs no second one.
                    unknown.extend(found.case);
                    unreadable.push(found);
                    if sequence >= case_last {
                        break;
                    }
                    continue;
                }
                Err(err) => return Err(err),
            };
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
        .filter(|(case, _)| !erased.contains(case) && !unknown.contains(case))
        .filter_map(|(case, closed_at)| closed_at.map(|closed_at| Due { case, closed_at }))
        .filter(|d| d.closed_at.plus_millis(retention_ms) <= now)
        .collect();
    due.sort_by_key(|d| (d.closed_at, d.case));
    Ok(DueScan { due, unreadable })
}

/// What a retention run found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// The cases due, oldest closure first.
    pub due: Vec<Due>,
    /// The cases erased by this run (empty in a dry run).
    pub erased: Vec<CaseId>,
    /// Messages on case subjects that are not readable events: passed over, their cases
    /// neither listed nor erased. An operator should look at each.
    pub unreadable: Vec<UnreadableEvent>,
}

/// Finds the cases due for erasure and, when `vault` and `actor` are given, erases each as
/// `actor` (Wasl's system principal) with reason `retention_expired`. Without them it is a dry
/// run that only lists. Stops at the first failure; running it again continues where it stopped.
/// Messages that are not readable events are reported in [`RetentionReport::unreadable`] and do
/// not stop it.
pub async fn run_retention<M: MasterKey>(
    store: &EventStore,
    apply: Option<(&Vault<M>, &wasl_domain::Actor)>,
    retention: Duration,
    now: Timestamp,
) -> Result<RetentionReport, EraseError> {
    let scan = due_for_erasure(store, retention, now)
        .await
        .map_err(CommandError::from)?;
    let mut report = RetentionReport {
        due: scan.due,
        erased: Vec::new(),
        unreadable: scan.unreadable,
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
