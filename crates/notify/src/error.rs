//! Errors of the notification service. Messages name ids, codes and sequences, never an
//! address or anything a mail said.

/// Why the service cannot start or go on (it retries what may pass).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// The database cannot be opened.
    #[error("cannot open the notification database: {0}")]
    Connect(#[from] wasl_projections::ConnectError),
    /// The database refused or failed a statement.
    #[error("notification database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("notification migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The event log cannot be read now.
    #[error("the event log is unavailable: {0}")]
    Log(String),
    /// The accounts log (`WASL_ACCOUNTS`) cannot be read now.
    #[error("the accounts log is unavailable: {0}")]
    Accounts(String),
    /// The log no longer holds the event at the service's checkpoint.
    #[error("the notification service does not match the event log: {0}")]
    Diverged(String),
}

impl From<wasl_store::StoreError> for NotifyError {
    fn from(err: wasl_store::StoreError) -> Self {
        Self::Log(err.to_string())
    }
}

/// Why a notification was not delivered. Kinds and SMTP status codes only: a server's reply
/// text may quote the recipient's address, so it is never kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// It may pass later (connection refused or lost, timeout, a 4xx reply): retried.
    #[error("delivery failed for now ({kind}{})", code.map(|c| format!(", {c}")).unwrap_or_default())]
    Transient {
        /// What failed: `connection`, `timeout`, `tls`, `reply`.
        kind: &'static str,
        /// The SMTP reply code, when there was one.
        code: Option<u16>,
    },
    /// The server refused it for good (a 5xx reply), or the message cannot be built: retried a
    /// few times (a misconfiguration may be fixed), then given up.
    #[error("delivery refused ({kind}{})", code.map(|c| format!(", {c}")).unwrap_or_default())]
    Permanent {
        /// What failed: `reply`, `address`, `message`, `client`.
        kind: &'static str,
        /// The SMTP reply code, when there was one.
        code: Option<u16>,
    },
}

impl DeliveryError {
    /// Whether trying again later may help without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Its kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transient { kind, .. } | Self::Permanent { kind, .. } => kind,
        }
    }
}
