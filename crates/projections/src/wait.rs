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
}
