//! Errors of the follow-up service. Messages name ids, codes and sequences, never contents.

/// Why the service cannot go on (it retries what may pass).
#[derive(Debug, thiserror::Error)]
pub enum FollowupError {
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// The database cannot be opened.
    #[error("cannot open the follow-up database: {0}")]
    Connect(#[from] wasl_projections::ConnectError),
    /// The database refused or failed a statement.
    #[error("follow-up database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("follow-up migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The event log cannot be read now.
    #[error("the event log is unavailable: {0}")]
    Log(String),
    /// The log no longer holds the event at the service's checkpoint.
    #[error("the follow-up service does not match the event log: {0}")]
    Diverged(String),
}

impl From<wasl_store::StoreError> for FollowupError {
    fn from(err: wasl_store::StoreError) -> Self {
        Self::Log(err.to_string())
    }
}
