//! `wasl bench partners` as a user runs it, at a small scale: both phases are measured and every
//! feed holds exactly one message per referral event addressed to it. How fast is not asserted
//! here: that is what the benchmark is for.

use crate::run;

#[test]
fn help_lists_the_options() {
    let (ok, out, _) = run(&["bench", "partners", "--help"]);
    assert!(ok);
    for option in [
        "--organisations",
        "--rate",
        "--duration",
        "--sync-always",
        "--backlog",
        "--nats-url",
        "--seed",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
}

#[test]
fn a_small_run_reports_lag_and_catch_up_and_checks_every_feed() {
    let (ok, out, err) = run(&[
        "bench",
        "partners",
        "--organisations",
        "8",
        "--rate",
        "100",
        "--duration",
        "2s",
        "--backlog",
        "500",
        "--json",
    ]);
    assert!(ok, "wasl bench partners failed: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["organisations"], 8);
    assert_eq!(report["exactly_once"], true);
    let paced = &report["paced"];
    let referral_events = paced["referral_events"].as_u64().expect("paced referral events");
    assert!(referral_events >= 100, "{paced}");
    assert_eq!(
        paced["delivered"].as_u64(),
        Some(referral_events),
        "every partner message timed"
    );
    assert!(paced["lag_p50_ms"].as_f64().expect("p50") > 0.0);
    assert!(paced["lag_p99_ms"].as_f64() >= paced["lag_p50_ms"].as_f64());
    let backlog = &report["backlog"];
    assert!(
        backlog["referral_events"].as_u64().expect("backlog") >= 500,
        "{backlog}"
    );
    assert!(backlog["referral_events_per_second"].as_f64().expect("rate") > 0.0);
}
