//! A breakdown of counts by one or two dimensions, with its totals, suppressed as one table.

use crate::figures::Count;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use wasl_domain::suppression::{Table, Threshold, suppress};

/// A published table: rows (and columns) labelled by the codes of their dimension, each row
/// with its total, the column totals and the grand total — every number through suppression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Breakdown {
    /// The suppression threshold: counts from 1 to k − 1 are hidden.
    pub k: u64,
    /// What the rows are (a dimension code).
    pub rows_by: String,
    /// What the columns are; absent for a one-way breakdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns_by: Option<String>,
    /// The column codes, in order; empty for a one-way breakdown.
    pub columns: Vec<String>,
    /// One per value of the row dimension that has referrals, in code order.
    pub rows: Vec<BreakdownRow>,
    /// The total of each column; empty for a one-way breakdown.
    pub column_totals: Vec<Count>,
    /// The total of the table.
    pub total: Count,
}

/// One row of a [`Breakdown`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The row's code (a governorate code, a category code, an organisation id, a week's
    /// Monday …); empty for "not given" (a district or a decline reason).
    pub key: String,
    /// One per column; empty for a one-way breakdown.
    pub cells: Vec<Count>,
    /// The row's total (for a one-way breakdown, its count).
    pub total: Count,
}

/// Builds and suppresses a table from counts keyed by (row, column); `columns_by` `None` makes
/// a one-way breakdown (every count's column is ignored).
pub fn breakdown(
    counts: impl IntoIterator<Item = ((String, String), u64)>,
    rows_by: &str,
    columns_by: Option<&str>,
    k: Threshold,
) -> Breakdown {
    let mut grid: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((row, column), n) in counts {
        let column = if columns_by.is_some() { column } else { String::new() };
        *grid.entry((row, column)).or_default() += n;
    }
    let row_keys: Vec<String> = grid
        .keys()
        .map(|(r, _)| r.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let column_keys: Vec<String> = grid
        .keys()
        .map(|(_, c)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let values: Vec<Vec<u64>> = row_keys
        .iter()
        .map(|r| {
            column_keys
                .iter()
                .map(|c| grid.get(&(r.clone(), c.clone())).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    // Counts of referrals always fit: a table of them cannot overflow 64 bits.
    let table = Table::new(values).unwrap_or_else(|_| Table::new(Vec::new()).expect("an empty table"));
    let out = suppress(&table, k);
    let count = |cell| Count::from_cell(cell, k);
    let hidden = || Count::from_cell(wasl_domain::suppression::Cell::Withheld, k);
    let two_way = columns_by.is_some();
    Breakdown {
        k: k.get(),
        rows_by: rows_by.to_owned(),
        columns_by: columns_by.map(str::to_owned),
        columns: if two_way { column_keys.clone() } else { Vec::new() },
        rows: row_keys
            .iter()
            .enumerate()
            .map(|(r, key)| BreakdownRow {
                key: key.clone(),
                cells: if two_way {
                    (0..column_keys.len())
                        .map(|c| out.cell(r, c).map_or_else(hidden, count))
                        .collect()
                } else {
                    Vec::new()
                },
                total: out.row_total(r).map_or_else(hidden, count),
            })
            .collect(),
        column_totals: if two_way {
            (0..column_keys.len())
                .map(|c| out.column_total(c).map_or_else(hidden, count))
                .collect()
        } else {
            Vec::new()
        },
        total: count(out.grand_total()),
    }
}

impl Breakdown {
    /// The table as CSV: a header, one line per row with its total, then the totals line.
    /// Hidden counts read `<5` or `x`, never 0.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let mut header = vec![self.rows_by.clone()];
        header.extend(self.columns.iter().cloned());
        header.push("total".to_owned());
        crate::csv::line(&mut out, &header);
        for row in &self.rows {
            let mut line = vec![row.key.clone()];
            line.extend(row.cells.iter().map(|c| c.display.clone()));
            line.push(row.total.display.clone());
            crate::csv::line(&mut out, &line);
        }
        let mut line = vec!["total".to_owned()];
        line.extend(self.column_totals.iter().map(|c| c.display.clone()));
        line.push(self.total.display.clone());
        crate::csv::line(&mut out, &line);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(b: &Breakdown) -> Vec<Vec<String>> {
        b.rows
            .iter()
            .map(|r| {
                r.cells
                    .iter()
                    .chain(std::iter::once(&r.total))
                    .map(|c| c.display.clone())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_small_cell_is_hidden_and_protected_from_the_totals() {
        let counts = [
            (("IQ-NI", "health"), 20),
            (("IQ-NI", "legal"), 3),
            (("IQ-NI", "shelter"), 15),
            (("IQ-AN", "health"), 12),
            (("IQ-AN", "legal"), 30),
            (("IQ-AN", "shelter"), 9),
        ]
        .map(|((r, c), n)| ((r.to_owned(), c.to_owned()), n));
        let b = breakdown(counts, "governorate", Some("category"), Threshold::DEFAULT);
        assert_eq!(b.columns, ["health", "legal", "shelter"]);
        // Rows in code order: IQ-AN, then IQ-NI with its small cell.
        assert_eq!(b.rows[1].cells[1].display, "<5");
        // No row or column of the table has exactly one hidden member.
        for row in cells(&b) {
            assert_ne!(row.iter().filter(|c| *c == "<5" || *c == "x").count(), 1, "{row:?}");
        }
        let csv = b.to_csv();
        assert!(csv.starts_with("governorate,health,legal,shelter,total\n"), "{csv}");
        assert!(!csv.contains(",3,"), "{csv}");
    }

    #[test]
    fn a_one_way_breakdown_has_a_count_per_row() {
        let counts = [(("requested", ""), 7), (("completed", ""), 2), (("rejected", ""), 12)]
            .map(|((r, c), n)| ((r.to_owned(), c.to_owned()), n));
        let b = breakdown(counts, "status", None, Threshold::DEFAULT);
        assert!(b.columns.is_empty() && b.column_totals.is_empty());
        let shown: Vec<(&str, &str)> = b
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.total.display.as_str()))
            .collect();
        // The small count and one more (so the total cannot give it away).
        assert_eq!(shown, [("completed", "<5"), ("rejected", "12"), ("requested", "x")]);
        assert_eq!(b.total.display, "21");
    }
}
