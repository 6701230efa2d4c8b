//! `wasl bench dashboard`: how long the coordinators' dashboards take to answer over a national
//! network's history, and what keeping the dashboard projection costs the projector.
//!
//! One run, one process, no nats-server (the log's reading is the same with or without the
//! dashboard, so it is left out of both sides):
//!
//! - **projector cost**: the first `projector_events` events of a genuine synthetic history
//!   (`wasl_synth`), applied in batches through `ReadModels::project` — the projector's own
//!   load, apply and commit — to fresh SQLite read models, once with every projection but the
//!   dashboard and once with all of them, each twice in turn; the best of each is reported.
//! - **queries**: a history of `referrals` referrals projected into the dashboard table on
//!   SQLite (the same rows the projector writes), then copied row for row into a scratch
//!   database on PostgreSQL; on each, `samples` runs of what the API does for the headline
//!   (`GET /v1/dashboard/headline`) and the indicator report (`GET /v1/indicators/gcm`), with
//!   and without filters, suppression included: p50 and p99.
//!
//! SQLite is a file in a temporary directory; the PostgreSQL database is dropped at the end
//! (also on an error or Ctrl-C). A PostgreSQL server that cannot be reached is reported, and its
//! rows are not measured.

use crate::error::BenchError;
use crate::projections::{Scratch, postgres_admin, redact, stop_signal, with_database};
use crate::stats::percentile;
use crate::table::Table;
use sqlx::{AssertSqlSafe, Executor, Row};
use std::fmt;
use std::time::{Duration, Instant};
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::geo::Governorate;
use wasl_domain::suppression::Threshold;
use wasl_projections::apply::Entry;
use wasl_projections::query::{DashboardFilter, Dimension, Measure, Span};
use wasl_projections::rows::dashboard::DashboardRow;
use wasl_projections::{Projection, ReadModels, ReadModelsConfig};
use wasl_synth::{Generator, HistoryConfig};

/// The targets: each dashboard answer's p99 under this, …
pub const TARGET_P99: Duration = Duration::from_millis(100);
/// … and the dashboard projection costing the projector less than this share of its rate.
pub const TARGET_COST: f64 = 0.20;

/// What to run.
#[derive(Debug, Clone)]
pub struct DashboardBenchOptions {
    /// Referrals in the history the queries run over.
    pub referrals: usize,
    /// Events applied for the projector's cost.
    pub projector_events: usize,
    /// Runs of each query.
    pub samples: usize,
    /// Events per projector batch (transaction).
    pub batch_size: usize,
    /// PostgreSQL server for the scratch database.
    pub postgres_url: String,
    /// Seed of the synthetic history.
    pub seed: u64,
}

impl DashboardBenchOptions {
    fn validate(&self) -> Result<(), BenchError> {
        if self.referrals == 0 || self.projector_events == 0 || self.samples == 0 || self.batch_size == 0 {
            return Err(BenchError::Options(
                "--referrals, --projector-events, --samples and --batch-size must be above zero".to_owned(),
            ));
        }
        Ok(())
    }
}

/// One query's latencies.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLatency {
    /// What was asked.
    pub query: &'static str,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// One database's latencies, or why they were not measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseLatencies {
    /// `SQLite` or `PostgreSQL`.
    pub database: &'static str,
    /// The latencies, or why not.
    pub measured: Result<Vec<QueryLatency>, String>,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardBenchReport {
    /// Referrals in the query history.
    pub referrals: usize,
    /// Events of the query history.
    pub events: u64,
    /// Events applied for the projector's cost.
    pub projector_events: u64,
    /// Events/s of the projector without the dashboard projection.
    pub without: f64,
    /// Events/s of the projector with it.
    pub with: f64,
    /// Events/s while building the query history's dashboard table alone (SQLite).
    pub dashboard_only: f64,
    /// Per database.
    pub databases: Vec<DatabaseLatencies>,
    /// How many runs each percentile rests on.
    pub samples: usize,
}

impl DashboardBenchReport {
    /// The share of the projector's rate the dashboard projection costs.
    pub fn cost(&self) -> f64 {
        if self.without > 0.0 {
            1.0 - self.with / self.without
        } else {
            0.0
        }
    }
}

/// Runs the benchmark.
pub async fn run(
    options: &DashboardBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DashboardBenchReport, BenchError> {
    options.validate()?;
    let scratch = Scratch::default();
    let outcome = tokio::select! {
        outcome = measure(options, progress, &scratch) => outcome,
        () = stop_signal() => Err(BenchError::Interrupted),
    };
    scratch.drop_databases(&options.postgres_url, progress).await;
    outcome
}

fn io(e: impl fmt::Display) -> BenchError {
    BenchError::Database(e.to_string())
}

async fn open_sqlite(dir: &std::path::Path, name: &str) -> Result<ReadModels, BenchError> {
    let url = format!("sqlite:{}", dir.join(name).display());
    ReadModels::open(&ReadModelsConfig::new(url)).await.map_err(io)
}

async fn measure(
    options: &DashboardBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
    scratch: &Scratch,
) -> Result<DashboardBenchReport, BenchError> {
    let dir = tempfile::tempdir().map_err(io)?;

    // The projector's cost: the same events, with and without the dashboard.
    progress(&format!(
        "projector: generating {} events (seed {})",
        options.projector_events, options.seed
    ));
    // Fewer referrals than events: the history is cut at `projector_events` events.
    let entries: Vec<Entry> = Generator::new(HistoryConfig {
        keep_states: false,
        ..HistoryConfig::new(options.seed, options.projector_events)
    })
    .take(options.projector_events)
    .enumerate()
    .map(|(i, event)| Entry::of(i as u64 + 1, event))
    .collect();
    let without_dashboard: Vec<Projection> = Projection::ALL
        .iter()
        .copied()
        .filter(|p| *p != Projection::Dashboard)
        .collect();
    let (mut without, mut with) = (0.0_f64, 0.0_f64);
    for round in 0..2 {
        for (label, projections) in [("without", &without_dashboard[..]), ("with", Projection::ALL)] {
            let models = open_sqlite(dir.path(), &format!("projector-{label}-{round}.db")).await?;
            let started = Instant::now();
            for batch in entries.chunks(options.batch_size) {
                models.project(projections, batch).await.map_err(io)?;
            }
            let rate = entries.len() as f64 / started.elapsed().as_secs_f64();
            progress(&format!(
                "projector {label} the dashboard, round {}: {rate:.0} events/s",
                round + 1
            ));
            let best = if label == "with" { &mut with } else { &mut without };
            *best = best.max(rate);
            models.pool().close().await;
        }
    }
    let projector_events = entries.len() as u64;
    drop(entries);

    // The query history: the dashboard table alone, on SQLite.
    progress(&format!(
        "queries: projecting a history of {} referrals into the dashboard table (SQLite)",
        options.referrals
    ));
    let sqlite = open_sqlite(dir.path(), "queries.db").await?;
    let started = Instant::now();
    let mut events = 0_u64;
    let mut batch = Vec::with_capacity(5_000);
    let mut tick = Instant::now();
    // A national network: a hundred organisations.
    for event in Generator::new(HistoryConfig {
        keep_states: false,
        organisations: 100,
        ..HistoryConfig::new(options.seed, options.referrals)
    }) {
        events += 1;
        batch.push(Entry::of(events, event));
        if batch.len() == 5_000 {
            sqlite
                .project(&[Projection::Dashboard], &std::mem::take(&mut batch))
                .await
                .map_err(io)?;
            if tick.elapsed() > Duration::from_secs(15) {
                progress(&format!("queries: {events} events projected"));
                tick = Instant::now();
            }
        }
    }
    sqlite.project(&[Projection::Dashboard], &batch).await.map_err(io)?;
    let dashboard_only = events as f64 / started.elapsed().as_secs_f64();
    let referrals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dashboard_referrals")
        .fetch_one(sqlite.pool())
        .await
        .map_err(io)?;
    sqlx::query("ANALYZE").execute(sqlite.pool()).await.map_err(io)?;
    progress(&format!(
        "queries: {referrals} referrals from {events} events ({dashboard_only:.0} events/s)"
    ));

    let mut databases = vec![DatabaseLatencies {
        database: "SQLite",
        measured: Ok(latencies(&sqlite, options.samples, progress).await?),
    }];
    let postgres = match copy_to_postgres(&sqlite, options, scratch, progress).await {
        Ok(models) => Ok(latencies(&models, options.samples, progress).await?),
        Err(why) => {
            progress(&format!("PostgreSQL not measured: {why}"));
            Err(why)
        }
    };
    databases.push(DatabaseLatencies {
        database: "PostgreSQL",
        measured: postgres,
    });
    Ok(DashboardBenchReport {
        referrals: referrals as usize,
        events,
        projector_events,
        without,
        with,
        dashboard_only,
        databases,
        samples: options.samples,
    })
}

/// A scratch PostgreSQL database with the same dashboard rows as `sqlite`, copied in multi-row
/// inserts; `Err` says why PostgreSQL could not be used.
async fn copy_to_postgres(
    sqlite: &ReadModels,
    options: &DashboardBenchOptions,
    scratch: &Scratch,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ReadModels, String> {
    let name = format!("wasl_bench_dashboard_{}", std::process::id());
    let mut admin = postgres_admin(&options.postgres_url)
        .await
        .map_err(|e| format!("{} cannot be reached: {e}", redact(&options.postgres_url)))?;
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .await
        .map_err(|e| e.to_string())?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .map_err(|e| e.to_string())?;
    scratch.add(&name);
    let models = ReadModels::open(&ReadModelsConfig::new(with_database(&options.postgres_url, &name)))
        .await
        .map_err(|e| e.to_string())?;
    progress("queries: copying the dashboard rows to PostgreSQL");
    let columns = DashboardRow::COLUMNS;
    let per_statement = 30_000 / columns.len();
    let mut after = String::new();
    loop {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM dashboard_referrals WHERE id > $1 ORDER BY id LIMIT {per_statement}",
            columns.join(", ")
        )))
        .bind(&after)
        .fetch_all(sqlite.pool())
        .await
        .map_err(|e| e.to_string())?;
        let Some(last) = rows.last() else { break };
        after = last.try_get::<String, _>("id").map_err(|e| e.to_string())?;
        let mut sql = format!("INSERT INTO dashboard_referrals_g1 ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (r, _) in rows.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                n += 1;
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in &rows {
            for column in columns {
                // Each column is a text or an integer (nullable), as the schema declares it: a
                // NULL says nothing about which.
                if TEXT_COLUMNS.contains(column) {
                    query = query.bind(row.try_get::<Option<String>, _>(*column).map_err(|e| e.to_string())?);
                } else {
                    query = query.bind(row.try_get::<Option<i64>, _>(*column).map_err(|e| e.to_string())?);
                }
            }
        }
        query.execute(models.pool()).await.map_err(|e| e.to_string())?;
    }
    sqlx::query("ANALYZE")
        .execute(models.pool())
        .await
        .map_err(|e| e.to_string())?;
    Ok(models)
}

/// The text columns of `dashboard_referrals` (schema/*/dashboard.sql); the others are integers.
const TEXT_COLUMNS: &[&str] = &[
    "id",
    "week",
    "quarter",
    "governorate",
    "district",
    "category",
    "service_id",
    "to_org",
    "from_org",
    "priority",
    "status",
    "population_group",
    "sex",
    "age_group",
    "objectives",
    "decline_code",
    "overdue_now",
    "overdue_recorded",
    "escalated",
    "acknowledged",
];

/// The queries, as the API runs them.
async fn latencies(
    models: &ReadModels,
    samples: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<QueryLatency>, BenchError> {
    let k = Threshold::DEFAULT;
    let filtered = DashboardFilter {
        governorate: Some(Governorate::Ninawa),
        category: Some(ServiceCategory::Health),
        ..DashboardFilter::default()
    };
    let one_place = DashboardFilter {
        governorate: Some(Governorate::Ninawa),
        ..DashboardFilter::default()
    };
    let all = DashboardFilter::default();
    let mut out = Vec::new();
    for (query, filter, headline) in [
        ("headline", &all, true),
        ("headline, governorate + category", &filtered, true),
        ("indicator report", &all, false),
        ("indicator report, governorate", &one_place, false),
    ] {
        let mut times = Vec::with_capacity(samples);
        // One run first, unmeasured: the database's caches warm.
        for run in 0..=samples {
            let started = Instant::now();
            if headline {
                let numbers = models.dashboard_headline(filter).await.map_err(io)?;
                let by_status = models
                    .dashboard_counts(filter, Measure::Made, Dimension::Status, None)
                    .await
                    .map_err(io)?;
                let mut durations = Vec::new();
                for span in Span::ALL {
                    durations.push((*span, models.dashboard_durations(filter, *span).await.map_err(io)?));
                }
                std::hint::black_box(wasl_dashboard::reports::headline(&numbers, &by_status, &durations, k));
            } else {
                let counts = models.indicator_counts(filter).await.map_err(io)?;
                std::hint::black_box(wasl_dashboard::reports::indicators(&counts, k));
            }
            if run > 0 {
                times.push(started.elapsed());
            }
        }
        times.sort_unstable();
        let latency = QueryLatency {
            query,
            p50: percentile(&times, 50),
            p99: percentile(&times, 99),
        };
        progress(&format!(
            "{query}: p50 {:.1} ms, p99 {:.1} ms",
            ms(latency.p50),
            ms(latency.p99)
        ));
        out.push(latency);
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl fmt::Display for DashboardBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wasl bench dashboard: {} referrals ({} events); projector cost over {} events",
            self.referrals, self.events, self.projector_events
        )?;
        writeln!(f)?;
        let mut table = Table::new(["projector (SQLite)", "events/s"]);
        table.row(["without the dashboard".to_owned(), format!("{:.0}", self.without)]);
        table.row(["with the dashboard".to_owned(), format!("{:.0}", self.with)]);
        table.row_with_note(
            ["cost".to_owned(), format!("{:.1}%", self.cost() * 100.0)],
            if self.cost() < TARGET_COST {
                format!("target < {:.0}%: met", TARGET_COST * 100.0)
            } else {
                format!("target < {:.0}%: NOT met", TARGET_COST * 100.0)
            },
        );
        table.row(["dashboard alone".to_owned(), format!("{:.0}", self.dashboard_only)]);
        write!(f, "{table}")?;
        writeln!(f)?;
        let mut table = Table::new(["query", "database", "p50 ms", "p99 ms"]);
        for db in &self.databases {
            match &db.measured {
                Ok(latencies) => {
                    for l in latencies {
                        let met = if l.p99 < TARGET_P99 { "met" } else { "NOT met" };
                        table.row_with_note(
                            [
                                l.query.to_owned(),
                                db.database.to_owned(),
                                format!("{:.1}", ms(l.p50)),
                                format!("{:.1}", ms(l.p99)),
                            ],
                            format!("target p99 < {} ms: {met}", TARGET_P99.as_millis()),
                        );
                    }
                }
                Err(why) => {
                    table.row_with_note(
                        ["—".to_owned(), db.database.to_owned(), "—".to_owned(), "—".to_owned()],
                        format!("not measured: {why}"),
                    );
                }
            }
        }
        write!(f, "{table}")?;
        writeln!(f, "\n({} runs per query after one warm-up)", self.samples)
    }
}
