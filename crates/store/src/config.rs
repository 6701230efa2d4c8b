//! How the store is set up. Defaults suit the embedded single-node default (`wasl up`).

use std::time::Duration;

/// Settings of the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The stream's name.
    pub stream: String,
    /// Replicas of the stream: 1 for a single server, 3 in production.
    pub replicas: usize,
    /// How long JetStream remembers message ids to drop duplicates. Commands replayed later are
    /// still recognised, by the command ids recorded in the events.
    pub duplicate_window: Duration,
    /// The CloudEvents `source` of events written here.
    pub source: String,
    /// How often a command is decided again after losing a race, before it answers `Conflict`.
    pub max_conflict_retries: u32,
    /// How often an append whose answer was lost (time-out, disconnect) is sent again.
    pub max_unsettled_retries: u32,
    /// How long to wait for JetStream's answer to one request.
    pub request_timeout: Duration,
    /// How many aggregates the command handler keeps in memory.
    pub cache_capacity: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            stream: "WASL_EVENTS".to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            source: wasl_events::headers::DEFAULT_SOURCE.to_owned(),
            max_conflict_retries: 8,
            max_unsettled_retries: 5,
            request_timeout: Duration::from_secs(5),
            cache_capacity: 10_000,
        }
    }
}

/// All event subjects.
pub const EVENT_SUBJECTS: &str = "wasl.evt.>";
