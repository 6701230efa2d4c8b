//! Store and command errors. Messages never contain event contents.

use wasl_domain::DomainError;

/// Something went wrong talking to JetStream or reading what it stores.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum StoreError {
    /// The stream exists with settings the store cannot work with.
    #[error("stream {stream} exists with an incompatible configuration: {differences}")]
    IncompatibleStream {
        stream: String,
        /// Each difference as `field: expected X, found Y`.
        differences: String,
    },
    /// NATS or JetStream cannot serve the request now (no connection, no quorum, no stream).
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// A stored message cannot be read as an event. Never skipped: the reader must stop or park it.
    #[error("the message at stream sequence {sequence} is not a readable event: {reason}")]
    Undecodable {
        /// Its stream sequence.
        sequence: u64,
        /// Why (field names and codes only, never contents).
        reason: String,
    },
    /// JetStream answered with an error the store does not expect.
    #[error("JetStream refused the request: {description} (code {code}, error {err_code})")]
    Api {
        /// HTTP-like status.
        code: u16,
        /// JetStream's error code.
        err_code: u32,
        /// JetStream's description.
        description: String,
    },
    /// An event could not be prepared for storage.
    #[error("an event cannot be stored: {0}")]
    Encode(String),
}

impl StoreError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The aggregate does not exist.
    #[error("not found")]
    NotFound,
    /// The domain refused the command.
    #[error("refused: {0}")]
    Rejected(DomainError),
    /// Other commands kept changing the aggregate; the client may retry with the current version.
    #[error("conflict: the aggregate changed concurrently (now at version {current_version})")]
    Conflict {
        /// The aggregate's version when the handler gave up.
        current_version: u64,
    },
    /// The caller asked for a version the aggregate is not at (an HTTP `If-Match` that no
    /// longer matches); nothing was decided.
    #[error("the aggregate is at version {current_version}, not the expected one")]
    VersionMismatch {
        /// The aggregate's version.
        current_version: u64,
    },
    /// The event store cannot serve the command now; nothing was stored.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another store failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => Self::Unavailable(msg),
            other => Self::Store(other),
        }
    }
}
