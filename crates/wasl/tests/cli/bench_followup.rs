//! `wasl bench followup` as a user runs it, at a small scale: the service runs as its own
//! process, every due referral is marked overdue and escalated exactly once, and a restart is
//! ready at the log's end. How fast is not asserted here: that is what the benchmark is for.

use crate::run;

#[test]
fn help_lists_the_options() {
    let (ok, out, _) = run(&["bench", "followup", "--help"]);
    assert!(ok);
    for option in [
        "--referrals",
        "--due",
        "--due-after",
        "--due-within",
        "--overdue-timeout",
        "--sync-always",
        "--nats-url",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
}

#[test]
fn a_small_run_marks_every_due_referral_overdue_once_and_restarts_at_the_end() {
    let (ok, out, err) = run(&[
        "bench",
        "followup",
        "--referrals",
        "1000",
        "--due",
        "50",
        "--organisations",
        "4",
        "--due-after",
        "3s",
        "--due-within",
        "1s",
        "--overdue-timeout",
        "30s",
        "--json",
    ]);
    assert!(ok, "wasl bench followup failed: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["exactly_once"], true, "{report}");
    for what in ["overdue", "escalated"] {
        let outcome = &report["deadlines"][what];
        assert_eq!(outcome["expected"], 50, "{what}: {outcome}");
        assert_eq!(outcome["found"], 50, "{what}: {outcome}");
        assert_eq!(outcome["missing"], 0, "{what}: {outcome}");
        assert_eq!(outcome["doubled"], 0, "{what}: {outcome}");
    }
    assert_eq!(report["restart"]["appended"], 0, "a restart appends nothing");
}
