//! The nats-server of one benchmark run: a temporary one (the test kit's [`NatsServer`]: a free
//! loopback port, never 4222, a store in a temporary directory, killed and removed on `Drop`,
//! also when the run fails or is interrupted), or one the operator names by URL.

use crate::error::BenchError;
use std::path::Path;
use std::time::Duration;
use wasl_testkit::NatsServer;

/// A running temporary nats-server.
#[derive(Debug)]
pub struct TempServer {
    server: NatsServer,
    pid: u32,
}

impl TempServer {
    /// Starts `binary` (found by [`wasl_nats_server::find_nats_server`]) with JetStream and
    /// waits until it is ready. With `sync_always`, JetStream fsyncs every write before
    /// acknowledging it.
    pub fn start(binary: &Path, sync_always: bool) -> Result<Self, BenchError> {
        let mut server = NatsServer::builder()
            .binary(binary)
            .sync_always(sync_always)
            .startup_timeout(Duration::from_secs(15))
            .start()
            .map_err(BenchError::ServerStart)?;
        let pid = server
            .pid()
            .ok_or_else(|| BenchError::Options("the temporary nats-server exited".to_owned()))?;
        Ok(Self { server, pid })
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// The nats-server of a run, connected: a temporary one started here, or the one at the URL the
/// operator gave.
pub struct RunServer {
    /// The temporary server, `None` for one given by URL.
    pub temporary: Option<TempServer>,
    /// A connection to it.
    pub client: async_nats::Client,
    /// What the report says about it.
    pub report: crate::store::ServerReport,
}

/// Starts a temporary nats-server (fsyncing every write with `sync_always`) unless `url` names
/// one, and connects to it. `label` prefixes the progress line.
pub async fn start_or_connect(
    url: Option<&str>,
    sync_always: bool,
    label: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunServer, BenchError> {
    let temporary = match url {
        Some(_) => None,
        None => {
            let binary = wasl_nats_server::find_nats_server()?;
            progress(&format!(
                "{label}starting a temporary nats-server ({})",
                binary.path.display()
            ));
            let started = tokio::task::spawn_blocking(move || TempServer::start(&binary.path, sync_always))
                .await
                .map_err(|e| BenchError::Load {
                    what: "the task starting the temporary nats-server ended",
                    source: e.into(),
                })??;
            Some(started)
        }
    };
    let url = match (&temporary, url) {
        (Some(server), _) => server.url(),
        (None, Some(url)) => url.to_owned(),
        (None, None) => return Err(BenchError::Options("no server".to_owned())),
    };
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url.as_str())
        .await
        .map_err(|e| BenchError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let report = crate::store::ServerReport {
        version: client.server_info().version,
        url,
        temporary: temporary.is_some(),
        sync_always: temporary.as_ref().map(|_| sync_always),
    };
    Ok(RunServer {
        temporary,
        client,
        report,
    })
}
