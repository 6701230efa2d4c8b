//! `wasl bench dashboard` as a user runs it, on a small history: the projector's rates with and
//! without the dashboard, and every query's latencies on SQLite always and on PostgreSQL when it
//! is reachable (required in CI). How fast is not asserted here: that is what the benchmark is
//! for.

use crate::run;

fn postgres_url() -> String {
    std::env::var("WASL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[test]
fn zero_referrals_are_refused_before_anything_starts() {
    let (ok, _, err) = run(&["bench", "dashboard", "--referrals", "0"]);
    assert!(!ok);
    assert!(err.contains("--referrals"), "{err}");
}

#[test]
fn a_small_run_reports_the_projector_cost_and_every_query_on_both_databases() {
    let url = postgres_url();
    let (ok, out, err) = run(&[
        "bench",
        "dashboard",
        "--referrals",
        "300",
        "--projector-events",
        "2000",
        "--samples",
        "3",
        "--postgres-url",
        &url,
    ]);
    assert!(ok, "the benchmark failed:\n{err}\n{out}");
    for label in ["without the dashboard", "with the dashboard", "dashboard alone"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no line for {label}:\n{out}"));
        let rate: f64 = line
            .split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no rate on {line:?}"));
        assert!(rate > 0.0, "{line}");
    }
    assert!(out.contains("cost") && out.contains("target < 20%"), "{out}");
    let postgres_measured = !out.contains("not measured");
    if !postgres_measured {
        assert!(
            !in_ci(),
            "PostgreSQL is required in CI but was not measured (WASL_TEST_POSTGRES_URL = {url}):\n{out}"
        );
        eprintln!("!!! PostgreSQL unreachable at {url}: only SQLite was checked");
    }
    for database in ["SQLite", "PostgreSQL"]
        .iter()
        .take(if postgres_measured { 2 } else { 1 })
    {
        for query in [
            "headline ",
            "headline, governorate + category",
            "indicator report ",
            "indicator report, governorate",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.trim_start().starts_with(query) && l.contains(database) && l.contains("target p99")),
                "{database}: no latency of {query:?}:\n{out}"
            );
        }
    }
}
