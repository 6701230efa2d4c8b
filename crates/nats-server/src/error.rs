//! What can keep the server from starting.

use crate::Holder;
use std::path::PathBuf;

/// Why the server (or its store) cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No nats-server binary where it was looked for.
    #[error(
        "no nats-server at {path}: run ./scripts/install-nats-server (or set NATS_SERVER_BIN to a nats-server binary)"
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Another process holds the data directory.
    #[error(
        "{dir} is in use by {}; stop it first (Wasl never opens a store another process may still write)",
        Holder::describe_all(holders)
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The processes that have its lock file open (empty if they could not be seen).
        holders: Vec<Holder>,
    },
    /// Another process listens on the port the server needs.
    #[error(
        "port {port} on 127.0.0.1 is in use by {}; stop it, or choose another port",
        Holder::describe_all(holders)
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// The processes listening on it (empty if they could not be seen).
        holders: Vec<Holder>,
    },
    /// The server did not start or did not become ready.
    #[error("nats-server did not start: {reason}")]
    Start {
        /// Why, with the end of its log.
        reason: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
