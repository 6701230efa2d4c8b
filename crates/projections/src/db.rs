//! The connection to the read-model database: PostgreSQL in production, one SQLite file for
//! the embedded default. Both go through sqlx's `Any` driver so that one code path serves both;
//! the SQL is written in the dialect they share (`$N` parameters, `ON CONFLICT … DO UPDATE`,
//! integers for times and flags, text for ids and codes).

use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::schema;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::watch;

/// Which database holds the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite, one file (embedded default).
    Sqlite,
}

impl Backend {
    /// The backend a URL names: `postgres://` / `postgresql://`, or `sqlite:`.
    pub fn of_url(url: &str) -> Result<Self, ProjectionError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            Err(ProjectionError::UnsupportedUrl(format!("{scheme}:…")))
        }
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Sqlite => "sqlite",
        }
    }
}

/// How to open the read models.
#[derive(Debug, Clone)]
pub struct ReadModelsConfig {
    /// `postgres://user@host:port/db` or `sqlite:path/to/file.db` (created if missing).
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
}

impl ReadModelsConfig {
    /// Defaults for a URL: 8 connections for PostgreSQL, 4 for SQLite (one writer at a time).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let max_connections = if url.starts_with("sqlite:") { 4 } else { 8 };
        Self { url, max_connections }
    }
}

/// The read-model database: a pool, its backend and the live positions of the projections
/// this process runs. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) positions: Arc<watch::Sender<HashMap<Projection, u64>>>,
}

static DRIVERS: Once = Once::new();

/// SQLite settings for every connection: WAL (readers never wait for the writer), a busy
/// timeout for the moments two writers meet (projector, rebuild, retry), and `NORMAL` sync —
/// an application crash loses nothing committed; a power cut may lose the last transactions,
/// which the projector then applies again from its checkpoint, since rows and checkpoint commit
/// together.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;";

/// Why [`connect`] could not open a database.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no backend Wasl supports; only its scheme is kept (the rest may hold a
    /// password).
    #[error("unsupported database URL (use postgres://… or sqlite:…): {0}")]
    UnsupportedUrl(String),
    /// The database refused the connection.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ConnectError> for ProjectionError {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::UnsupportedUrl(scheme) => Self::UnsupportedUrl(scheme),
            ConnectError::Database(error) => Self::Database(error),
        }
    }
}

/// Opens a pool on `url` (`postgres://…` or `sqlite:…`) as every database of Wasl is opened —
/// the read models and the follow-up and notification services' tables beside them: a SQLite
/// file is created when missing and every connection gets [`SQLITE_PRAGMAS`]; a connection is
/// waited for at most 30 s. `max_connections` sizes the pool for the backend.
pub async fn connect(url: &str, max_connections: impl Fn(Backend) -> u32) -> Result<(AnyPool, Backend), ConnectError> {
    DRIVERS.call_once(install_default_drivers);
    let backend = Backend::of_url(url).map_err(|_| {
        // Only the scheme: the rest may hold a password.
        ConnectError::UnsupportedUrl(format!("{}:…", url.split(':').next().unwrap_or_default()))
    })?;
    let url = match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_owned(),
    };
    let mut options = AnyPoolOptions::new()
        .max_connections(max_connections(backend))
        .acquire_timeout(Duration::from_secs(30));
    if backend == Backend::Sqlite {
        options = options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        });
    }
    Ok((options.connect(&url).await?, backend))
}

impl ReadModels {
    /// Connects, applies the embedded migrations of the backend and makes sure every
    /// projection has its tables and views.
    pub async fn open(config: &ReadModelsConfig) -> Result<Self, ProjectionError> {
        let (pool, backend) = connect(&config.url, |_| config.max_connections).await?;
        match backend {
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        }
        let models = Self {
            pool,
            backend,
            positions: Arc::new(watch::channel(HashMap::new()).0),
        };
        for projection in Projection::ALL {
            schema::ensure(&models, *projection).await?;
        }
        Ok(models)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for queries this crate does not offer (tests, tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection of its own for a writer (projector, rebuild, retry). If the writer's task is
    /// dropped mid-transaction, this connection closes with it and the database rolls back at
    /// once; a pooled connection would instead carry the open transaction — and its row locks —
    /// back into the pool, where it could block the next writer.
    pub(crate) async fn writer(&self) -> Result<sqlx::AnyConnection, ProjectionError> {
        Ok(self.pool.acquire().await?.detach())
    }

    pub(crate) fn publish_position(&self, projection: Projection, position: u64) {
        self.positions.send_if_modified(|map| {
            let entry = map.entry(projection).or_insert(0);
            if *entry < position {
                *entry = position;
                true
            } else {
                false
            }
        });
    }
}
