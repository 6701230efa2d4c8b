//! A temporary nats-server with JetStream for one benchmark run: a free loopback port (never
//! 4222), a store in a temporary directory, killed and removed on `Drop` — also when the run
//! fails or is interrupted.

use crate::error::BenchError;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The port never used: another nats-server may own it.
const NATS_DEFAULT_PORT: u16 = 4222;
/// How long the server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many fresh ports are tried when a picked port was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// The binary to start, version-checked: see [`wasl_nats_server::find_nats_server`].
pub fn find_binary() -> Result<PathBuf, BenchError> {
    Ok(wasl_nats_server::find_nats_server()?.path)
}

/// A running temporary nats-server.
#[derive(Debug)]
pub struct TempServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl TempServer {
    /// Starts `binary` with JetStream on a free port and waits until it accepts connections.
    /// With `sync_always`, JetStream fsyncs every write before acknowledging it.
    pub fn start(binary: &Path, sync_always: bool) -> Result<Self, BenchError> {
        let mut attempt = 1;
        loop {
            match Self::try_start(binary, sync_always) {
                Err(BenchError::ServerStart { reason })
                    if attempt < PORT_ATTEMPTS && reason.contains("address already in use") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn try_start(binary: &Path, sync_always: bool) -> Result<Self, BenchError> {
        let failed = |what: &str, err: std::io::Error| BenchError::ServerStart {
            reason: format!("{what}: {err}"),
        };
        let dir = tempfile::Builder::new()
            .prefix("wasl-bench-nats-")
            .tempdir()
            .map_err(|e| failed("cannot create a temporary directory", e))?;
        let port = free_port().map_err(|e| failed("cannot find a free port", e))?;
        let store_dir = dir.path().join("jetstream");
        let config_path = dir.path().join("nats-server.conf");
        fs::write(&config_path, config(port, &store_dir, sync_always))
            .map_err(|e| failed("cannot write the server's config", e))?;
        let log = File::create(dir.path().join("nats-server.log"))
            .map_err(|e| failed("cannot create the server's log", e))?;
        let log2 = log.try_clone().map_err(|e| failed("cannot open the server's log", e))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| failed(&format!("cannot run {}", binary.display()), e))?;
        // From here on, Drop kills the process and removes the directory.
        let mut server = Self { child, port, dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), BenchError> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::ServerStart {
                    reason: format!("it exited ({status}); its log ends with:\n{}", self.log_tail()),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::ServerStart {
                    reason: format!(
                        "it did not accept connections within {STARTUP_TIMEOUT:?}; its log ends with:\n{}",
                        self.log_tail()
                    ),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the server's log (its last 4 KiB).
    pub fn log_tail(&self) -> String {
        wasl_nats_server::log_tail(&self.dir.path().join("nats-server.log"))
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        // The directory (a field) is removed after this, once the process is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port other than 4222. Another process could take it before the server binds
/// it; [`TempServer::start`] then tries again.
fn free_port() -> std::io::Result<u16> {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if port != NATS_DEFAULT_PORT {
            return Ok(port);
        }
    }
}

/// The server's configuration.
fn config(port: u16, store_dir: &Path, sync_always: bool) -> String {
    let store_dir = store_dir.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    let sync = if sync_always { "  sync_interval: always\n" } else { "" };
    format!("listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{store_dir}\"\n{sync}}}\n")
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
            let binary = find_binary()?;
            progress(&format!(
                "{label}starting a temporary nats-server ({})",
                binary.display()
            ));
            let started = tokio::task::spawn_blocking(move || TempServer::start(&binary, sync_always))
                .await
                .map_err(|e| BenchError::ServerStart { reason: e.to_string() })??;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_listens_on_loopback_and_syncs_only_when_asked() {
        let c = config(5000, Path::new("/tmp/a \"b\""), true);
        assert!(c.contains("listen: \"127.0.0.1:5000\""), "{c}");
        assert!(c.contains(r#"store_dir: "/tmp/a \"b\"""#), "{c}");
        assert!(c.contains("sync_interval: always"));
        assert!(!config(5000, Path::new("/tmp"), false).contains("sync_interval"));
    }

    #[test]
    fn a_free_port_is_never_the_default_one() {
        for _ in 0..20 {
            assert_ne!(free_port().ok(), Some(NATS_DEFAULT_PORT));
        }
    }
}
