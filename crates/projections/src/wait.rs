//! Read-your-writes: every command answers with the stream position of its last event; a query
//! can first wait until the projections it reads have applied that position.

use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::schema::live_state;
use std::time::Duration;
use tokio::time::Instant;

/// How often the database is asked when the projector runs in another process.
const POLL: Duration = Duration::from_millis(20);

impl ReadModels {
    /// Waits until every one of `projections` has applied stream position `position`, or fails
    /// with [`ProjectionError::Timeout`] after `timeout`. Returns at once when they have.
    /// A projector in this process wakes waiters as it commits; one elsewhere is polled.
    pub async fn wait_for(
        &self,
        projections: &[Projection],
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.positions.subscribe();
        loop {
            let mut slowest: Option<(Projection, u64)> = None;
            for projection in projections {
                let known = changes.borrow_and_update().get(projection).copied().unwrap_or(0);
                let reached = if known >= position {
                    known
                } else {
                    live_state(self, *projection).await?.checkpoint
                };
                if reached < position && slowest.is_none_or(|(_, r)| reached < r) {
                    slowest = Some((*projection, reached));
                }
            }
            let Some((projection, reached)) = slowest else {
                return Ok(());
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(ProjectionError::Timeout {
                    projection: projection.name(),
                    reached,
                    wanted: position,
                });
            }
            let pause = POLL.min(deadline - now);
            let _ = tokio::time::timeout(pause, changes.changed()).await;
        }
    }

    /// The checkpoint of each projection (the last stream sequence applied to its live tables).
    pub async fn positions(&self) -> Result<Vec<(Projection, u64)>, ProjectionError> {
        let mut out = Vec::new();
        for projection in Projection::ALL {
            out.push((*projection, live_state(self, *projection).await?.checkpoint));
        }
        Ok(out)
    }

    /// The checkpoints, when the read models can serve against a log that ends at `log_end`;
    /// otherwise why not: a projector stopped because the log went backwards (its recorded
    /// reason), the log ends before a checkpoint (the read models hold events the log does not),
    /// or a projection is more than `max_lag` events behind.
    pub async fn ready(&self, log_end: u64, max_lag: u64) -> Result<Vec<(Projection, u64)>, String> {
        let standings = crate::schema::standings(self, Projection::ALL)
            .await
            .map_err(|e| format!("read-model database: {e}"))?;
        if let Some((standing, why)) = standings.iter().find_map(|s| s.halted.as_ref().map(|why| (s, why))) {
            return Err(format!(
                "the projector stopped projecting {}: {why}",
                standing.projection.name()
            ));
        }
        if let Some(ahead) = standings.iter().find(|s| s.checkpoint > log_end) {
            return Err(format!(
                "the {} read model has applied up to sequence {} but the event log ends at {log_end}: \
                 the log was replaced or cut short (see docs/operations.md)",
                ahead.projection.name(),
                ahead.checkpoint
            ));
        }
        if let Some(behind) = standings.iter().find(|s| log_end - s.checkpoint > max_lag) {
            return Err(format!(
                "the {} read model is {} events behind the log (more than {max_lag})",
                behind.projection.name(),
                log_end - behind.checkpoint
            ));
        }
        Ok(standings.iter().map(|s| (s.projection, s.checkpoint)).collect())
    }
}
