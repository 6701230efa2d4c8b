//! The test kit's one error type.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a nats-server could not be found, checked, started or reached.
///
/// `Debug` prints the variant's name and the full message, so a test's `.unwrap()` shows the
/// advice (run `./scripts/install-nats-server`) and the server's log tail readably.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable nats-server binary: none found, one too old, or one whose version cannot be
    /// read. The message says what to install.
    #[error(transparent)]
    Binary(#[from] wasl_nats_server::Error),

    /// The server process exited before it became ready.
    #[error("nats-server {name} exited during startup ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// The node's name (`single` or `n0`, `n1`, …).
        name: String,
        /// How it exited.
        status: String,
        /// The end of its log.
        log_tail: String,
    },

    /// The server did not become ready within the startup timeout.
    #[error("nats-server {name} not ready after {timeout:?} (last seen: {last_seen}); last log lines:\n{log_tail}")]
    NotReady {
        /// The node's name, or `cluster` when the cluster as a whole was waited for.
        name: String,
        /// How long was waited.
        timeout: Duration,
        /// What the last readiness probe saw.
        last_seen: String,
        /// The end of its log (or of every node's log for a cluster).
        log_tail: String,
    },

    /// A cluster must have at least two nodes.
    #[error("a cluster needs at least 2 nodes, not {0}")]
    ClusterSize(usize),

    /// Any other input/output failure: spawning, writing the config, talking to the server.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Error::Binary(_) => "Binary",
            Error::Exited { .. } => "Exited",
            Error::NotReady { .. } => "NotReady",
            Error::ClusterSize(_) => "ClusterSize",
            Error::Io { .. } => "Io",
        };
        write!(f, "{variant}: {self}")
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// Whether the server died because a port it was given had been taken by another process in
    /// the moment between [`crate::NatsServer`] picking it and the server binding it.
    pub(crate) fn is_port_clash(&self) -> bool {
        matches!(self, Error::Exited { log_tail, .. } if log_tail.contains("address already in use"))
    }
}
