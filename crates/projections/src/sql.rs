//! Small SQL helpers shared by the projections: a row macro that keeps a struct, its column
//! list and its values in one place, batched multi-row upserts and inserts, and loading rows by
//! id — all in the `$N` dialect PostgreSQL and SQLite share.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe};
use std::collections::HashMap;

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<Option<Vec<u8>>> for Value {
    fn from(v: Option<Vec<u8>>) -> Self {
        Self::Blob(v)
    }
}

pub(crate) fn bind(query: Query<'static, Any, AnyArguments>, value: Value) -> Query<'static, Any, AnyArguments> {
    match value {
        Value::Int(v) => query.bind(v),
        Value::Text(v) => query.bind(v),
        Value::Blob(v) => query.bind(v),
    }
}

/// Declares a read-model row: the struct, `COLUMNS` (in declaration order, the first being
/// the key), `values()` in the same order, and `from_row`.
macro_rules! row {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)] // rows are plain data: their columns say what they hold
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// The columns, key first.
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            #[allow(dead_code)]
            pub(crate) fn values(self) -> Vec<$crate::sql::Value> {
                vec![$($crate::sql::Value::from(self.$field)),*]
            }

            /// Reads a row selected with `COLUMNS`.
            pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(Self { $($field: row.try_get(stringify!($field))?,)* })
            }
        }
    };
}
pub(crate) use row;

/// Most bound parameters per statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;

/// How the many parameters of a bulk statement are written. PostgreSQL needs `$N`. SQLite
/// accepts `$N` too, but looks each such name up in a list (`sqlite3_bind_parameter_name`), which
/// makes binding a statement of n parameters cost n² — a 12,000-parameter insert spent 80% of
/// its time there. Anonymous `?` parameters bound in order cost nothing; bulk statements, whose
/// parameters are all distinct and in order, use them on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `$1, $2, …`
    Numbered,
    /// `?, ?, …` in binding order.
    Anonymous,
}

impl Placeholders {
    /// The style for a connection's database.
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Self::Anonymous
        } else {
            Self::Numbered
        }
    }

    fn write(self, sql: &mut String, n: usize) {
        match self {
            Self::Numbered => {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            Self::Anonymous => sql.push('?'),
        }
    }
}

/// Inserts `rows` (each `columns.len()` values) into `table`; with `upsert_key`, a row whose key
/// exists replaces every other column.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    upsert_key: Option<&str>,
    rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let per_statement = (MAX_PARAMS / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let sql = insert_sql(Placeholders::of(conn), table, columns, upsert_key, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in chunk.into_iter().flatten() {
            query = bind(query, value);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn insert_sql(style: Placeholders, table: &str, columns: &[&str], upsert_key: Option<&str>, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            style.write(&mut sql, n);
        }
        sql.push(')');
    }
    if let Some(key) = upsert_key.filter(|_| columns.len() == 1) {
        sql.push_str(&format!(" ON CONFLICT ({key}) DO NOTHING"));
    } else if let Some(key) = upsert_key {
        sql.push_str(&format!(" ON CONFLICT ({key}) DO UPDATE SET "));
        let sets: Vec<String> = columns
            .iter()
            .filter(|c| **c != key)
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        sql.push_str(&sets.join(", "));
    }
    sql
}

/// Loads the rows of `table` whose `key` is one of `ids`, keyed by it.
pub(crate) async fn load_rows<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    key: &str,
    ids: &[String],
    read: impl Fn(&AnyRow) -> Result<R, sqlx::Error>,
    key_of: impl Fn(&R) -> String,
) -> Result<HashMap<String, R>, sqlx::Error> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let style = Placeholders::of(conn);
        let mut placeholders = String::new();
        for n in 1..=chunk.len() {
            if n > 1 {
                placeholders.push_str(", ");
            }
            style.write(&mut placeholders, n);
        }
        let sql = format!(
            "SELECT {} FROM {table} WHERE {key} IN ({placeholders})",
            columns.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let row = read(&row)?;
            found.insert(key_of(&row), row);
        }
    }
    Ok(found)
}

/// `,a,b,` — a list column that one `LIKE '%,x,%'` searches on both databases.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(",");
    for item in items {
        out.push_str(item);
        out.push(',');
    }
    out
}

/// The items of a list column.
pub(crate) fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_sql_numbers_parameters_across_rows_and_updates_all_but_the_key() {
        assert_eq!(
            insert_sql(Placeholders::Numbered, "t", &["id", "a"], Some("id"), 2),
            "INSERT INTO t (id, a) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
        assert_eq!(
            insert_sql(Placeholders::Anonymous, "t", &["x", "y"], None, 2),
            "INSERT INTO t (x, y) VALUES (?, ?), (?, ?)"
        );
    }

    #[test]
    fn list_columns_round_trip() {
        let l = list(["ar", "ckb"]);
        assert_eq!(l, ",ar,ckb,");
        assert_eq!(items(&l).collect::<Vec<_>>(), ["ar", "ckb"]);
        assert_eq!(items(&list([])).count(), 0);
    }
}
