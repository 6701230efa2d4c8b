//! The service: three loops over one database.
//!
//! - **follow** reads the log from the checkpoint and, per batch, in one transaction, keeps what
//!   it knows of each referral, adds and drops deadlines, writes what the process managers decide
//!   to the outbox, and moves the checkpoint (a compare-and-set, so two instances never apply a
//!   batch twice);
//! - **fire** waits on the clock for the earliest deadline and, in one transaction, deletes each
//!   deadline that passed and writes its overdue command to the outbox;
//! - **send** carries out the outbox through the event store and deletes each command once the
//!   store answered it.

use crate::action::{Action, command_id};
use crate::clock::SharedClock;
use crate::db::{self, STATE, now_millis};
use crate::error::FollowupError;
use crate::policy::DeadlinePolicy;
use sqlx::{AnyConnection, AnyPool, Row};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wasl_domain::case::CaseEvent;
use wasl_domain::catalogue::{CancelCode, Priority, ServiceCategory};
use wasl_domain::ids::{CommandId, OrgId, ReferralId, UserId};
use wasl_domain::referral::{ConsentBasis, OverdueKind, Referral, ReferralEvent};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::DomainEvent;
use wasl_store::continuity::Mark;
use wasl_store::continuity::{FollowLoop, Interruption};
use wasl_store::follow::{Entry, Follower, Step};
use wasl_store::{CommandError, CommandMeta, EventStore};

/// The user id the service acts as in the events it causes (a fixed UUIDv7).
pub const SYSTEM_USER: &str = "0190b2c4-0000-7000-8000-00000000f011";
/// The organisation id the service acts as (a fixed UUIDv7; no organisation of the network).
pub const SYSTEM_ORG: &str = "0190b2c4-0000-7000-8000-00000000f000";

/// The statuses in which a referral is open.
const OPEN: [&str; 5] = ["requested", "received", "accepted", "in_progress", "on_hold"];

/// The retention policy the service runs on a schedule (see `wasl retention` and
/// `docs/data-protection.md`).
#[derive(Clone)]
pub struct RetentionSchedule {
    /// Personal data of a case closed longer ago than this is due for erasure.
    pub period: Duration,
    /// How often it runs (daily by default); the first run is at the service's start.
    pub every: Duration,
    /// With a vault, each due case is erased (recorded as its `personal_data_erased` event);
    /// without, the run only reports what is due (a dry run).
    pub apply: Option<Arc<wasl_vault::Vault<wasl_vault::LocalMasterKey>>>,
}

impl std::fmt::Debug for RetentionSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionSchedule")
            .field("period", &self.period)
            .field("every", &self.every)
            .field("apply", &self.apply.is_some())
            .finish()
    }
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct FollowupConfig {
    /// The deadlines and when to escalate and expire.
    pub policy: DeadlinePolicy,
    /// Most log entries per transaction.
    pub batch_size: usize,
    /// How often the log is checked to still hold the event at the checkpoint (also before every
    /// batch), and how often a stopped service looks again.
    pub check_interval: Duration,
    /// Pause after an error of the log or the database before trying again.
    pub retry_delay: Duration,
    /// The retention policy to run on a schedule, if any.
    pub retention: Option<RetentionSchedule>,
}

impl Default for FollowupConfig {
    fn default() -> Self {
        Self {
            policy: DeadlinePolicy::default(),
            batch_size: 500,
            check_interval: Duration::from_secs(5),
            retry_delay: Duration::from_millis(500),
            retention: None,
        }
    }
}

/// Counters of the service, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct FollowupMetrics {
    /// The checkpoint: every event up to this log position was taken into account.
    pub position: AtomicU64,
    /// Commands the store carried out (now, or before under the same id).
    pub carried_out: AtomicU64,
    /// Commands the domain refused because the referral had moved on meanwhile.
    pub refused: AtomicU64,
    /// Deadlines that passed.
    pub fired: AtomicU64,
    /// Log messages the service could not read.
    pub parked: AtomicU64,
    /// Why the service stopped following the log, while it is stopped.
    pub diverged: RwLock<Option<String>>,
    /// Scheduled retention runs completed.
    pub retention_runs: AtomicU64,
    /// Cases the scheduled retention erased.
    pub erased: AtomicU64,
}

impl FollowupMetrics {
    /// Why the service stopped, if it did.
    pub fn diverged(&self) -> Option<String> {
        self.diverged.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_diverged(&self, reason: Option<String>) -> bool {
        let mut current = self.diverged.write().unwrap_or_else(|p| p.into_inner());
        let changed = *current != reason;
        *current = reason;
        changed
    }
}

/// What waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Deadlines not met and not passed.
    pub deadlines: u64,
    /// The earliest of them.
    pub next_due: Option<Timestamp>,
    /// Commands decided and not yet answered by the store.
    pub outbox: u64,
}

/// The follow-up service.
#[derive(Clone)]
pub struct Followup {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    store: Arc<EventStore>,
    clock: SharedClock,
    config: FollowupConfig,
    metrics: Arc<FollowupMetrics>,
    actor: Actor,
    /// A deadline was added, or a batch applied: the fire loop looks again.
    deadlines_changed: Notify,
    /// The outbox got something.
    outbox_changed: Notify,
}

impl Followup {
    /// Opens the service's tables in the database at `database_url` (migrating them) for the
    /// log behind `store`.
    pub async fn open(
        database_url: &str,
        store: Arc<EventStore>,
        clock: SharedClock,
        config: FollowupConfig,
    ) -> Result<Self, FollowupError> {
        let pool = db::open(database_url).await?;
        let actor = Actor {
            user: UserId::parse(SYSTEM_USER).map_err(|e| FollowupError::Config(e.to_string()))?,
            org: OrgId::parse(SYSTEM_ORG).map_err(|e| FollowupError::Config(e.to_string()))?,
            roles: vec![Role::System],
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                store,
                clock,
                config,
                metrics: Arc::default(),
                actor,
                deadlines_changed: Notify::new(),
                outbox_changed: Notify::new(),
            }),
        })
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<FollowupMetrics> {
        self.inner.metrics.clone()
    }

    /// What waits now.
    pub async fn pending(&self) -> Result<Pending, FollowupError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MIN(due_at) AS next FROM followup_deadlines")
            .fetch_one(&self.inner.pool)
            .await?;
        let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM followup_outbox")
            .fetch_one(&self.inner.pool)
            .await?;
        Ok(Pending {
            deadlines: row.try_get::<i64, _>("n")? as u64,
            next_due: row.try_get::<Option<i64>, _>("next")?.map(Timestamp::from_unix_millis),
            outbox: outbox as u64,
        })
    }

    /// The checkpoint in the database (every event up to it was taken into account) and why the
    /// service stopped, if it did.
    pub async fn checkpoint(&self) -> Result<(u64, Option<String>), FollowupError> {
        let row = sqlx::query("SELECT checkpoint, halted FROM followup_state WHERE name = $1")
            .bind(STATE)
            .fetch_one(&self.inner.pool)
            .await?;
        Ok((row.try_get::<i64, _>("checkpoint")? as u64, row.try_get("halted")?))
    }

    /// [`reset`] on this service's database.
    pub async fn reset(&self) -> Result<(), FollowupError> {
        reset_tables(&self.inner.pool).await
    }
}

/// Forgets everything the service derived from the log — referrals, deadlines, the outbox, the
/// checkpoint, a stop — so that it derives it all again from sequence 1: the repair after the log
/// went backwards and was accepted as it is. Safe to redo what was done, and safe while an
/// instance runs (its next batch finds the checkpoint moved and starts over): every command gets
/// the same id again, so one already in the log is answered, not repeated, and one the referral
/// has moved past is refused.
pub async fn reset(database_url: &str) -> Result<(), FollowupError> {
    reset_tables(&db::open(database_url).await?).await
}

async fn reset_tables(pool: &AnyPool) -> Result<(), FollowupError> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for table in [
        "followup_referrals",
        "followup_deadlines",
        "followup_outbox",
        "followup_parked",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
            "UPDATE followup_state SET checkpoint = 0, checkpoint_event = NULL, halted = NULL, updated_at = $1 WHERE name = $2",
        )
        .bind(now_millis())
        .bind(STATE)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

impl Followup {
    /// Runs until `shutdown` completes. Errors of the log, the store or the database are logged
    /// and retried; nothing is lost or done twice.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), FollowupError> {
        // One token for the service's loops: cancelled once `shutdown` completes.
        let stopped = CancellationToken::new();
        let loops = async {
            tokio::join!(
                self.follow(stopped.clone()),
                self.fire(stopped.clone()),
                self.send(stopped.clone()),
                self.retention(stopped.clone())
            )
        };
        tokio::pin!(loops);
        tokio::select! {
            _ = &mut loops => {}
            () = shutdown => {
                stopped.cancel();
                loops.await;
            }
        }
        Ok(())
    }

    // --- follow ----------------------------------------------------------------------------

    async fn follow(&self, stopped: CancellationToken) {
        let follower = FollowLoop {
            reader: "followup",
            service: "the follow-up service",
            check_interval: self.inner.config.check_interval,
            retry_delay: self.inner.config.retry_delay,
        };
        let attempt = || async {
            self.follow_once().await.map_err(|error| match error {
                FollowupError::Diverged(reason) => Interruption::Diverged(reason),
                other => Interruption::Failed(other),
            })
        };
        follower
            .run(&stopped, attempt, |reason| {
                self.inner.metrics.set_diverged(Some(reason.to_owned()))
            })
            .await;
    }

    async fn mark(&self) -> Result<Mark, FollowupError> {
        let row = sqlx::query("SELECT checkpoint, checkpoint_event FROM followup_state WHERE name = $1")
            .bind(STATE)
            .fetch_one(&self.inner.pool)
            .await?;
        Ok(Mark {
            sequence: row.try_get::<i64, _>("checkpoint")? as u64,
            event_id: row.try_get("checkpoint_event")?,
        })
    }

    /// Stops on a log that went backwards: records why, against the checkpoint judged.
    async fn halt(&self, mark: &Mark, reason: String) -> FollowupError {
        let recorded = sqlx::query(
            "UPDATE followup_state SET halted = $1 WHERE name = $2 AND checkpoint = $3 AND (halted IS NULL OR halted <> $1)",
        )
        .bind(reason.as_str())
        .bind(STATE)
        .bind(mark.sequence as i64)
        .execute(&self.inner.pool)
        .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "cannot record why the follow-up service stopped");
        }
        FollowupError::Diverged(reason)
    }

    /// One subscription from the checkpoint until an error (or until another instance moved
    /// the checkpoint: `Ok`, to reload).
    async fn follow_once(&self) -> Result<(), FollowupError> {
        let inner = &self.inner;
        let mut mark = self.mark().await?;
        let follower = Follower::start(
            &inner.store,
            &mark,
            inner.config.batch_size,
            inner.config.check_interval,
        )
        .await?;
        let mut follower = match follower {
            Ok(follower) => follower,
            Err(divergence) => return Err(self.halt(&mark, divergence.to_string()).await),
        };
        sqlx::query("UPDATE followup_state SET halted = NULL WHERE name = $1 AND halted IS NOT NULL")
            .bind(STATE)
            .execute(&inner.pool)
            .await?;
        if inner.metrics.set_diverged(None) {
            tracing::warn!("the event log matches the follow-up service's checkpoint again; following it");
        }
        inner.metrics.position.store(mark.sequence, Ordering::Relaxed);
        let mut conn = writer(&inner.pool).await?;
        loop {
            let entries = match follower.next(&mark).await? {
                Step::Batch(entries) => entries,
                Step::Diverged(divergence) => return Err(self.halt(&mark, divergence.to_string()).await),
            };
            let Some(last) = entries.last().map(Entry::mark) else {
                continue;
            };
            let mut tx = sqlx::Connection::begin(&mut conn).await?;
            let moved = sqlx::query(
                "UPDATE followup_state SET checkpoint = $1, checkpoint_event = $2, updated_at = $3 \
                 WHERE name = $4 AND checkpoint = $5",
            )
            .bind(last.sequence as i64)
            .bind(last.event_id.clone())
            .bind(now_millis())
            .bind(STATE)
            .bind(mark.sequence as i64)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                // Another instance applied it: reload from its checkpoint.
                tx.rollback().await?;
                return Ok(());
            }
            let mut decided = 0;
            for entry in &entries {
                decided += self.apply(&mut tx, entry).await?;
            }
            tx.commit().await?;
            mark = last;
            inner.metrics.position.store(mark.sequence, Ordering::Relaxed);
            inner.deadlines_changed.notify_one();
            if decided > 0 {
                inner.outbox_changed.notify_one();
            }
        }
    }

    /// Applies one entry inside the batch's transaction; how many commands it decided.
    async fn apply(&self, tx: &mut AnyConnection, entry: &Entry) -> Result<u64, FollowupError> {
        match entry {
            Entry::Skipped(_) => Ok(0),
            Entry::Unreadable {
                sequence,
                subject,
                reason,
            } => {
                sqlx::query(
                    "INSERT INTO followup_parked (seq, subject, error, parked_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (seq) DO NOTHING",
                )
                .bind(*sequence as i64)
                .bind(subject.as_str())
                .bind(reason.as_str())
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
                self.inner.metrics.parked.fetch_add(1, Ordering::Relaxed);
                wasl_telemetry::metrics::poison("followup", "unreadable");
                tracing::error!(sequence, %subject, %reason, "the follow-up service cannot read a message of the log; it goes on without it (wasl log show)");
                Ok(0)
            }
            Entry::Event(recorded) => {
                let event_id = recorded.event.meta.event_id.to_string();
                let at = recorded.event.meta.occurred_at;
                match &recorded.event.event {
                    DomainEvent::Referral(id, event) => self.referral_event(tx, *id, event, at, &event_id).await,
                    DomainEvent::Case(case, event) => {
                        self.case_event(tx, &case.to_string(), event, at, &event_id).await
                    }
                    _ => Ok(0),
                }
            }
        }
    }

    async fn referral_event(
        &self,
        tx: &mut AnyConnection,
        id: ReferralId,
        event: &ReferralEvent,
        at: Timestamp,
        event_id: &str,
    ) -> Result<u64, FollowupError> {
        let referral = id.to_string();
        let policy = &self.inner.config.policy;
        match event {
            ReferralEvent::Requested(request) => {
                let consent = match &request.consent {
                    ConsentBasis::Consent(consent) => Some(consent.to_string()),
                    ConsentBasis::Override(_) => None,
                };
                sqlx::query(
                    "INSERT INTO followup_referrals (referral_id, case_id, consent_id, from_org, to_org, category, \
                     priority, status, overdue_count, escalation_count) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', 0, 0) ON CONFLICT (referral_id) DO NOTHING",
                )
                .bind(referral.as_str())
                .bind(request.case_id.to_string())
                .bind(consent)
                .bind(request.from_org.to_string())
                .bind(request.to_org.to_string())
                .bind(request.category.code())
                .bind(request.priority.code())
                .execute(&mut *tx)
                .await?;
                let windows = policy.windows(request.category, request.priority);
                deadline(
                    tx,
                    &referral,
                    OverdueKind::Acknowledgement,
                    after(at, windows.acknowledge),
                )
                .await?;
                deadline(tx, &referral, OverdueKind::Decision, after(at, windows.decide)).await?;
                Ok(0)
            }
            ReferralEvent::Received => {
                status(tx, &referral, "received").await?;
                drop_deadlines(tx, &referral, &[OverdueKind::Acknowledgement]).await?;
                Ok(0)
            }
            ReferralEvent::Accepted | ReferralEvent::PutOnHold(_) => {
                let code = if matches!(event, ReferralEvent::Accepted) {
                    "accepted"
                } else {
                    "on_hold"
                };
                status(tx, &referral, code).await?;
                drop_deadlines(tx, &referral, &[OverdueKind::Acknowledgement, OverdueKind::Decision]).await?;
                if let Some((category, priority)) = kind_of(tx, &referral).await? {
                    let windows = policy.windows(category, priority);
                    deadline(tx, &referral, OverdueKind::Stalled, after(at, windows.progress)).await?;
                }
                Ok(0)
            }
            ReferralEvent::Started | ReferralEvent::Resumed => {
                status(tx, &referral, "in_progress").await?;
                drop_deadlines(tx, &referral, &[OverdueKind::Stalled]).await?;
                Ok(0)
            }
            ReferralEvent::Rejected(_) | ReferralEvent::Cancelled(_) | ReferralEvent::EnteredInError(_) => {
                let code = match event {
                    ReferralEvent::Rejected(_) => "rejected",
                    ReferralEvent::Cancelled(_) => "cancelled",
                    _ => "entered_in_error",
                };
                status(tx, &referral, code).await?;
                drop_deadlines(
                    tx,
                    &referral,
                    &[
                        OverdueKind::Acknowledgement,
                        OverdueKind::Decision,
                        OverdueKind::Stalled,
                        OverdueKind::FollowUp,
                    ],
                )
                .await?;
                Ok(0)
            }
            ReferralEvent::Completed | ReferralEvent::Failed(_) => {
                let code = if matches!(event, ReferralEvent::Completed) {
                    "completed"
                } else {
                    "failed"
                };
                status(tx, &referral, code).await?;
                drop_deadlines(
                    tx,
                    &referral,
                    &[
                        OverdueKind::Acknowledgement,
                        OverdueKind::Decision,
                        OverdueKind::Stalled,
                    ],
                )
                .await?;
                if let Some((category, priority)) = kind_of(tx, &referral).await? {
                    let windows = policy.windows(category, priority);
                    deadline(tx, &referral, OverdueKind::FollowUp, after(at, windows.follow_up)).await?;
                }
                Ok(0)
            }
            ReferralEvent::FollowUpRecorded(_) => {
                drop_deadlines(tx, &referral, &[OverdueKind::FollowUp]).await?;
                Ok(0)
            }
            ReferralEvent::ResponseOverdue { .. } | ReferralEvent::FollowUpOverdue { .. } => {
                let kind = match event {
                    ReferralEvent::ResponseOverdue { kind, .. } => *kind,
                    _ => OverdueKind::FollowUp,
                };
                drop_deadlines(tx, &referral, &[kind]).await?;
                let count = bump(tx, &referral, "overdue_count").await?;
                if count >= u64::from(policy.escalate_after_overdues) {
                    let action = Action::Escalate {
                        referral: referral.clone(),
                        kind: kind.code().to_owned(),
                    };
                    let id = command_id("escalate", event_id, &referral, at);
                    return enqueue(tx, id, &action, at).await;
                }
                Ok(0)
            }
            ReferralEvent::Escalated { .. } => {
                let count = bump(tx, &referral, "escalation_count").await?;
                let expire = policy.expire_after_escalations.is_some_and(|m| count >= u64::from(m));
                if expire && is_open(tx, &referral).await? {
                    let action = Action::Cancel {
                        referral: referral.clone(),
                        reason: CancelCode::Expired.code().to_owned(),
                    };
                    let id = command_id("expire", event_id, &referral, at);
                    return enqueue(tx, id, &action, at).await;
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    async fn case_event(
        &self,
        tx: &mut AnyConnection,
        case: &str,
        event: &CaseEvent,
        at: Timestamp,
        event_id: &str,
    ) -> Result<u64, FollowupError> {
        let (referrals, reason) = match event {
            // Every open referral that rested on the withdrawn consent.
            CaseEvent::ConsentWithdrawn { consent_id } => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(open_where("case_id = $1 AND consent_id = $2")))
                    .bind(case)
                    .bind(consent_id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
                let ids = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("referral_id"))
                    .collect::<Result<Vec<_>, _>>()?;
                (ids, CancelCode::ConsentWithdrawn)
            }
            // The referrals the close listed, those still open.
            CaseEvent::Closed {
                cancelled_referrals, ..
            } => {
                let mut ids = Vec::new();
                for referral in cancelled_referrals {
                    let referral = referral.to_string();
                    if is_open(tx, &referral).await? {
                        ids.push(referral);
                    }
                }
                (ids, CancelCode::CaseClosed)
            }
            _ => return Ok(0),
        };
        let mut decided = 0;
        for referral in referrals {
            let action = Action::Cancel {
                referral: referral.clone(),
                reason: reason.code().to_owned(),
            };
            let id = command_id("cancel", event_id, &referral, at);
            decided += enqueue(tx, id, &action, at).await?;
        }
        Ok(decided)
    }

    // --- fire ------------------------------------------------------------------------------

    async fn fire(&self, stopped: CancellationToken) {
        let inner = &self.inner;
        let mut conn: Option<AnyConnection> = None;
        loop {
            if stopped.is_cancelled() {
                return;
            }
            let now = inner.clock.now();
            let fired = match conn.as_mut() {
                Some(conn) => self.fire_due(conn, now).await,
                None => match writer(&inner.pool).await {
                    Ok(new) => self.fire_due(conn.insert(new), now).await,
                    Err(error) => Err(error),
                },
            };
            match fired {
                Ok(0) => {}
                Ok(_) => {
                    inner.outbox_changed.notify_one();
                    continue;
                }
                Err(error) => {
                    conn = None;
                    tracing::warn!(%error, "cannot fire deadlines now; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(inner.config.retry_delay) => {}
                        () = stopped.cancelled() => return,
                    }
                    continue;
                }
            }
            let next: Option<i64> = match sqlx::query_scalar("SELECT MIN(due_at) FROM followup_deadlines")
                .fetch_one(&inner.pool)
                .await
            {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the next deadline; trying again");
                    None
                }
            };
            let until = async {
                match next {
                    Some(due) => inner.clock.sleep_until(Timestamp::from_unix_millis(due)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = until => {}
                () = inner.deadlines_changed.notified() => {}
                // Another instance may have added the deadlines (it won the batches): look at
                // the table again now and then, not only when this instance's follower says.
                () = tokio::time::sleep(inner.config.check_interval) => {}
                () = stopped.cancelled() => return,
            }
        }
    }

    /// Fires the deadlines due at `now`: each one deleted and its overdue command written, in
    /// one transaction; how many.
    async fn fire_due(&self, conn: &mut AnyConnection, now: Timestamp) -> Result<u64, FollowupError> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        let due = sqlx::query(
            "SELECT referral_id, kind, due_at FROM followup_deadlines WHERE due_at <= $1 \
             ORDER BY due_at, referral_id, kind LIMIT 500",
        )
        .bind(now.unix_millis())
        .fetch_all(&mut *tx)
        .await?;
        let mut fired = 0;
        for row in due {
            let referral: String = row.try_get("referral_id")?;
            let kind: String = row.try_get("kind")?;
            let due_at: i64 = row.try_get("due_at")?;
            let gone =
                sqlx::query("DELETE FROM followup_deadlines WHERE referral_id = $1 AND kind = $2 AND due_at = $3")
                    .bind(referral.as_str())
                    .bind(kind.as_str())
                    .bind(due_at)
                    .execute(&mut *tx)
                    .await?;
            if gone.rows_affected() != 1 {
                continue;
            }
            let action = Action::MarkOverdue {
                referral: referral.clone(),
                kind: kind.clone(),
                due_at,
            };
            let due = Timestamp::from_unix_millis(due_at);
            let id = command_id("overdue", &format!("{kind}@{due_at}"), &referral, due);
            enqueue(&mut tx, id, &action, due).await?;
            fired += 1;
        }
        tx.commit().await?;
        self.inner.metrics.fired.fetch_add(fired, Ordering::Relaxed);
        Ok(fired)
    }

    // --- retention -------------------------------------------------------------------------

    async fn retention(&self, stopped: CancellationToken) {
        let inner = &self.inner;
        let Some(schedule) = inner.config.retention.clone() else {
            return;
        };
        loop {
            if stopped.is_cancelled() {
                return;
            }
            let last = match self.last_retention().await {
                Ok(last) => last,
                Err(error) => {
                    tracing::warn!(%error, "cannot read when retention last ran; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(inner.config.retry_delay) => {}
                        () = stopped.cancelled() => return,
                    }
                    continue;
                }
            };
            let next = match last {
                Some(last) => after(last, schedule.every),
                None => inner.clock.now(),
            };
            tokio::select! {
                () = inner.clock.sleep_until(next) => {}
                () = stopped.cancelled() => return,
            }
            if inner.clock.now() < next {
                continue;
            }
            if let Err(error) = self.run_retention(&schedule, last).await {
                tracing::warn!(%error, "scheduled retention failed; it runs again at the next time");
                tokio::select! {
                    () = tokio::time::sleep(inner.config.retry_delay) => {}
                    () = stopped.cancelled() => return,
                }
            }
        }
    }

    /// When retention last ran (`followup_state` row `retention`; its checkpoint is the time).
    async fn last_retention(&self) -> Result<Option<Timestamp>, FollowupError> {
        let at: Option<i64> = sqlx::query_scalar("SELECT checkpoint FROM followup_state WHERE name = 'retention'")
            .fetch_optional(&self.inner.pool)
            .await?;
        Ok(at.map(Timestamp::from_unix_millis))
    }

    async fn run_retention(&self, schedule: &RetentionSchedule, last: Option<Timestamp>) -> Result<(), FollowupError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        // Claim the run first, so that of two instances only one runs it.
        let claimed = match last {
            None => sqlx::query(
                "INSERT INTO followup_state (name, checkpoint, checkpoint_event, halted, updated_at) \
                 VALUES ('retention', $1, NULL, NULL, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(now.unix_millis())
            .bind(now_millis())
            .execute(&inner.pool)
            .await?
            .rows_affected(),
            Some(last) => sqlx::query(
                "UPDATE followup_state SET checkpoint = $1, updated_at = $2 WHERE name = 'retention' AND checkpoint = $3",
            )
            .bind(now.unix_millis())
            .bind(now_millis())
            .bind(last.unix_millis())
            .execute(&inner.pool)
            .await?
            .rows_affected(),
        };
        if claimed != 1 {
            return Ok(());
        }
        let apply = schedule.apply.as_deref().map(|vault| (vault, &inner.actor));
        let report = wasl_vault::erase::run_retention(&inner.store, apply, schedule.period, now)
            .await
            .map_err(|e| FollowupError::Log(e.to_string()))?;
        inner.metrics.retention_runs.fetch_add(1, Ordering::Relaxed);
        inner
            .metrics
            .erased
            .fetch_add(report.erased.len() as u64, Ordering::Relaxed);
        tracing::info!(
            due = report.due.len(),
            erased = report.erased.len(),
            unreadable = report.unreadable.len(),
            dry_run = schedule.apply.is_none(),
            "scheduled retention ran"
        );
        Ok(())
    }

    // --- send ------------------------------------------------------------------------------

    async fn send(&self, stopped: CancellationToken) {
        let inner = &self.inner;
        loop {
            if stopped.is_cancelled() {
                return;
            }
            let sent = match self.send_due().await {
                Ok(sent) => sent,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the follow-up outbox now; trying again");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            let next: Option<i64> = sqlx::query_scalar("SELECT MIN(not_before) FROM followup_outbox")
                .fetch_one(&inner.pool)
                .await
                .unwrap_or_default();
            let until = async {
                match next {
                    Some(at) => inner.clock.sleep_until(Timestamp::from_unix_millis(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = until => {}
                () = inner.outbox_changed.notified() => {}
                // A retry waits on the clock; the store coming back is noticed within a second.
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stopped.cancelled() => return,
            }
        }
    }

    /// Sends what the outbox holds for now; how many commands were settled.
    async fn send_due(&self) -> Result<u64, FollowupError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let rows = sqlx::query(
            "SELECT command_id, action, due_at, attempts FROM followup_outbox WHERE not_before <= $1 \
             ORDER BY created_at, command_id LIMIT 100",
        )
        .bind(now.unix_millis())
        .fetch_all(&inner.pool)
        .await?;
        let mut settled = 0;
        for row in rows {
            let command: String = row.try_get("command_id")?;
            let text: String = row.try_get("action")?;
            let due_at: i64 = row.try_get("due_at")?;
            let attempts: i64 = row.try_get("attempts")?;
            let decoded = serde_json::from_str::<Action>(&text)
                .map_err(|e| e.to_string())
                .and_then(|action| {
                    let (referral, domain) = action.command().map_err(|e| e.to_string())?;
                    let id = CommandId::parse(&command).map_err(|e| e.to_string())?;
                    Ok((action, referral, domain, id))
                });
            let (action, referral, domain, id) = match decoded {
                Ok(parts) => parts,
                Err(why) => {
                    wasl_telemetry::metrics::poison("followup", "outbox");
                    tracing::error!(command_id = %command, %why, "an outbox command cannot be read; dropped");
                    self.settle(&command).await?;
                    settled += 1;
                    continue;
                }
            };
            let meta = CommandMeta {
                command_id: id,
                context: Context {
                    now: inner.clock.now(),
                    actor: inner.actor.clone(),
                },
                traceparent: None,
            };
            match inner.store.execute::<Referral>(referral, &domain, &meta).await {
                Ok(outcome) => {
                    inner.metrics.carried_out.fetch_add(1, Ordering::Relaxed);
                    let delay = inner.clock.now().unix_millis().saturating_sub(due_at).max(0);
                    wasl_telemetry::metrics::followup_action(
                        action.name(),
                        if outcome.replayed { "replayed" } else { "ok" },
                        Duration::from_millis(delay as u64),
                    );
                    self.settle(&command).await?;
                    settled += 1;
                }
                Err(CommandError::Rejected(error)) => {
                    // The referral moved on before the command arrived (answered in time after
                    // all, cancelled, closed): nothing to do.
                    inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
                    wasl_telemetry::metrics::followup_action(action.name(), "refused", Duration::ZERO);
                    tracing::info!(referral = %referral, action = action.name(), code = error.code(), "the referral moved on; the follow-up command is not needed");
                    self.settle(&command).await?;
                    settled += 1;
                }
                Err(CommandError::NotFound) => {
                    inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(referral = %referral, action = action.name(), "the referral is not in the log; the follow-up command is dropped");
                    self.settle(&command).await?;
                    settled += 1;
                }
                Err(error) => {
                    // Unavailable, a conflict lost too often, or a history the store cannot
                    // read: the same command, under the same id, later.
                    let wait =
                        Duration::from_millis(500u64 << attempts.clamp(0, 10) as u32).min(Duration::from_secs(600));
                    tracing::warn!(referral = %referral, action = action.name(), %error, ?wait, "a follow-up command could not be carried out; trying again");
                    sqlx::query(
                        "UPDATE followup_outbox SET attempts = attempts + 1, not_before = $1 WHERE command_id = $2",
                    )
                    .bind(now.unix_millis().saturating_add(wait.as_millis() as i64))
                    .bind(command.as_str())
                    .execute(&inner.pool)
                    .await?;
                }
            }
        }
        Ok(settled)
    }

    async fn settle(&self, command: &str) -> Result<(), FollowupError> {
        sqlx::query("DELETE FROM followup_outbox WHERE command_id = $1")
            .bind(command)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }
}

/// A connection of its own for a writer: if the task is dropped mid-transaction (a crash, an
/// abort), the connection closes with it and the database rolls back at once, instead of going
/// back to the pool with its row locks and blocking the next writer — another instance's, too.
async fn writer(pool: &AnyPool) -> Result<AnyConnection, FollowupError> {
    Ok(pool.acquire().await?.detach())
}

fn after(at: Timestamp, window: Duration) -> Timestamp {
    at.plus_millis(window.as_millis() as i64)
}

fn open_where(condition: &str) -> String {
    let open = OPEN.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    format!("SELECT referral_id FROM followup_referrals WHERE {condition} AND status IN ({open}) ORDER BY referral_id")
}

async fn deadline(
    tx: &mut AnyConnection,
    referral: &str,
    kind: OverdueKind,
    due: Timestamp,
) -> Result<(), FollowupError> {
    sqlx::query(
        "INSERT INTO followup_deadlines (referral_id, kind, due_at) VALUES ($1, $2, $3) \
         ON CONFLICT (referral_id, kind) DO UPDATE SET due_at = excluded.due_at",
    )
    .bind(referral)
    .bind(kind.code())
    .bind(due.unix_millis())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn drop_deadlines(tx: &mut AnyConnection, referral: &str, kinds: &[OverdueKind]) -> Result<(), FollowupError> {
    for kind in kinds {
        sqlx::query("DELETE FROM followup_deadlines WHERE referral_id = $1 AND kind = $2")
            .bind(referral)
            .bind(kind.code())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn status(tx: &mut AnyConnection, referral: &str, status: &str) -> Result<(), FollowupError> {
    sqlx::query("UPDATE followup_referrals SET status = $1 WHERE referral_id = $2")
        .bind(status)
        .bind(referral)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn is_open(tx: &mut AnyConnection, referral: &str) -> Result<bool, FollowupError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(open_where("referral_id = $1")))
        .bind(referral)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(found.is_some())
}

async fn kind_of(tx: &mut AnyConnection, referral: &str) -> Result<Option<(ServiceCategory, Priority)>, FollowupError> {
    let row = sqlx::query("SELECT category, priority FROM followup_referrals WHERE referral_id = $1")
        .bind(referral)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let category = ServiceCategory::parse(&row.try_get::<String, _>("category")?).ok();
    let priority = Priority::parse(&row.try_get::<String, _>("priority")?).ok();
    Ok(category.zip(priority))
}

/// Adds one to a counter of the referral; its new value.
async fn bump(tx: &mut AnyConnection, referral: &str, column: &'static str) -> Result<u64, FollowupError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE followup_referrals SET {column} = {column} + 1 WHERE referral_id = $1"
    )))
    .bind(referral)
    .execute(&mut *tx)
    .await?;
    let value: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM followup_referrals WHERE referral_id = $1"
    )))
    .bind(referral)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(value.unwrap_or(0) as u64)
}

/// Writes a command to the outbox (once: the same command id again is ignored); 1 if new.
async fn enqueue(tx: &mut AnyConnection, id: CommandId, action: &Action, due: Timestamp) -> Result<u64, FollowupError> {
    let text = serde_json::to_string(action).map_err(|e| FollowupError::Config(e.to_string()))?;
    let done = sqlx::query(
        "INSERT INTO followup_outbox (command_id, referral_id, action, due_at, not_before, attempts, created_at) \
         VALUES ($1, $2, $3, $4, 0, 0, $5) ON CONFLICT (command_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(action.referral())
    .bind(text)
    .bind(due.unix_millis())
    .bind(now_millis())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}
