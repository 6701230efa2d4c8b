//! Why a benchmark could not run. Messages name what failed and never contain event contents.

use std::path::PathBuf;

/// A benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options make no sense together.
    #[error("invalid options: {0}")]
    Options(String),
    /// There is no nats-server binary where one was expected.
    #[error(
        "no nats-server at {path}: run ./scripts/install-nats-server (or set NATS_SERVER_BIN to a nats-server \
         ≥ 2.12, or pass --nats-url)"
    )]
    ServerMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The temporary nats-server did not start.
    #[error("the temporary nats-server did not start: {reason}")]
    ServerStart {
        /// What went wrong, with the end of the server's log when there is one.
        reason: String,
    },
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A JetStream request of the benchmark itself (stream set-up, raw publish) failed.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The event store failed outside a command (opening, loading).
    #[error("event store: {0}")]
    Store(#[from] wasl_store::StoreError),
    /// A command the benchmark sends, all of which are valid, was not carried out.
    #[error("the {what} command failed: {reason}")]
    Command {
        /// Which command.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The synthetic data could not be built.
    #[error("cannot build the benchmark's data: {0}")]
    Data(String),
    /// A read-model database (SQLite or PostgreSQL) failed.
    #[error("database: {0}")]
    Database(String),
    /// Ctrl-C stopped the run.
    #[error("interrupted")]
    Interrupted,
    /// What was read back is not what was written.
    #[error("check failed: {0}")]
    Check(String),
}
