//! How the router and the command service run. Plain structs without a command-line parser: the
//! `wasl` binary maps its flags onto them. Defaults suit the embedded single-node set-up
//! (`wasl up`).

use std::time::Duration;
use wasl_store::StoreConfig;

/// Settings of the router (the partner feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// The event log it follows (stream name, request time-out).
    pub events: StoreConfig,
    /// Base URL of the HTTP API; the claim check of every partner message is
    /// `<api_base_url>/v1/referrals/<id>`. A trailing `/` is ignored.
    pub api_base_url: String,
    /// The KV bucket holding the router's checkpoint (last source sequence fully routed).
    pub checkpoint_bucket: String,
    /// Settings of each organisation's `WASL_OUT_<org>` stream, when the router creates it.
    pub out_streams: OutStreamConfig,
    /// Most events routed per batch (acknowledgements awaited together, one checkpoint write).
    pub batch_size: usize,
    /// How many referrals' states the router keeps in memory; a miss rereads the referral's
    /// events from the log.
    pub cache_capacity: usize,
    /// Pause after a transient error (NATS unavailable, an out stream moved) before resuming
    /// from the checkpoint.
    pub retry_delay: Duration,
    /// How often the log is checked to still hold the event at the checkpoint (also on every
    /// start), and how often a router stopped by a log that went backwards checks again.
    pub check_interval: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            events: StoreConfig::default(),
            api_base_url: "http://127.0.0.1:8080".to_owned(),
            checkpoint_bucket: "WASL_ROUTER".to_owned(),
            out_streams: OutStreamConfig::default(),
            batch_size: 256,
            cache_capacity: 100_000,
            retry_delay: Duration::from_millis(500),
            check_interval: Duration::from_secs(5),
        }
    }
}

/// The limits of an organisation's feed stream. Old messages are discarded first when a limit
/// is reached, so a partner that never reads cannot stop the router; the newest message always
/// stays, which the exactly-once design relies on (see `docs/partners.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutStreamConfig {
    /// Replicas: 1 for a single server, 3 in production.
    pub replicas: usize,
    /// Most bytes kept per organisation (-1: no limit).
    pub max_bytes: i64,
    /// Most messages kept per organisation (-1: no limit).
    pub max_messages: i64,
    /// How long a message is kept (`Duration::ZERO`: for ever). With an age limit, a feed
    /// that stays quiet for longer than it can become empty; see `docs/partners.md` for what
    /// that means for a full replay.
    pub max_age: Duration,
    /// JetStream's duplicate window (`Nats-Msg-Id`); the exactly-once guarantee does not rely
    /// on it beyond in-flight resends.
    pub duplicate_window: Duration,
}

impl Default for OutStreamConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            // No byte limit by default: JetStream reserves a stream's max_bytes in its storage
            // up front, so 1 GiB per feed stopped creating feeds after a few dozen
            // organisations on an ordinary disk. A message count limit reserves nothing.
            max_bytes: -1,
            max_messages: 1_000_000,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Settings of the partner command service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandServiceConfig {
    /// The queue group every instance joins, so each request is handled once.
    pub queue_group: String,
    /// Most requests handled at the same time by one instance.
    pub max_in_flight: usize,
}

impl Default for CommandServiceConfig {
    fn default() -> Self {
        Self {
            queue_group: "wasl-partner-commands".to_owned(),
            max_in_flight: 64,
        }
    }
}
