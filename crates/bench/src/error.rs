//! Why a benchmark could not run. Messages name what failed and never contain event contents.

/// The cause of a failure, kept whole so that the cause chain can be printed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A benchmark failed.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum BenchError {
    /// The options make no sense together.
    #[error("invalid options: {0}")]
    Options(String),
    /// No usable nats-server binary (none found, or one too old); pass --nats-url to use a
    /// running server instead.
    #[error("{0} (or pass --nats-url)")]
    Server(#[from] wasl_nats_server::Error),
    /// The temporary nats-server did not start; the cause quotes the end of its log.
    #[error("the temporary nats-server did not start")]
    ServerStart(#[source] wasl_testkit::Error),
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
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
        reason: String,
    },
    /// The synthetic data could not be built.
    #[error("cannot build the benchmark's data: {what}")]
    Data {
        /// What was being built.
        what: String,
        #[source]
        source: BoxError,
    },
    /// The operating system refused a thread, a runtime or a file.
    #[error("cannot {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot {what}")]
    Http {
        /// What was being done.
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The API, served by the benchmark, refused a set-up request.
    #[error("cannot {what} through the API: {answer}")]
    Api {
        /// What was asked.
        what: &'static str,
        /// The answer: status and problem type, or why there was none.
        answer: String,
    },
    /// A task of the load generator ended without its result.
    #[error("{what}")]
    Load {
        /// Which task.
        what: &'static str,
        #[source]
        source: BoxError,
    },
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

impl BenchError {
    /// For `map_err`: the synthetic data named `what` could not be built because of the error.
    pub(crate) fn data<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |source| Self::Data {
            what,
            source: source.into(),
        }
    }
}
