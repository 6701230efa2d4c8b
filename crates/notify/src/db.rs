//! The service's tables, in the read-model database (PostgreSQL, or the SQLite file of `wasl
//! up`), migrated under their own migration table so that they never meet the projections' or
//! the follow-up service's.

use crate::error::NotifyError;
use sqlx::AnyPool;

/// The name of the service's row in `notify_state`.
pub(crate) const STATE: &str = "notify";

/// Milliseconds since the epoch: mail is about now, so the service reads the wall clock.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Opens the database at `url` (`postgres://…` or `sqlite:…`), applies the service's
/// migrations and, on the very first start, records `mail_from`: the first log position it
/// mails for.
pub(crate) async fn open(url: &str, mail_from: u64) -> Result<AnyPool, NotifyError> {
    let (pool, _) = wasl_projections::connect(url, |backend| match backend {
        wasl_projections::Backend::Sqlite => 2,
        wasl_projections::Backend::Postgres => 4,
    })
    .await?;
    // One set for both databases: the tables use only the SQL they share (ADR 0005).
    let mut migrator = sqlx::migrate!("./migrations");
    // Beside `_sqlx_migrations` (projections) and `_followup_migrations` in the same database.
    migrator.dangerous_set_table_name("_notify_migrations");
    migrator.run(&pool).await?;
    sqlx::query(
        "INSERT INTO notify_state (name, checkpoint, checkpoint_event, halted, mail_from, updated_at) \
         VALUES ($1, 0, NULL, NULL, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(STATE)
    .bind(i64::try_from(mail_from).unwrap_or(i64::MAX))
    .bind(now_millis())
    .execute(&pool)
    .await?;
    Ok(pool)
}
