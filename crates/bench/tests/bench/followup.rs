//! The follow-up benchmark, run small: a temporary nats-server and `wasl followup` as its own
//! process (the `wasl` binary of the same build, `target/<profile>/wasl`). Checks what was done,
//! never how fast.

use std::time::Duration;
use wasl_bench::followup::{self, FollowupBenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_marks_every_due_referral_overdue_and_escalates_it_exactly_once() {
    let options = FollowupBenchOptions {
        referrals: 2_000,
        due: 100,
        organisations: 4,
        due_after: Duration::from_secs(3),
        due_within: Duration::from_secs(2),
        overdue_timeout: Duration::from_secs(30),
        ..FollowupBenchOptions::default()
    };
    let report = followup::run(&options, &|_| {}).await.expect("the benchmark runs");

    assert!(report.server.temporary);
    assert_eq!((report.referrals, report.due, report.cases), (2_000, 100, 1_000));
    // the directory (4 organisations, 3 services each), then per case: open, consent, 2 requests
    assert_eq!(report.load.events, 4 * 4 + 950 * 4);
    assert_eq!(report.load.due_events, 50 * 4);
    assert_eq!(report.catch_up.events, report.load.events);
    assert_eq!(
        report.catch_up.deadlines,
        2 * 1_900,
        "acknowledge and decide per referral"
    );
    assert!(report.catch_up.events_per_second > 0.0);

    for (what, outcome) in [
        ("overdue", &report.deadlines.overdue),
        ("escalated", &report.deadlines.escalated),
    ] {
        assert_eq!(
            (
                outcome.expected,
                outcome.found,
                outcome.missing,
                outcome.doubled,
                outcome.unexpected
            ),
            (100, 100, 0, 0, 0),
            "{what}"
        );
        assert!(
            outcome.p50_ms <= outcome.p99_ms && outcome.p99_ms <= outcome.max_ms,
            "{what}"
        );
    }
    assert!(report.exactly_once);
    assert_eq!(report.deadlines.pass, report.deadlines.overdue.p99_ms < 5_000.0);

    let end = report.load.events + report.load.due_events + 2 * 100;
    assert_eq!(report.restart.position, end, "ready at the log's end");
    assert_eq!(report.restart.appended, 0);
    // 1,900 referrals not due keep both deadlines; the 100 due keep their decision deadline
    assert_eq!(report.restart.deadlines, 2 * 1_900 + 100);
    assert_eq!(report.restart.pass, report.restart.takeover_seconds < 60.0);

    let table = report.to_string();
    assert!(
        table.contains("deadline → overdue") && table.contains("restart"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["deadlines"]["overdue"]["found"], 100);
    if cfg!(target_os = "linux") {
        assert!(report.memory.service_peak_rss_bytes.is_some_and(|b| b > 0));
        assert!(report.memory.restarted_peak_rss_bytes.is_some_and(|b| b > 0));
        assert_eq!(
            report.memory.pass,
            report
                .memory
                .service_peak_rss_bytes
                .is_some_and(|b| b < 200 * 1024 * 1024)
        );
    }
}
