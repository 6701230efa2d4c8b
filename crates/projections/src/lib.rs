//! Wasl's read models. The projector follows the event log (`WASL_EVENTS`) and keeps tables in
//! PostgreSQL (production) or one SQLite file (embedded default) that caseworkers, partners and
//! coordinators read: `cases`, `referrals`, `referral_history` and the directory
//! (`organisations`, `services`); the partner inbox and the caseworker worklist are queries over
//! them. The tables always converge to exactly what the log says:
//!
//! - each projection's checkpoint commits in the same transaction as its rows, so a restart at
//!   any moment resumes without a gap or a double ([`Projector`]);
//! - an event that cannot be decoded or applied is parked with its error, never skipped, and can
//!   be retried after a fix ([`parked`]);
//! - a projection can be rebuilt from sequence 1 beside the live tables and swapped in when it
//!   has caught up ([`rebuild()`]);
//! - a projector stops — and says why, in `projection_state.halted` and `/readyz` — when the
//!   log no longer holds the event at its checkpoint (a wiped store, an older backup restored
//!   under the read models), instead of silently skipping every new event up to its old
//!   checkpoint;
//! - a query can wait until the projections reach the position a command returned
//!   ([`ReadModels::wait_for`]).
//!
//! Personal fields stay sealed in the tables, as in the log; they are emptied when a case's
//! personal data is erased. `docs/read-models.md` describes the tables and the operations.

pub mod apply;
mod db;
mod error;
pub mod feed;
pub mod parked;
mod projection;
mod projector;
pub mod query;
pub mod rebuild;
pub mod rows;
mod schema;
mod sql;
mod wait;

pub use db::{Backend, ConnectError, ReadModels, ReadModelsConfig, connect};
pub use error::ProjectionError;
pub use projection::Projection;
pub use projector::{Projector, ProjectorConfig, ProjectorMetrics};
pub use rebuild::{Progress, RebuildReport, rebuild, replay_until};
pub use schema::{LiveState, Standing, live_state, standings};
