//! Backup and restore errors. They name streams, sequences and files, never message contents
//! (the log holds sealed personal data, the webhook bucket sealed signing secrets).

use std::path::PathBuf;

/// Why a backup or a restore stopped.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum BackupError {
    /// NATS cannot be reached or refused a request that concerns no single stream.
    #[error("NATS is unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing one stream failed.
    #[error("stream {stream}{}: {reason}", at(.sequence))]
    Stream {
        stream: String,
        /// The message's sequence, when the failure concerns one message.
        sequence: Option<u64>,
        /// What happened.
        reason: String,
    },
    /// A local file or directory cannot be read or written.
    #[error("{}: {reason}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The backup's target directory exists and holds something: a backup never overwrites.
    #[error("{} exists and is not empty; choose a new directory", .0.display())]
    NotEmpty(PathBuf),
    /// A file of the backup is missing, altered, truncated or not what the manifest says.
    /// Found before anything is written to the server: nothing was restored.
    #[error("{} is not usable: {reason}; nothing was restored", .file.display())]
    Corrupt {
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Streams of the backup exist on the target already. Restore never merges into or
    /// replaces a stream: nothing was restored.
    #[error(
        "the target already has {}; restore only into a server without them (nothing was restored)",
        .0.join(", ")
    )]
    StreamsExist(Vec<String>),
    /// The erasures recorded in the log could not all be applied to the restored data keys.
    /// The keys of erased cases are never written (see `restore`), so nothing erased is readable,
    /// but a case without its erasure marker would read as a missing key instead of "erased".
    #[error("the erasures recorded in the log cannot be applied to the restored keys: {0}")]
    Erasures(String),
    /// A restore failed after it had created streams. It deletes them again, so the target is as
    /// it was and the restore can simply be run again; `left_behind` names those it could not
    /// delete (delete them before restoring again).
    #[error("{cause}; {}", cleanup(.left_behind))]
    Incomplete {
        /// What went wrong.
        cause: Box<BackupError>,
        /// Streams this restore created and could not delete again.
        left_behind: Vec<String>,
    },
}

fn cleanup(left_behind: &[String]) -> String {
    if left_behind.is_empty() {
        "the streams this restore had created were deleted again: the target is as it was".to_owned()
    } else {
        format!(
            "these streams this restore created could not be deleted again; delete them before restoring again: {}",
            left_behind.join(", ")
        )
    }
}

fn at(sequence: &Option<u64>) -> String {
    sequence.map(|s| format!(" at sequence {s}")).unwrap_or_default()
}

impl BackupError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }

    pub(crate) fn stream(stream: &str, sequence: Option<u64>, reason: impl std::fmt::Display) -> Self {
        Self::Stream {
            stream: stream.to_owned(),
            sequence,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            reason: err.to_string(),
        }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            file: file.into(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_failure_names_the_stream_and_the_sequence() {
        let err = BackupError::stream("WASL_EVENTS", Some(42), "wrong last sequence");
        assert_eq!(
            err.to_string(),
            "stream WASL_EVENTS at sequence 42: wrong last sequence"
        );
        let err = BackupError::stream("WASL_AUDIT", None, "cannot create it");
        assert_eq!(err.to_string(), "stream WASL_AUDIT: cannot create it");
    }
}
