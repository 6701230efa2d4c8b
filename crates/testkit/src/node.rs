//! One nats-server process: its config file, ports, store, log, and life cycle. Shared by
//! [`crate::NatsServer`] and [`crate::NatsCluster`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::{self, HttpResponse};
use crate::{Error, NatsBinary, Result, TEST_LOG};
use wasl_nats_server::{ClusterConfig, NatsConfig};

/// How long one readiness probe (an HTTP GET or a TCP connect) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How many log lines an error quotes.
pub(crate) const LOG_TAIL_LINES: usize = 40;
/// Picks `n` distinct free loopback ports (see [`wasl_nats_server::free_ports`]). Another
/// process could take one in the moment before the server binds it; the builders notice that
/// ("address already in use" in the log) and retry with fresh ports.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    wasl_nats_server::free_ports(n).map_err(Error::io("cannot bind a free loopback port"))
}

/// The settings every node of one server or cluster shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) sync_always: bool,
    pub(crate) extra_config: String,
}

/// One nats-server process and everything that survives its restarts (config, ports, store, log).
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) binary: NatsBinary,
    pub(crate) config_path: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) store_dir: PathBuf,
    pub(crate) client_port: u16,
    pub(crate) http_port: u16,
    pub(crate) route_port: Option<u16>,
    child: Option<Child>,
    log_thread: Option<JoinHandle<()>>,
}

/// What one readiness probe saw.
pub(crate) enum Probe {
    Ready,
    NotYet(String),
}

impl Node {
    /// Lays out `dir` (config, store, log) for a node; starts nothing.
    pub(crate) fn prepare(
        name: &str,
        binary: &NatsBinary,
        dir: &Path,
        client_port: u16,
        http_port: u16,
        cluster: Option<&ClusterConfig>,
        settings: &Settings,
    ) -> Result<Self> {
        let store_dir = dir.join("store");
        fs::create_dir_all(&store_dir).map_err(Error::io(format!("cannot create {}", store_dir.display())))?;
        let config_path = dir.join("nats-server.conf");
        let config = NatsConfig {
            written_by: "wasl-testkit for one test run".to_owned(),
            server_name: name.to_owned(),
            port: client_port,
            http_port: Some(http_port),
            store_dir: store_dir.clone(),
            sync_always: settings.sync_always,
            nkey_users: Vec::new(),
            cluster: cluster.cloned(),
            extra: settings.extra_config.clone(),
        };
        fs::write(&config_path, config.render())
            .map_err(Error::io(format!("cannot write {}", config_path.display())))?;
        Ok(Self {
            name: name.to_owned(),
            binary: binary.clone(),
            config_path,
            log_path: dir.join("nats-server.log"),
            store_dir,
            client_port,
            http_port,
            route_port: cluster.map(|c| c.route_port),
            child: None,
            log_thread: None,
        })
    }

    /// Starts the process (without waiting for it to be ready). Its stdout and stderr go, line by
    /// line, to the node's log file and, with `TEST_LOG=1`, to the test's stderr.
    pub(crate) fn spawn(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.reap();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(Error::io(format!("cannot open {}", self.log_path.display())))?;
        let (reader, writer) = io::pipe().map_err(Error::io("cannot create a pipe for the server's log"))?;
        let writer2 = writer.try_clone().map_err(Error::io("cannot clone the log pipe"))?;
        let child = {
            // The Command owns the pipe's write ends; dropping it at the end of this block leaves
            // the child as the only writer, so the log thread sees EOF when the server dies.
            let mut command = Command::new(&self.binary.path);
            command
                .arg("-c")
                .arg(&self.config_path)
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(writer2);
            command.spawn()
        }
        .map_err(Error::io(format!("cannot start {}", self.binary.path.display())))?;
        let prefix = format!("[nats {}] ", self.name);
        let echo = test_log_enabled();
        let thread = thread::Builder::new()
            .name(format!("nats-log-{}", self.name))
            .spawn(move || forward_log(reader, log, &prefix, echo))
            .map_err(Error::io("cannot start the log thread"))?;
        self.child = Some(child);
        self.log_thread = Some(thread);
        Ok(())
    }

    /// Whether the process is alive.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process id while it is running.
    pub(crate) fn pid(&mut self) -> Option<u32> {
        if self.is_running() {
            self.child.as_ref().map(Child::id)
        } else {
            None
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub(crate) fn kill(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            child
                .kill()
                .map_err(Error::io(format!("cannot kill nats-server {}", self.name)))?;
        }
        self.reap();
        Ok(())
    }

    /// Asks the process to shut down (SIGTERM, sent by `nats-server --signal term=<pid>`), waits
    /// up to `timeout`, then kills it if it is still there.
    pub(crate) fn stop_gracefully(&mut self, timeout: Duration) -> Result<()> {
        let Some(pid) = self.pid() else {
            self.reap();
            return Ok(());
        };
        let signalled = Command::new(&self.binary.path)
            .arg("--signal")
            .arg(format!("term={pid}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(Error::io(format!("cannot signal nats-server {}", self.name)))?;
        if signalled.success() {
            let deadline = Instant::now() + timeout;
            while self.is_running() && Instant::now() < deadline {
                thread::sleep(POLL_INTERVAL);
            }
        }
        self.kill()
    }

    /// Waits for an exited (or killed) process and its log thread.
    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        if let Some(thread) = self.log_thread.take() {
            let _ = thread.join();
        }
    }

    /// One readiness check: the process is alive, `/healthz` answers 200 (only JetStream being
    /// enabled when `full_health` is false) and the client port greets with `INFO`.
    pub(crate) fn probe(&mut self, full_health: bool) -> Result<Probe> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.reap();
            return Err(Error::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: self.log_tail(LOG_TAIL_LINES),
            });
        }
        if self.child.is_none() {
            return Ok(Probe::NotYet("not started".to_owned()));
        }
        let path = if full_health {
            "/healthz"
        } else {
            "/healthz?js-enabled-only=true"
        };
        match http::get(self.http_port, path, PROBE_TIMEOUT) {
            Ok(HttpResponse { status: 200, .. }) => {}
            Ok(response) => {
                return Ok(Probe::NotYet(format!(
                    "{path}: {} {}",
                    response.status,
                    response.body.trim()
                )));
            }
            Err(e) => return Ok(Probe::NotYet(format!("{path}: {e}"))),
        }
        match read_info_line(self.client_port) {
            Ok(line) if line.starts_with("INFO ") => Ok(Probe::Ready),
            Ok(line) => Ok(Probe::NotYet(format!("client port said {line:.80?}"))),
            Err(e) => Ok(Probe::NotYet(format!("client port: {e}"))),
        }
    }

    /// Probes until ready, the process exits, or `timeout` passes.
    pub(crate) fn wait_ready(&mut self, timeout: Duration, full_health: bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let last_seen = match self.probe(full_health)? {
                Probe::Ready => return Ok(()),
                Probe::NotYet(seen) => seen,
            };
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    name: self.name.clone(),
                    timeout,
                    last_seen,
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// `GET path` on the node's monitoring port.
    pub(crate) fn monitoring_get(&self, path: &str) -> Result<HttpResponse> {
        http::get(self.http_port, path, PROBE_TIMEOUT).map_err(Error::io(format!(
            "GET {path} on nats-server {} (port {})",
            self.name, self.http_port
        )))
    }

    /// The last `lines` lines of the node's log (over all its runs).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Reads the greeting a NATS server sends on connect (`INFO {...}`), up to the first newline.
pub(crate) fn read_info_line(port: u16) -> io::Result<String> {
    wasl_nats_server::info_line(port, PROBE_TIMEOUT)
}

fn test_log_enabled() -> bool {
    std::env::var(TEST_LOG).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Copies the server's output to its log file and, when asked, to stderr (written directly, so
/// the test harness's capture does not hold it back: `TEST_LOG=1` is for watching live).
fn forward_log(reader: impl Read, mut log: File, prefix: &str, echo: bool) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let _ = log.write_all(&line);
        if echo {
            let mut err = io::stderr().lock();
            let _ = err.write_all(prefix.as_bytes());
            let _ = err.write_all(&line);
        }
        line.clear();
    }
}
