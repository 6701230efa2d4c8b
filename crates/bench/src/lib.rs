//! Wasl's benchmarks, run against a real nats-server. `wasl bench store` calls [`store::run`].
//!
//! - [`store`] measures, in one process and one run: raw JetStream publishing of messages shaped
//!   like Wasl events, the event store's command handler (`EventStore::execute`) under the same
//!   concurrency, and the two ways of loading an aggregate (direct gets and an ordered consumer).
//!   See `docs/performance.md` for how to read the numbers and what was measured.
//! - [`server`] starts a temporary nats-server for a run (or the run uses one given by URL).
//!
//! The benchmarks write synthetic data only (`TEST-0001`, "Test Health Partner"), into streams
//! of their own (`BENCH_RAW`, `WASL_BENCH`).

pub mod error;
pub mod server;
pub mod stats;
pub mod store;

pub use error::BenchError;
pub use store::{StoreBenchOptions, StoreBenchReport};
