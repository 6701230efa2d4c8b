//! Published numbers: a count after suppression, and a rate or a duration that is withheld when
//! too few referrals stand behind it.

use serde::Serialize;
use utoipa::ToSchema;
use wasl_domain::suppression::{Cell, Threshold};

/// Why a number is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Suppressed {
    /// A count from 1 to k − 1 (shown as `<k`).
    Small,
    /// Withheld to protect another hidden count (shown as `x`); it may be any count, zero
    /// included.
    Withheld,
    /// A rate or a duration from fewer than k referrals, or a rate that would give away a
    /// small count (shown as `x`).
    TooFew,
}

/// A count as it is published: `display` is what a reader sees (`17`, `0`, `<5` or `x`);
/// `value` is there only when the count is shown. A hidden count is never 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Count {
    /// `17`, `0`, `<5` or `x`.
    pub display: String,
    /// The count, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// Why it is hidden, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
}

impl Count {
    /// A cell of a suppressed table.
    pub fn from_cell(cell: Cell, k: Threshold) -> Self {
        Self {
            display: cell.display(k).to_string(),
            value: cell.shown(),
            suppressed: match cell {
                Cell::Shown(_) => None,
                Cell::Small => Some(Suppressed::Small),
                Cell::Withheld => Some(Suppressed::Withheld),
            },
        }
    }

    /// A count published on its own, outside any table: hidden when small.
    pub fn single(n: u64, k: Threshold) -> Self {
        Self::from_cell(if k.is_small(n) { Cell::Small } else { Cell::Shown(n) }, k)
    }

    /// Whether it is hidden.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }
}

/// A rate or a duration as it is published: `value` only when shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figure {
    /// What a reader sees: `83%`, `36.5` (hours or days, as the field says) or `x`.
    pub display: String,
    /// The value when shown: a rate from 0 to 1 to two decimals, a duration to one decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why it is hidden, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
}

impl Figure {
    fn withheld() -> Self {
        Self {
            display: wasl_domain::suppression::WITHHELD_TEXT.to_owned(),
            value: None,
            suppressed: Some(Suppressed::TooFew),
        }
    }

    /// Whether it is hidden.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }
}

/// `part / whole`, published only when `whole` is at least k and neither `part` nor
/// `whole − part` is a small count (either would let a reader who knows the other work a small
/// count out). Rounded to whole per cent, so it gives a range, not an exact count.
pub fn rate(part: u64, whole: u64, k: Threshold) -> Figure {
    if whole < k.get() || part > whole || k.is_small(part) || k.is_small(whole - part) {
        return Figure::withheld();
    }
    let percent = (part as f64 * 100.0 / whole as f64).round();
    Figure {
        display: format!("{percent:.0}%"),
        value: Some(percent / 100.0),
        suppressed: None,
    }
}

/// The `p`-th percentile (0 < p ≤ 1) of `sorted` (ascending) by nearest rank — the smallest
/// value at least `p` of the values are at or below — as a count of `unit_millis` to one
/// decimal; withheld when there are fewer than k values.
pub fn percentile(sorted: &[i64], p: f64, unit_millis: i64, k: Threshold) -> Figure {
    let n = sorted.len();
    if (n as u64) < k.get() {
        return Figure::withheld();
    }
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    let Some(millis) = sorted.get(rank - 1) else {
        return Figure::withheld();
    };
    let value = (*millis as f64 / unit_millis as f64 * 10.0).round() / 10.0;
    Figure {
        display: format!("{value:.1}"),
        value: Some(value),
        suppressed: None,
    }
}

/// Milliseconds in an hour.
pub const HOUR: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY: i64 = 24 * HOUR;

#[cfg(test)]
mod tests {
    use super::*;

    const K: Threshold = Threshold::DEFAULT;

    #[test]
    fn a_rate_is_withheld_when_it_rests_on_a_small_count() {
        assert_eq!(rate(12, 20, K).value, Some(0.6));
        assert_eq!(rate(12, 20, K).display, "60%");
        assert_eq!(rate(0, 10, K).value, Some(0.0));
        assert_eq!(rate(10, 10, K).value, Some(1.0));
        // Too few behind it, a small numerator, a small complement.
        for (part, whole) in [(2, 4), (3, 10), (8, 10), (0, 0)] {
            assert_eq!(
                rate(part, whole, K).suppressed,
                Some(Suppressed::TooFew),
                "{part}/{whole}"
            );
        }
    }

    #[test]
    fn percentiles_are_by_nearest_rank_and_need_k_values() {
        let hours: Vec<i64> = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].iter().map(|h| h * HOUR).collect();
        assert_eq!(percentile(&hours, 0.5, HOUR, K).value, Some(5.0));
        assert_eq!(percentile(&hours, 0.9, HOUR, K).value, Some(9.0));
        assert_eq!(percentile(&hours[..5], 0.5, HOUR, K).value, Some(3.0));
        assert!(percentile(&hours[..4], 0.5, HOUR, K).is_suppressed());
        assert_eq!(percentile(&[90 * 60_000; 5], 0.5, HOUR, K).display, "1.5");
    }

    #[test]
    fn a_hidden_count_never_reads_as_zero() {
        let small = Count::single(3, K);
        assert_eq!((small.display.as_str(), small.value), ("<5", None));
        let zero = Count::single(0, K);
        assert_eq!((zero.display.as_str(), zero.value), ("0", Some(0)));
        let withheld = Count::from_cell(Cell::Withheld, K);
        assert_eq!((withheld.display.as_str(), withheld.value), ("x", None));
    }
}
