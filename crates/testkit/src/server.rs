//! One nats-server with JetStream on free loopback ports and a temporary store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::node::{Node, Settings, free_ports};
use crate::{Error, HttpResponse, NatsBinary, Result, find_nats_server};

/// How many times a start is tried with fresh ports when a picked port was taken meanwhile.
pub(crate) const PORT_ATTEMPTS: usize = 3;

/// A running nats-server with JetStream, for one test.
///
/// Listens on `127.0.0.1` on a free client port and a free monitoring port, stores in a temporary
/// directory, and is killed (and its directory removed) on `Drop`. [`restart`](Self::restart)
/// simulates a crash and brings it back on the same store and ports.
#[derive(Debug)]
pub struct NatsServer {
    // Field order matters: the node (the process) is dropped before the directory it writes to.
    node: Node,
    startup_timeout: Duration,
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server with the default settings; see [`NatsServerBuilder`].
    pub fn start() -> Result<Self> {
        Self::builder().start()
    }

    /// A builder for a server with other settings.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.node.client_port)
    }

    /// The client port; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// The HTTP monitoring port (`/healthz`, `/varz`, `/jsz`, …).
    pub fn monitoring_port(&self) -> u16 {
        self.node.http_port
    }

    /// `GET path` on the monitoring port, e.g. `server.monitoring_get("/varz")`.
    pub fn monitoring_get(&self, path: &str) -> Result<HttpResponse> {
        self.node.monitoring_get(path)
    }

    /// The JetStream store directory (`store_dir`; the server keeps its files in a `jetstream`
    /// folder inside it). It stays the same across restarts.
    pub fn store_dir(&self) -> &Path {
        &self.node.store_dir
    }

    /// The temporary directory holding the config, store and log; removed on `Drop`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file the server runs with.
    pub fn config_path(&self) -> &Path {
        &self.node.config_path
    }

    /// The server's log file (all runs, appended).
    pub fn log_path(&self) -> &Path {
        &self.node.log_path
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.node.log_tail(lines)
    }

    /// The binary in use and its version.
    pub fn binary(&self) -> &NatsBinary {
        &self.node.binary
    }

    /// The process id while the server runs.
    pub fn pid(&mut self) -> Option<u32> {
        self.node.pid()
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.node.is_running()
    }

    /// Stops the server like a crash: SIGKILL, then waits for the process to be gone. Nothing is
    /// flushed; with [`NatsServerBuilder::sync_always`] every acknowledged write is on disk anyway.
    pub fn stop(&mut self) -> Result<()> {
        self.node.kill()
    }

    /// Stops the server cleanly (SIGTERM), giving it the startup timeout to shut down before it
    /// is killed.
    pub fn stop_gracefully(&mut self) -> Result<()> {
        self.node.stop_gracefully(self.startup_timeout)
    }

    /// Starts the server again on the same store, config and ports, and waits until it is ready
    /// (streams recovered: `/healthz` answers ok). Does nothing to a server that is running.
    pub fn start_again(&mut self) -> Result<()> {
        self.node.spawn()?;
        self.node.wait_ready(self.startup_timeout, true)
    }

    /// Crash and recover: [`stop`](Self::stop) (SIGKILL) then [`start_again`](Self::start_again).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Clean restart: [`stop_gracefully`](Self::stop_gracefully) then
    /// [`start_again`](Self::start_again).
    pub fn restart_gracefully(&mut self) -> Result<()> {
        self.stop_gracefully()?;
        self.start_again()
    }
}

/// Settings for a [`NatsServer`]; [`start`](Self::start) finds the binary, starts the server and
/// waits until it is ready.
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    binary: Option<PathBuf>,
    settings: Settings,
    startup_timeout: Duration,
}

impl Default for NatsServerBuilder {
    fn default() -> Self {
        Self {
            binary: None,
            settings: Settings::default(),
            startup_timeout: Duration::from_secs(10),
        }
    }
}

impl NatsServerBuilder {
    /// Use this binary instead of looking for one (it is still version-checked). Tests use this
    /// rather than setting `NATS_SERVER_BIN`, which would leak into tests running in parallel.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// `sync_interval: always`: JetStream fsyncs after every write, so a SIGKILL loses nothing
    /// acknowledged. Off by default (the server's default is to sync every two minutes).
    pub fn sync_always(mut self, yes: bool) -> Self {
        self.settings.sync_always = yes;
        self
    }

    /// How long to wait for the server to become ready (default 10 s); also the grace period of
    /// a graceful stop.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Lines appended to the generated config file, in nats-server's config syntax (for example
    /// `max_payload: 2MB`).
    pub fn extra_config(mut self, config: impl Into<String>) -> Self {
        self.settings.extra_config = config.into();
        self
    }

    /// Finds and checks the binary, starts the server and waits until it accepts clients and
    /// JetStream is ready.
    pub fn start(self) -> Result<NatsServer> {
        let binary = match &self.binary {
            Some(path) => NatsBinary::check(path)?,
            None => find_nats_server()?,
        };
        let mut attempt = 1;
        loop {
            match self.try_start(&binary) {
                Err(e) if e.is_port_clash() && attempt < PORT_ATTEMPTS => attempt += 1,
                result => return result,
            }
        }
    }

    fn try_start(&self, binary: &NatsBinary) -> Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("wasl-nats-")
            .tempdir()
            .map_err(Error::io("cannot create a temporary directory"))?;
        let ports = free_ports(2)?;
        let node = Node::prepare(
            "wasl-test",
            binary,
            dir.path(),
            ports[0],
            ports[1],
            None,
            &self.settings,
        )?;
        let mut server = NatsServer {
            node,
            startup_timeout: self.startup_timeout,
            dir,
        };
        server.start_again()?;
        Ok(server)
    }
}
