//! Generations: each projection's tables exist as `<table>_g<N>` and are read through views
//! named `<table>`. A rebuild fills generation N+1 beside N while N keeps serving, then one
//! transaction points the views at N+1, moves the checkpoint and drops N.

use crate::db::{Backend, ReadModels};
use crate::error::ProjectionError;
use crate::projection::{Projection, physical};
use sqlx::{AnyConnection, AssertSqlSafe, Executor, Row};

/// Milliseconds since the epoch, for bookkeeping columns.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The live state of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveState {
    /// The generation the views point at.
    pub generation: i64,
    /// The last stream sequence applied to it.
    pub checkpoint: u64,
}

/// Makes sure `projection` has a live generation whose layout matches this version; creates
/// generation 1 on a new database. A projection whose stored layout version differs gets a
/// fresh, empty generation which the projector fills from sequence 1.
pub(crate) async fn ensure(models: &ReadModels, projection: Projection) -> Result<(), ProjectionError> {
    let mut tx = models.pool.begin().await?;
    let row = sqlx::query("SELECT generation, schema_version FROM projection_state WHERE name = $1")
        .bind(projection.name())
        .fetch_optional(&mut *tx)
        .await?;
    match row {
        Some(row) if row.try_get::<i64, _>("schema_version")? == projection.schema_version() => return Ok(()),
        Some(row) => {
            let old: i64 = row.try_get("generation")?;
            let fresh = next_generation(&mut tx, projection).await?;
            create_generation(&mut tx, models.backend, projection, fresh, true).await?;
            point_views(&mut tx, projection, fresh).await?;
            sqlx::query(
                "UPDATE projection_state SET generation = $1, checkpoint = 0, checkpoint_event = NULL, halted = NULL, \
                 schema_version = $2, updated_at = $3 WHERE name = $4",
            )
            .bind(fresh)
            .bind(projection.schema_version())
            .bind(now_millis())
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
            drop_generation(&mut tx, projection, old).await?;
            sqlx::query("DELETE FROM parked_events WHERE projection = $1 AND generation = $2")
                .bind(projection.name())
                .bind(old)
                .execute(&mut *tx)
                .await?;
            tracing::warn!(
                projection = projection.name(),
                generation = fresh,
                "the projection's table layout changed; it is rebuilt from the start of the log"
            );
        }
        None => {
            create_generation(&mut tx, models.backend, projection, 1, true).await?;
            point_views(&mut tx, projection, 1).await?;
            sqlx::query(
                "INSERT INTO projection_state (name, generation, checkpoint, schema_version, updated_at) \
                 VALUES ($1, 1, 0, $2, $3)",
            )
            .bind(projection.name())
            .bind(projection.schema_version())
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A generation number no table of the projection uses yet.
pub(crate) async fn next_generation(conn: &mut AnyConnection, projection: Projection) -> Result<i64, ProjectionError> {
    let live: Option<i64> = sqlx::query_scalar("SELECT generation FROM projection_state WHERE name = $1")
        .bind(projection.name())
        .fetch_optional(&mut *conn)
        .await?;
    let rebuilding: Option<i64> = sqlx::query_scalar("SELECT generation FROM projection_rebuild WHERE name = $1")
        .bind(projection.name())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(live.unwrap_or(0).max(rebuilding.unwrap_or(0)) + 1)
}

/// Creates the (empty) tables of one generation, with their secondary indexes unless
/// `with_indexes` is false (a rebuild adds them once it has caught up: filling a table and then
/// indexing it is much faster than keeping every index up to date row by row).
pub(crate) async fn create_generation(
    conn: &mut AnyConnection,
    backend: Backend,
    projection: Projection,
    generation: i64,
    with_indexes: bool,
) -> Result<(), ProjectionError> {
    drop_generation(conn, projection, generation).await?;
    for statement in generation_ddl(backend, projection, generation) {
        if with_indexes || !is_index(&statement) {
            conn.execute(AssertSqlSafe(statement)).await?;
        }
    }
    Ok(())
}

/// Creates the secondary indexes of one generation (after [`create_generation`] without them).
pub(crate) async fn create_indexes(
    conn: &mut AnyConnection,
    backend: Backend,
    projection: Projection,
    generation: i64,
) -> Result<(), ProjectionError> {
    for statement in generation_ddl(backend, projection, generation) {
        if is_index(&statement) {
            conn.execute(AssertSqlSafe(statement)).await?;
        }
    }
    Ok(())
}

fn generation_ddl(backend: Backend, projection: Projection, generation: i64) -> Vec<String> {
    statements(&projection.ddl(backend).replace("{g}", &generation.to_string()))
}

/// A secondary index a rebuild adds at the end. The projector's own lookups — a case's
/// referrals and a referral's timeline when a case is erased (`*_case_idx`, `*_referral_idx`)
/// — need theirs while it applies, so those are created with the tables.
fn is_index(statement: &str) -> bool {
    statement.starts_with("CREATE INDEX") && !statement.contains("_case_idx") && !statement.contains("_referral_idx")
}

/// Drops the tables of one generation, if they exist.
pub(crate) async fn drop_generation(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
) -> Result<(), ProjectionError> {
    for table in projection.tables() {
        conn.execute(AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {}",
            physical(table, generation)
        )))
        .await?;
    }
    Ok(())
}

/// Points the projection's views at `generation`.
pub(crate) async fn point_views(
    conn: &mut AnyConnection,
    projection: Projection,
    generation: i64,
) -> Result<(), ProjectionError> {
    for table in projection.tables() {
        conn.execute(AssertSqlSafe(format!("DROP VIEW IF EXISTS {table}")))
            .await?;
        conn.execute(AssertSqlSafe(format!(
            "CREATE VIEW {table} AS SELECT * FROM {}",
            physical(table, generation)
        )))
        .await?;
    }
    Ok(())
}

/// The statements of a schema file: split on `;` at line ends, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn no_bookkeeping(projection: Projection) -> ProjectionError {
    ProjectionError::State {
        projection: projection.name(),
        reason: "it has no bookkeeping row; open the read models first".to_owned(),
    }
}

/// The live generation and checkpoint of `projection`.
pub async fn live_state(models: &ReadModels, projection: Projection) -> Result<LiveState, ProjectionError> {
    let row = sqlx::query("SELECT generation, checkpoint FROM projection_state WHERE name = $1")
        .bind(projection.name())
        .fetch_optional(&models.pool)
        .await?
        .ok_or_else(|| no_bookkeeping(projection))?;
    Ok(LiveState {
        generation: row.try_get("generation")?,
        checkpoint: row.try_get::<i64, _>("checkpoint")? as u64,
    })
}

/// A projection's checkpoint as recorded, with the identity of the event it points at and why
/// the projector stopped, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Standing {
    pub projection: Projection,
    /// Its live generation.
    pub generation: i64,
    /// The last stream sequence applied to its live tables.
    pub checkpoint: u64,
    /// The event id at the checkpoint, when known.
    pub checkpoint_event: Option<String>,
    /// Why the projector stopped projecting it (the log went backwards), while it is stopped.
    pub halted: Option<String>,
}

impl Standing {
    /// What the log must still hold for these tables to be right.
    pub fn mark(&self) -> wasl_store::continuity::Mark {
        wasl_store::continuity::Mark {
            sequence: self.checkpoint,
            event_id: self.checkpoint_event.clone(),
        }
    }
}

/// The standing of each of `projections`.
pub async fn standings(models: &ReadModels, projections: &[Projection]) -> Result<Vec<Standing>, ProjectionError> {
    let mut out = Vec::with_capacity(projections.len());
    for projection in projections {
        let row = sqlx::query(
            "SELECT generation, checkpoint, checkpoint_event, halted FROM projection_state WHERE name = $1",
        )
        .bind(projection.name())
        .fetch_optional(&models.pool)
        .await?
        .ok_or_else(|| no_bookkeeping(*projection))?;
        out.push(Standing {
            projection: *projection,
            generation: row.try_get("generation")?,
            checkpoint: row.try_get::<i64, _>("checkpoint")? as u64,
            checkpoint_event: row.try_get("checkpoint_event")?,
            halted: row.try_get("halted")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_split_into_statements_per_generation() {
        for backend in [Backend::Postgres, Backend::Sqlite] {
            for projection in Projection::ALL {
                let ddl = projection.ddl(backend).replace("{g}", "7");
                let statements = statements(&ddl);
                for table in projection.tables() {
                    let create = format!("CREATE TABLE {table}_g7 (");
                    assert!(
                        statements.iter().any(|s| s.starts_with(&create)),
                        "{create} in {backend:?}"
                    );
                }
                assert!(statements.iter().all(|s| !s.contains("{g}") && !s.contains("--")));
                let indexes = statements.iter().filter(|s| is_index(s)).count();
                assert!(
                    indexes >= projection.tables().len(),
                    "{projection} has secondary indexes"
                );
            }
        }
    }
}
