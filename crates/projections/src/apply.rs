//! Applying a batch of log entries to one projection's tables inside the caller's transaction:
//! load the rows the batch touches with one query per table, apply every event in memory, write
//! each changed row once with multi-row upserts, insert timeline rows, and park what cannot be
//! applied.

use crate::error::ProjectionError;
use crate::projection::{Projection, physical};
use crate::rows::case::{self, CaseRow};
use crate::rows::dashboard::{self, DashboardRow};
use crate::rows::directory::{self, OrganisationRow, ServiceRow, Touched};
use crate::rows::referral::{self, HistoryRow, ReferralRow};
use crate::rows::{ApplyError, EventAt};
use crate::sql::{Value, insert_rows, load_rows};
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use wasl_domain::AggregateKind;
use wasl_domain::case::CaseEvent;
use wasl_events::{DomainEvent, StoredEvent};

/// One entry of the log as the projector reads it: its sequence and subject, and the event or
/// why it could not be read.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stream sequence.
    pub seq: u64,
    /// Subject (`wasl.evt.<kind>.<id>`).
    pub subject: String,
    /// The event type named in the headers, if any (for the parked list).
    pub event_type: Option<String>,
    /// The decoded event, or why it is unreadable (never its contents).
    pub event: Result<StoredEvent, String>,
    /// The W3C trace context it was appended in, when its headers carry one.
    pub traceparent: Option<String>,
    /// Messages after it in the log when it was read (0 when unknown): the projector's lag.
    pub pending: u64,
    /// An operator recorded that this unreadable message is not a Wasl event
    /// (`wasl_store::skips`): every projection passes over it instead of parking it.
    pub skipped: bool,
}

impl Entry {
    /// The aggregate kind its subject names, if it names a known one.
    pub fn kind(&self) -> Option<AggregateKind> {
        let token = self.subject.strip_prefix("wasl.evt.")?.split('.').next()?;
        [
            AggregateKind::Case,
            AggregateKind::Referral,
            AggregateKind::Organisation,
        ]
        .into_iter()
        .find(|k| k.subject_token() == token)
    }
}

/// An entry a projection could not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Parked {
    /// Stream sequence.
    pub seq: u64,
    pub subject: String,
    /// Event type, when known.
    pub event_type: Option<String>,
    /// Why (names fields and codes only).
    pub error: String,
}

/// The reason recorded for events parked because an earlier one of their aggregate is.
pub const WAITING: &str = "waits for an earlier parked event of the same aggregate";

enum Triage<'a> {
    Skip,
    Park(String),
    Apply(&'a StoredEvent),
}

fn triage<'a>(projection: Projection, entry: &'a Entry, parked: &HashSet<String>) -> Triage<'a> {
    if entry.skipped {
        return Triage::Skip;
    }
    match entry.kind() {
        Some(kind) if !projection.reads(kind) => return Triage::Skip,
        // A subject of an aggregate kind this version does not know: every projection parks
        // it, since none can tell whether it matters.
        None if entry.event.is_ok() => return Triage::Park("the subject names no known aggregate".to_owned()),
        _ => {}
    }
    match &entry.event {
        Err(error) => Triage::Park(error.clone()),
        Ok(_) if parked.contains(&entry.subject) => Triage::Park(WAITING.to_owned()),
        Ok(event) => Triage::Apply(event),
    }
}

/// The result of applying a batch: what was parked and how many events changed rows.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub parked: Vec<Parked>,
    pub applied: u64,
}

impl Applied {
    fn park(&mut self, entry: &Entry, error: String, parked: &mut HashSet<String>) {
        parked.insert(entry.subject.clone());
        self.parked.push(Parked {
            seq: entry.seq,
            subject: entry.subject.clone(),
            event_type: entry.event_type.clone(),
            error,
        });
    }

    fn failed(&mut self, entry: &Entry, error: &ApplyError, parked: &mut HashSet<String>) {
        self.park(entry, error.to_string(), parked);
    }
}

/// Applies `entries` (in log order) to generation `generation` of `projection`; `parked` holds
/// the subjects with parked events and grows with what this batch parks.
pub(crate) async fn apply_batch(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
) -> Result<Applied, ProjectionError> {
    match projection {
        Projection::Cases => cases(conn, generation, entries, parked).await,
        Projection::Referrals => referrals(conn, generation, entries, parked).await,
        Projection::Directory => directory(conn, generation, entries, parked).await,
        Projection::Dashboard => dashboard(conn, generation, entries, parked).await,
    }
}

fn ids_of<'a>(
    projection: Projection,
    entries: &'a [Entry],
    parked: &HashSet<String>,
    pick: impl Fn(&'a StoredEvent) -> Vec<String>,
) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for entry in entries {
        if let Triage::Apply(event) = triage(projection, entry, parked) {
            seen.extend(pick(event));
        }
    }
    seen.into_iter().collect()
}

/// A projection that keeps one row per aggregate: the rows the batch touches are loaded with one
/// query, each event applied in memory, each changed row written once.
struct OneRowEach<R> {
    projection: Projection,
    table: &'static str,
    columns: &'static [&'static str],
    from_row: fn(&sqlx::any::AnyRow) -> Result<R, sqlx::Error>,
    key: fn(&R) -> String,
    values: fn(R) -> Vec<Value>,
    /// The id of the aggregate an event changes a row of, if it changes one.
    id_of: fn(&DomainEvent) -> Option<String>,
    /// Applies one event that `id_of` named a row for.
    apply: fn(&mut Option<R>, &str, &DomainEvent, &EventAt) -> Result<(), ApplyError>,
}

async fn one_row_each<R>(
    conn: &mut AnyConnection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
    p: &OneRowEach<R>,
) -> Result<Applied, ProjectionError> {
    let table = physical(p.table, generation);
    let ids = ids_of(p.projection, entries, parked, |e| {
        (p.id_of)(&e.event).into_iter().collect()
    });
    let mut loaded = load_rows(conn, &table, p.columns, "id", &ids, p.from_row, p.key).await?;
    let mut slots: HashMap<String, Option<R>> = ids
        .into_iter()
        .map(|id| {
            let row = loaded.remove(&id);
            (id, row)
        })
        .collect();
    let mut dirty = BTreeSet::new();
    let mut out = Applied::default();
    for entry in entries {
        match triage(p.projection, entry, parked) {
            Triage::Skip => {}
            Triage::Park(error) => out.park(entry, error, parked),
            Triage::Apply(event) => {
                let Some(key) = (p.id_of)(&event.event) else {
                    continue;
                };
                let slot = slots.entry(key.clone()).or_insert(None);
                match (p.apply)(slot, &key, &event.event, &EventAt::of(entry.seq, event)) {
                    Ok(()) => {
                        dirty.insert(key);
                        out.applied += 1;
                    }
                    Err(error) => out.failed(entry, &error, parked),
                }
            }
        }
    }
    let rows = dirty
        .iter()
        .filter_map(|k| slots.remove(k).flatten())
        .map(p.values)
        .collect();
    insert_rows(conn, &table, p.columns, Some("id"), rows).await?;
    Ok(out)
}

async fn cases(
    conn: &mut AnyConnection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
) -> Result<Applied, ProjectionError> {
    let rows = OneRowEach {
        projection: Projection::Cases,
        table: "cases",
        columns: CaseRow::COLUMNS,
        from_row: CaseRow::from_row,
        key: |r| r.id.clone(),
        values: CaseRow::values,
        id_of: |e| match e {
            DomainEvent::Case(id, _) => Some(id.to_string()),
            _ => None,
        },
        apply: |slot, key, event, at| match event {
            DomainEvent::Case(_, e) => case::apply(slot, key, e, at),
            _ => Ok(()),
        },
    };
    one_row_each(conn, generation, entries, parked, &rows).await
}

async fn referrals(
    conn: &mut AnyConnection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
) -> Result<Applied, ProjectionError> {
    let table = physical("referrals", generation);
    let history_table = physical("referral_history", generation);
    let ids = ids_of(Projection::Referrals, entries, parked, |e| match &e.event {
        DomainEvent::Referral(id, _) => vec![id.to_string()],
        _ => vec![],
    });
    let mut loaded = load_rows(
        conn,
        &table,
        ReferralRow::COLUMNS,
        "id",
        &ids,
        ReferralRow::from_row,
        |r| r.id.clone(),
    )
    .await?;
    let mut slots: HashMap<String, Option<ReferralRow>> = ids
        .into_iter()
        .map(|id| {
            let row = loaded.remove(&id);
            (id, row)
        })
        .collect();
    // Cases already erased: every sealed value of their referrals stays empty.
    let erased_table = physical("referral_erased_cases", generation);
    let mut case_ids: BTreeSet<String> = slots.values().flatten().map(|r| r.case_id.clone()).collect();
    for entry in entries {
        if let Ok(event) = &entry.event
            && let DomainEvent::Referral(_, wasl_domain::referral::ReferralEvent::Requested(req)) = &event.event
        {
            case_ids.insert(req.case_id.to_string());
        }
    }
    let case_ids: Vec<String> = case_ids.into_iter().collect();
    let mut erased_cases: HashSet<String> = load_rows(
        conn,
        &erased_table,
        &["case_id"],
        "case_id",
        &case_ids,
        |r| r.try_get::<String, _>("case_id"),
        Clone::clone,
    )
    .await?
    .into_keys()
    .collect();
    let mut dirty = BTreeSet::new();
    let mut history: Vec<HistoryRow> = Vec::new();
    let mut erased: Vec<String> = Vec::new();
    let mut out = Applied::default();
    for entry in entries {
        match triage(Projection::Referrals, entry, parked) {
            Triage::Skip => {}
            Triage::Park(error) => out.park(entry, error, parked),
            Triage::Apply(event) => match &event.event {
                DomainEvent::Referral(id, e) => {
                    let key = id.to_string();
                    let slot = slots.entry(key.clone()).or_default();
                    match referral::apply(slot, &key, e, &EventAt::of(entry.seq, event)) {
                        Ok(mut row) => {
                            if erased_cases.contains(&row.case_id) {
                                row.reason_text = None;
                                if let Some(r) = slot.as_mut() {
                                    r.notes = None;
                                }
                            }
                            history.push(row);
                            dirty.insert(key);
                            out.applied += 1;
                        }
                        Err(error) => out.failed(entry, &error, parked),
                    }
                }
                DomainEvent::Case(case_id, CaseEvent::PersonalDataErased { .. }) => {
                    // The case's key is destroyed: drop the sealed values of its referrals too,
                    // in this batch's rows now and in stored rows after the batch is written.
                    let case_id = case_id.to_string();
                    for (key, slot) in slots.iter_mut() {
                        if let Some(row) = slot.as_mut().filter(|r| r.case_id == case_id) {
                            row.notes = None;
                            dirty.insert(key.clone());
                        }
                    }
                    for row in history.iter_mut().filter(|h| h.case_id == case_id) {
                        row.reason_text = None;
                    }
                    erased_cases.insert(case_id.clone());
                    erased.push(case_id);
                    out.applied += 1;
                }
                DomainEvent::Case(..) | DomainEvent::Organisation(..) => {}
            },
        }
    }
    let rows = dirty
        .iter()
        .filter_map(|k| slots.remove(k).flatten())
        .map(ReferralRow::values)
        .collect();
    insert_rows(conn, &table, ReferralRow::COLUMNS, Some("id"), rows).await?;
    let history: Vec<Vec<Value>> = history.into_iter().map(HistoryRow::values).collect();
    insert_rows(conn, &history_table, HistoryRow::COLUMNS, None, history).await?;
    let newly_erased: Vec<Vec<Value>> = erased.iter().map(|c| vec![Value::from(c.clone())]).collect();
    insert_rows(conn, &erased_table, &["case_id"], Some("case_id"), newly_erased).await?;
    for case_id in erased {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET notes = NULL WHERE case_id = $1"
        )))
        .bind(&case_id)
        .execute(&mut *conn)
        .await?;
        // Two simple lookups, each on its own index: a semi-join here is planned as a scan of
        // the whole timeline while a rebuild fills tables whose statistics are not yet known.
        let referrals: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT id FROM {table} WHERE case_id = $1")))
                .bind(&case_id)
                .fetch_all(&mut *conn)
                .await?;
        for referral_id in referrals {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {history_table} SET reason_text = NULL WHERE referral_id = $1 AND reason_text IS NOT NULL"
            )))
            .bind(&referral_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(out)
}

async fn dashboard(
    conn: &mut AnyConnection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
) -> Result<Applied, ProjectionError> {
    let rows = OneRowEach {
        projection: Projection::Dashboard,
        table: "dashboard_referrals",
        columns: DashboardRow::COLUMNS,
        from_row: DashboardRow::from_row,
        key: |r| r.id.clone(),
        values: DashboardRow::values,
        id_of: |e| match e {
            DomainEvent::Referral(id, _) => Some(id.to_string()),
            _ => None,
        },
        apply: |slot, key, event, at| match event {
            DomainEvent::Referral(_, e) => dashboard::apply(slot, key, e, at),
            _ => Ok(()),
        },
    };
    one_row_each(conn, generation, entries, parked, &rows).await
}

async fn directory(
    conn: &mut AnyConnection,
    generation: i64,
    entries: &[Entry],
    parked: &mut HashSet<String>,
) -> Result<Applied, ProjectionError> {
    let org_table = physical("organisations", generation);
    let service_table = physical("services", generation);
    let org_ids = ids_of(Projection::Directory, entries, parked, |e| match &e.event {
        DomainEvent::Organisation(id, _) => vec![id.to_string()],
        _ => vec![],
    });
    let service_ids = ids_of(Projection::Directory, entries, parked, |e| match &e.event {
        DomainEvent::Organisation(_, ev) => directory::service_of(ev).into_iter().collect(),
        _ => vec![],
    });
    let mut orgs_loaded = load_rows(
        conn,
        &org_table,
        OrganisationRow::COLUMNS,
        "id",
        &org_ids,
        OrganisationRow::from_row,
        |r| r.id.clone(),
    )
    .await?;
    let mut services_loaded = load_rows(
        conn,
        &service_table,
        ServiceRow::COLUMNS,
        "id",
        &service_ids,
        ServiceRow::from_row,
        |r| r.id.clone(),
    )
    .await?;
    let mut orgs: HashMap<String, Option<OrganisationRow>> = org_ids
        .into_iter()
        .map(|id| {
            let r = orgs_loaded.remove(&id);
            (id, r)
        })
        .collect();
    let mut services: HashMap<String, Option<ServiceRow>> = service_ids
        .into_iter()
        .map(|id| {
            let r = services_loaded.remove(&id);
            (id, r)
        })
        .collect();
    let (mut dirty_orgs, mut dirty_services) = (BTreeSet::new(), BTreeSet::new());
    let mut out = Applied::default();
    for entry in entries {
        match triage(Projection::Directory, entry, parked) {
            Triage::Skip => {}
            Triage::Park(error) => out.park(entry, error, parked),
            Triage::Apply(event) => {
                let DomainEvent::Organisation(id, e) = &event.event else {
                    continue;
                };
                let key = id.to_string();
                let service_key = directory::service_of(e);
                let org_slot = orgs.entry(key.clone()).or_default();
                let service_slot = service_key.map(|s| services.entry(s).or_default());
                // A service belongs to the organisation that added it.
                if let Some(Some(service)) = service_slot.as_deref()
                    && service.org_id != key
                {
                    out.failed(
                        entry,
                        &ApplyError::Exists("the service, under another organisation,"),
                        parked,
                    );
                    continue;
                }
                match directory::apply(org_slot, service_slot, &key, e, &EventAt::of(entry.seq, event)) {
                    Ok(touched) => {
                        dirty_orgs.insert(key);
                        if let Touched::Service(s) = touched {
                            dirty_services.insert(s);
                        }
                        out.applied += 1;
                    }
                    Err(error) => out.failed(entry, &error, parked),
                }
            }
        }
    }
    let rows = dirty_orgs
        .iter()
        .filter_map(|k| orgs.remove(k).flatten())
        .map(OrganisationRow::values)
        .collect();
    insert_rows(conn, &org_table, OrganisationRow::COLUMNS, Some("id"), rows).await?;
    let rows = dirty_services
        .iter()
        .filter_map(|k| services.remove(k).flatten())
        .map(ServiceRow::values)
        .collect();
    insert_rows(conn, &service_table, ServiceRow::COLUMNS, Some("id"), rows).await?;
    Ok(out)
}
