//! The `wasl` command as a user runs it.

use std::process::Command;

fn wasl(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(args)
        .output()
        .expect("wasl runs");
    (
        output.status.success(),
        String::from_utf8(output.stdout).expect("utf-8 output"),
    )
}

#[test]
fn up_says_honestly_that_it_is_not_built_yet_and_shows_the_plan() {
    let (ok, out) = wasl(&["up"]);
    assert!(ok);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    assert!(out.contains("not built yet"));
    assert!(out.contains("[x] domain model"));
}

#[test]
fn lifecycle_lists_the_transitions_the_domain_enforces() {
    let (ok, out) = wasl(&["lifecycle"]);
    assert!(ok);
    let moves: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains("-->"))
        .collect();
    let arrows = moves.len();
    assert_eq!(
        arrows, 29,
        "the design allows 29 moves, counting entered-in-error from every other state"
    );
    assert!(out.contains(&format!("{:<16} --received--> received", "requested")));
    assert!(out.contains(&format!("{:<16} --resumed--> in_progress", "on_hold")));
    let from_to = |from: &str, action: &str| {
        moves
            .iter()
            .any(|l| l.trim_start().starts_with(from) && l.contains(action))
    };
    assert!(
        !from_to("on_hold", "--started-->"),
        "on-hold resumes, it does not start again"
    );
    assert!(!from_to("rejected", "--accepted-->"));
}

#[test]
fn places_lists_every_governorate_with_its_districts() {
    let (ok, out) = wasl(&["places"]);
    assert!(ok);
    assert!(out.contains("IQ-NI   Ninawa / نينوى"));
    assert!(out.contains("mosul (Mosul)"));
    assert!(out.contains("IQ-HAL"));
}

#[test]
fn an_unknown_subcommand_fails_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .arg("launch")
        .output()
        .expect("wasl runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage"));
}

#[test]
fn bench_store_help_lists_its_options_and_refuses_contradictions() {
    let (ok, out) = wasl(&["bench", "store", "--help"]);
    assert!(ok);
    for option in [
        "--messages",
        "--aggregates",
        "--in-flight",
        "--sync-always",
        "--nats-url",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
    let (ok, _) = wasl(&["bench", "store", "--sync-always", "--nats-url", "nats://127.0.0.1:1"]);
    assert!(!ok, "--sync-always cannot change a server given by URL");
}
