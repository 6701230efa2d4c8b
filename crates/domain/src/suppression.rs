//! Small-cell suppression: what every aggregate table from the dashboards and exports goes
//! through before anyone sees it.
//!
//! A small count can point at a person: "2 survivors from this sub-district referred to GBV case
//! management this week" may be enough for a neighbour to know who. So every count from 1 to
//! k − 1 is hidden (k = 5 unless configured). What a coordinator reads in a table:
//!
//! - **a number** such as `17` or `0`: the true count. Zero is shown: nobody is not a small group.
//! - **`<5`** (for k = 5): at least 1 and at most 4. This is *primary* suppression.
//! - **`x`**: withheld to protect another hidden number (*complementary* suppression). It may be
//!   any count, zero or large; it is not known to be small and must never be read as `<5`.
//!
//! Why the `x`: tables show totals. Were one count of a row hidden and its total shown, anyone
//! could subtract the visible counts from the total and get it back. So the table is read as
//! lines, each with its total: every row with its row total, every column with its column total,
//! the row of column totals with the grand total, the column of row totals with the grand total.
//! Totals are suppressed by the same rule as any count, and no line may have exactly one hidden
//! member. That is not quite enough: lines can be combined (two column totals minus a row total
//! may isolate one hidden count even though every line hides two), so a second pass hides further
//! counts until no hidden number can be worked out exactly from any combination of the visible
//! ones. Hidden numbers are chosen to lose as little as possible: inner counts before totals, the
//! smallest non-zero count first, and a count that also protects another line when there is one.
//!
//! The function works on indices; labels stay with the caller. A one-dimensional list with a
//! total is a table of one row ([`Table::from_list`]); its column totals then repeat its counts.
//!
//! # Limits
//!
//! - **Ranges are not protected.** The rule stops exact recomputation, not narrowing: if a row
//!   shows its total and two of its counts are hidden, their sum is known, and a `<5` next to an
//!   `x` in a row whose hidden part sums to 2 can only be 1 and 1, or 2 and 0. Protection
//!   intervals (as in τ-ARGUS's optimal suppression) are not guaranteed here.
//! - **The choice itself says something.** The rule is public and deterministic, so a reader may
//!   infer that an `x` was preferred because it is small; this narrows its range a little.
//! - **One table at a time.** Tables of the same counts cut differently, or the same table one
//!   week apart, can be subtracted from each other; suppression inside each table does not stop
//!   that. Publish fixed breakdowns and periods, and keep the same k everywhere.

use crate::error::ValidationError;
use std::fmt;

/// The threshold used unless configured otherwise: counts from 1 to 4 are hidden.
pub const DEFAULT_K: u64 = 5;

/// What a withheld (complementary) cell shows.
pub const WITHHELD_TEXT: &str = "x";

/// The suppression threshold k: counts n with 0 < n < k are hidden. At least 2 (a threshold of
/// 0 or 1 would hide nothing and only pretend to protect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

impl Threshold {
    /// k = [`DEFAULT_K`].
    pub const DEFAULT: Self = Self(DEFAULT_K);

    /// A threshold of `k`; refused below 2.
    pub const fn new(k: u64) -> Result<Self, ValidationError> {
        if k < 2 {
            Err(ValidationError::new("suppression_threshold", "must be at least 2"))
        } else {
            Ok(Self(k))
        }
    }

    /// k.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether `n` is a small count, hidden by primary suppression: 0 < n < k.
    pub const fn is_small(self, n: u64) -> bool {
        n > 0 && n < self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u64> for Threshold {
    type Error = ValidationError;

    fn try_from(k: u64) -> Result<Self, Self::Error> {
        Self::new(k)
    }
}

/// A table of counts, rows × columns, every row of the same length, its totals known to fit in
/// a `u64`. Rows and columns are indices; the labels stay with the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Table {
    columns: usize,
    counts: Vec<Vec<u64>>,
    row_totals: Vec<u64>,
    column_totals: Vec<u64>,
    grand_total: u64,
}

impl Table {
    /// A table from its rows. Refused when the rows differ in length, or a total would not fit
    /// in a `u64`. No rows at all, or rows of no columns, make an empty table (totals 0).
    pub fn new(rows: Vec<Vec<u64>>) -> Result<Self, ValidationError> {
        let columns = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|row| row.len() != columns) {
            return Err(ValidationError::new(
                "table",
                "rows must all have the same number of columns",
            ));
        }
        let overflow = || ValidationError::new("table", "totals must fit in 64 bits");
        let row_totals = rows
            .iter()
            .map(|row| checked_sum(row.iter().copied()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(overflow)?;
        let column_totals = (0..columns)
            .map(|c| checked_sum(rows.iter().filter_map(|row| row.get(c).copied())))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(overflow)?;
        let grand_total = checked_sum(row_totals.iter().copied()).ok_or_else(overflow)?;
        Ok(Self {
            columns,
            counts: rows,
            row_totals,
            column_totals,
            grand_total,
        })
    }

    /// A one-dimensional table: a list of counts with its total, as one row.
    pub fn from_list(counts: Vec<u64>) -> Result<Self, ValidationError> {
        Self::new(vec![counts])
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.counts.len()
    }

    /// The number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The count at row `r`, column `c`, if the table has it.
    pub fn get(&self, r: usize, c: usize) -> Option<u64> {
        self.counts.get(r)?.get(c).copied()
    }

    /// The total of row `r`.
    pub fn row_total(&self, r: usize) -> Option<u64> {
        self.row_totals.get(r).copied()
    }

    /// The total of column `c`.
    pub fn column_total(&self, c: usize) -> Option<u64> {
        self.column_totals.get(c).copied()
    }

    /// The total of all counts.
    pub fn grand_total(&self) -> u64 {
        self.grand_total
    }

    /// The value at `(r, c)` of the table extended by its margins: `r == rows()` is the row of
    /// column totals, `c == columns()` the column of row totals.
    fn extended(&self, r: usize, c: usize) -> Option<u64> {
        match (r == self.rows(), c == self.columns) {
            (false, false) => self.get(r, c),
            (false, true) => self.row_total(r),
            (true, false) => self.column_total(c),
            (true, true) => Some(self.grand_total),
        }
    }
}

/// The sum, or `None` if it overflows.
fn checked_sum(values: impl IntoIterator<Item = u64>) -> Option<u64> {
    values.into_iter().try_fold(0u64, u64::checked_add)
}

/// A count, or a total, as it may be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    /// The true count.
    Shown(u64),
    /// Primary suppression: the count is at least 1 and below k. Shown as `<k`, e.g. `<5`.
    Small,
    /// Complementary suppression: hidden to protect another cell. Its count may be anything,
    /// zero included; shown as [`WITHHELD_TEXT`], never as `<k`.
    Withheld,
}

impl Cell {
    /// Whether the count is hidden (small or withheld).
    pub const fn is_suppressed(self) -> bool {
        !matches!(self, Self::Shown(_))
    }

    /// The count, if shown.
    pub const fn shown(self) -> Option<u64> {
        match self {
            Self::Shown(n) => Some(n),
            Self::Small | Self::Withheld => None,
        }
    }

    /// The cell as a reader sees it under threshold `k`: `17`, `0`, `<5` or `x`.
    pub const fn display(self, k: Threshold) -> CellText {
        CellText { cell: self, k }
    }
}

/// A [`Cell`] with its threshold, ready to print; see [`Cell::display`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellText {
    cell: Cell,
    k: Threshold,
}

impl fmt::Display for CellText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell {
            Cell::Shown(n) => write!(f, "{n}"),
            Cell::Small => write!(f, "<{}", self.k.get()),
            Cell::Withheld => f.write_str(WITHHELD_TEXT),
        }
    }
}

/// A table after suppression: every count and every total is a [`Cell`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SuppressedTable {
    rows: usize,
    columns: usize,
    k: Threshold,
    /// Row-major over the table extended by its margins, `(rows + 1) × (columns + 1)`.
    cells: Vec<Cell>,
}

impl SuppressedTable {
    /// The number of rows (without the totals row).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns (without the totals column).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The threshold the table was suppressed with, for [`Cell::display`].
    pub fn threshold(&self) -> Threshold {
        self.k
    }

    /// The cell at row `r`, column `c`.
    pub fn cell(&self, r: usize, c: usize) -> Option<Cell> {
        (r < self.rows && c < self.columns).then(|| self.at(r, c)).flatten()
    }

    /// The total of row `r`.
    pub fn row_total(&self, r: usize) -> Option<Cell> {
        (r < self.rows).then(|| self.at(r, self.columns)).flatten()
    }

    /// The total of column `c`.
    pub fn column_total(&self, c: usize) -> Option<Cell> {
        (c < self.columns).then(|| self.at(self.rows, c)).flatten()
    }

    /// The grand total.
    pub fn grand_total(&self) -> Cell {
        // The grid always holds the grand total; were it missing, hiding is the safe answer.
        self.at(self.rows, self.columns).unwrap_or(Cell::Withheld)
    }

    fn at(&self, r: usize, c: usize) -> Option<Cell> {
        self.cells.get(r * (self.columns + 1) + c).copied()
    }
}

/// Suppresses `table` under threshold `k`; see the module docs for the rule. The same table and
/// threshold always give the same result.
pub fn suppress(table: &Table, k: Threshold) -> SuppressedTable {
    let mut work = Work::new(table, k);
    work.close_lines();
    work.close_chains();
    SuppressedTable {
        rows: work.rows,
        columns: work.columns,
        k,
        cells: work.cells,
    }
}

/// A position in the table extended by its margins: `(row, column)`, where `row == rows` is the
/// totals row and `column == columns` the totals column. Its derived order (row-major) breaks
/// every tie, which keeps the result deterministic.
type Pos = (usize, usize);

/// A line: a row or a column of the extended table, the last member being its total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Row(usize),
    Column(usize),
}

struct Work {
    rows: usize,
    columns: usize,
    values: Vec<u64>,
    cells: Vec<Cell>,
    hidden_in_row: Vec<usize>,
    hidden_in_column: Vec<usize>,
}

impl Work {
    /// Primary suppression: every small count and total becomes [`Cell::Small`].
    fn new(table: &Table, k: Threshold) -> Self {
        let (rows, columns) = (table.rows(), table.columns());
        let mut work = Self {
            rows,
            columns,
            values: Vec::with_capacity((rows + 1) * (columns + 1)),
            cells: Vec::with_capacity((rows + 1) * (columns + 1)),
            hidden_in_row: vec![0; rows + 1],
            hidden_in_column: vec![0; columns + 1],
        };
        for r in 0..=rows {
            for c in 0..=columns {
                let value = table.extended(r, c).unwrap_or(0);
                work.values.push(value);
                work.cells.push(Cell::Shown(value));
                if k.is_small(value) {
                    work.hide((r, c), Cell::Small);
                }
            }
        }
        work
    }

    fn index(&self, (r, c): Pos) -> usize {
        r * (self.columns + 1) + c
    }

    fn value(&self, pos: Pos) -> u64 {
        self.values.get(self.index(pos)).copied().unwrap_or(0)
    }

    fn is_hidden(&self, pos: Pos) -> bool {
        self.cells.get(self.index(pos)).is_some_and(|cell| cell.is_suppressed())
    }

    fn is_margin(&self, (r, c): Pos) -> bool {
        r == self.rows || c == self.columns
    }

    fn hide(&mut self, pos: Pos, as_cell: Cell) {
        let i = self.index(pos);
        if let Some(cell) = self.cells.get_mut(i)
            && !cell.is_suppressed()
        {
            *cell = as_cell;
            for count in [self.hidden_in_row.get_mut(pos.0), self.hidden_in_column.get_mut(pos.1)]
                .into_iter()
                .flatten()
            {
                *count += 1;
            }
        }
    }

    fn lines(&self) -> impl Iterator<Item = Line> + use<> {
        (0..=self.rows)
            .map(Line::Row)
            .chain((0..=self.columns).map(Line::Column))
    }

    fn members(&self, line: Line) -> Vec<Pos> {
        match line {
            Line::Row(r) => (0..=self.columns).map(|c| (r, c)).collect(),
            Line::Column(c) => (0..=self.rows).map(|r| (r, c)).collect(),
        }
    }

    fn hidden_count(&self, line: Line) -> usize {
        match line {
            Line::Row(r) => self.hidden_in_row.get(r),
            Line::Column(c) => self.hidden_in_column.get(c),
        }
        .copied()
        .unwrap_or(0)
    }

    fn positions(&self) -> impl Iterator<Item = Pos> + use<> {
        let columns = self.columns;
        (0..=self.rows).flat_map(move |r| (0..=columns).map(move |c| (r, c)))
    }

    /// Complementary suppression, line by line: while some line has exactly one hidden member
    /// (recomputable as total − visible counts, or as the sum of the counts when it is the
    /// total), hide one more member of that line. Each step hides one more cell of a finite
    /// table, so this ends after at most `(rows + 1) × (columns + 1)` steps.
    fn close_lines(&mut self) {
        while let Some(pos) = self
            .lines()
            .filter(|line| self.hidden_count(*line) == 1)
            .find_map(|line| self.line_candidate(line))
        {
            self.hide(pos, Cell::Withheld);
        }
    }

    /// The member of `line` to withhold. In order of preference: a count above zero (a line with
    /// exactly one hidden member whose value is positive always has one: its total, or one of
    /// its counts, is positive too); an inner count rather than a total; a cell whose other
    /// line also has exactly one hidden member (one cell then closes two lines), else one whose
    /// other line already has two (closing this line opens no other); the smallest count; the
    /// first position.
    ///
    /// A zero is the last resort, and it still protects: the reader sees `x`, not 0, and cannot
    /// tell it from any other count. It is last because a zero the reader can guess from
    /// context (a service that cannot have such clients) protects nothing.
    fn line_candidate(&self, line: Line) -> Option<Pos> {
        self.members(line)
            .into_iter()
            .filter(|pos| !self.is_hidden(*pos))
            .min_by_key(|&pos| {
                let other = match line {
                    Line::Row(_) => Line::Column(pos.1),
                    Line::Column(_) => Line::Row(pos.0),
                };
                let opens_or_closes = match self.hidden_count(other) {
                    1 => 0,
                    0 => 2,
                    _ => 1,
                };
                let value = self.value(pos);
                (value == 0, self.is_margin(pos), opens_or_closes, value, pos)
            })
    }

    /// Complementary suppression across lines. Read each line as an equation (its counts sum
    /// to its total) and the hidden cells as the edges of a graph whose nodes are the lines
    /// (a cell joins its row and its column). A hidden cell can be worked out exactly from
    /// the visible ones, by adding and subtracting lines, exactly when it lies on no cycle of
    /// hidden cells — when it is a bridge of that graph; on a cycle, adding 1 and subtracting 1
    /// alternately around it changes the cell and keeps every total. After [`Self::close_lines`]
    /// no line has exactly one hidden member, so no bridge ends at a line with nothing else
    /// hidden; yet a bridge may join two groups of hidden cells. For each bridge, hide one more
    /// cell joining its two sides, which closes a cycle through it.
    ///
    /// Each step hides one more cell, so this ends. Hiding a cell never makes a new bridge and
    /// never leaves a line with exactly one hidden member (both its lines already had at least
    /// two), so the rule of [`Self::close_lines`] still holds at the end.
    fn close_chains(&mut self) {
        loop {
            let adjacency = self.adjacency();
            let Some(pos) = self
                .bridges(&adjacency)
                .into_iter()
                .find_map(|bridge| self.chain_candidate(&adjacency, bridge))
            else {
                break;
            };
            self.hide(pos, Cell::Withheld);
        }
    }

    /// The graph's nodes: row `r` is node `r`, column `c` is node `rows + 1 + c`.
    fn nodes(&self, (r, c): Pos) -> (usize, usize) {
        (r, self.rows + 1 + c)
    }

    /// For each node, its hidden cells: the node at their other end, and the cell.
    fn adjacency(&self) -> Vec<Vec<(usize, Pos)>> {
        let mut adjacency = vec![Vec::new(); self.rows + self.columns + 2];
        for pos in self.positions().filter(|pos| self.is_hidden(*pos)) {
            let (row, column) = self.nodes(pos);
            if let Some(edges) = adjacency.get_mut(row) {
                edges.push((column, pos));
            }
            if let Some(edges) = adjacency.get_mut(column) {
                edges.push((row, pos));
            }
        }
        adjacency
    }

    /// The hidden cells that lie on no cycle, in position order (Tarjan's bridge search, with an
    /// explicit stack so a long table cannot overflow the call stack).
    fn bridges(&self, adjacency: &[Vec<(usize, Pos)>]) -> Vec<Pos> {
        let n = adjacency.len();
        let mut discovered: Vec<Option<usize>> = vec![None; n];
        let mut low = vec![0usize; n];
        let mut bridges = Vec::new();
        let mut time = 0;
        for root in 0..n {
            if discovered[root].is_some() {
                continue;
            }
            discovered[root] = Some(time);
            low[root] = time;
            time += 1;
            // (node, the hidden cell it was reached by, the next of its edges to follow)
            let mut stack: Vec<(usize, Option<Pos>, usize)> = vec![(root, None, 0)];
            while let Some(top) = stack.last_mut() {
                let (node, via) = (top.0, top.1);
                if let Some(&(next, edge)) = adjacency[node].get(top.2) {
                    top.2 += 1;
                    if Some(edge) == via {
                        continue;
                    }
                    match discovered[next] {
                        Some(seen) => low[node] = low[node].min(seen),
                        None => {
                            discovered[next] = Some(time);
                            low[next] = time;
                            time += 1;
                            stack.push((next, Some(edge), 0));
                        }
                    }
                } else {
                    stack.pop();
                    if let (Some(edge), Some(&(parent, _, _))) = (via, stack.last()) {
                        low[parent] = low[parent].min(low[node]);
                        if discovered[parent].is_some_and(|at| low[node] > at) {
                            bridges.push(edge);
                        }
                    }
                }
            }
        }
        bridges.sort_unstable();
        bridges
    }

    /// The visible cell to withhold so that `bridge` lies on a cycle: one joining the two sides
    /// the bridge separates, preferring a count above zero, an inner count, the smallest, the
    /// first position. There is always one after [`Self::close_lines`]: each end of the bridge
    /// has another hidden cell, leading to a line on the same side, and the cell where those two
    /// lines cross is visible (were it hidden, the bridge would not be one).
    fn chain_candidate(&self, adjacency: &[Vec<(usize, Pos)>], bridge: Pos) -> Option<Pos> {
        let (row, column) = self.nodes(bridge);
        let near = reachable(adjacency, row, bridge);
        let far = reachable(adjacency, column, bridge);
        let side = |node: usize| match (near.get(node), far.get(node)) {
            (Some(true), _) => Some(true),
            (_, Some(true)) => Some(false),
            _ => None,
        };
        self.positions()
            .filter(|pos| !self.is_hidden(*pos))
            .filter(|&pos| {
                let (a, b) = self.nodes(pos);
                matches!((side(a), side(b)), (Some(x), Some(y)) if x != y)
            })
            .min_by_key(|&pos| {
                let value = self.value(pos);
                (value == 0, self.is_margin(pos), value, pos)
            })
    }
}

/// The nodes reachable from `start` over hidden cells, without crossing `skip`.
fn reachable(adjacency: &[Vec<(usize, Pos)>], start: usize, skip: Pos) -> Vec<bool> {
    let mut seen = vec![false; adjacency.len()];
    let mut queue = vec![start];
    if let Some(first) = seen.get_mut(start) {
        *first = true;
    }
    while let Some(node) = queue.pop() {
        for &(next, edge) in adjacency.get(node).into_iter().flatten() {
            if edge != skip
                && let Some(flag) = seen.get_mut(next)
                && !*flag
            {
                *flag = true;
                queue.push(next);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(table: &SuppressedTable) -> Vec<String> {
        (0..=table.rows)
            .map(|r| {
                (0..=table.columns)
                    .map(|c| match table.at(r, c) {
                        Some(Cell::Shown(_)) => '.',
                        Some(Cell::Small) => 's',
                        Some(Cell::Withheld) => 'x',
                        None => '?',
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_lone_small_cell_is_closed_into_a_rectangle_of_four() {
        let table = Table::new(vec![vec![20, 3, 15], vec![12, 30, 9], vec![18, 25, 40]]).expect("table");
        let out = suppress(&table, Threshold::DEFAULT);
        assert_eq!(pattern(&out), [".sx.", "....", ".xx.", "...."]);
    }

    #[test]
    fn bridges_are_found_between_two_closed_groups() {
        // Two rectangles of hidden cells joined by one more hidden cell: only that one is a
        // bridge.
        let table = Table::new(vec![vec![10; 5]; 5]).expect("table");
        let mut work = Work::new(&table, Threshold::DEFAULT);
        for pos in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)] {
            work.hide(pos, Cell::Withheld);
        }
        assert_eq!(work.bridges(&work.adjacency()), [(1, 2)]);
        work.close_chains();
        assert!(work.bridges(&work.adjacency()).is_empty());
        // The first visible cell joining the two sides closes the cycle.
        assert!(work.is_hidden((0, 2)));
        assert_eq!(work.hidden_count(Line::Row(0)), 3);
    }
}
