//! Wasl's benchmarks, run against a real nats-server. `wasl bench store` calls [`store::run`],
//! `wasl bench projections` calls [`projections::run`], `wasl bench api` calls [`api::run`],
//! `wasl bench followup` calls [`followup::run`].
//!
//! - [`store`] measures, in one process and one run: raw JetStream publishing of messages shaped
//!   like Wasl events, the event store's command handler (`EventStore::execute`) under the same
//!   concurrency, and the two ways of loading an aggregate (direct gets and an ordered consumer).
//! - [`projections`] measures, on one stream of synthetic events: the raw read rate of the log,
//!   the raw batched insert rate of as many rows into SQLite and PostgreSQL, and the rate of a
//!   full rebuild of every read model on each database.
//! - [`api`] puts the HTTP API, served in this process with the projector beside it, under a
//!   realistic mix of caseworker and partner-system requests from concurrent keep-alive clients,
//!   and compares its command rate with the store's, measured in the same run.
//! - [`partners`] measures the router: the lag from an append to the partner message under a
//!   steady load of referral events addressed to 100 organisations, and its catch-up rate.
//! - [`followup`] runs `wasl followup` as its own process on a log of a million open referrals:
//!   its catch-up rate and peak memory, the delay from ten thousand deadlines falling due in
//!   the same minute to their overdue events, and the time a restart takes to be ready.
//! - [`server`] starts a temporary nats-server for a run (the test kit's, or the run uses one
//!   given by URL); [`probe`] reads CPU time and memory from `/proc`; [`table`] lays out the
//!   reports' tables.
//!
//! See `docs/performance.md` for how to read the numbers and what was measured. The benchmarks
//! write synthetic data only (`TEST-0001`, "Test Health Partner", `wasl_synth`'s network), into
//! streams of their own (`BENCH_RAW`, `WASL_BENCH`, `WASL_BENCH_PROJECTIONS`, `WASL_BENCH_API`, `WASL_BENCH_PARTNERS` and its
//! feeds; `WASL_EVENTS` for [`followup`], on a server that has none) and
//! scratch databases they drop.

pub mod api;
pub mod dashboard;
pub mod error;
pub mod followup;
pub mod partners;
pub mod probe;
pub mod projections;
pub mod server;
pub mod signin;
pub mod stats;
pub mod store;
pub mod table;

pub use api::{ApiBenchOptions, ApiBenchReport};
pub use dashboard::{DashboardBenchOptions, DashboardBenchReport};
pub use error::BenchError;
pub use followup::{FollowupBenchOptions, FollowupBenchReport};
pub use partners::{PartnersBenchOptions, PartnersBenchReport};
pub use projections::{ProjectionsBenchOptions, ProjectionsBenchReport};
pub use store::{StoreBenchOptions, StoreBenchReport};
