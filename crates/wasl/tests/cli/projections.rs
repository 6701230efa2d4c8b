//! `wasl projector` and `wasl projections …` against a real nats-server and a SQLite file.

use crate::run;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

/// A log holding a synthetic history of `referrals` referrals; returns its last sequence.
async fn history(url: &str, seed: u64, referrals: usize) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("event log");
    let events = wasl_synth::Generator::new(wasl_synth::HistoryConfig::new(seed, referrals));
    wasl_synth::publish(&js, &config, events).await.expect("published")
}

/// The `checkpoint` and `lag` columns of `wasl projections status` for `projection`.
fn status_of(out: &str, projection: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(projection))
        .unwrap_or_else(|| panic!("{projection} in:\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[2].parse().expect("checkpoint"), cols[3].parse().expect("lag"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_status_and_the_projector_follow_the_log() {
    let server = NatsServer::start().expect("nats-server");
    let url = server.url();
    let last = history(&url, 3, 200).await;
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite:{}", dir.path().join("wasl.db").display());
    let conn = ["--nats-url", url.as_str(), "--database-url", db.as_str()];

    let (ok, out, err) = run(&[&["projections", "rebuild"][..], &conn[..]].concat());
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!(
            "rebuilt cases, referrals, directory, dashboard up to sequence {last}:"
        )),
        "{out}"
    );
    assert!(out.contains(", 0 parked"), "{out}");

    let (ok, out, err) = run(&[&["projections", "status"][..], &conn[..]].concat());
    assert!(ok, "{err}");
    for projection in ["cases", "referrals", "directory"] {
        assert_eq!(status_of(&out, projection), (last, 0), "{out}");
    }
    let (ok, out, _) = run(&[&["projections", "parked"][..], &conn[..]].concat());
    assert!(ok && out.starts_with("0 parked event(s)"), "{out}");

    // The projector, running, picks up what is written next, and stops cleanly on Ctrl-C.
    let health = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let health_listen = format!("127.0.0.1:{health}");
    let projector = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args([&["projector", "--health-listen", &health_listen][..], &conn[..]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("projector starts");
    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.expect("connect"));
    let more = wasl_synth::Generator::new(wasl_synth::HistoryConfig {
        start: wasl_domain::time::Timestamp::from_unix_millis(1_900_000_000_000),
        ..wasl_synth::HistoryConfig::new(4, 20)
    });
    let newest = wasl_synth::publish(&js, &StoreConfig::default(), more)
        .await
        .expect("more events");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) = run(&[&["projections", "status"][..], &conn[..]].concat());
        assert!(ok, "{err}");
        if status_of(&out, "referrals") == (newest, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the projector did not catch up:\n{out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its health endpoints: alive, and ready with no lag.
    let (status, _, _) = crate::http::http(health, "GET", "/healthz", &[], "");
    assert_eq!(status, 200);
    let (status, _, body) = crate::http::http(health, "GET", "/readyz", &[], "");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["log_position"].as_u64(), Some(newest), "{body}");
    assert!(
        ready["projections"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["lag"] == 0)),
        "{body}"
    );
    // Its metrics: each projection's position and lag, in the Prometheus text format.
    let (status, _, metrics) = crate::http::http(health, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    for projection in ["cases", "referrals", "directory"] {
        assert!(
            metrics.contains(&format!(
                "wasl_projection_position{{projection=\"{projection}\"}} {newest}"
            )),
            "{projection} at {newest}: {metrics}"
        );
        assert!(
            metrics.contains(&format!("wasl_projection_lag_events{{projection=\"{projection}\"}} 0")),
            "{metrics}"
        );
    }
    // SIGTERM, as a service manager stops it.
    let _ = Command::new("kill")
        .args(["-TERM", &projector.id().to_string()])
        .status();
    let output = projector.wait_with_output().expect("projector stops");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.starts_with(&format!("stopped at sequence {newest}")), "{out}");
}

#[test]
fn an_unknown_projection_or_a_missing_log_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite:{}", dir.path().join("wasl.db").display());
    let (ok, _, err) = run(&[
        "projections",
        "rebuild",
        "invoices",
        "--nats-url",
        "nats://127.0.0.1:1",
        "--database-url",
        &db,
    ]);
    assert!(!ok);
    assert!(err.contains("no projection is called \"invoices\""), "{err}");

    let server = NatsServer::start().expect("nats-server");
    let (ok, _, err) = run(&[
        "projections",
        "status",
        "--nats-url",
        &server.url(),
        "--database-url",
        &db,
    ]);
    assert!(!ok);
    assert!(err.contains("holds no Wasl event log"), "{err}");
    let (ok, _, err) = run(&[
        "projections",
        "status",
        "--nats-url",
        &server.url(),
        "--database-url",
        "mysql://x",
    ]);
    assert!(!ok);
    assert!(
        err.contains("unsupported read-model database URL") && !err.contains("mysql://x"),
        "{err}"
    );
}
