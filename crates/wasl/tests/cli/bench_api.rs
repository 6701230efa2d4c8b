//! `wasl bench api` as a user runs it, at a small scale: every operation of the mix is
//! measured with a positive rate and no error, and the ratio to the store's command rate of the
//! same run is printed. How fast is not asserted here: that is what the benchmark is for.

use crate::run;

/// The operations of the report's table, with their routes.
const OPERATIONS: &[(&str, &str)] = &[
    ("open case", "POST /v1/cases"),
    ("give consent", "POST /v1/cases/{id}/consents"),
    ("request referral", "POST /v1/referrals"),
    ("inbox", "GET /v1/inbox + Wasl-Min-Position"),
    ("receive", "POST /v1/referrals/{id}/receive"),
    ("accept", "POST /v1/referrals/{id}/accept"),
    ("start", "POST /v1/referrals/{id}/start"),
    ("complete", "POST /v1/referrals/{id}/complete"),
    ("worklist", "GET /v1/worklist + Wasl-Min-Position"),
    ("follow-up", "POST /v1/referrals/{id}/follow-up"),
];

/// The columns after the route on the row of `name`: req/s, p50, p99, errors (and items).
fn row(report: &str, name: &str, route: &str) -> Option<(f64, u64)> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(name) && l.contains(route))?;
    let after = &line[line.find(route)? + route.len()..];
    let cells: Vec<&str> = after.split_whitespace().collect();
    // req/s, p50, "ms", p99, "ms", errors[, items]
    let rate = cells.first()?.replace(',', "").parse().ok()?;
    let errors = cells.get(5)?.parse().ok()?;
    Some((rate, errors))
}

#[test]
fn help_lists_the_options() {
    let (ok, out, _) = run(&["bench", "api", "--help"]);
    assert!(ok);
    for option in [
        "--concurrency",
        "--duration",
        "--loops",
        "--store-messages",
        "--store-aggregates",
        "--nats-url",
        "--postgres-url",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
}

#[test]
fn a_single_client_is_refused_before_anything_starts() {
    let (ok, _, err) = run(&["bench", "api", "--concurrency", "1"]);
    assert!(!ok);
    assert!(err.contains("--concurrency"), "{err}");
}

#[test]
fn a_small_run_measures_every_operation_without_errors() {
    let (ok, out, err) = run(&[
        "bench",
        "api",
        "--concurrency",
        "4",
        "--loops",
        "3",
        "--store-messages",
        "200",
        "--store-aggregates",
        "8",
    ]);
    assert!(ok, "the benchmark failed:\n{err}\n{out}");
    assert!(
        out.contains("6 referrals requested, 6 completed, 6 followed up"),
        "{out}"
    );
    for (name, route) in OPERATIONS {
        let (rate, errors) = row(&out, name, route).unwrap_or_else(|| panic!("no row for {name}:\n{out}"));
        assert!(rate > 0.0, "{name}: {rate}\n{out}");
        assert_eq!(errors, 0, "{name}\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("API commands / store commands") && (l.contains("PASS") || l.contains("BELOW"))),
        "no ratio:\n{out}"
    );
    assert!(out.contains("store, same run: EventStore::execute"), "{out}");
    assert!(out.contains("peak RSS: bench"), "{out}");
}
