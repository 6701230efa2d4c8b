//! The test kit against real nats-servers: startup, restarts on the same store and port, a
//! three-node cluster, and the refusal of binaries that are too old.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasl_testkit::{
    Error, MIN_VERSION, NATS_SERVER_BIN, NatsCluster, NatsServer, Version, find_nats_server, installed_binary,
};

/// The `INFO {...}` line a NATS server greets every client with.
fn info_line(port: u16) -> String {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("the server accepts TCP connections");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(stream.take(64 * 1024))
        .read_line(&mut line)
        .expect("the server sends a line");
    line
}

/// A shell script that pretends to be a nats-server and prints `version_output` for `--version`.
fn fake_binary(dir: &Path, version_output: &str) -> PathBuf {
    let path = dir.join("nats-server");
    fs::write(&path, format!("#!/bin/sh\necho '{version_output}'\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_server_greets_clients_with_its_version_and_jetstream() {
    let server = NatsServer::start().unwrap();
    let version = server.binary().version;
    assert!(version >= MIN_VERSION);
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));

    let info = info_line(server.port());
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains(&format!(r#""version":"{version}""#)), "{info}");
    assert!(info.contains(r#""jetstream":true"#), "{info}");
}

#[test]
fn without_nats_server_bin_the_pinned_tools_binary_comes_before_path() {
    let found = find_nats_server().unwrap();
    assert!(found.version >= MIN_VERSION, "{found:?}");
    // The lookup order can only be observed when nothing overrides it.
    if std::env::var_os(NATS_SERVER_BIN).is_none_or(|v| v.is_empty()) && installed_binary().is_file() {
        assert_eq!(found.path, installed_binary());
        assert_eq!(found.version.to_string(), wasl_testkit::pinned_version());
    }
}

#[test]
fn sync_always_is_applied_and_a_crash_restart_keeps_port_and_store() {
    let mut server = NatsServer::builder().sync_always(true).start().unwrap();
    let varz = server.monitoring_get("/varz").unwrap();
    assert_eq!(varz.status, 200);
    assert!(varz.body.contains(r#""sync_always": true"#), "{}", varz.body);

    let (port, store, url) = (server.port(), server.store_dir().to_owned(), server.url());
    let first_pid = server.pid().unwrap();
    assert!(
        store.join("jetstream").is_dir(),
        "JetStream keeps its files under store_dir/jetstream"
    );

    server.restart().unwrap();

    assert_ne!(server.pid().unwrap(), first_pid, "a new process");
    assert_eq!(server.port(), port);
    assert_eq!(server.url(), url);
    assert_eq!(server.store_dir(), store);
    assert!(info_line(port).contains(r#""jetstream":true"#));
    assert!(
        server
            .monitoring_get("/varz")
            .unwrap()
            .body
            .contains(r#""sync_always": true"#)
    );
}

#[test]
fn sync_always_is_off_by_default() {
    let server = NatsServer::start().unwrap();
    let varz = server.monitoring_get("/varz").unwrap();
    assert!(!varz.body.contains(r#""sync_always": true"#), "{}", varz.body);
}

#[test]
fn a_graceful_stop_and_start_again_keeps_the_port() {
    let mut server = NatsServer::start().unwrap();
    let port = server.port();
    server.stop_gracefully().unwrap();
    assert!(!server.is_running());
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "nothing listens while stopped"
    );
    assert!(
        server.log_tail(20).contains("Server Exiting"),
        "{}",
        server.log_tail(20)
    );

    server.start_again().unwrap();
    assert!(server.is_running());
    assert!(info_line(port).starts_with("INFO "));
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let mut server = NatsServer::start().unwrap();
    let (pid, dir, port) = (server.pid().unwrap(), server.dir().to_owned(), server.port());
    drop(server);
    assert!(!dir.exists(), "{} removed", dir.display());
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} gone");
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
}

#[test]
fn a_cluster_of_three_elects_a_meta_leader_and_survives_a_node_stop_and_start() {
    let mut cluster = NatsCluster::start(3).unwrap();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    let leader = cluster.meta_leader(0).unwrap().expect("a meta leader");
    for i in 0..3 {
        assert_eq!(cluster.meta_leader(i).unwrap().as_deref(), Some(leader.as_str()));
        assert!(info_line(cluster.port(i)).contains(r#""jetstream":true"#));
    }

    // Stop the leader itself: the other two must elect a new one.
    let stopped = (0..3).find(|&i| cluster.name(i) == leader).unwrap();
    let port = cluster.port(stopped);
    cluster.stop_node(stopped).unwrap();
    assert!(!cluster.is_running(stopped));
    cluster.wait_until_healthy().unwrap();
    let survivor = (stopped + 1) % 3;
    let new_leader = cluster.meta_leader(survivor).unwrap().expect("a new meta leader");
    assert_ne!(new_leader, leader);

    cluster.start_node(stopped).unwrap();
    cluster.wait_until_healthy().unwrap();
    assert_eq!(cluster.port(stopped), port);
    assert_eq!(cluster.urls(), urls);
    assert_eq!(cluster.meta_leader(stopped).unwrap(), Some(new_leader));
}

#[test]
fn a_too_old_binary_is_refused_with_its_path_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_binary(dir.path(), "nats-server: v2.9.25");

    let err = NatsServer::builder().binary(&fake).start().unwrap_err();
    match &err {
        Error::Binary(wasl_nats_server::Error::TooOld { path, found, minimum }) => {
            assert_eq!(path, &fake);
            assert_eq!(*found, Version::new(2, 9, 25));
            assert_eq!(*minimum, MIN_VERSION);
        }
        other => panic!("expected TooOld, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&fake.display().to_string()) && message.contains("2.9.25"),
        "{message}"
    );
    assert!(message.contains("./scripts/install-nats-server"), "{message}");

    let err = NatsCluster::builder().binary(&fake).start().unwrap_err();
    assert!(
        matches!(err, Error::Binary(wasl_nats_server::Error::TooOld { .. })),
        "{err:?}"
    );
}

#[test]
fn a_binary_that_names_no_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_binary(dir.path(), "nats-server: dev");
    let err = NatsServer::builder().binary(&fake).start().unwrap_err();
    assert!(
        matches!(err, Error::Binary(wasl_nats_server::Error::UnknownVersion { .. })),
        "{err:?}"
    );
}

#[test]
fn a_missing_binary_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = NatsServer::builder()
        .binary(dir.path().join("nats-server"))
        .start()
        .unwrap_err();
    assert!(
        matches!(err, Error::Binary(wasl_nats_server::Error::Io { .. })),
        "{err:?}"
    );
}

#[test]
fn a_cluster_needs_at_least_two_nodes() {
    let err = NatsCluster::start(1).unwrap_err();
    assert!(matches!(err, Error::ClusterSize(1)), "{err:?}");
}

#[test]
fn a_server_that_exits_at_startup_is_reported_with_its_log() {
    let err = NatsServer::builder()
        .extra_config("jetstream { max_file_store: not-a-size }")
        .start()
        .unwrap_err();
    match &err {
        Error::Exited { log_tail, .. } => assert!(log_tail.contains("max_file_store"), "{err}"),
        other => panic!("expected Exited, got {other:?}"),
    }
}
