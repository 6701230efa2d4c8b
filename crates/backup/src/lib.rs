//! Wasl's backup and restore, tested end to end against real nats-servers, so operators need no
//! other tool (`wasl backup`, `wasl restore`; `docs/deploy.md`, "Backup and restore").
//!
//! - [`backup()`] reads every Wasl stream (`WASL_*` and the buckets `KV_WASL_*`) into one
//!   JSON-lines file each, with a `manifest.json` holding each stream's configuration, range,
//!   count and SHA-256 ([`format`](mod@format)). The data keys (`KV_WASL_KEYS`) only when asked. Streams are
//!   read derived state first — router checkpoint, partner feeds, the rest, the event log, the
//!   keys — so a backup taken while Wasl runs is consistent: whatever a stream refers to is in a
//!   stream read after it.
//! - [`restore()`] checks the whole backup before it touches the server, refuses a target that
//!   already has any of its streams, recreates each stream and republishes its messages in order.
//!   The event log and the audit come back with identical sequence numbers, since the router's
//!   checkpoint, the feeds' `Wasl-Source-Seq`, the read models' checkpoints and the audit chain
//!   point at them. A backup holding keys never brings back the key of a case the log says was
//!   erased, and every erasure is applied again.
//!
//! Read models are not backed up: `wasl projections rebuild` makes them from the restored log.
//! Partners' durable consumers are not either: the router creates them again on start.

mod backup;
mod erasures;
pub mod error;
pub mod format;
mod restore;

pub use backup::{BackupOptions, BackupReport, StreamReport, backup};
pub use error::BackupError;
pub use restore::{ErasureReport, RestoreOptions, RestoreReport, restore};
