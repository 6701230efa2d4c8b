//! Fresh read-model databases for tests: a SQLite file in a temporary directory, or a new
//! database on the PostgreSQL server named by `WASL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the value is dropped. Without a
//! reachable server the PostgreSQL variant fails when `CI` is set and is skipped with a loud line
//! otherwise: nothing is skipped silently.

use sqlx::{AnyPool, AssertSqlSafe};
use std::path::PathBuf;

/// Which backend a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server.
    Postgres,
}

/// A fresh, empty read-model database.
pub struct TestDb {
    /// The database URL (`sqlite:…` or `postgres://…`).
    pub url: String,
    kind: Kind,
    _dir: Option<tempfile::TempDir>,
    admin_url: Option<String>,
    name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("WASL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether the tests run in CI (`CI` set to anything but empty, `false` or `0`).
pub fn in_ci() -> bool {
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

    /// A SQLite file in a new temporary directory.
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

    /// A new database on the PostgreSQL server, dropped with the value; `None` (after a loud
    /// line) when the server is unreachable outside CI, a panic inside CI.
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

    /// Which backend.
    pub fn kind(&self) -> Kind {
        self.kind
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

/// Runs `$scenario(db: TestDb)` as two tests, `sqlite` and `postgres`, in a module `$name`: the
/// same scenario on both read-model databases. The calling crate needs `tokio` (with `macros`
/// and `rt-multi-thread`) among its dev-dependencies.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::db::TestDb::sqlite();
                super::$scenario(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::db::TestDb::postgres().await else {
                    return;
                };
                super::$scenario(db).await;
            }
        }
    };
}
