//! The dashboards "as of" a past day: the numbers as they stood at the end of that day (Iraq
//! time), from the log. The dashboard projection is replayed from the start of the log into a
//! scratch SQLite database of its own, passing over every event that happened later; the same
//! queries then run on it. Nothing but the dashboard's codes and times is in the scratch
//! database, which lives in a temporary directory and is dropped with its cache entry.
//!
//! A replay reads the whole log, so replays run one at a time, and the last few days asked for
//! are kept for a few minutes (a past day's numbers do not change — unless events are recorded
//! later with an earlier time, as a demo load does; the cache's lifetime bounds that).

use crate::error::ApiError;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wasl_domain::time::Date;
use wasl_projections::{Projection, ReadModels, ReadModelsConfig};

/// Days kept.
const KEPT: usize = 4;
/// How long a replay is kept.
const LIFETIME: Duration = Duration::from_secs(300);
/// Log entries per replayed batch.
const BATCH: usize = 1_000;

struct Replayed {
    day: Date,
    built: Instant,
    models: ReadModels,
    _dir: tempfile::TempDir,
}

/// The replays of past days, one at a time.
#[derive(Default)]
pub struct AsOf {
    replays: Mutex<Vec<Replayed>>,
}

impl AsOf {
    /// Read models of the dashboard as they stood at the end of `day`, replayed from `stream`
    /// (or kept from an earlier request).
    pub async fn models(
        &self,
        stream: &async_nats::jetstream::stream::Stream,
        day: Date,
    ) -> Result<ReadModels, ApiError> {
        let mut replays = self.replays.lock().await;
        replays.retain(|r| r.built.elapsed() < LIFETIME);
        if let Some(kept) = replays.iter().find(|r| r.day == day) {
            return Ok(kept.models.clone());
        }
        let started = Instant::now();
        let dir = tempfile::tempdir().map_err(|e| ApiError::Unavailable(format!("no scratch directory: {e}")))?;
        let url = format!("sqlite:{}", dir.path().join("as-of.db").display());
        let models = ReadModels::open(&ReadModelsConfig::new(url))
            .await
            .map_err(ApiError::internal)?;
        let applied = wasl_projections::replay_until(
            &models,
            stream,
            &[Projection::Dashboard],
            day.plus_days(1).start(),
            BATCH,
        )
        .await?;
        tracing::info!(%day, applied, elapsed_ms = started.elapsed().as_millis() as u64, "replayed the dashboard as of a past day");
        replays.push(Replayed {
            day,
            built: Instant::now(),
            models: models.clone(),
            _dir: dir,
        });
        if replays.len() > KEPT {
            replays.remove(0);
        }
        Ok(models)
    }
}
