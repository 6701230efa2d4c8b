//! `wasl bench projections`: how fast the projector rebuilds the read models, against the two
//! raw rates that bound it — reading the log and inserting rows into the database.
//!
//! One run, one process, one nats-server, one stream of `N` genuine synthetic events
//! (`wasl_synth`: organisations, cases, referrals with random lifecycles, interleaved):
//!
//! - **write**: the history generated and published into a fresh event stream
//!   ([`PROJECTIONS_STREAM`], on `wasl.evt.>`) with pipelined acknowledgements.
//! - **(a) raw read**: one ordered pull consumer over the whole stream, counting the messages
//!   and adding up their payload lengths — no decoding.
//! - **(b) raw batched insert**, per database: for each event of the same history, plain inserts
//!   of the rows a projection writes for it, with the same number of columns — a
//!   `referral_history`-shaped row (12 columns: ids and codes as text, times and counters as
//!   integers, a nullable blob; primary key on the sequence, one secondary index) for every event,
//!   plus a `referrals`-shaped row (44 columns) for a referral event and a `cases`-shaped row
//!   (29 columns) for a case event — without reading anything back, without folding, without
//!   upserts: what the database costs for the projections' output, nothing for the projecting.
//!   Multi-row `INSERT … VALUES (…), (…)` statements, one transaction per `batch_size` events,
//!   through the same sqlx `Any` pool the projector uses. Only the database
//!   work is timed: the rows are built from a second run of the (deterministic) generator
//!   between the timed transactions.
//! - **(c) full rebuild**, per database: a fresh database opened with `ReadModels::open`, then
//!   `wasl_projections::rebuild` of every projection from sequence 1 with the store's decoder.
//!
//! The ratio `(c) / min(a, b)` says how close the rebuild comes to its slower raw bound; the
//! target is [`TARGET_RATIO`]. SQLite is a file in a temporary directory; PostgreSQL gets two
//! scratch databases on the server given, dropped at the end (also on an error or Ctrl-C). A
//! PostgreSQL server that cannot be reached is reported, and its rows are not measured.

use crate::error::BenchError;
use crate::probe::{CpuMeter, PeakRss, peak_rss_bytes, postgres_cpu_seconds};
use crate::server::{RunServer, TempServer, start_or_connect};
use crate::store::{ServerReport, delete_stream_if_present, mib, thousands};
use crate::table::Table;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasl_events::StoredEvent;
use wasl_projections::{Backend, Projection, ReadModels, ReadModelsConfig};
use wasl_store::StoreConfig;
use wasl_store::config::EVENT_SUBJECTS;
use wasl_synth::{Generator, HistoryConfig};

/// The event stream of this benchmark (on `wasl.evt.>`, like the real log).
pub const PROJECTIONS_STREAM: &str = "WASL_BENCH_PROJECTIONS";
/// The goal: a full rebuild runs at least this fraction of the slower of (a) and (b).
pub const TARGET_RATIO: f64 = 0.5;
/// The PostgreSQL server used unless another is given (trust authentication, as in development).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The scratch table of (b).
const RAW_TABLE: &str = "bench_raw_rows";
/// Its columns, in the order the values are bound: the shape of a `referral_history` row.
const RAW_COLUMNS: &[&str] = &[
    "seq",
    "aggregate_id",
    "command_id",
    "version",
    "event_type",
    "at",
    "actor_user",
    "actor_org",
    "aggregate_kind",
    "actor_role",
    "reason_code",
    "sealed",
];
/// Most bound parameters per statement, as the projector's `insert_rows` (SQLite allows 32,766).
const MAX_PARAMS: usize = 30_000;
/// How long connecting to PostgreSQL may take before it counts as unreachable.
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionsBenchOptions {
    /// `N`: events written into the fresh stream.
    pub events: usize,
    /// Rows per transaction in (b), and events per batch (transaction) in (c).
    pub batch_size: usize,
    /// A PostgreSQL server (any database on it, used to create and drop the scratch databases).
    pub postgres_url: String,
    /// Use this nats-server instead of starting one. It must not hold a stream on `wasl.evt.>`;
    /// the benchmark creates and deletes [`PROJECTIONS_STREAM`].
    pub nats_url: Option<String>,
    /// Rows per `INSERT` statement in (b); `None`: as many as the projector puts in one
    /// statement (the whole batch, up to 30,000 parameters).
    pub rows_per_statement: Option<usize>,
    /// Seeds the synthetic history.
    pub seed: u64,
}

impl Default for ProjectionsBenchOptions {
    fn default() -> Self {
        Self {
            events: 1_000_000,
            batch_size: 1_000,
            postgres_url: DEFAULT_POSTGRES_URL.to_owned(),
            nats_url: None,
            rows_per_statement: None,
            seed: 1,
        }
    }
}

impl ProjectionsBenchOptions {
    fn validate(&self) -> Result<(), BenchError> {
        if self.events == 0 || self.batch_size == 0 || self.rows_per_statement == Some(0) {
            return Err(BenchError::Options(
                "--events, --batch-size and --rows-per-statement must be at least 1".to_owned(),
            ));
        }
        if !matches!(Backend::of_url(&self.postgres_url), Ok(Backend::Postgres)) {
            return Err(BenchError::Options(
                "--postgres-url must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        Ok(())
    }
}

/// One measured phase: `count` events or rows in `seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// Events (or rows) handled.
    pub count: u64,
    /// Time measured.
    pub seconds: f64,
    /// `count / seconds`.
    pub per_second: f64,
    /// CPU time this process spent per event, in microseconds (SQLite runs in this process).
    pub bench_cpu_us: Option<f64>,
    /// CPU time the temporary nats-server spent per event, in microseconds.
    pub nats_cpu_us: Option<f64>,
    /// CPU time every `postgres` process on this machine spent per event, in microseconds
    /// (PostgreSQL phases on a local server only).
    pub postgres_cpu_us: Option<f64>,
    /// Peak resident memory of this process during the phase (`VmHWM` reset before it), in
    /// bytes; the peak of the run so far where the reset is not possible.
    pub peak_rss_bytes: Option<u64>,
}

/// The measurements of one database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseReport {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// The file (SQLite) or server and scratch databases (PostgreSQL, without a password).
    pub location: String,
    /// Why the database was not measured, if it was not.
    pub not_measured: Option<String>,
    /// (b) raw batched insert of the rows equivalent to the projections' output, events per
    /// second.
    pub insert: Option<Rate>,
    /// (c) full rebuild of every projection, events per second.
    pub rebuild: Option<Rate>,
    /// Events the rebuild parked (0 for a genuine history).
    pub parked: Option<u64>,
    /// Transactions (batches) the rebuild committed: each takes what the consumer has ready,
    /// up to the batch size.
    pub rebuild_batches: Option<u64>,
    /// Rows of each read model after the rebuild.
    pub rows: Vec<(String, u64)>,
    /// Size of the read-model database after the rebuild, in bytes.
    pub size_bytes: Option<u64>,
    /// (c) / min((a), (b)).
    pub ratio: Option<f64>,
    /// `ratio >= target_ratio`.
    pub passes: Option<bool>,
}

impl DatabaseReport {
    fn not_measured(backend: Backend, location: String, why: String) -> Self {
        Self {
            backend: backend.name(),
            location,
            not_measured: Some(why),
            insert: None,
            rebuild: None,
            parked: None,
            rebuild_batches: None,
            rows: vec![],
            size_bytes: None,
            ratio: None,
            passes: None,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionsBenchReport {
    /// The nats-server.
    pub server: ServerReport,
    /// `N` as asked.
    pub events_requested: usize,
    /// Events in the stream (`N`, unless the history ended earlier).
    pub events: u64,
    /// Referrals the history was generated for (from a calibration run).
    pub referrals: usize,
    /// The history's seed.
    pub seed: u64,
    /// Rows per transaction in (b), events per batch in (c).
    pub batch_size: usize,
    /// Rows per `INSERT` statement in (b).
    pub rows_per_statement: usize,
    /// Payload bytes read in (a) (protobuf bodies, without headers).
    pub payload_bytes: u64,
    /// The stream's size on the server, in bytes.
    pub stream_bytes: u64,
    /// Generating the history and publishing it (pipelined acknowledgements).
    pub write: Rate,
    /// (a) raw ordered-consumer read.
    pub read: Rate,
    /// SQLite, then PostgreSQL.
    pub databases: Vec<DatabaseReport>,
    /// The goal for every ratio.
    pub target_ratio: f64,
    /// Whether the per-phase peaks are peaks of the phase (`/proc/self/clear_refs` worked).
    pub per_phase_peaks: bool,
    /// Peak resident memory of this process over the whole run, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Peak resident memory of the temporary nats-server, read before it is stopped.
    pub server_peak_rss_bytes: Option<u64>,
}

impl ProjectionsBenchReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The database reports that were not measured.
    pub fn unmeasured(&self) -> impl Iterator<Item = &DatabaseReport> {
        self.databases.iter().filter(|d| d.not_measured.is_some())
    }
}

/// Runs the whole benchmark; `progress` hears what is being done (for a terminal). Ctrl-C or
/// SIGTERM stops it; the temporary server, the SQLite files, the scratch databases and the stream
/// on a given server are removed all the same.
pub async fn run(
    options: &ProjectionsBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ProjectionsBenchReport, BenchError> {
    options.validate()?;
    let RunServer {
        temporary: server,
        client,
        report: server_report,
    } = start_or_connect(options.nats_url.as_deref(), false, "", progress).await?;
    let js = jetstream::new(client);
    let scratch = Scratch::default();
    let bench = Bench {
        options,
        progress,
        js: &js,
        server_pid: server.as_ref().map(TempServer::pid),
        scratch: &scratch,
    };
    let outcome = tokio::select! {
        outcome = bench.measure(server_report) => outcome,
        () = stop_signal() => Err(BenchError::Interrupted),
    };
    // Whatever happened: the scratch databases go, and a given server keeps nothing.
    scratch.drop_databases(&options.postgres_url, progress).await;
    if server.is_none() {
        delete_stream_if_present(&js, PROJECTIONS_STREAM).await?;
    }
    let mut report = outcome?;
    report.server_peak_rss_bytes = server.as_ref().and_then(|s| peak_rss_bytes(Some(s.pid())));
    Ok(report)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, so that a stopped run still removes what it made.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

/// The PostgreSQL databases this run created, to drop at the end.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    databases: Mutex<Vec<String>>,
}

impl Scratch {
    pub(crate) fn add(&self, name: &str) {
        if let Ok(mut list) = self.databases.lock() {
            list.push(name.to_owned());
        }
    }

    pub(crate) async fn drop_databases(&self, admin_url: &str, progress: &(dyn Fn(&str) + Sync)) {
        let names = self
            .databases
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        if names.is_empty() {
            return;
        }
        let dropped = async {
            let mut admin = postgres_admin(admin_url).await?;
            for name in &names {
                admin
                    .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await?;
            }
            admin.close().await?;
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = dropped.await {
            progress(&format!(
                "WARNING: could not drop the scratch database(s) {}: {e}; drop them by hand",
                names.join(", ")
            ));
        }
    }
}

struct Bench<'a> {
    options: &'a ProjectionsBenchOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    js: &'a jetstream::Context,
    server_pid: Option<u32>,
    scratch: &'a Scratch,
}

impl Bench<'_> {
    fn rows_per_statement(&self) -> usize {
        let most = (MAX_PARAMS / RAW_COLUMNS.len()).max(1);
        self.options
            .rows_per_statement
            .unwrap_or(most)
            .min(most)
            .min(self.options.batch_size)
    }

    async fn measure(&self, server: ServerReport) -> Result<ProjectionsBenchReport, BenchError> {
        let options = self.options;
        let progress = self.progress;
        let mut peaks = PeakRss::new();

        // The stream first: a server that already has a Wasl event log is refused before
        // anything is written.
        let config = StoreConfig {
            stream: PROJECTIONS_STREAM.to_owned(),
            ..StoreConfig::default()
        };
        delete_stream_if_present(self.js, PROJECTIONS_STREAM).await?;
        let stream = wasl_store::provision::ensure_stream(self.js, &config)
            .await
            .map_err(|e| {
                BenchError::JetStream(format!(
                    "cannot create the stream {PROJECTIONS_STREAM} on wasl.evt.> ({e}); if another stream (a Wasl \
                     event log) already holds those subjects, this server cannot be used for the benchmark"
                ))
            })?;

        let referrals = calibrate(options.seed, options.events);
        let history = HistoryConfig {
            keep_states: false,
            ..HistoryConfig::new(options.seed, referrals)
        };
        progress(&format!(
            "write: generating {} events ({referrals} referrals, seed {}) and publishing them into {PROJECTIONS_STREAM}",
            options.events, options.seed
        ));
        peaks.phase_start();
        let cpu = CpuMeter::start(self.server_pid);
        let started = Instant::now();
        let tick = Ticker::new(options.events as u64);
        let events = Generator::new(history.clone())
            .take(options.events)
            .enumerate()
            .map(|(i, event)| {
                if let Some(pct) = tick.at(i as u64 + 1) {
                    progress(&format!("write: {pct}%"));
                }
                event
            });
        let last = wasl_synth::publish(self.js, &config, events)
            .await
            .map_err(|e| BenchError::JetStream(format!("publishing the history: {e}")))?;
        let write = Rate::new(last, started.elapsed(), cpu, None, peaks.phase_end());
        if (last as usize) < options.events {
            progress(&format!(
                "WARNING: the history ended after {last} events, fewer than the {} asked",
                options.events
            ));
        }
        progress(&format!("write: done, {}", done(&write, "events")));
        let stream_bytes = stream.clone().info().await.map_err(js_error)?.state.bytes;

        progress(&format!("(a) raw read: {last} events with one ordered consumer"));
        peaks.phase_start();
        let (read, payload_bytes) = self.raw_read(&stream, last).await?;
        let read = Rate {
            peak_rss_bytes: peaks.phase_end(),
            ..read
        };
        progress(&format!("(a) raw read: done, {}", done(&read, "events")));

        let mut databases = Vec::new();
        let dir = tempfile::Builder::new()
            .prefix("wasl-bench-projections-")
            .tempdir()
            .map_err(|e| BenchError::Database(format!("cannot create a temporary directory: {e}")))?;
        let sqlite = Target {
            backend: Backend::Sqlite,
            location: dir.path().display().to_string(),
            raw_url: sqlite_url(&dir.path().join("raw.db")),
            models_url: sqlite_url(&dir.path().join("models.db")),
            models_file: Some(dir.path().join("models.db")),
        };
        databases.push(
            self.database(&sqlite, &history, last, &read, &stream, &mut peaks)
                .await?,
        );

        let postgres = match self.postgres_target().await {
            Ok(target) => {
                self.database(&target, &history, last, &read, &stream, &mut peaks)
                    .await?
            }
            Err(why) => {
                progress(&format!("WARNING: PostgreSQL NOT MEASURED: {why}"));
                DatabaseReport::not_measured(Backend::Postgres, redact(&options.postgres_url), why)
            }
        };
        databases.push(postgres);
        drop(dir);

        Ok(ProjectionsBenchReport {
            server,
            events_requested: options.events,
            events: last,
            referrals,
            seed: options.seed,
            batch_size: options.batch_size,
            rows_per_statement: self.rows_per_statement(),
            payload_bytes,
            stream_bytes,
            write,
            read,
            databases,
            target_ratio: TARGET_RATIO,
            per_phase_peaks: peaks.resets,
            peak_rss_bytes: peaks.overall(),
            server_peak_rss_bytes: None,
        })
    }

    /// (a): every message of the stream through one ordered pull consumer, payload length only.
    async fn raw_read(&self, stream: &Stream, total: u64) -> Result<(Rate, u64), BenchError> {
        let cpu = CpuMeter::start(self.server_pid);
        let started = Instant::now();
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: EVENT_SUBJECTS.to_owned(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(js_error)?;
        let mut messages = consumer.messages().await.map_err(js_error)?;
        let (mut count, mut bytes) = (0_u64, 0_u64);
        let tick = Ticker::new(total);
        while count < total {
            let message = messages
                .next()
                .await
                .ok_or_else(|| BenchError::JetStream("the ordered consumer ended early".to_owned()))?
                .map_err(js_error)?;
            count += 1;
            bytes += message.payload.len() as u64;
            if let Some(pct) = tick.at(count) {
                (self.progress)(&format!("(a) raw read: {pct}%"));
            }
        }
        Ok((Rate::new(count, started.elapsed(), cpu, None, None), bytes))
    }

    /// Two fresh scratch databases on the PostgreSQL server, or why there are none.
    async fn postgres_target(&self) -> Result<Target, String> {
        let admin_url = &self.options.postgres_url;
        let mut admin = postgres_admin(admin_url)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", redact(admin_url)))?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let base = format!("wasl_bench_{}_{stamp}", std::process::id());
        let (raw, models) = (format!("{base}_raw"), format!("{base}_models"));
        for name in [&raw, &models] {
            // Registered first: a database half-created by an interrupted statement is dropped too.
            self.scratch.add(name);
            admin
                .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .map_err(|e| format!("cannot create a scratch database on {}: {e}", redact(admin_url)))?;
        }
        let _ = admin.close().await;
        Ok(Target {
            backend: Backend::Postgres,
            location: format!("{} (scratch databases {raw}, {models}, dropped)", redact(admin_url)),
            raw_url: with_database(admin_url, &raw),
            models_url: with_database(admin_url, &models),
            models_file: None,
        })
    }

    /// (b) and (c) on one database.
    async fn database(
        &self,
        target: &Target,
        history: &HistoryConfig,
        events: u64,
        read: &Rate,
        stream: &Stream,
        peaks: &mut PeakRss,
    ) -> Result<DatabaseReport, BenchError> {
        let name = target.backend.name();
        let postgres = target.backend == Backend::Postgres && is_local(&self.options.postgres_url);
        let db_error = |what: &str, e: &dyn fmt::Display| BenchError::Database(format!("{name}: {what}: {e}"));

        (self.progress)(&format!(
            "(b) {name}: raw insert of the rows equivalent to {events} events, {} events per transaction",
            self.options.batch_size
        ));
        let raw = ReadModels::open(&ReadModelsConfig::new(&target.raw_url))
            .await
            .map_err(|e| db_error("cannot open the scratch database", &e))?;
        peaks.phase_start();
        let insert = raw_insert(
            raw.pool(),
            target.backend,
            history,
            events,
            self.options.batch_size,
            self.rows_per_statement(),
            self.server_pid,
            postgres,
            self.progress,
        )
        .await
        .map_err(|e| db_error("raw insert", &e))?;
        let insert = Rate {
            peak_rss_bytes: peaks.phase_end(),
            ..insert
        };
        (self.progress)(&format!("(b) {name}: done, {}", done(&insert, "rows")));
        raw.close().await;
        drop(raw);
        if let Some(file) = &target.models_file {
            // The scratch file is not needed any more; keep the disk for the rebuild.
            remove_sqlite(&file.with_file_name("raw.db"));
        }

        (self.progress)(&format!(
            "(c) {name}: full rebuild of every projection from {events} events"
        ));
        let models = ReadModels::open(&ReadModelsConfig::new(&target.models_url))
            .await
            .map_err(|e| db_error("cannot open the read models", &e))?;
        peaks.phase_start();
        let cpu = CpuMeter::start(self.server_pid);
        let pg_before = postgres.then(postgres_cpu_seconds).flatten();
        let tick = Ticker::new(events);
        let progress = self.progress;
        let mut batches = 0_u64;
        let report = wasl_projections::rebuild(
            &models,
            stream,
            Projection::ALL,
            self.options.batch_size,
            wasl_projections::feed::store_decoder,
            None,
            |p| {
                batches += 1;
                if let Some(pct) = tick.at(p.done) {
                    progress(&format!("(c) {name}: {pct}% ({} events/s)", thousands(p.rate)));
                }
            },
        )
        .await
        .map_err(|e| db_error("rebuild", &e))?;
        let pg_cpu = pg_before.and_then(|before| Some(postgres_cpu_seconds()? - before));
        let rebuild = Rate::new(report.events, report.elapsed, cpu, pg_cpu, peaks.phase_end());
        (self.progress)(&format!("(c) {name}: done, {}", done(&rebuild, "events")));
        if report.checkpoint != events || report.events != events {
            return Err(BenchError::Check(format!(
                "{name}: the rebuild read {} events up to sequence {}, the stream holds {events}",
                report.events, report.checkpoint
            )));
        }
        let mut rows = Vec::new();
        for projection in Projection::ALL {
            for table in projection.tables() {
                let count: i64 = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                    .fetch_one(models.pool())
                    .await
                    .and_then(|row| row.try_get("n"))
                    .map_err(|e| db_error("counting rows", &e))?;
                rows.push(((*table).to_owned(), count as u64));
            }
        }
        let size_bytes = match target.backend {
            Backend::Postgres => sqlx::query("SELECT pg_database_size(current_database()) AS n")
                .fetch_one(models.pool())
                .await
                .and_then(|row| row.try_get::<i64, _>("n"))
                .ok()
                .map(|n| n as u64),
            Backend::Sqlite => None,
        };
        models.close().await;
        drop(models);
        let size_bytes = size_bytes.or_else(|| target.models_file.as_deref().map(sqlite_size));

        let bound = read.per_second.min(insert.per_second);
        let ratio = (bound > 0.0).then(|| rebuild.per_second / bound);
        Ok(DatabaseReport {
            backend: name,
            location: target.location.clone(),
            not_measured: None,
            insert: Some(insert),
            rebuild: Some(rebuild),
            parked: Some(report.parked),
            rebuild_batches: Some(batches),
            rows,
            size_bytes,
            ratio,
            passes: ratio.map(|r| r >= TARGET_RATIO),
        })
    }
}

/// Where one database's phases write.
struct Target {
    backend: Backend,
    location: String,
    raw_url: String,
    models_url: String,
    models_file: Option<std::path::PathBuf>,
}

/// How many referrals make about `events` events: a small history is generated to measure
/// events per referral, and the result is given a margin (the history is cut at `events`).
fn calibrate(seed: u64, events: usize) -> usize {
    let sample = 2_000;
    let count = Generator::new(HistoryConfig {
        keep_states: false,
        ..HistoryConfig::new(seed, sample)
    })
    .count()
    .max(1);
    let per_referral = count as f64 / sample as f64;
    ((events as f64 / per_referral) * 1.15).ceil() as usize + 20
}

/// (b): the history's events as history-shaped rows, inserted `batch_size` per transaction.
/// Only the database work (building the statements, binding, executing, committing) is timed
/// and metered; generating the events and building the row values between batches is not.
#[allow(clippy::too_many_arguments)]
async fn raw_insert(
    pool: &AnyPool,
    backend: Backend,
    history: &HistoryConfig,
    events: u64,
    batch_size: usize,
    per_statement: usize,
    server_pid: Option<u32>,
    postgres_local: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Rate, sqlx::Error> {
    let blob = match backend {
        Backend::Postgres => "BYTEA",
        Backend::Sqlite => "BLOB",
    };
    pool.execute(AssertSqlSafe(format!(
        "CREATE TABLE {RAW_TABLE} (seq BIGINT PRIMARY KEY, aggregate_id TEXT NOT NULL, command_id TEXT NOT NULL, \
         version BIGINT NOT NULL, event_type TEXT NOT NULL, at BIGINT NOT NULL, actor_user TEXT NOT NULL, \
         actor_org TEXT NOT NULL, aggregate_kind TEXT NOT NULL, actor_role TEXT, reason_code TEXT, sealed {blob})"
    )))
    .await?;
    pool.execute(AssertSqlSafe(format!(
        "CREATE INDEX {RAW_TABLE}_aggregate_idx ON {RAW_TABLE} (aggregate_id, seq)"
    )))
    .await?;

    for (table, columns) in [(WIDE_REFERRAL_TABLE, REFERRAL_COLUMNS), (WIDE_CASE_TABLE, CASE_COLUMNS)] {
        pool.execute(AssertSqlSafe(wide_ddl(table, columns))).await?;
    }
    let full_sql = insert_sql(per_statement, backend);
    let mut generator = Generator::new(history.clone()).take(events as usize);
    let mut versions: HashMap<uuid::Uuid, i64> = HashMap::new();
    let mut seq = 0_i64;
    let mut timed = Duration::ZERO;
    let mut cpu = CpuSum::default();
    let tick = Ticker::new(events);
    loop {
        // Untimed: the next batch of rows.
        let mut wide_referrals: Vec<Vec<Wide>> = Vec::new();
        let mut wide_cases: Vec<Vec<Wide>> = Vec::new();
        let batch: Vec<RawRow> = generator
            .by_ref()
            .take(batch_size)
            .map(|event| {
                seq += 1;
                let row = RawRow::of(seq, &event, &mut versions);
                match row.aggregate_kind {
                    "referral" => wide_referrals.push(wide_row(seq, &row, REFERRAL_COLUMNS)),
                    "case" => wide_cases.push(wide_row(seq, &row, CASE_COLUMNS)),
                    _ => {}
                }
                row
            })
            .collect();
        if batch.is_empty() {
            break;
        }
        let meter = CpuMeter::start(server_pid);
        let pg_before = postgres_local.then(postgres_cpu_seconds).flatten();
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        for chunk in batch.chunks(per_statement) {
            let sql = if chunk.len() == per_statement {
                full_sql.clone()
            } else {
                insert_sql(chunk.len(), backend)
            };
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(row.seq)
                    .bind(row.aggregate_id.clone())
                    .bind(row.command_id.clone())
                    .bind(row.version)
                    .bind(row.event_type)
                    .bind(row.at)
                    .bind(row.actor_user.clone())
                    .bind(row.actor_org.clone())
                    .bind(row.aggregate_kind)
                    .bind(row.actor_role)
                    .bind(None::<String>)
                    .bind(None::<Vec<u8>>);
            }
            query.execute(&mut *tx).await?;
        }
        insert_wide(&mut tx, backend, WIDE_REFERRAL_TABLE, REFERRAL_COLUMNS, wide_referrals).await?;
        insert_wide(&mut tx, backend, WIDE_CASE_TABLE, CASE_COLUMNS, wide_cases).await?;
        tx.commit().await?;
        timed += started.elapsed();
        cpu.add(meter, pg_before);
        if let Some(pct) = tick.at(seq as u64) {
            progress(&format!("(b) {}: {pct}%", backend.name()));
        }
    }
    let count: i64 = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {RAW_TABLE}")))
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    if count != seq {
        return Err(sqlx::Error::Protocol(format!("{count} rows stored, {seq} inserted")));
    }
    Ok(cpu.rate(seq as u64, timed))
}

/// The `referrals`-shaped scratch table of (b).
const WIDE_REFERRAL_TABLE: &str = "bench_raw_referrals";
/// The `cases`-shaped scratch table of (b).
const WIDE_CASE_TABLE: &str = "bench_raw_cases";
/// Columns of a `referrals` row besides its key.
const REFERRAL_COLUMNS: usize = 43;
/// Columns of a `cases` row besides its key.
const CASE_COLUMNS: usize = 28;

/// One value of a wide row: the mix of a real read-model row (ids and codes as text, times and
/// counters as integers, many nullable columns still empty).
enum Wide {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

/// `CREATE TABLE` for a wide scratch table: a key and `columns` columns in the cycle of
/// [`wide_row`]'s values.
fn wide_ddl(table: &str, columns: usize) -> String {
    let mut sql = format!("CREATE TABLE {table} (seq BIGINT PRIMARY KEY");
    for c in 0..columns {
        let ty = if c % 3 == 1 { "BIGINT" } else { "TEXT" };
        sql.push_str(&format!(", c{c} {ty}"));
    }
    sql.push(')');
    sql
}

/// A wide row for an event: ids, codes, times and empty columns in a fixed cycle.
fn wide_row(seq: i64, row: &RawRow, columns: usize) -> Vec<Wide> {
    let mut values = Vec::with_capacity(columns + 1);
    values.push(Wide::Int(seq));
    for c in 0..columns {
        values.push(match c % 6 {
            0 => Wide::Text(row.aggregate_id.clone()),
            1 => Wide::Int(row.at),
            2 => Wide::Text(row.event_type.to_owned()),
            3 => Wide::NullText,
            4 => Wide::NullInt,
            _ => Wide::Text(row.actor_org.clone()),
        });
    }
    values
}

/// Inserts wide rows in multi-row statements, as the projector writes its rows.
async fn insert_wide(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    columns: usize,
    rows: Vec<Vec<Wide>>,
) -> Result<(), sqlx::Error> {
    let per_statement = (MAX_PARAMS / (columns + 1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Wide>> = rows.by_ref().take(per_statement).collect();
        let mut sql = format!("INSERT INTO {table} (seq");
        for c in 0..columns {
            sql.push_str(&format!(", c{c}"));
        }
        sql.push_str(") VALUES ");
        let mut n = 0;
        for (r, _) in chunk.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..=columns {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                match backend {
                    Backend::Postgres => sql.push_str(&format!("${n}")),
                    Backend::Sqlite => sql.push('?'),
                }
            }
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in chunk.into_iter().flatten() {
            query = match value {
                Wide::Text(v) => query.bind(v),
                Wide::Int(v) => query.bind(v),
                Wide::NullText => query.bind(None::<String>),
                Wide::NullInt => query.bind(None::<i64>),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// One row of (b).
struct RawRow {
    seq: i64,
    aggregate_id: String,
    command_id: String,
    version: i64,
    event_type: &'static str,
    at: i64,
    actor_user: String,
    actor_org: String,
    aggregate_kind: &'static str,
    actor_role: Option<&'static str>,
}

impl RawRow {
    fn of(seq: i64, event: &StoredEvent, versions: &mut HashMap<uuid::Uuid, i64>) -> Self {
        let aggregate = event.event.aggregate_id();
        let version = versions.entry(aggregate).or_insert(0);
        *version += 1;
        Self {
            seq,
            aggregate_id: aggregate.to_string(),
            command_id: event.meta.command_id.to_string(),
            version: *version,
            event_type: event.event.event_type(),
            at: event.meta.occurred_at.unix_millis(),
            actor_user: event.meta.actor.user.to_string(),
            actor_org: event.meta.actor.org.to_string(),
            aggregate_kind: event.event.aggregate_kind().subject_token(),
            actor_role: event.meta.actor.roles.first().map(|r| r.code()),
        }
    }
}

/// `INSERT INTO bench_raw_rows (…) VALUES ($1, …), (…)` for `rows` rows — with anonymous `?`
/// parameters on SQLite, as the projector writes its bulk statements there (SQLite looks up
/// every `$N` by name, which costs n² for n parameters).
fn insert_sql(rows: usize, backend: Backend) -> String {
    let mut sql = format!("INSERT INTO {RAW_TABLE} ({}) VALUES ", RAW_COLUMNS.join(", "));
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..RAW_COLUMNS.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// CPU time added up over the timed parts of a phase.
#[derive(Debug, Default)]
struct CpuSum {
    bench: Option<f64>,
    nats: Option<f64>,
    postgres: Option<f64>,
}

impl CpuSum {
    fn add(&mut self, meter: CpuMeter, pg_before: Option<f64>) {
        let used = meter.stop();
        let plus = |sum: Option<f64>, more: Option<f64>| more.map(|m| sum.unwrap_or(0.0) + m);
        self.bench = plus(self.bench, used.bench_seconds);
        self.nats = plus(self.nats, used.server_seconds);
        self.postgres = plus(self.postgres, pg_before.and_then(|b| Some(postgres_cpu_seconds()? - b)));
    }

    fn rate(&self, count: u64, elapsed: Duration) -> Rate {
        let seconds = elapsed.as_secs_f64();
        let per = |s: Option<f64>| s.filter(|_| count > 0).map(|s| s * 1e6 / count as f64);
        Rate {
            count,
            seconds,
            per_second: if seconds > 0.0 { count as f64 / seconds } else { 0.0 },
            bench_cpu_us: per(self.bench),
            nats_cpu_us: per(self.nats),
            postgres_cpu_us: per(self.postgres),
            peak_rss_bytes: None,
        }
    }
}

impl Rate {
    fn new(count: u64, elapsed: Duration, cpu: CpuMeter, postgres_cpu: Option<f64>, peak: Option<u64>) -> Self {
        let used = cpu.stop();
        let sum = CpuSum {
            bench: used.bench_seconds,
            nats: used.server_seconds,
            postgres: postgres_cpu,
        };
        Rate {
            peak_rss_bytes: peak,
            ..sum.rate(count, elapsed)
        }
    }
}

/// Says when a count crosses the next tenth of `total`.
struct Ticker {
    total: u64,
    next: std::cell::Cell<u64>,
}

impl Ticker {
    fn new(total: u64) -> Self {
        Self {
            total,
            next: std::cell::Cell::new(1),
        }
    }

    /// The percentage reached, once per tenth.
    fn at(&self, done: u64) -> Option<u64> {
        let tenth = self.next.get();
        if tenth <= 10 && done * 10 >= tenth * self.total {
            let reached = (done * 10 / self.total.max(1)).min(10);
            self.next.set(reached + 1);
            Some(reached * 10)
        } else {
            None
        }
    }
}

/// One connection to the PostgreSQL server, for creating and dropping the scratch databases.
pub(crate) async fn postgres_admin(url: &str) -> Result<AnyConnection, sqlx::Error> {
    sqlx::any::install_default_drivers();
    tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, AnyConnection::connect(url))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// `url` with its database (the path) replaced by `database`, query string kept.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` without its password.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:…{}", &url[..scheme_end], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Whether the URL's host is this machine (so its processes can be measured).
pub(crate) fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host_port.split(':').next().unwrap_or_default(), |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "")
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

fn sqlite_size(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).ok()
        })
        .map(|m| m.len())
        .sum()
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// A phase's result for the progress lines, so that a run stopped later still leaves it.
fn done(rate: &Rate, what: &str) -> String {
    format!(
        "{} {what} in {:.1} s: {} {what}/s, CPU µs per {}: bench {} / nats {} / pg {}",
        rate.count,
        rate.seconds,
        thousands(rate.per_second),
        what.trim_end_matches('s'),
        us(rate.bench_cpu_us),
        us(rate.nats_cpu_us),
        us(rate.postgres_cpu_us)
    )
}

fn js_error(e: impl fmt::Display) -> BenchError {
    BenchError::JetStream(e.to_string())
}

fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

impl fmt::Display for ProjectionsBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
        let kind = if s.temporary { "temporary" } else { "given" };
        writeln!(f, "Wasl projections benchmark")?;
        writeln!(f, "  nats-server {} ({kind}, {})", s.version, s.url)?;
        writeln!(
            f,
            "  N = {} events ({} asked) from {} referrals (seed {}), {} payload bytes, stream {}; batch size {}",
            thousands(self.events as f64),
            thousands(self.events_requested as f64),
            thousands(self.referrals as f64),
            self.seed,
            thousands(self.payload_bytes as f64),
            mib(Some(self.stream_bytes)),
            thousands(self.batch_size as f64),
        )?;
        for db in &self.databases {
            writeln!(f, "  {}: {}", db.backend, db.location)?;
        }
        for db in self.unmeasured() {
            writeln!(f)?;
            writeln!(
                f,
                "  !!! {} NOT MEASURED: {}",
                db.backend,
                db.not_measured.as_deref().unwrap_or_default()
            )?;
        }
        writeln!(f)?;
        let mut table = Table::new(["phase", "rate", "seconds", "CPU µs/event", "peak RSS"]);
        table.row(["", "", "", "bench / nats / pg", ""]);
        let row = |table: &mut Table, name: &str, r: &Rate, unit: &str| {
            table.row([
                name.to_owned(),
                format!("{} {unit}", thousands(r.per_second)),
                format!("{:.1}", r.seconds),
                format!(
                    "{} / {} / {}",
                    us(r.bench_cpu_us),
                    us(r.nats_cpu_us),
                    us(r.postgres_cpu_us)
                ),
                mib(r.peak_rss_bytes),
            ]);
        };
        row(
            &mut table,
            "write: generate + publish (pipelined acks)",
            &self.write,
            "ev/s",
        );
        row(&mut table, "(a) raw read, one ordered consumer", &self.read, "ev/s");
        for db in &self.databases {
            table.text("").text(db.backend);
            if let Some(why) = &db.not_measured {
                table
                    .row_with_note(["(b) raw batched insert", "not measured"], format!("({why})"))
                    .row(["(c) full rebuild, all projections", "not measured"])
                    .row(["(c) / min(a, b)", "not measured"]);
                continue;
            }
            if let Some(insert) = &db.insert {
                let name = format!(
                    "(b) raw insert of equivalent rows, {} ev/tx",
                    thousands(self.batch_size as f64)
                );
                row(&mut table, &name, insert, "ev/s");
            }
            if let Some(rebuild) = &db.rebuild {
                row(&mut table, "(c) full rebuild, all projections", rebuild, "ev/s");
            }
            if let (Some(ratio), Some(passes)) = (db.ratio, db.passes) {
                table.row_with_note(
                    ["(c) / min(a, b)".to_owned(), format!("{ratio:.2}")],
                    format!(
                        "(target ≥ {:.2}: {})",
                        self.target_ratio,
                        if passes { "PASS" } else { "FAIL" }
                    ),
                );
            }
            let rows: Vec<String> = db
                .rows
                .iter()
                .map(|(t, n)| format!("{t} {}", thousands(*n as f64)))
                .collect();
            let batches = db.rebuild_batches.unwrap_or_default();
            table.text(format!(
                "rebuild: {} transactions, {:.1} events each; parked {}",
                thousands(batches as f64),
                self.events as f64 / batches.max(1) as f64,
                db.parked.unwrap_or_default(),
            ));
            table.text(format!(
                "read models: {}; database {}",
                rows.join(", "),
                mib(db.size_bytes)
            ));
        }
        write!(f, "{table}")?;
        writeln!(f)?;
        writeln!(
            f,
            "  peak RSS: bench {} (whole run; per phase above{}), nats-server {}",
            mib(self.peak_rss_bytes),
            if self.per_phase_peaks {
                ""
            } else {
                ": NOT reset between phases, each is the run's peak so far"
            },
            mib(self.server_peak_rss_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:…@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn loopback_hosts_are_local() {
        assert!(is_local(DEFAULT_POSTGRES_URL));
        assert!(is_local("postgres://u:p@localhost/db"));
        assert!(is_local("postgres://[::1]:5432/db"));
        assert!(!is_local("postgres://db.example.invalid:5432/db"));
    }

    #[test]
    fn an_insert_numbers_every_parameter() {
        let sql = insert_sql(2, Backend::Postgres);
        assert!(
            sql.starts_with(&format!("INSERT INTO {RAW_TABLE} (seq, aggregate_id,")),
            "{sql}"
        );
        assert!(sql.ends_with("$23, $24)"), "{sql}");
        assert_eq!(sql.matches('$').count(), 2 * RAW_COLUMNS.len());
        let sqlite = insert_sql(2, Backend::Sqlite);
        assert_eq!(sqlite.matches('?').count(), 2 * RAW_COLUMNS.len());
        assert!(!sqlite.contains('$'), "{sqlite}");
    }

    #[test]
    fn the_ticker_says_each_tenth_once() {
        let tick = Ticker::new(100);
        let said: Vec<u64> = (1..=100).filter_map(|n| tick.at(n)).collect();
        assert_eq!(said, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        let jumpy = Ticker::new(10);
        assert_eq!(jumpy.at(7), Some(70));
        assert_eq!(jumpy.at(7), None);
        assert_eq!(jumpy.at(10), Some(100));
    }

    #[test]
    fn options_are_checked() {
        assert!(ProjectionsBenchOptions::default().validate().is_ok());
        let zero = ProjectionsBenchOptions {
            batch_size: 0,
            ..Default::default()
        };
        assert!(matches!(zero.validate(), Err(BenchError::Options(_))));
        let sqlite = ProjectionsBenchOptions {
            postgres_url: "sqlite:x.db".to_owned(),
            ..Default::default()
        };
        assert!(matches!(sqlite.validate(), Err(BenchError::Options(_))));
    }
}
