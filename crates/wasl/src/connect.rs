//! Connecting the command's services to NATS, with or without an NKey.

use std::error::Error;
use std::path::Path;

/// Connects to `url` (or a comma-separated list of a cluster's nodes), authenticating with the NKey seed in `nkey` when given (the hub's
/// `hub.nk` or a partner's `<org>.nk` from `wasl nats-config`), replies arriving under
/// `inbox_prefix` when given (a partner's must be `_INBOX_<org>`).
pub async fn connect_with(
    url: &str,
    nkey: Option<&Path>,
    inbox_prefix: Option<String>,
) -> Result<async_nats::Client, Box<dyn Error>> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(std::time::Duration::from_secs(5));
    if let Some(path) = nkey {
        let seed = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the NKey seed file {}: {e}", path.display()))?;
        options = options.nkey(seed.trim().to_owned());
    }
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    // One URL or a comma-separated list (the nodes of a cluster). A URL can carry a password:
    // name the failure, not the URL.
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    options
        .connect(servers)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}").into())
}

/// Runs `attempt` until it succeeds, again every 2 s for up to a minute while it fails because
/// NATS is unavailable or timed out — a cluster electing a new stream's leader answers nothing
/// for a moment — and returns any other failure at once.
pub async fn patiently<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let text = e.to_string();
                let transient = text.contains("unavailable") || text.contains("timed out");
                if !transient || tries >= 30 {
                    return Err(e);
                }
                tries += 1;
                tracing::warn!(error = %text, "{what} cannot start yet; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}
