//! The one table layout of the benchmark reports: each column as wide as its widest cell, the
//! first column left-aligned and the others right-aligned, rows indented by two spaces. A row
//! may end in a note that is printed after its cells and does not widen any column, and a line
//! of text (a sub-heading) may stand between rows without breaking the columns.

use std::fmt;

/// A table of text cells, printed with `{}`.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Row {
    cells: Vec<String>,
    note: Option<String>,
}

impl Table {
    /// A table with its heading row.
    pub fn new<S: Into<String>>(heading: impl IntoIterator<Item = S>) -> Self {
        let mut table = Self::default();
        table.row(heading);
        table
    }

    /// Adds a row of cells.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(Row {
            cells: cells.into_iter().map(Into::into).collect(),
            note: None,
        });
        self
    }

    /// Adds a row of cells followed by `note` (a verdict, a reason), outside the columns.
    pub fn row_with_note<S: Into<String>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
        note: impl Into<String>,
    ) -> &mut Self {
        self.row(cells);
        if let Some(last) = self.rows.last_mut() {
            last.note = Some(note.into());
        }
        self
    }
}

impl Table {
    /// Adds a line of text across the table (a sub-heading; `""` for a blank line): it keeps
    /// the columns above and below it aligned with each other.
    pub fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.rows.push(Row {
            cells: Vec::new(),
            note: Some(text.into()),
        });
        self
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            for (i, cell) in row.cells.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        for row in &self.rows {
            if row.cells.is_empty() {
                writeln!(
                    f,
                    "{}",
                    format!("  {}", row.note.as_deref().unwrap_or_default()).trim_end()
                )?;
                continue;
            }
            let mut line = String::from(" ");
            for (i, cell) in row.cells.iter().enumerate() {
                let pad = " ".repeat(widths[i] - cell.chars().count());
                line.push(' ');
                if i == 0 {
                    line.push_str(cell);
                    line.push_str(&pad);
                } else {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
            if let Some(note) = &row.note {
                line.push_str("  ");
                line.push_str(note);
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_notes_widen_nothing() {
        let mut table = Table::new(["phase", "rate", "p99"]);
        table
            .row(["(a) raw", "1,000 msg/s", "2.00 ms"])
            .row_with_note(["(b)/(a)", "0.52"], "(target ≥ 0.50: PASS)")
            .row(["", "", "bench / server"])
            .text("")
            .text("a sub-heading");
        let lines: Vec<String> = table.to_string().lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "  phase          rate            p99",
                "  (a) raw 1,000 msg/s        2.00 ms",
                "  (b)/(a)        0.52  (target ≥ 0.50: PASS)",
                "                      bench / server",
                "",
                "  a sub-heading",
            ]
        );
    }
}
