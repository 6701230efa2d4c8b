//! Errors of the read models. Messages name tables, projections, fields and codes, never the
//! contents of a row or an event.

/// Something went wrong reading or writing the read models.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum ProjectionError {
    /// The database refused or failed a statement.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("read-model migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no backend Wasl supports.
    #[error("unsupported read-model database URL (use postgres://… or sqlite:…): {0}")]
    UnsupportedUrl(String),
    /// No projection has this name.
    #[error("no projection is called {0:?} (known: cases, referrals, directory, dashboard)")]
    UnknownProjection(String),
    /// The event log cannot be read now.
    #[error("the event log is unavailable: {0}")]
    Log(String),
    /// A projection's bookkeeping row is missing or inconsistent.
    #[error("projection {projection}: {reason}")]
    State {
        projection: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A stored row cannot be read back (a column holds a value Wasl never writes).
    #[error("table {table}: a stored row is unreadable: {reason}")]
    Corrupt {
        table: &'static str,
        /// Why (column and problem, never the value).
        reason: String,
    },
    /// The event log no longer holds what the read models were built from (it was replaced or
    /// cut short): the projector stops projecting until the log is restored or the read models
    /// are rebuilt from it (see `docs/operations.md`).
    #[error("the read models do not match the event log: {0}")]
    Diverged(String),
    /// A query was given a cursor that is not one this API issued.
    #[error("the page cursor is not valid")]
    BadCursor,
    /// Waiting for a projection to reach a stream position took longer than allowed.
    #[error("projection {projection} reached position {reached}, not {wanted}, within the time allowed")]
    Timeout {
        /// The slowest projection waited for.
        projection: &'static str,
        /// The position it had reached.
        reached: u64,
        /// The position waited for.
        wanted: u64,
    },
}

impl ProjectionError {
    /// Whether trying again shortly may succeed: the log did not answer, or the database could
    /// not be reached (refused, timed out, no free connection).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Log(_) | Self::Database(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
        )
    }

    pub(crate) fn log(err: impl std::fmt::Display) -> Self {
        Self::Log(err.to_string())
    }
}
