//! A JetStream cluster of nats-servers on loopback.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::string_in_object;
use crate::node::{LOG_TAIL_LINES, Node, Probe, Settings, free_ports};
use crate::server::PORT_ATTEMPTS;
use crate::{Error, HttpResponse, NatsBinary, Result, find_nats_server};
use wasl_nats_server::ClusterConfig;

/// The cluster's name in every node's config.
const CLUSTER_NAME: &str = "wasl-test";

/// A running JetStream cluster on `127.0.0.1`, for one test (three nodes for R3 streams).
///
/// Node `i` is named `n{i}` and has its own free client, route and monitoring ports and its own
/// store; stopping and starting a node keeps all of them. Every node is killed, and the
/// temporary directory removed, on `Drop`. Methods taking a node index panic when it is out of
/// range, like slice indexing.
#[derive(Debug)]
pub struct NatsCluster {
    // Field order matters: the nodes (processes) are dropped before the directory they write to.
    nodes: Vec<Node>,
    startup_timeout: Duration,
    dir: TempDir,
}

impl NatsCluster {
    /// Starts a cluster of `size` nodes (at least 2) with the default settings.
    pub fn start(size: usize) -> Result<Self> {
        Self::builder().size(size).start()
    }

    /// A builder for a cluster with other settings.
    pub fn builder() -> NatsClusterBuilder {
        NatsClusterBuilder::default()
    }

    /// How many nodes the cluster has (running or not).
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's client URL, `nats://127.0.0.1:<port>`, in node order (stopped nodes too).
    pub fn urls(&self) -> Vec<String> {
        (0..self.size()).map(|i| self.url(i)).collect()
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// Node `i`'s client port.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].client_port
    }

    /// Node `i`'s route (cluster) port.
    pub fn route_port(&self, i: usize) -> u16 {
        self.nodes[i].route_port.unwrap_or_default()
    }

    /// Node `i`'s HTTP monitoring port.
    pub fn monitoring_port(&self, i: usize) -> u16 {
        self.nodes[i].http_port
    }

    /// `GET path` on node `i`'s monitoring port, e.g. `cluster.monitoring_get(0, "/jsz")`.
    pub fn monitoring_get(&self, i: usize, path: &str) -> Result<HttpResponse> {
        self.nodes[i].monitoring_get(path)
    }

    /// Node `i`'s server name (`n{i}`).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Node `i`'s JetStream store directory.
    pub fn store_dir(&self, i: usize) -> &Path {
        &self.nodes[i].store_dir
    }

    /// Node `i`'s log file.
    pub fn log_path(&self, i: usize) -> &Path {
        &self.nodes[i].log_path
    }

    /// The temporary directory holding every node's config, store and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary in use and its version.
    pub fn binary(&self) -> &NatsBinary {
        &self.nodes[0].binary
    }

    /// Whether node `i`'s process is alive.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// Stops node `i` like a crash (SIGKILL) and waits for the process to be gone.
    pub fn stop_node(&mut self, i: usize) -> Result<()> {
        self.nodes[i].kill()
    }

    /// Stops node `i` cleanly (SIGTERM), killing it if it has not exited within the startup
    /// timeout.
    pub fn stop_node_gracefully(&mut self, i: usize) -> Result<()> {
        let timeout = self.startup_timeout;
        self.nodes[i].stop_gracefully(timeout)
    }

    /// Starts node `i` again on its own store and ports and waits until it is ready. When a
    /// majority of nodes then runs, ready means healthy (`/healthz`: it has a meta leader and its
    /// streams are current); without a majority no node can be healthy, so it means only that
    /// the node accepts clients with JetStream enabled. Does nothing to a running node.
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        self.nodes[i].spawn()?;
        let running = (0..self.size()).filter(|&j| self.nodes[j].is_running()).count();
        let quorum = running > self.size() / 2;
        let timeout = self.startup_timeout;
        self.nodes[i].wait_ready(timeout, quorum)
    }

    /// The JetStream meta leader's name as node `i` sees it (from `/jsz`), if it knows one.
    pub fn meta_leader(&self, i: usize) -> Result<Option<String>> {
        let jsz = self.monitoring_get(i, "/jsz")?;
        Ok(string_in_object(&jsz.body, "meta_cluster", "leader").filter(|l| !l.is_empty()))
    }

    /// Waits until every running node is healthy and all of them name the same meta leader, one
    /// of the running nodes (after the leader is stopped, until a new one is elected).
    pub fn wait_until_healthy(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.startup_timeout;
        loop {
            let last_seen = match self.probe()? {
                None => return Ok(()),
                Some(seen) => seen,
            };
            if Instant::now() >= deadline {
                let log_tail = (0..self.size())
                    .map(|i| {
                        format!(
                            "--- {} ---\n{}",
                            self.nodes[i].name,
                            self.nodes[i].log_tail(LOG_TAIL_LINES / 2)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(Error::NotReady {
                    name: "cluster".to_owned(),
                    timeout: self.startup_timeout,
                    last_seen,
                    log_tail,
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// `None` when ready, else what is still missing.
    fn probe(&mut self) -> Result<Option<String>> {
        let mut leaders = Vec::new();
        let running: Vec<String> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then(|| n.name.clone()))
            .collect();
        for i in 0..self.size() {
            if !running.contains(&self.nodes[i].name) {
                continue;
            }
            if let Probe::NotYet(seen) = self.nodes[i].probe(true)? {
                return Ok(Some(format!("{}: {seen}", self.nodes[i].name)));
            }
            match self.meta_leader(i) {
                Ok(Some(leader)) => leaders.push(leader),
                Ok(None) => return Ok(Some(format!("{}: no meta leader yet", self.nodes[i].name))),
                Err(e) => return Ok(Some(e.to_string())),
            }
        }
        leaders.sort();
        leaders.dedup();
        match leaders.as_slice() {
            [] => Ok(Some("no node is running".to_owned())),
            // Right after the leader is stopped the others still name it until they notice.
            [leader] if !running.contains(leader) => Ok(Some(format!("the meta leader {leader} is not running"))),
            [_] => Ok(None),
            _ => Ok(Some(format!("nodes disagree on the meta leader: {leaders:?}"))),
        }
    }
}

/// Settings for a [`NatsCluster`]; [`start`](Self::start) starts every node and waits until the
/// cluster has a JetStream meta leader that every node knows.
#[derive(Debug, Clone)]
pub struct NatsClusterBuilder {
    size: usize,
    binary: Option<PathBuf>,
    settings: Settings,
    startup_timeout: Duration,
}

impl Default for NatsClusterBuilder {
    fn default() -> Self {
        Self {
            size: 3,
            binary: None,
            settings: Settings::default(),
            startup_timeout: Duration::from_secs(30),
        }
    }
}

impl NatsClusterBuilder {
    /// How many nodes (default 3, at least 2).
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Use this binary instead of looking for one (it is still version-checked).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// `sync_interval: always` on every node; see [`crate::NatsServerBuilder::sync_always`].
    pub fn sync_always(mut self, yes: bool) -> Self {
        self.settings.sync_always = yes;
        self
    }

    /// How long to wait for the cluster, or a restarted node, to become ready (default 30 s);
    /// also the grace period of a graceful stop.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Lines appended to every node's generated config file.
    pub fn extra_config(mut self, config: impl Into<String>) -> Self {
        self.settings.extra_config = config.into();
        self
    }

    /// Finds and checks the binary, starts every node and waits until the cluster is ready.
    pub fn start(self) -> Result<NatsCluster> {
        if self.size < 2 {
            return Err(Error::ClusterSize(self.size));
        }
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

    fn try_start(&self, binary: &NatsBinary) -> Result<NatsCluster> {
        let dir = tempfile::Builder::new()
            .prefix("wasl-nats-cluster-")
            .tempdir()
            .map_err(Error::io("cannot create a temporary directory"))?;
        let ports = free_ports(3 * self.size)?;
        let (client, rest) = ports.split_at(self.size);
        let (http, routes) = rest.split_at(self.size);
        let mut nodes = Vec::with_capacity(self.size);
        for i in 0..self.size {
            let name = format!("n{i}");
            let spec = ClusterConfig {
                name: CLUSTER_NAME.to_owned(),
                route_port: routes[i],
                all_route_ports: routes.to_vec(),
            };
            let node_dir = dir.path().join(&name);
            nodes.push(Node::prepare(
                &name,
                binary,
                &node_dir,
                client[i],
                http[i],
                Some(&spec),
                &self.settings,
            )?);
        }
        let mut cluster = NatsCluster {
            nodes,
            startup_timeout: self.startup_timeout,
            dir,
        };
        for node in &mut cluster.nodes {
            node.spawn()?;
        }
        cluster.wait_until_healthy()?;
        Ok(cluster)
    }
}
