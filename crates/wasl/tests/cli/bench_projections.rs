//! `wasl bench projections` as a user runs it, on a small history: every measurement is
//! reported with a positive rate, on SQLite always and on PostgreSQL when it is reachable
//! (required in CI). How fast is not asserted here: that is what the benchmark is for.

use crate::run;

fn postgres_url() -> String {
    std::env::var("WASL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The lines of the block whose first line starts with the word `heading`, up to the next
/// blank line.
fn section<'a>(report: &'a str, heading: &str) -> Vec<&'a str> {
    report
        .lines()
        .skip_while(|l| l.split_whitespace().next() != Some(heading))
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// The rate on the line of section `heading` that starts with `label`: the number before the
/// `…/s` unit.
fn rate(report: &str, heading: &str, label: &str) -> Option<f64> {
    let lines = section(report, heading);
    let line = lines.iter().find(|l| l.trim_start().starts_with(label))?;
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let unit = tokens.iter().position(|t| t.ends_with("/s"))?;
    tokens.get(unit.checked_sub(1)?)?.replace(',', "").parse().ok()
}

#[test]
fn help_lists_the_options() {
    let (ok, out, _) = run(&["bench", "projections", "--help"]);
    assert!(ok);
    for option in [
        "--events",
        "--batch-size",
        "--postgres-url",
        "--nats-url",
        "--seed",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
}

#[test]
fn a_zero_batch_size_is_refused_before_anything_starts() {
    let (ok, _, err) = run(&["bench", "projections", "--batch-size", "0"]);
    assert!(!ok);
    assert!(err.contains("--batch-size"), "{err}");
}

#[test]
fn a_small_run_reports_every_measurement_with_a_positive_rate() {
    let url = postgres_url();
    let (ok, out, err) = run(&["bench", "projections", "--events", "3000", "--postgres-url", &url]);
    assert!(ok, "the benchmark failed:\n{err}\n{out}");
    assert!(out.contains("N = 3,000 events"), "{out}");
    for label in ["write: generate + publish", "(a) raw read"] {
        let r = rate(&out, "phase", label).unwrap_or_else(|| panic!("no rate for {label}:\n{out}"));
        assert!(r > 0.0, "{label}: {r}\n{out}");
    }
    let postgres_measured = !out.contains("postgresql NOT MEASURED");
    if !postgres_measured {
        assert!(
            !in_ci(),
            "PostgreSQL is required in CI but was not measured (WASL_TEST_POSTGRES_URL = {url}):\n{out}"
        );
        eprintln!("!!! PostgreSQL unreachable at {url}: only SQLite was checked");
    }
    let mut databases = vec!["sqlite"];
    if postgres_measured {
        databases.push("postgresql");
    }
    for db in databases {
        for label in ["(b) raw insert of equivalent rows", "(c) full rebuild"] {
            let r = rate(&out, db, label).unwrap_or_else(|| panic!("{db}: no rate for {label}:\n{out}"));
            assert!(r > 0.0, "{db} {label}: {r}\n{out}");
        }
        let lines = section(&out, db);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("(c) / min(a, b)") && (l.contains("PASS") || l.contains("FAIL"))),
            "{db}: no ratio:\n{out}"
        );
        assert!(
            lines.iter().any(|l| l.contains("parked 0")),
            "{db}: a genuine history parks nothing:\n{out}"
        );
    }
    assert!(out.contains("peak RSS: bench"), "{out}");
}
