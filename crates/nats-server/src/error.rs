//! What can keep the server from starting.

use crate::{Holder, Version};
use std::path::PathBuf;

/// Why the server (or its store) cannot be started.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum Error {
    /// No nats-server binary was found in any of the places searched.
    #[error("no nats-server found (searched: {searched}); run ./scripts/install-nats-server")]
    NotFound {
        /// The places that were looked at, in order.
        searched: String,
    },
    /// The binary found is older than [`crate::MIN_VERSION`]; it is refused, never used and never
    /// silently skipped.
    #[error(
        "{} is nats-server {found}, older than the minimum {minimum} (needed for atomic batch publish); \
         run ./scripts/install-nats-server, and unset NATS_SERVER_BIN or point it at the path the script prints",
        .path.display()
    )]
    TooOld {
        /// The binary that was refused.
        path: PathBuf,
        /// The version it reported.
        found: Version,
        /// The oldest version accepted.
        minimum: Version,
    },
    /// `--version` ran but its output names no version that can be read.
    #[error("cannot tell the version of {}: `--version` printed {output:?}", .path.display())]
    UnknownVersion {
        /// The binary that was asked.
        path: PathBuf,
        /// What it printed.
        output: String,
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
