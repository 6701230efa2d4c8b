//! Connecting the command's services to NATS, with or without an NKey.

use async_nats::ConnectErrorKind;
use std::error::Error;
use std::path::Path;

/// Connects to `url` (or a comma-separated list of a cluster's nodes), authenticating with the NKey seed in `nkey` when given (the hub's
/// `hub.nk` or a partner's `<org>.nk` from `wasl nats-config`), replies arriving under
/// `inbox_prefix` when given (a partner's must be `_INBOX_<org>`).
pub async fn connect_with(
    url: &str,
    nkey: Option<&Path>,
    inbox_prefix: Option<String>,
) -> Result<async_nats::Client, ConnectFailure> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(std::time::Duration::from_secs(5));
    if let Some(path) = nkey {
        let seed = std::fs::read_to_string(path)
            .map_err(|e| ConnectFailure::Seed(format!("cannot read the NKey seed file {}: {e}", path.display())))?;
        options = options.nkey(seed.trim().to_owned());
    }
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    // One URL or a comma-separated list (the nodes of a cluster). A URL can carry a password:
    // name the failure, not the URL.
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    options.connect(servers).await.map_err(ConnectFailure::Nats)
}

/// Why connecting to NATS failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// The NKey seed file could not be read.
    #[error("{0}")]
    Seed(String),
    /// The server refused or did not answer.
    #[error("cannot connect to NATS: {0}")]
    Nats(async_nats::ConnectError),
}

/// A start-up failure that may pass if the service tries again shortly: NATS refusing or not
/// answering, a new stream without a leader yet, a database not accepting connections.
pub trait Transient {
    /// Whether trying again shortly may succeed.
    fn is_transient(&self) -> bool;
}

impl Transient for ConnectFailure {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Nats(e) if matches!(e.kind(), ConnectErrorKind::TimedOut | ConnectErrorKind::Io))
    }
}

impl Transient for wasl_store::StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl Transient for wasl_projections::ProjectionError {
    fn is_transient(&self) -> bool {
        wasl_projections::ProjectionError::is_transient(self)
    }
}

impl Transient for wasl_router::RouterError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl Transient for wasl_webhooks::WebhookError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl Transient for wasl_api::StartError {
    fn is_transient(&self) -> bool {
        wasl_api::StartError::is_transient(self)
    }
}

/// An error of several possible kinds: transient when it is one of the kinds above and that
/// one is.
impl Transient for Box<dyn Error> {
    fn is_transient(&self) -> bool {
        let error = self.as_ref();
        error
            .downcast_ref::<ConnectFailure>()
            .is_some_and(Transient::is_transient)
            || error
                .downcast_ref::<wasl_store::StoreError>()
                .is_some_and(Transient::is_transient)
            || error
                .downcast_ref::<wasl_projections::ProjectionError>()
                .is_some_and(Transient::is_transient)
    }
}

/// Runs `attempt` until it succeeds, again every 2 s for up to a minute while it fails with a
/// [`Transient`] error — a cluster electing a new stream's leader answers nothing for a moment —
/// and returns any other failure at once.
pub async fn patiently<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display + Transient,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                if !e.is_transient() || tries >= 30 {
                    return Err(e);
                }
                tries += 1;
                tracing::warn!(error = %e, "{what} cannot start yet; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}
