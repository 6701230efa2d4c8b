//! Why a benchmark could not run. Messages name what failed and never contain event contents.

/// A benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options make no sense together.
    #[error("invalid options: {0}")]
    Options(String),
    /// No usable nats-server binary (none found, or one too old); pass --nats-url to use a
    /// running server instead.
    #[error("{0} (or pass --nats-url)")]
    Server(#[from] wasl_nats_server::Error),
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
