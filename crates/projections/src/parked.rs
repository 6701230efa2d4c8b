//! Parked events: what a projection could not decode or apply, kept with the error so an
//! operator can see it and, after a fix, retry it. Later events of the same aggregate wait
//! behind a parked one (parked too) so that a retry applies them in their order.

use crate::apply::{Parked, WAITING, apply_batch};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::feed::{Decoder, entry, mark_skipped};
use crate::projection::Projection;
use crate::projector::insert_parked;
use crate::schema::{live_state, now_millis};
use async_nats::jetstream::stream::Stream;
use sqlx::Row;
use std::collections::HashSet;
use wasl_store::skips::Skips;

/// A parked event as listed for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// The projection that parked it.
    pub projection: Projection,
    /// Stream sequence.
    pub seq: u64,
    /// Subject (names the aggregate).
    pub subject: String,
    /// Event type, when the headers named one.
    pub event_type: Option<String>,
    /// Why (fields and codes only).
    pub error: String,
    /// How many times it was tried.
    pub attempts: u64,
}

/// The parked events of the live generations of `projections`, in log order.
pub async fn list(models: &ReadModels, projections: &[Projection]) -> Result<Vec<ParkedEvent>, ProjectionError> {
    let mut out = Vec::new();
    for projection in projections {
        let state = live_state(models, *projection).await?;
        let rows = sqlx::query(
            "SELECT seq, subject, event_type, error, attempts FROM parked_events \
             WHERE projection = $1 AND generation = $2 ORDER BY seq",
        )
        .bind(projection.name())
        .bind(state.generation)
        .fetch_all(&models.pool)
        .await?;
        for row in rows {
            out.push(ParkedEvent {
                projection: *projection,
                seq: row.try_get::<i64, _>("seq")? as u64,
                subject: row.try_get("subject")?,
                event_type: row.try_get("event_type")?,
                error: row.try_get("error")?,
                attempts: row.try_get::<i64, _>("attempts")? as u64,
            });
        }
    }
    Ok(out)
}

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryReport {
    /// Events applied and removed from the parked list.
    pub applied: u64,
    /// Events still parked (with their new error).
    pub still_parked: u64,
}

/// Tries every parked event of `projection`'s live generation again, in log order, reading it
/// afresh from the log with `decoder`. An event that applies now leaves the list, and so does an
/// unreadable message an operator skipped (`skips`); one that fails again stays with the new
/// error, and so do the later events of its aggregate.
pub async fn retry(
    models: &ReadModels,
    stream: &Stream,
    projection: Projection,
    decoder: Decoder,
    skips: Option<&Skips>,
) -> Result<RetryReport, ProjectionError> {
    let mut report = RetryReport::default();
    let mut conn = models.writer().await?;
    let mut blocked: HashSet<String> = HashSet::new();
    for parked in list(models, &[projection]).await? {
        let generation = live_state(models, projection).await?.generation;
        if blocked.contains(&parked.subject) {
            report.still_parked += 1;
            continue;
        }
        let message = stream.get_raw_message(parked.seq).await.map_err(ProjectionError::log)?;
        let mut entry = entry(
            decoder,
            parked.seq,
            &message.subject,
            Some(&message.headers),
            &message.payload,
        );
        mark_skipped(&mut entry, skips).await?;
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        // Lock the live row, as a projector's batch does, so the two never interleave.
        let locked = sqlx::query("UPDATE projection_state SET updated_at = $1 WHERE name = $2 AND generation = $3")
            .bind(now_millis())
            .bind(projection.name())
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() != 1 {
            return Err(ProjectionError::State {
                projection: projection.name(),
                reason: "its generation changed during the retry; run it again".to_owned(),
            });
        }
        sqlx::query("DELETE FROM parked_events WHERE projection = $1 AND generation = $2 AND seq = $3")
            .bind(projection.name())
            .bind(generation)
            .bind(parked.seq as i64)
            .execute(&mut *tx)
            .await?;
        let mut none = HashSet::new();
        let result = apply_batch(&mut tx, projection, generation, std::slice::from_ref(&entry), &mut none).await?;
        if let Some(again) = result.parked.first() {
            let again = Parked {
                error: if again.error == WAITING {
                    parked.error.clone()
                } else {
                    again.error.clone()
                },
                ..again.clone()
            };
            insert_parked(&mut tx, projection, generation, std::slice::from_ref(&again)).await?;
            sqlx::query(
                "UPDATE parked_events SET attempts = $1 WHERE projection = $2 AND generation = $3 AND seq = $4",
            )
            .bind(parked.attempts as i64 + 1)
            .bind(projection.name())
            .bind(generation)
            .bind(parked.seq as i64)
            .execute(&mut *tx)
            .await?;
            blocked.insert(parked.subject.clone());
            report.still_parked += 1;
        } else {
            report.applied += 1;
        }
        tx.commit().await?;
    }
    Ok(report)
}
