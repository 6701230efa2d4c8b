//! The one writer of nats-server configuration files, the free loopback ports they listen on,
//! and the `INFO` greeting that tells who answers on a port. `wasl up`'s supervised server,
//! the test kit's servers and clusters and (through the test kit) the benchmarks' temporary
//! servers are all configured here.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// The well-known NATS client port: never handed out, another server may own it.
pub const NATS_DEFAULT_PORT: u16 = 4222;

/// What one nats-server is told in its configuration file. Everything listens on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Who wrote the file, for its first line ("`wasl up`", "wasl-testkit").
    pub written_by: String,
    /// The `server_name` the server introduces itself with in its `INFO` greeting.
    pub server_name: String,
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/healthz`, `/varz`), if any.
    pub http_port: Option<u16>,
    /// The JetStream store.
    pub store_dir: PathBuf,
    /// Fsync every write before acknowledging it (`sync_interval: always`). Without it a power
    /// cut loses writes acknowledged in the last two minutes.
    pub sync_always: bool,
    /// The public NKeys (`U…`) of the only users who may connect; empty lets anyone on the host
    /// connect (the test kit's throw-away servers). `wasl up` always names its services' key.
    pub nkey_users: Vec<String>,
    /// Cluster membership, for a node of a loopback cluster.
    pub cluster: Option<ClusterConfig>,
    /// Configuration text appended as it is (accounts, limits).
    pub extra: String,
}

/// A node's place in a loopback cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The cluster's name, the same on every node.
    pub name: String,
    /// This node's route port.
    pub route_port: u16,
    /// Every node's route port, this one's included.
    pub all_route_ports: Vec<u16>,
}

impl NatsConfig {
    /// A durable single server: JetStream in `store_dir`, fsync on, no monitoring port.
    pub fn new(written_by: &str, server_name: &str, port: u16, store_dir: PathBuf) -> Self {
        Self {
            written_by: written_by.to_owned(),
            server_name: server_name.to_owned(),
            port,
            http_port: None,
            store_dir,
            sync_always: true,
            nkey_users: Vec::new(),
            cluster: None,
            extra: String::new(),
        }
    }

    /// The file's text, in nats-server's configuration format.
    pub fn render(&self) -> String {
        let mut c = format!(
            "# Written by {} on every start of the server; edits are overwritten.\n",
            self.written_by
        );
        let _ = writeln!(c, "server_name: {}", quote(&self.server_name));
        let _ = writeln!(c, "listen: \"127.0.0.1:{}\"", self.port);
        if let Some(http) = self.http_port {
            let _ = writeln!(c, "http: \"127.0.0.1:{http}\"");
        }
        c.push_str("jetstream {\n");
        let _ = writeln!(c, "  store_dir: {}", quote(&self.store_dir.to_string_lossy()));
        if self.sync_always {
            c.push_str(
                "  # Every write reaches the disk before it is acknowledged: a power cut loses nothing acknowledged.\n  sync_interval: always\n",
            );
        } else {
            c.push_str(
                "  # UNSAFE: writes reach the disk up to 2 minutes after they are acknowledged;\n  # a power cut or a crash of the machine can lose them.\n",
            );
        }
        c.push_str("}\n");
        if !self.nkey_users.is_empty() {
            c.push_str("# Only these users may connect, each proving it holds its NKey seed: anonymous clients are refused.\nauthorization {\n  users = [\n");
            for key in &self.nkey_users {
                let _ = writeln!(c, "    {{ nkey: {} }}", quote(key));
            }
            c.push_str("  ]\n}\n");
        }
        if let Some(cluster) = &self.cluster {
            let routes: Vec<String> = cluster
                .all_route_ports
                .iter()
                .map(|p| quote(&format!("nats-route://127.0.0.1:{p}")))
                .collect();
            c.push_str("cluster {\n");
            let _ = writeln!(c, "  name: {}", quote(&cluster.name));
            let _ = writeln!(c, "  listen: \"127.0.0.1:{}\"", cluster.route_port);
            let _ = writeln!(c, "  routes: [{}]", routes.join(", "));
            c.push_str("}\n");
        }
        if !self.extra.is_empty() {
            c.push_str(&self.extra);
            c.push('\n');
        }
        c
    }
}

/// A quoted string for the nats-server configuration format.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Picks `n` distinct free loopback ports, never [`NATS_DEFAULT_PORT`]: binds `127.0.0.1:0` `n`
/// times (all held at once so they differ), reads the ports and releases them. Another process
/// could take one in the moment before the server binds it; callers notice ("address already
/// in use") and try again with fresh ports.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let mut listeners = Vec::with_capacity(n + 1);
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if port != NATS_DEFAULT_PORT {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

/// The greeting a NATS server sends on connect (`INFO {...}`), up to the first newline, from
/// 127.0.0.1:`port`; `timeout` bounds the connect and the read.
pub fn info_line(port: u16, timeout: Duration) -> io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    BufReader::new(stream.take(64 * 1024)).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// The `server_name` of the NATS server answering on 127.0.0.1:`port`, if one answers.
pub fn server_name(port: u16, timeout: Duration) -> Option<String> {
    let line = info_line(port, timeout).ok()?;
    let info: serde_json::Value = serde_json::from_str(line.strip_prefix("INFO ")?).ok()?;
    info.get("server_name")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_configuration_is_durable_unless_asked_quotes_paths_and_lists_every_route() {
        let mut config = NatsConfig::new("a test", "n0", 5000, Path::new("/tmp/a \"b\"").join("store"));
        config.http_port = Some(5001);
        config.cluster = Some(ClusterConfig {
            name: "wasl-test".to_owned(),
            route_port: 7001,
            all_route_ports: vec![7001, 7002, 7003],
        });
        config.extra = "max_payload: 2MB".to_owned();
        let text = config.render();
        assert!(
            !text.contains("authorization"),
            "anyone may connect unless users are named: {text}"
        );
        config.nkey_users = vec!["UABC".to_owned(), "UDEF".to_owned()];
        let text = config.render();
        assert!(text.contains("authorization {"), "{text}");
        assert!(
            text.contains(r#"{ nkey: "UABC" }"#) && text.contains(r#"{ nkey: "UDEF" }"#),
            "{text}"
        );
        assert!(text.contains(r#"store_dir: "/tmp/a \"b\"/store""#), "{text}");
        assert!(text.contains("server_name: \"n0\""), "{text}");
        assert!(text.contains("sync_interval: always"), "{text}");
        assert!(text.contains(r#"listen: "127.0.0.1:5000""#), "{text}");
        assert!(text.contains(r#"http: "127.0.0.1:5001""#), "{text}");
        assert!(text.contains(r#"listen: "127.0.0.1:7001""#), "{text}");
        assert!(text.contains(r#""nats-route://127.0.0.1:7003""#), "{text}");
        assert!(text.ends_with("max_payload: 2MB\n"), "{text}");

        config.sync_always = false;
        let text = config.render();
        assert!(!text.contains("sync_interval"), "{text}");
        assert!(text.contains("UNSAFE"), "{text}");
    }

    #[test]
    fn free_ports_are_distinct_and_never_the_default_nats_port() {
        let ports = free_ports(9).expect("free ports");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 9);
        assert!(!ports.contains(&NATS_DEFAULT_PORT));
    }

    #[test]
    fn nobody_listening_has_no_server_name() {
        let port = free_ports(1).expect("a free port")[0];
        assert_eq!(server_name(port, Duration::from_millis(200)), None);
    }
}
