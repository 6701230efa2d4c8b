//! Properties of what the dashboards publish, over random breakdowns: every shown number is the
//! true one and none is small; no row or column (totals included) has exactly one hidden
//! member, so no hidden count is its line's total minus the visible rest; no hidden number has
//! a value or reads 0; a rate is shown only when neither its part nor the rest is small.

use proptest::prelude::*;
use std::collections::BTreeMap;
use wasl_dashboard::figures::{Suppressed, rate};
use wasl_dashboard::{Breakdown, Count, breakdown};
use wasl_domain::suppression::Threshold;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    ProptestConfig::with_cases(cases)
}

/// Random counts keyed by (row, column), with many small ones and zeros.
fn counts() -> impl Strategy<Value = BTreeMap<(String, String), u64>> {
    let value = prop_oneof![3 => 0u64..5, 2 => 5u64..40, 1 => Just(0u64)];
    prop::collection::btree_map((0u8..6, 0u8..5), value, 1..30).prop_map(|m| {
        m.into_iter()
            .map(|((r, c), n)| ((format!("r{r}"), format!("c{c}")), n))
            .collect()
    })
}

/// The published table as a grid extended by its margins: the last row is the column totals,
/// the last column the row totals.
fn grid(b: &Breakdown) -> Vec<Vec<Count>> {
    let mut out: Vec<Vec<Count>> = b
        .rows
        .iter()
        .map(|r| r.cells.iter().cloned().chain([r.total.clone()]).collect())
        .collect();
    out.push(b.column_totals.iter().cloned().chain([b.total.clone()]).collect());
    out
}

fn truth(b: &Breakdown, counts: &BTreeMap<(String, String), u64>) -> Vec<Vec<u64>> {
    let cell = |r: &str, c: &str| counts.get(&(r.to_owned(), c.to_owned())).copied().unwrap_or(0);
    let mut out: Vec<Vec<u64>> = b
        .rows
        .iter()
        .map(|r| {
            let row: Vec<u64> = b.columns.iter().map(|c| cell(&r.key, c)).collect();
            let total = row.iter().sum();
            row.into_iter().chain([total]).collect()
        })
        .collect();
    let totals: Vec<u64> = (0..=b.columns.len())
        .map(|c| out.iter().map(|row| row[c]).sum())
        .collect();
    out.push(totals);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn published_tables_show_no_small_count_and_give_no_hidden_one_away(
        counts in counts(),
        k in 2u64..8,
    ) {
        let k = Threshold::new(k).expect("k");
        let b = breakdown(counts.clone(), "rows", Some("columns"), k);
        let published = grid(&b);
        let truth = truth(&b, &counts);
        for (r, row) in published.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                match cell.value {
                    Some(v) => {
                        prop_assert_eq!(v, truth[r][c], "a shown count is the true one");
                        prop_assert!(!k.is_small(v), "no shown count is small");
                        prop_assert!(cell.suppressed.is_none());
                    }
                    None => {
                        prop_assert!(cell.suppressed.is_some());
                        prop_assert_ne!(cell.display.as_str(), "0", "hidden is never 0");
                    }
                }
                if k.is_small(truth[r][c]) {
                    prop_assert_eq!(cell.suppressed, Some(Suppressed::Small));
                }
            }
        }
        let hidden = |cells: Vec<&Count>| cells.iter().filter(|c| c.value.is_none()).count();
        for row in &published {
            prop_assert_ne!(hidden(row.iter().collect()), 1, "a row with one hidden member");
        }
        for c in 0..published[0].len() {
            prop_assert_ne!(
                hidden(published.iter().map(|row| &row[c]).collect()),
                1,
                "a column with one hidden member"
            );
        }
    }

    #[test]
    fn a_rate_never_rests_on_a_small_count(part in 0u64..30, rest in 0u64..30, k in 2u64..8) {
        let k = Threshold::new(k).expect("k");
        let shown = rate(part, part + rest, k);
        if shown.value.is_some() {
            prop_assert!(!k.is_small(part) && !k.is_small(rest) && part + rest >= k.get());
        } else {
            prop_assert_eq!(shown.display.as_str(), "x");
        }
    }
}
