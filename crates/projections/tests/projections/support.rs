//! Test fixtures: a fresh read-model database per test on either backend, and a macro that runs
//! one scenario on both.
//!
//! PostgreSQL comes from `WASL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test creates its own database there and drops it afterwards. Without a reachable server
//! the PostgreSQL variant fails when `CI` is set and is skipped with a loud line otherwise.

#![allow(dead_code)]

use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::path::PathBuf;
use wasl_projections::{ReadModels, ReadModelsConfig};

/// Which backend a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh, empty read-model database.
pub struct TestDb {
    pub url: String,
    kind: Kind,
    _dir: Option<tempfile::TempDir>,
    admin_url: Option<String>,
    name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("WASL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

impl TestDb {
    /// A database of `kind`, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Sqlite => Some(Self::sqlite()),
            Kind::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path: PathBuf = dir.path().join("read-models.db");
        Self {
            url: format!("sqlite:{}", path.display()),
            kind: Kind::Sqlite,
            _dir: Some(dir),
            admin_url: None,
            name: None,
        }
    }

    pub async fn postgres() -> Option<Self> {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let pool = match AnyPool::connect(&admin).await {
            Ok(pool) => pool,
            Err(error) => {
                if in_ci() {
                    panic!("PostgreSQL is required in CI but unreachable at WASL_TEST_POSTGRES_URL: {error}");
                }
                eprintln!(
                    "\n!!! SKIPPED: PostgreSQL unreachable ({error}); the PostgreSQL variant of this test did not run !!!\n"
                );
                return None;
            }
        };
        let name = format!("wasl_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
        Some(Self {
            url: format!("{base}/{name}"),
            kind: Kind::Postgres,
            _dir: None,
            admin_url: Some(admin),
            name: Some(name),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Opens the read models (migrations, tables, views).
    pub async fn open(&self) -> ReadModels {
        ReadModels::open(&ReadModelsConfig::new(&self.url))
            .await
            .expect("open the read models")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.admin_url.take(), self.name.take()) else {
            return;
        };
        // Dropping happens outside any runtime the test may still be tearing down.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let pool = AnyPool::connect(&admin).await.ok()?;
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
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

/// Runs `$scenario(db: TestDb)` as two tests, `sqlite` and `postgres`, in a module `$name`.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite();
                super::$scenario(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::support::TestDb::postgres().await else {
                    return;
                };
                super::$scenario(db).await;
            }
        }
    };
}
