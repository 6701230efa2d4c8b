//! Wasl's follow-up service: the loop moves on its own.
//!
//! It follows the event log from its own checkpoint (kept with its tables in one transaction, as
//! the projector does) and acts only through the event store's command path:
//!
//! - **Process managers.** Consent withdrawn → every open referral that rested on that consent is
//!   cancelled with `consent_withdrawn` (the router then tells its partner to redact); a case
//!   closed with its open referrals → each cancelled with `case_closed`.
//! - **Deadlines from events, not polling.** `requested` starts the acknowledgement and decision
//!   deadlines, `completed`/`failed` the follow-up deadline, per the [`DeadlinePolicy`]; the event
//!   that meets a deadline drops it. When one passes, the referral is marked overdue; after the
//!   policy's number of overdues it is escalated to the coordinators, and optionally, after a
//!   number of escalations, cancelled as expired.
//!
//! - **Retention on a schedule.** With a [`RetentionSchedule`], the existing retention policy
//!   runs daily (the first time at start): a dry run that reports what is due, or, given the
//!   vault, the erasure of each due case, recorded as its `personal_data_erased` event.
//!
//! Exactly once: what the service decides is written to an outbox in the same transaction as
//! the checkpoint (or the deadline it fires), with a **deterministic command id** derived from
//! what triggered it; the outbox is sent until the store answers. A crash, a replay or two
//! instances at once send a command again under the same id, and the store answers the original
//! outcome instead of appending twice.
//!
//! Time comes from one injected [`Clock`]: tests move a [`TestClock`]; nothing sleeps on the
//! real clock to wait for a deadline. See `docs/followup.md`.

mod action;
pub mod clock;
mod db;
mod error;
pub mod policy;
mod service;

pub use action::{Action, command_id};
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use error::FollowupError;
pub use policy::{DeadlinePolicy, PolicyError, Windows};
pub use service::{
    Followup, FollowupConfig, FollowupMetrics, Pending, RetentionSchedule, SYSTEM_ORG, SYSTEM_USER, reset,
};
