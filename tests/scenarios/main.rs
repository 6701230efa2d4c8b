//! Cross-crate scenarios: every command is decided by the domain, its events are encoded as
//! protobuf with CloudEvents headers into an in-memory log (a stand-in for the JetStream store,
//! which has its own issue), and every decision loads its state by decoding that log — so what
//! the domain decides is exactly what a replay of the stored bytes rebuilds.

mod journey;
mod log;
