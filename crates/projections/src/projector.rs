//! The projector: follows the event log and keeps the read models in step with it.
//!
//! Every batch is one transaction per database that (1) moves each projection's checkpoint
//! from the value this projector last saw to the batch's last sequence — a compare-and-set, so
//! a second projector or a rebuild swapping generations is noticed and never doubled —, (2)
//! applies the batch's events to the projection's rows and (3) parks what cannot be applied.
//! Rows and checkpoint commit together, so stopping at any moment (a crash, an abort, a lost
//! connection) and starting again from checkpoint + 1 gives the same tables as never stopping.

use crate::apply::{Entry, Parked, apply_batch};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::feed::{Decoder, Feed, follow, store_decoder};
use crate::projection::Projection;
use crate::schema::now_millis;
use async_nats::jetstream::stream::Stream;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasl_events::StoredEvent;
use wasl_store::skips::Skips;

/// Counters of a projector, shared with whoever reports them (metrics, status commands).
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    /// Events applied (to any projection).
    pub applied: AtomicU64,
    /// Events parked (in any projection).
    pub parked: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Stream sequence of the last committed batch.
    pub position: AtomicU64,
    /// Times the projector resubscribed after an error or a generation swap.
    pub restarts: AtomicU64,
}

/// How a projector runs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Most events per transaction.
    pub batch_size: usize,
    /// How stored messages are read (the store's decoder unless a test or an upgrade says
    /// otherwise).
    pub decoder: Decoder,
    /// The operator's skip decisions: unreadable messages recorded there are passed over
    /// instead of parked (see `wasl_store::skips`). `None`: every unreadable message is parked.
    pub skips: Option<Skips>,
    /// Pause after an error before resubscribing.
    pub retry_delay: Duration,
    /// How often the log is checked to still hold the event at the checkpoint (also checked on
    /// every start and resubscription), and how often a stopped projector checks again.
    pub check_interval: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            decoder: store_decoder,
            skips: None,
            retry_delay: Duration::from_millis(500),
            check_interval: Duration::from_secs(5),
        }
    }
}

/// Where a batch goes: the live generation (checkpoint in `projection_state`) or a rebuild's
/// (checkpoint in `projection_rebuild`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Live,
    Rebuild,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Self::Live => "projection_state",
            Self::Rebuild => "projection_rebuild",
        }
    }
}

/// One projection's generation being written, with the checkpoint last seen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub projection: Projection,
    pub generation: i64,
    pub checkpoint: u64,
    pub side: Side,
}

/// What happened to a batch.
pub(crate) enum Committed {
    /// Written; checkpoints moved.
    Done {
        applied: u64,
        parked: Vec<(Projection, Parked)>,
    },
    /// Someone else moved a checkpoint or swapped a generation: reload and resubscribe.
    Moved,
}

/// The subjects with parked events of a projection's generation.
pub(crate) async fn parked_subjects(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
) -> Result<HashSet<String>, ProjectionError> {
    let rows = sqlx::query("SELECT DISTINCT subject FROM parked_events WHERE projection = $1 AND generation = $2")
        .bind(projection.name())
        .bind(generation)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("subject").map_err(ProjectionError::from))
        .collect()
}

pub(crate) async fn insert_parked(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
    parked: &[Parked],
) -> Result<(), ProjectionError> {
    let now = now_millis();
    let rows = parked
        .iter()
        .map(|p| {
            vec![
                projection.name().to_owned().into(),
                generation.into(),
                (p.seq as i64).into(),
                p.subject.clone().into(),
                p.event_type.clone().into(),
                p.error.clone().into(),
                1_i64.into(),
                now.into(),
            ]
        })
        .collect();
    crate::sql::insert_rows(
        conn,
        "parked_events",
        &[
            "projection",
            "generation",
            "seq",
            "subject",
            "event_type",
            "error",
            "attempts",
            "parked_at",
        ],
        None,
        rows,
    )
    .await?;
    Ok(())
}

/// Writes one batch (entries in log order) to every target in one transaction.
pub(crate) async fn commit_batch(
    conn: &mut AnyConnection,
    targets: &mut [Target],
    entries: &[Entry],
) -> Result<Committed, ProjectionError> {
    let Some(last) = entries.last().map(|e| e.seq) else {
        return Ok(Committed::Done {
            applied: 0,
            parked: vec![],
        });
    };
    // The identity of the message the checkpoint will point at (see `wasl_store::continuity`).
    let last_event = entries.last().and_then(|e| e.mark().event_id);
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut applied = 0;
    let mut all_parked = Vec::new();
    for target in targets.iter() {
        if last <= target.checkpoint {
            continue;
        }
        // First statement of the transaction for this projection: the compare-and-set on the
        // checkpoint. It takes the row lock (and SQLite's write lock) before any table is
        // touched, so a generation swap and a batch always meet in the same order.
        let moved = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET checkpoint = $1, checkpoint_event = $2 WHERE name = $3 AND generation = $4 AND checkpoint = $5",
            target.side.table()
        )))
        .bind(last as i64)
        .bind(last_event.clone())
        .bind(target.projection.name())
        .bind(target.generation)
        .bind(target.checkpoint as i64)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Committed::Moved);
        }
        // Entries are in log order: the ones after this projection's checkpoint are a tail.
        let fresh = &entries[entries.partition_point(|e| e.seq <= target.checkpoint)..];
        let mut parked = parked_subjects(&mut tx, target.projection, target.generation).await?;
        let result = apply_batch(&mut tx, target.projection, target.generation, fresh, &mut parked).await?;
        insert_parked(&mut tx, target.projection, target.generation, &result.parked).await?;
        applied += result.applied;
        all_parked.extend(result.parked.into_iter().map(|p| (target.projection, p)));
    }
    tx.commit().await?;
    for target in targets.iter_mut() {
        target.checkpoint = target.checkpoint.max(last);
    }
    Ok(Committed::Done {
        applied,
        parked: all_parked,
    })
}

/// Waits for the next batch: at least one entry, then whatever else is ready, up to `max`.
pub(crate) async fn next_batch(feed: &mut Feed, max: usize) -> Option<Result<Vec<Entry>, ProjectionError>> {
    let first = match feed.next().await? {
        Ok(entry) => entry,
        Err(e) => return Some(Err(e)),
    };
    let mut batch = Vec::with_capacity(max);
    batch.push(first);
    while batch.len() < max {
        let Some(entry) = feed.ready() else { break };
        batch.push(entry);
    }
    Some(Ok(batch))
}

/// When spans are exported: one `projector.apply` span per event, a child of the span that
/// appended it, open while its batch is written (dropping them ends them).
fn trace_spans(batch: &[Entry]) -> Vec<tracing::Span> {
    if !wasl_telemetry::context::exporting() {
        return Vec::new();
    }
    batch
        .iter()
        .map(|entry| {
            let span = tracing::info_span!(
                "projector.apply",
                seq = entry.seq,
                event_type = entry.event_type.as_deref().unwrap_or("")
            );
            wasl_telemetry::context::set_parent(&span, entry.traceparent.as_deref());
            span
        })
        .collect()
}

/// Follows the log and keeps the live generation of some projections up to date.
#[derive(Debug, Clone)]
pub struct Projector {
    models: ReadModels,
    stream: Stream,
    projections: Vec<Projection>,
    config: ProjectorConfig,
    metrics: Arc<ProjectorMetrics>,
}

impl Projector {
    /// A projector of `projections` (usually [`Projection::ALL`]) reading `stream`.
    pub fn new(models: ReadModels, stream: Stream, projections: &[Projection], config: ProjectorConfig) -> Self {
        Self {
            models,
            stream,
            projections: projections.to_vec(),
            config,
            metrics: Arc::default(),
        }
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<ProjectorMetrics> {
        self.metrics.clone()
    }

    async fn targets(&self) -> Result<Vec<Target>, ProjectionError> {
        let mut targets = Vec::with_capacity(self.projections.len());
        for projection in &self.projections {
            let state = crate::schema::live_state(&self.models, *projection).await?;
            self.models.publish_position(*projection, state.checkpoint);
            targets.push(Target {
                projection: *projection,
                generation: state.generation,
                checkpoint: state.checkpoint,
                side: Side::Live,
            });
        }
        Ok(targets)
    }

    /// Why the log no longer matches the checkpoints, if it does not (see
    /// `wasl_store::continuity`), and the standings that were judged.
    async fn divergence(&self) -> Result<Option<(String, Vec<crate::schema::Standing>)>, ProjectionError> {
        let standings = crate::schema::standings(&self.models, &self.projections).await?;
        for standing in &standings {
            let found = wasl_store::continuity::check(&self.stream, &standing.mark())
                .await
                .map_err(ProjectionError::log)?;
            if let Some(divergence) = found {
                let reason = format!("projection {}: {divergence}", standing.projection.name());
                return Ok(Some((reason, standings)));
            }
        }
        Ok(None)
    }

    /// Stops: records why where every reader of the database sees it (`/readyz`, `wasl
    /// projections status`) — only on the standings judged, so that a rebuild swapped in
    /// meanwhile is never marked stopped by a verdict on the tables it replaced — and returns
    /// the error that ends the attempt.
    async fn halt(&self, reason: String, judged: &[crate::schema::Standing]) -> ProjectionError {
        let mut changed = 0;
        for standing in judged {
            let done = sqlx::query(
                "UPDATE projection_state SET halted = $1 WHERE name = $2 AND generation = $3 AND checkpoint = $4 \
                 AND (halted IS NULL OR halted <> $1)",
            )
            .bind(reason.as_str())
            .bind(standing.projection.name())
            .bind(standing.generation)
            .bind(standing.checkpoint as i64)
            .execute(&self.models.pool)
            .await;
            match done {
                Ok(done) => changed += done.rows_affected(),
                Err(error) => tracing::warn!(%error, "cannot record why the projector stopped"),
            }
        }
        if changed > 0 {
            wasl_telemetry::metrics::log_diverged("projector");
            tracing::error!(%reason, "the read models are ahead of the event log or built from another one; projecting stopped (see docs/operations.md: restore the matching backup, or `wasl projections rebuild`)");
        }
        ProjectionError::Diverged(reason)
    }

    /// Records that the projector runs again; how many projections were stopped.
    async fn resume(&self) -> Result<u64, ProjectionError> {
        let mut changed = 0;
        for projection in &self.projections {
            let done = sqlx::query("UPDATE projection_state SET halted = NULL WHERE name = $1 AND halted IS NOT NULL")
                .bind(projection.name())
                .execute(&self.models.pool)
                .await?;
            changed += done.rows_affected();
        }
        Ok(changed)
    }

    /// Runs until `shutdown` completes. Errors of the log or the database are logged and
    /// retried from the checkpoints after a pause; nothing is lost or applied twice. When the
    /// log no longer holds the event at a checkpoint, it stops projecting, records why
    /// ([`ProjectionError::Diverged`], readable by `/readyz`) and checks again every
    /// [`ProjectorConfig::check_interval`]; it goes on by itself once the log matches again (the
    /// right backup restored, or the read models rebuilt from the log as it is).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ProjectionError> {
        tokio::pin!(shutdown);
        loop {
            let attempt = async {
                if let Some((reason, judged)) = self.divergence().await? {
                    return Err(self.halt(reason, &judged).await);
                }
                if self.resume().await? > 0 {
                    tracing::warn!("the event log matches the read models again; projecting");
                }
                let mut targets = self.targets().await?;
                let mut conn = self.models.writer().await?;
                let from = targets.iter().map(|t| t.checkpoint).min().unwrap_or(0) + 1;
                let mut feed = follow(
                    &self.stream,
                    from,
                    self.config.decoder,
                    self.config.skips.clone(),
                    2 * self.config.batch_size,
                )
                .await?;
                let mut check = tokio::time::interval(self.config.check_interval);
                check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                check.tick().await;
                // What the last committed batch ended with (`None` until one is committed: the
                // checkpoints in the database stand for it).
                let mut last: Option<wasl_store::continuity::Mark> = None;
                loop {
                    let next = tokio::select! {
                        next = next_batch(&mut feed, self.config.batch_size) => next,
                        _ = check.tick() => {
                            if let Some((reason, judged)) = self.divergence().await? {
                                return Err(self.halt(reason, &judged).await);
                            }
                            continue;
                        }
                    };
                    let Some(batch) = next else {
                        return Err(ProjectionError::Log("the log subscription ended".to_owned()));
                    };
                    let batch = batch?;
                    // The log must still hold what the tables were built from before anything
                    // read from it is applied: a log replaced under a running consumer would
                    // otherwise be mixed in between two timed checks.
                    let replaced = match &last {
                        None => self.divergence().await?,
                        Some(mark) => match wasl_store::continuity::check(&self.stream, mark)
                            .await
                            .map_err(ProjectionError::log)?
                        {
                            None => None,
                            Some(divergence) => Some((
                                divergence.to_string(),
                                crate::schema::standings(&self.models, &self.projections).await?,
                            )),
                        },
                    };
                    if let Some((reason, judged)) = replaced {
                        return Err(self.halt(reason, &judged).await);
                    }
                    let spans = trace_spans(&batch);
                    let committed = commit_batch(&mut conn, &mut targets, &batch).await?;
                    drop(spans);
                    match committed {
                        Committed::Moved => return Ok(()),
                        Committed::Done { applied, parked } => {
                            let lag = batch.last().map_or(0, |entry| entry.pending);
                            self.record(&targets, applied, &parked, lag);
                            last = batch.last().map(Entry::mark);
                        }
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = attempt => {
                    self.metrics.restarts.fetch_add(1, Ordering::Relaxed);
                    match outcome {
                        Ok(()) => tracing::info!("a checkpoint moved under the projector (rebuild or retry); resuming from the database"),
                        // Recorded and reported by `halt`; look again after a pause.
                        Err(ProjectionError::Diverged(_)) => {
                            tokio::select! {
                                () = &mut shutdown => return Ok(()),
                                () = tokio::time::sleep(self.config.check_interval) => {}
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "projector interrupted; resuming from the checkpoints");
                            tokio::select! {
                                () = &mut shutdown => return Ok(()),
                                () = tokio::time::sleep(self.config.retry_delay) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    fn record(&self, targets: &[Target], applied: u64, parked: &[(Projection, Parked)], lag: u64) {
        self.metrics.applied.fetch_add(applied, Ordering::Relaxed);
        wasl_telemetry::metrics::projected(applied);
        self.metrics.parked.fetch_add(parked.len() as u64, Ordering::Relaxed);
        self.metrics.batches.fetch_add(1, Ordering::Relaxed);
        for (projection, p) in parked {
            wasl_telemetry::metrics::parked(projection.name());
            tracing::warn!(
                projection = projection.name(),
                seq = p.seq,
                event_type = p.event_type.as_deref(),
                error = %p.error,
                "event parked"
            );
        }
        for target in targets {
            self.models.publish_position(target.projection, target.checkpoint);
            self.metrics.position.store(target.checkpoint, Ordering::Relaxed);
            wasl_telemetry::metrics::projection(target.projection.name(), target.checkpoint, lag);
        }
    }
}

impl ReadModels {
    /// Applies log entries (in order, after the checkpoints) to the live generation of
    /// `projections` exactly as the projector would, in one transaction. For tools and tests
    /// that hold events without a running log; entries at or below a projection's checkpoint
    /// are ignored by it. Fails with [`ProjectionError::State`] if a checkpoint moved meanwhile.
    pub async fn project(&self, projections: &[Projection], entries: &[Entry]) -> Result<u64, ProjectionError> {
        let mut targets = Vec::with_capacity(projections.len());
        for projection in projections {
            let state = crate::schema::live_state(self, *projection).await?;
            targets.push(Target {
                projection: *projection,
                generation: state.generation,
                checkpoint: state.checkpoint,
                side: Side::Live,
            });
        }
        let mut conn = self.writer().await?;
        match commit_batch(&mut conn, &mut targets, entries).await? {
            Committed::Done { applied, .. } => {
                for target in &targets {
                    self.publish_position(target.projection, target.checkpoint);
                }
                Ok(applied)
            }
            Committed::Moved => Err(ProjectionError::State {
                projection: projections.first().map_or("?", |p| p.name()),
                reason: "its checkpoint moved while applying; try again".to_owned(),
            }),
        }
    }
}

impl Entry {
    /// What a checkpoint at this entry records (see `wasl_store::continuity`).
    pub fn mark(&self) -> wasl_store::continuity::Mark {
        wasl_store::continuity::Mark {
            sequence: self.seq,
            event_id: self.event.as_ref().ok().map(|e| e.meta.event_id.to_string()),
        }
    }

    /// An entry for an event as the log would hold it at `seq`.
    pub fn of(seq: u64, event: StoredEvent) -> Self {
        Self {
            seq,
            subject: event.event.subject(),
            event_type: Some(event.event.event_type().to_owned()),
            event: Ok(event),
            traceparent: None,
            pending: 0,
            skipped: false,
        }
    }
}
