//! `wasl bench signin` as a user runs it, at a small scale: every sign-in is answered, and the
//! report gives a peak resident size per round. How much memory is not asserted here: that is
//! what the benchmark is for (docs/performance.md, "Sign-in memory").

use crate::run;

#[test]
fn a_small_run_signs_everyone_in_and_reports_the_memory_of_each_round() {
    let (ok, out, err) = run(&["bench", "signin", "--concurrency", "6", "--rounds", "2", "--users", "3"]);
    assert!(ok, "wasl bench signin failed: {err}");
    let rounds: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| matches!(cells.first(), Some(&"1") | Some(&"2")))
        .collect();
    assert_eq!(rounds.len(), 2, "one row per round:\n{out}");
    for cells in rounds {
        // round, peak, "MiB", signed in, 429, other, time, "s"
        assert_eq!(cells.len(), 8, "{cells:?}");
        assert!(cells[1].parse::<u64>().is_ok_and(|mib| mib > 0), "{cells:?}");
        let answered: usize = cells[3..6].iter().map(|c| c.parse::<usize>().expect("a count")).sum();
        assert_eq!(answered, 6, "every sign-in answered: {cells:?}");
        assert_eq!(cells[5], "0", "no sign-in failed otherwise: {cells:?}");
    }
    assert!(out.contains("the 200 MiB target"), "{out}");
}
