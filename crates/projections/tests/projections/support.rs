//! Test fixtures: a fresh read-model database per test on either backend, and a macro that runs
//! one scenario on both.
//!
//! PostgreSQL comes from `WASL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test creates its own database there and drops it afterwards. Without a reachable server
//! the PostgreSQL variant fails when `CI` is set and is skipped with a loud line otherwise.

#![allow(dead_code)]

use sqlx::{AssertSqlSafe, Row};
use wasl_projections::{ReadModels, ReadModelsConfig};
pub use wasl_testkit::db::TestDb;

/// Opening a test database's read models.
pub trait Open {
    /// Opens the read models (migrations, tables, views).
    async fn open(&self) -> ReadModels;
}

impl Open for TestDb {
    async fn open(&self) -> ReadModels {
        ReadModels::open(&ReadModelsConfig::new(&self.url))
            .await
            .expect("open the read models")
    }
}

/// Every row of a table or view, each as its columns rendered to text in column order,
/// sorted: for comparing two databases' tables row by row.
pub async fn dump(models: &ReadModels, table: &str, order: &str) -> Vec<Vec<String>> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT * FROM {table} ORDER BY {order}")))
        .fetch_all(models.pool())
        .await
        .expect("dump a table");
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                        return format!("{v:?}");
                    }
                    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                        return format!("{v:?}");
                    }
                    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                        return format!("{v:?}");
                    }
                    panic!("column {i} of {table} has a type the dump does not know")
                })
                .collect()
        })
        .collect()
}
