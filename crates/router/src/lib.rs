//! Wasl's router: each referral event to the receiving organisation's own JetStream feed, and
//! partner commands over NATS. See `docs/partners.md` for the wire contract.
//!
//! - [`Router`] follows `WASL_EVENTS` from its checkpoint and publishes one
//!   [`PartnerMessage`] per referral event to `WASL_OUT_<org>` (subject
//!   `wasl.out.<org>.referral.<id>`), exactly once per feed across restarts and replays. It
//!   creates an organisation's feed when the organisation is registered, or before its first
//!   message. The message carries codes, ids and times only and a claim check to the audited
//!   HTTP API — no name, phone, address, free text or survivor code; nothing is ever unsealed.
//!   When a case's personal data is erased, every organisation that received one of its
//!   referrals gets one [`RedactionNotice`] naming them (`wasl.out.<org>.redaction.<id>`), with
//!   the same exactly-once guarantee; the case index that finds them is `cases`.
//! - [`CommandService`] answers `wasl.cmd.<org>.referral.<id>.<verb>` requests with the
//!   domain's own referral commands, idempotent by the partner's `command_id`.
//!
//! Both are libraries without a command-line parser: the `wasl` binary builds a
//! [`RouterConfig`] / [`CommandServiceConfig`] and calls [`run`] / [`run_commands`] with a
//! shutdown future. Names of streams and subjects come from `wasl_events::partner`.

pub mod cases;
pub mod commands;
pub mod config;
pub mod error;
pub mod message;
mod outs;
pub mod parked;
pub mod router;

pub use cases::bucket_name as case_index_bucket;
pub use commands::{CommandMetrics, CommandReply, CommandService, ReplyError, Verb, run_commands};
pub use config::{CommandServiceConfig, OutStreamConfig, RouterConfig};
pub use error::RouterError;
pub use message::{FeedMessage, NotAPartnerMessage, PartnerClient, PartnerDeadline, PartnerMessage, RedactionNotice};
pub use outs::{keep_partner_consumers, out_stream_config};
pub use parked::{ParkedEvent, Resolution};
pub use router::{Router, RouterMetrics, run};
