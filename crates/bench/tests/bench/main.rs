//! The store benchmark, run small against a temporary nats-server (the pinned one from
//! `./scripts/install-nats-server`, or `NATS_SERVER_BIN`). Checks what was done, never how fast.

use wasl_bench::store::{self, StoreBenchOptions};

mod followup;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_does_exactly_what_was_asked_and_measures_every_phase() {
    let options = StoreBenchOptions {
        messages: 200,
        aggregates: 20,
        in_flight: 16,
        ..StoreBenchOptions::default()
    };
    let report = store::run(&options, &|_| {}).await.expect("the benchmark runs");

    assert!(report.server.temporary);
    assert_eq!(report.server.sync_always, Some(false));
    assert!(!report.server.version.is_empty());
    assert_eq!((report.messages, report.aggregates, report.in_flight), (200, 20, 16));
    assert!(report.message.payload_bytes > 0);
    assert_eq!(report.message.header_count, 12);

    for (phase, t, count) in [
        ("raw", &report.raw, 200),
        ("appends", &report.appends, 200),
        ("requests", &report.requests, 20),
    ] {
        assert_eq!(t.count, count, "{phase}");
        assert!(t.per_second > 0.0 && t.seconds > 0.0, "{phase}");
        assert!(t.p50_ms > 0.0 && t.p50_ms <= t.p99_ms, "{phase}");
    }
    assert!(report.ratio > 0.0);
    assert_eq!(report.passes, report.ratio >= report.target_ratio);

    let strategies: Vec<(&str, usize)> = report.loads.iter().map(|l| (l.strategy, l.concurrency)).collect();
    assert_eq!(
        strategies,
        [
            ("direct_get", 1),
            ("ordered_consumer", 1),
            ("direct_get", 16),
            ("ordered_consumer", 16)
        ]
    );
    for load in &report.loads {
        assert_eq!(load.aggregates, 20, "{}", load.strategy);
        // one request per referral, then the 200 lifecycle commands: one event each
        assert_eq!(load.events, 220, "{}", load.strategy);
        assert!(load.aggregates_per_second > 0.0 && load.events_per_second > 0.0);
    }
    assert!(report.consumers_left_by_ordered_loads <= 20);

    let table = report.to_string();
    assert!(table.contains("(b)/(a)") && table.contains("direct get"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["messages"], 200);
    if cfg!(target_os = "linux") {
        assert!(report.peak_rss_bytes.is_some_and(|b| b > 0));
        assert!(report.server_peak_rss_bytes.is_some_and(|b| b > 0));
        assert!(report.appends.bench_cpu_us_per_op.is_some() && report.appends.server_cpu_us_per_op.is_some());
    }
}

#[tokio::test]
async fn contradictory_options_are_refused_before_anything_starts() {
    let options = StoreBenchOptions {
        sync_always: true,
        nats_url: Some("nats://127.0.0.1:1".to_owned()),
        ..StoreBenchOptions::default()
    };
    let err = store::run(&options, &|_| {}).await.expect_err("refused");
    assert!(err.to_string().contains("--sync-always"), "{err}");
}
