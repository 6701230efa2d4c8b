//! Router errors. Messages name sequences, streams and organisations, never event contents.

/// Why the router or the command service stopped (or paused and resumed).
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum RouterError {
    /// A stored message is not a readable event. The router parks it (see `crate::parked`).
    #[error("the message at sequence {sequence} of the event log cannot be read: {reason}")]
    Undecodable {
        /// Its sequence in the event log.
        sequence: u64,
        /// Why (field names and codes only).
        reason: String,
    },
    /// A referral event that cannot be routed: the referral's history does not start with
    /// `requested`. Parked like an unreadable event.
    #[error("the referral event at sequence {sequence} has no receiving organisation: {reason}")]
    Unroutable {
        /// Its sequence in the event log.
        sequence: u64,
        reason: String,
    },
    /// The event log no longer holds the event at the router's checkpoint (it was replaced or
    /// cut short); delivery stops until it does again.
    #[error("{0}")]
    Diverged(String),
    /// NATS or JetStream cannot serve a request now; the router retries from its checkpoint.
    #[error("NATS is unavailable: {0}")]
    Unavailable(String),
    /// An out stream changed under the router (another writer, a lost acknowledgement); the
    /// router rereads its position and resumes from the checkpoint.
    #[error("stream {stream} moved: {reason}")]
    OutStreamMoved {
        stream: String,
        /// What was seen.
        reason: String,
    },
    /// A partner message could not be built.
    #[error("a partner message cannot be encoded: {0}")]
    Encode(String),
}

impl RouterError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }

    /// Whether the router stops on this error instead of resuming after a pause.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Encode(_))
    }
}

impl From<wasl_store::StoreError> for RouterError {
    fn from(err: wasl_store::StoreError) -> Self {
        match err {
            wasl_store::StoreError::Undecodable { sequence, reason } => Self::Undecodable { sequence, reason },
            other => Self::Unavailable(other.to_string()),
        }
    }
}
