//! Wasl's event store: the JetStream stream `WASL_EVENTS` is the event log, one subject per
//! aggregate instance (`wasl.evt.<case|referral|org>.<id>`).
//!
//! - [`provision`] creates the stream, or checks that an existing one is compatible.
//! - [`append`] writes the events of one command with optimistic concurrency
//!   (`Nats-Expected-Last-Subject-Sequence`), idempotency (`Nats-Msg-Id` from the command id and
//!   the event's index) and, for several events, one atomic batch.
//! - [`load`] reads an aggregate's events back (direct gets or an ordered consumer).
//! - [`EventStore::execute`] is the command handler: load (through a bounded cache) → `decide`
//!   → append; on a lost race it reloads and decides again, a bounded number of times. A command
//!   sent again with the same command id gets the original answer, also long after the stream's
//!   duplicate window, because every event records its command id.
//! - [`subscribe`] follows the stream from a position for projections, the router and followup.
//! - [`continuity`] lets every reader with a checkpoint notice a log that went backwards.
//! - [`follow`] is the checkpointed reader's loop built on both: batches from a checkpoint, each
//!   checked for continuity, unreadable messages handed over to park (the follow-up and
//!   notification services).
//! - [`skips`] holds the operator's decisions that a message in the log is not a Wasl event; until
//!   then a command on an aggregate whose history holds one is refused with
//!   [`StoreError::Undecodable`], never decided on a history the store could not read.
//!
//! Nothing acknowledged is lost or doubled: an append is acknowledged only after JetStream stored
//! it, and an append whose acknowledgement was lost is recognised on retry by its ids.

pub mod aggregate;
pub mod append;
mod cache;
pub mod config;
pub mod continuity;
pub mod error;
pub mod follow;
pub mod handler;
pub mod load;
pub mod provision;
pub mod skips;
pub mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;

pub use aggregate::StoredAggregate;
pub use config::StoreConfig;
pub use error::{CommandError, StoreError};
pub use handler::{CommandMeta, CommandOutcome, EventStore, Loaded, event_id};
