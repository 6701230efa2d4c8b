//! Rebuilding projections: a fresh generation is filled from sequence 1 beside the live one,
//! which keeps serving; once it has caught up with the live checkpoint, one transaction points
//! the views at it, moves the live checkpoint, and drops the old generation. A projector running
//! meanwhile notices the swap at its next batch (its compare-and-set on the checkpoint fails)
//! and resumes on the new generation.

use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::feed::{Decoder, follow, last_sequence};
use crate::projection::Projection;
use crate::projector::{Committed, Side, Target, commit_batch, next_batch};
use crate::schema::{create_generation, create_indexes, drop_generation, next_generation, now_millis, point_views};
use async_nats::jetstream::stream::Stream;
use sqlx::{AnyConnection, Row};
use std::time::{Duration, Instant};
use wasl_store::skips::Skips;

/// How far a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Stream sequence applied so far.
    pub done: u64,
    /// Sequence to reach (the log's end when the rebuild started, or the live checkpoint).
    pub total: u64,
    /// Events per second since the start.
    pub rate: f64,
    /// Estimated time left.
    pub eta: Option<Duration>,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct RebuildReport {
    /// The projections rebuilt.
    pub projections: Vec<Projection>,
    /// The generation now live.
    pub generation: Vec<(Projection, i64)>,
    /// The checkpoint at the swap.
    pub checkpoint: u64,
    /// Log entries read.
    pub events: u64,
    /// Events parked in the new generation.
    pub parked: u64,
    pub elapsed: Duration,
}

/// Rebuilds `projections` from the whole log, calling `progress` after every batch; unreadable
/// messages in `skips` are passed over, as the live projector does.
pub async fn rebuild(
    models: &ReadModels,
    stream: &Stream,
    projections: &[Projection],
    batch_size: usize,
    decoder: Decoder,
    skips: Option<&Skips>,
    mut progress: impl FnMut(&Progress),
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let mut conn = models.writer().await?;
    let mut targets = Vec::new();
    for projection in projections {
        targets.push(prepare(&mut conn, models.backend, *projection).await?);
    }
    let mut total = last_sequence(stream).await?;
    let mut events = 0_u64;
    let mut parked = 0_u64;
    let mut feed = None;
    let mut indexed = false;
    let mut last: Option<wasl_store::continuity::Mark> = None;
    loop {
        let done = targets.iter().map(|t| t.checkpoint).min().unwrap_or(0);
        if done >= total {
            if !indexed {
                // Caught up once: index the new tables now, before the swap, outside the
                // transaction that locks the live row.
                for target in &targets {
                    create_indexes(&mut conn, models.backend, target.projection, target.generation).await?;
                }
                indexed = true;
            }
            let log_end = last_sequence(stream).await?;
            match swap(&mut conn, models, &targets, log_end).await? {
                None => break,
                // The live projection is ahead (the log grew): keep reading up to it.
                Some(live) => total = live,
            }
            continue;
        }
        let feed = match &mut feed {
            Some(feed) => feed,
            None => feed.insert(follow(stream, done + 1, decoder, skips.cloned(), 2 * batch_size).await?),
        };
        let batch = next_batch(feed, batch_size)
            .await
            .ok_or_else(|| ProjectionError::Log("the log subscription ended".to_owned()))??;
        // The log must not have been replaced under the rebuild since its last batch.
        if let Some(mark) = &last
            && let Some(divergence) = wasl_store::continuity::check(stream, mark)
                .await
                .map_err(ProjectionError::log)?
        {
            return Err(ProjectionError::Diverged(divergence.to_string()));
        }
        events += batch.len() as u64;
        match commit_batch(&mut conn, &mut targets, &batch).await? {
            Committed::Done { parked: p, .. } => {
                parked += p.len() as u64;
                last = batch.last().map(crate::apply::Entry::mark);
            }
            Committed::Moved => {
                return Err(ProjectionError::State {
                    projection: targets[0].projection.name(),
                    reason: "another rebuild of the same projection took over; this one stops".to_owned(),
                });
            }
        }
        let done = targets.iter().map(|t| t.checkpoint).min().unwrap_or(0);
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = (rate > 0.0).then(|| Duration::from_secs_f64(total.saturating_sub(done) as f64 / rate));
        progress(&Progress { done, total, rate, eta });
    }
    Ok(RebuildReport {
        projections: projections.to_vec(),
        generation: targets.iter().map(|t| (t.projection, t.generation)).collect(),
        checkpoint: targets.iter().map(|t| t.checkpoint).min().unwrap_or(0),
        events,
        parked,
        elapsed: started.elapsed(),
    })
}

/// Creates the rebuild generation of `projection` (dropping what an interrupted rebuild left).
async fn prepare(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    projection: Projection,
) -> Result<Target, ProjectionError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Write first, as a projector's batch and the swap do: a SQLite transaction that reads and
    // then writes fails at once with SQLITE_BUSY if a live batch committed in between, instead
    // of waiting for the lock.
    sqlx::query("UPDATE projection_state SET updated_at = $1 WHERE name = $2")
        .bind(now_millis())
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let old: Option<i64> = sqlx::query_scalar("SELECT generation FROM projection_rebuild WHERE name = $1")
        .bind(projection.name())
        .fetch_optional(&mut *tx)
        .await?;
    let generation = next_generation(&mut tx, projection).await?;
    if let Some(old) = old {
        drop_generation(&mut tx, projection, old).await?;
        delete_parked(&mut tx, projection, old).await?;
        sqlx::query("DELETE FROM projection_rebuild WHERE name = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
    }
    create_generation(&mut tx, backend, projection, generation, false).await?;
    delete_parked(&mut tx, projection, generation).await?;
    sqlx::query("INSERT INTO projection_rebuild (name, generation, checkpoint, started_at) VALUES ($1, $2, 0, $3)")
        .bind(projection.name())
        .bind(generation)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Target {
        projection,
        generation,
        checkpoint: 0,
        side: Side::Rebuild,
    })
}

async fn delete_parked(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM parked_events WHERE projection = $1 AND generation = $2")
        .bind(projection.name())
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Swaps every target in, in one transaction — unless a live checkpoint is ahead of the
/// rebuild, in which case nothing changes and that checkpoint is returned.
async fn swap(
    conn: &mut AnyConnection,
    models: &ReadModels,
    targets: &[Target],
    log_end: u64,
) -> Result<Option<u64>, ProjectionError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut olds = Vec::new();
    for target in targets {
        // Lock the live row first, as a projector's batch does.
        sqlx::query("UPDATE projection_state SET updated_at = $1 WHERE name = $2")
            .bind(now_millis())
            .bind(target.projection.name())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT generation, checkpoint, halted FROM projection_state WHERE name = $1")
            .bind(target.projection.name())
            .fetch_one(&mut *tx)
            .await?;
        let live: i64 = row.try_get("checkpoint")?;
        // A live projection ahead of the log's end (the log went backwards; its projector, if
        // one runs, has stopped) will never be reached: the rebuild replaces it, which is the
        // repair.
        let halted = row.try_get::<Option<String>, _>("halted")?.is_some();
        if live as u64 > target.checkpoint && !halted && live as u64 <= log_end {
            tx.rollback().await?;
            return Ok(Some(live as u64));
        }
        olds.push(row.try_get::<i64, _>("generation")?);
    }
    for (target, old) in targets.iter().zip(olds) {
        point_views(&mut tx, target.projection, target.generation).await?;
        sqlx::query(
            "UPDATE projection_state SET generation = $1, checkpoint = $2, halted = NULL, updated_at = $3, \
             checkpoint_event = (SELECT checkpoint_event FROM projection_rebuild WHERE name = $4) WHERE name = $4",
        )
        .bind(target.generation)
        .bind(target.checkpoint as i64)
        .bind(now_millis())
        .bind(target.projection.name())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM projection_rebuild WHERE name = $1")
            .bind(target.projection.name())
            .execute(&mut *tx)
            .await?;
        delete_parked(&mut tx, target.projection, old).await?;
        drop_generation(&mut tx, target.projection, old).await?;
    }
    tx.commit().await?;
    for target in targets {
        models.publish_position(target.projection, target.checkpoint);
    }
    Ok(None)
}

/// Fills `projections` of `models` — read models of their own, a scratch database that serves
/// nothing else — from the whole log as it stood at `until`: every event that happened before
/// `until` is applied, every later one is passed over. Queries over them then answer "as of"
/// `until`, exactly as the live read models would have answered at that moment. Reads the log
/// from sequence 1 up to its end when called; returns the events applied.
pub async fn replay_until(
    models: &ReadModels,
    stream: &Stream,
    projections: &[Projection],
    until: wasl_domain::time::Timestamp,
    batch_size: usize,
) -> Result<u64, ProjectionError> {
    let end = last_sequence(stream).await?;
    let mut applied = 0;
    if end == 0 {
        return Ok(0);
    }
    let mut feed = follow(stream, 1, crate::feed::store_decoder, None, 2 * batch_size).await?;
    loop {
        let mut batch = next_batch(&mut feed, batch_size)
            .await
            .ok_or_else(|| ProjectionError::Log("the log subscription ended".to_owned()))??;
        let last = batch.last().map_or(end, |e| e.seq);
        batch.retain(|e| e.seq <= end);
        for entry in &mut batch {
            // Later events are passed over, as an operator's skip would be: nothing parks.
            if entry.event.as_ref().is_ok_and(|e| e.meta.occurred_at >= until) {
                entry.skipped = true;
            }
        }
        models.project(projections, &batch).await?;
        applied += batch.iter().filter(|e| !e.skipped).count() as u64;
        if last >= end {
            return Ok(applied);
        }
    }
}
