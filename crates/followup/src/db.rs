//! The service's tables, in the read-model database (PostgreSQL, or the SQLite file of `wasl
//! up`), migrated under their own migration table so that they never meet the projections'.

use crate::error::FollowupError;
use sqlx::AnyPool;

/// The name of the service's row in `followup_state`.
pub(crate) const STATE: &str = "followup";

/// Milliseconds since the epoch, for bookkeeping columns.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Opens the database at `url` (`postgres://…` or `sqlite:…`) and applies the service's
/// migrations.
pub(crate) async fn open(url: &str) -> Result<AnyPool, FollowupError> {
    let (pool, _) = wasl_projections::connect(url, |backend| match backend {
        wasl_projections::Backend::Sqlite => 4,
        wasl_projections::Backend::Postgres => 8,
    })
    .await?;
    // One set for both databases: the tables use only the SQL they share (ADR 0005).
    let mut migrator = sqlx::migrate!("./migrations");
    // Beside the projections' `_sqlx_migrations` in the same database.
    migrator.dangerous_set_table_name("_followup_migrations");
    migrator.run(&pool).await?;
    sqlx::query(
        "INSERT INTO followup_state (name, checkpoint, checkpoint_event, halted, updated_at) \
         VALUES ($1, 0, NULL, NULL, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(STATE)
    .bind(now_millis())
    .execute(&pool)
    .await?;
    Ok(pool)
}
