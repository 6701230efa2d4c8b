//! Keyset pagination: a page asks for the rows after a cursor, in a fixed order that ends with
//! the row's id, so a page is one index range scan however deep it is and a row changing while
//! a client pages never makes another row appear twice or vanish on account of an offset.
//!
//! A cursor is `v1.<query>.<sort key>.<id>`: the query it belongs to, the last row's sort key
//! (a decimal integer, or hex-encoded text) and its id (hex-encoded); a query ordered by a
//! group before its key (the inbox: overdue first) writes `v1.<query>.<group>.<sort key>.<id>`.
//! Clients treat it as opaque; anything this module did not write is
//! [`ProjectionError::BadCursor`].

use crate::error::ProjectionError;
use crate::sql::{Value, bind};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

/// Rows per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most rows per page.
pub const MAX_LIMIT: u32 = 500;
/// Longer cursors were never issued: refused before any decoding.
const MAX_CURSOR_LEN: usize = 1_024;
const VERSION: &str = "v1";

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most rows to return; 0 counts as 1 and anything above [`MAX_LIMIT`] as [`MAX_LIMIT`].
    pub limit: u32,
    /// The `next` cursor of the previous page; `None` for the first page.
    pub after: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(DEFAULT_LIMIT)
    }
}

impl PageRequest {
    /// The first page of `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// The page of `limit` rows after `cursor` (a previous page's `next`).
    pub fn continuing(limit: u32, cursor: impl Into<String>) -> Self {
        Self {
            limit,
            after: Some(cursor.into()),
        }
    }

    /// The number of rows the page holds at most, after clamping.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIMIT)
    }
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows, in the query's order.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page without rows and without a next page.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

/// The type of a sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Int,
    Text,
}

/// The value of a sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    #[cfg(test)]
    fn kind(&self) -> KeyKind {
        match self {
            Self::Int(_) => KeyKind::Int,
            Self::Text(_) => KeyKind::Text,
        }
    }

    fn value(&self) -> Value {
        match self {
            Self::Int(v) => Value::from(*v),
            Self::Text(v) => Value::from(v.clone()),
        }
    }
}

/// The order of a paged query: optionally a group, then one sort key, then the id to break
/// ties, all in `direction`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyset {
    /// Names the query in its cursors, so one query's cursor is refused by another.
    pub scope: &'static str,
    /// The `FROM` clause (tables of our own, with the aliases `key` and `id` use).
    pub from: &'static str,
    /// An integer column sorted before the key (e.g. 1 for overdue rows, 0 for the others),
    /// or `None`.
    pub group: Option<&'static str>,
    /// The sort key's SQL expression (a column of our own tables).
    pub key: &'static str,
    /// Its type.
    pub kind: KeyKind,
    /// The id's SQL expression.
    pub id: &'static str,
    /// Newest (largest) first.
    pub descending: bool,
}

impl Keyset {
    /// Refuses a cursor this query did not issue, for queries answered without the database.
    pub(crate) fn check(&self, page: &PageRequest) -> Result<(), ProjectionError> {
        match &page.after {
            Some(after) => Cursor::decode(after, self.scope, self.kind, self.group.is_some()).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The position after one row: its group (for a grouped keyset), sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub group: Option<i64>,
    pub key: Key,
    pub id: String,
}

/// Only the canonical form this module writes: no sign but `-`, no leading zeros.
fn canonical_int(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

impl Cursor {
    /// The position after a row of an ungrouped keyset.
    pub(crate) fn at(key: Key, id: String) -> Self {
        Self { group: None, key, id }
    }

    pub(crate) fn encode(&self, scope: &str) -> String {
        let key = match &self.key {
            Key::Int(v) => v.to_string(),
            Key::Text(v) => to_hex(v.as_bytes()),
        };
        let id = to_hex(self.id.as_bytes());
        match self.group {
            Some(group) => format!("{VERSION}.{scope}.{group}.{key}.{id}"),
            None => format!("{VERSION}.{scope}.{key}.{id}"),
        }
    }

    pub(crate) fn decode(text: &str, scope: &str, kind: KeyKind, grouped: bool) -> Result<Self, ProjectionError> {
        let bad = || ProjectionError::BadCursor;
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let parts: Vec<&str> = text.split('.').collect();
        let (version, tag, group, key, id) = match (grouped, parts.as_slice()) {
            (false, [version, tag, key, id]) => (*version, *tag, None, *key, *id),
            (true, [version, tag, group, key, id]) => (*version, *tag, Some(*group), *key, *id),
            _ => return Err(bad()),
        };
        if version != VERSION || tag != scope || id.is_empty() {
            return Err(bad());
        }
        let group = group.map(|g| canonical_int(g).ok_or_else(bad)).transpose()?;
        let key = match kind {
            KeyKind::Int => Key::Int(canonical_int(key).ok_or_else(bad)?),
            KeyKind::Text => Key::Text(from_hex_utf8(key).ok_or_else(bad)?),
        };
        let id = from_hex_utf8(id).ok_or_else(bad)?;
        Ok(Self { group, key, id })
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn from_hex_utf8(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes: Option<Vec<u8>> = text
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A `SELECT` being built: `WHERE` conditions and their bound values. Conditions are SQL
/// written in this module's callers with column names of our own tables; every value is bound
/// and referred to by the `$N` that [`Select::bind`] returns.
#[derive(Debug, Default)]
pub(crate) struct Select {
    conditions: Vec<String>,
    values: Vec<Value>,
}

impl Select {
    /// Binds a value; returns its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// Adds a condition (ANDed with the others).
    pub(crate) fn filter(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// `column = value`, when there is a value.
    pub(crate) fn eq(&mut self, column: &str, value: Option<String>) {
        if let Some(value) = value {
            let p = self.bind(value);
            self.filter(format!("{column} = {p}"));
        }
    }

    /// `column IN (codes)`, unless `codes` is empty (any).
    pub(crate) fn one_of(&mut self, column: &str, codes: &[&'static str]) {
        let mut codes = codes.to_vec();
        codes.sort_unstable();
        codes.dedup();
        if codes.is_empty() {
            return;
        }
        let placeholders: Vec<String> = codes.into_iter().map(|c| self.bind(c.to_owned())).collect();
        self.filter(format!("{column} IN ({})", placeholders.join(", ")));
    }

    /// `list_column` (`,a,b,`) holds `item`.
    pub(crate) fn list_holds(&mut self, list_column: &str, item: String) {
        let p = self.bind(item);
        // LOWER on both sides: SQLite's LIKE ignores ASCII case and PostgreSQL's does not.
        self.filter(format!("LOWER({list_column}) LIKE '%,' || LOWER({p}) || ',%'"));
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// Runs `SELECT <columns> FROM <from> WHERE … <tail>` (`tail`: `GROUP BY`, `ORDER BY`,
    /// `LIMIT`) and reads every row.
    pub(crate) async fn fetch_all<T>(
        self,
        models: &crate::ReadModels,
        columns: &str,
        from: &str,
        tail: &str,
        read: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, ProjectionError> {
        let sql = format!("SELECT {columns} FROM {from}{} {tail}", self.where_clause());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in self.values {
            query = bind(query, value);
        }
        let rows = query.fetch_all(&models.pool).await?;
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Runs the query as one page in `keyset` order: the rows after `page.after`, at most
    /// `page.limit`, reading one more to learn whether a next page exists.
    pub(crate) async fn fetch_page<T>(
        mut self,
        models: &crate::ReadModels,
        columns: &str,
        keyset: Keyset,
        page: &PageRequest,
        read: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> Result<Page<T>, ProjectionError> {
        if let Some(after) = &page.after {
            let cursor = Cursor::decode(after, keyset.scope, keyset.kind, keyset.group.is_some())?;
            let op = if keyset.descending { "<" } else { ">" };
            let key = self.bind(cursor.key.value());
            let id = self.bind(cursor.id);
            let (k, i) = (keyset.key, keyset.id);
            // The expanded form of a row comparison: PostgreSQL would take `(k, id) < ($1, $2)`
            // but SQLite's planner only uses an index for this shape.
            let within = format!("({k} {op} {key} OR ({k} = {key} AND {i} {op} {id}))");
            match (keyset.group, cursor.group) {
                (Some(g), Some(group)) => {
                    let group = self.bind(group);
                    self.filter(format!("({g} {op} {group} OR ({g} = {group} AND {within}))"));
                }
                _ => self.filter(within),
            }
        }
        let limit = page.effective_limit();
        let dir = if keyset.descending { "DESC" } else { "ASC" };
        let limit_param = self.bind(i64::from(limit) + 1);
        let group = keyset.group.map(|g| format!("{g} {dir}, ")).unwrap_or_default();
        let tail = format!(
            "ORDER BY {group}{} {dir}, {} {dir} LIMIT {limit_param}",
            keyset.key, keyset.id
        );
        let mut items = self.fetch_all(models, columns, keyset.from, &tail, read).await?;
        let limit = limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| cursor_of(last).encode(keyset.scope))
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

/// `alias.column AS column` for each column, so rows read by name whatever the join.
pub(crate) fn qualified(alias: &str, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{c} AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(key: Key, id: &str) -> Cursor {
        Cursor::at(key, id.to_owned())
    }

    #[test]
    fn cursors_round_trip() {
        for c in [
            cursor(Key::Int(1_767_225_600_000), "0190b2c4-0000-7000-8000-000000000001"),
            cursor(Key::Int(-5), "x"),
            cursor(Key::Text("Org. ٢ — with dots.".to_owned()), "id.with.dots"),
            cursor(Key::Text(String::new()), "id"),
        ] {
            let kind = c.key.kind();
            let text = c.encode("cases");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            );
            assert_eq!(Cursor::decode(&text, "cases", kind, false).unwrap(), c);
            let grouped = Cursor { group: Some(1), ..c };
            let text = grouped.encode("inbox");
            assert_eq!(Cursor::decode(&text, "inbox", kind, true).unwrap(), grouped);
            assert!(
                Cursor::decode(&text, "inbox", kind, false).is_err(),
                "a grouped cursor is not an ungrouped one"
            );
        }
    }

    #[test]
    fn foreign_or_garbled_cursors_are_refused() {
        let good = cursor(Key::Int(42), "abc").encode("cases");
        let refused = [
            String::new(),
            "garbage".to_owned(),
            "v1.cases.42".to_owned(),
            "v1.cases.42.616263.00".to_owned(),
            "v2.cases.42.616263".to_owned(),
            "v1.cases.042.616263".to_owned(),
            "v1.cases.+42.616263".to_owned(),
            "v1.cases.42.61626".to_owned(),
            "v1.cases.42.6162zz".to_owned(),
            "v1.cases.42.ff".to_owned(),
            "v1.cases.42.".to_owned(),
            "v1.cases.99999999999999999999.616263".to_owned(),
            format!("{good}{}", "0".repeat(2_000)),
        ];
        for text in refused {
            assert!(
                matches!(
                    Cursor::decode(&text, "cases", KeyKind::Int, false),
                    Err(ProjectionError::BadCursor)
                ),
                "{text:?} was accepted"
            );
        }
        assert!(Cursor::decode(&good, "cases", KeyKind::Int, false).is_ok());
        // Another query's cursor.
        assert!(matches!(
            Cursor::decode(&good, "inbox", KeyKind::Int, false),
            Err(ProjectionError::BadCursor)
        ));
        // A grouped query refuses an ungrouped cursor, and a group that is not a canonical number.
        let grouped = Cursor {
            group: Some(1),
            ..cursor(Key::Int(42), "abc")
        }
        .encode("inbox");
        assert!(Cursor::decode(&grouped, "inbox", KeyKind::Int, true).is_ok());
        for text in [
            cursor(Key::Int(42), "abc").encode("inbox"),
            grouped.replacen(".1.", ".01.", 1),
            grouped.replacen(".1.", ".x.", 1),
        ] {
            assert!(
                matches!(
                    Cursor::decode(&text, "inbox", KeyKind::Int, true),
                    Err(ProjectionError::BadCursor)
                ),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(PageRequest::first(0).effective_limit(), 1);
        assert_eq!(PageRequest::first(10_000).effective_limit(), MAX_LIMIT);
        assert_eq!(PageRequest::default().effective_limit(), DEFAULT_LIMIT);
    }
}
