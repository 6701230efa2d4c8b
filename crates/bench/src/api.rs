//! `wasl bench api`: the HTTP API under a realistic load, against the event store's own command
//! rate measured in the same run.
//!
//! One run, one process, one after the other:
//!
//! 1. **The store benchmark** ([`store::run`](crate::store::run)) with as many commands in flight
//!    as the API has clients; its (b), `EventStore::execute` commands per second, is the bound
//!    the API is held against.
//! 2. **The API**, served in this process exactly as `wasl api` serves it (`wasl_api::run` on
//!    127.0.0.1, the event store, the vault, the accounts, the access audit), with the read
//!    models on SQLite in a temporary directory (or a scratch PostgreSQL database) and the
//!    projector following the log in this process too. Two organisations are registered through
//!    the API by a coordinator: A refers, B receives (a health service in IQ-NI, in Arabic).
//!    Then `concurrency` clients, each on its own keep-alive connection, on a runtime of their
//!    own: half are caseworkers of A (one token each), who open a case with synthetic personal
//!    data, record consent and request a referral to B, and later — told by B that it is
//!    complete — read their worklist and record the follow-up; the other half are B's partner
//!    system (`partner_system` tokens), which takes each new referral from a queue (standing in
//!    for the delivery of a notification), reads its inbox, and receives, accepts, starts and
//!    completes it. Queries send `Wasl-Min-Position` with the position the notification
//!    carried, as a real client does to see what it was told about; commands send an
//!    `Idempotency-Key`.
//!
//! Every request is timed and counted per operation; any answer other than 2xx is an error,
//! reported with its status and problem type, and fails the run.

use crate::error::BenchError;
use crate::probe::{CpuMeter, CpuUsed, ThreadCpu, peak_rss_bytes, postgres_cpu_seconds, reset_peak_rss, thread_cpu};
use crate::projections::{Scratch, is_local, postgres_admin, redact, stop_signal, with_database};
use crate::server::{RunServer, TempServer, start_or_connect};
use crate::stats::Throughput;
use crate::store::{ServerReport, StoreBenchOptions, StoreBenchReport, delete_stream_if_present, mib, thousands};
use async_nats::jetstream;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use wasl_api::auth::accounts::now_millis;
use wasl_api::{AppSettings, AppState, Application, CancellationToken};
use wasl_domain::Role;
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::time::Timestamp;
use wasl_projections::{Projection, Projector, ProjectorConfig};
use wasl_store::StoreConfig;
use wasl_vault::{LocalMasterKey, VaultConfig};

/// The event stream of the API phase (on `wasl.evt.>`, like the real log).
pub const EVENT_STREAM: &str = "WASL_BENCH_API";
/// The vault's key bucket in the API phase.
pub const KEY_BUCKET: &str = "WASL_BENCH_API_KEYS";
/// The goal: the API carries out at least this fraction of the store's command rate.
pub const TARGET_RATIO: f64 = 0.5;
/// The run stops early after this many errors: the numbers would mean nothing anyway.
const MAX_ERRORS: u64 = 1_000;
/// At most this many error messages are kept for the report.
const ERROR_SAMPLES: usize = 10;
/// Threads of the load generator's runtime (its own, so its CPU time can be told apart).
const LOAD_THREADS: usize = 2;
/// The name of the load generator's threads (`/proc/<pid>/task/<tid>/comm`).
const LOAD_THREAD_NAME: &str = "bench-load";
/// A master key for the benchmark's synthetic data only.
const MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// The request header of read-your-writes.
const MIN_POSITION: &str = "wasl-min-position";
/// The request header of idempotent retries.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBenchOptions {
    /// Clients sending requests at once, each on its own keep-alive connection: half
    /// caseworkers, half the partner system (at least 2).
    pub concurrency: usize,
    /// How long the load runs (unless [`loops`](Self::loops) is given).
    pub duration: Duration,
    /// Instead of a duration: referrals each caseworker client makes and sees through to the
    /// follow-up; the run ends when all are done.
    pub loops: Option<usize>,
    /// Use this nats-server instead of starting one. It must hold no Wasl (no stream on
    /// `wasl.evt.>`, no `WASL_ACCOUNTS` or `WASL_AUDIT`); what the benchmark creates is deleted.
    pub nats_url: Option<String>,
    /// Keep the read models in a scratch database on this PostgreSQL server instead of SQLite.
    pub postgres_url: Option<String>,
    /// `N` of the store benchmark run first (`wasl bench store --messages`).
    pub store_messages: usize,
    /// Aggregates of the store benchmark (`wasl bench store --aggregates`).
    pub store_aggregates: usize,
}

impl Default for ApiBenchOptions {
    fn default() -> Self {
        Self {
            concurrency: 64,
            duration: Duration::from_secs(20),
            loops: None,
            nats_url: None,
            postgres_url: None,
            store_messages: StoreBenchOptions::default().messages,
            store_aggregates: StoreBenchOptions::default().aggregates,
        }
    }
}

impl ApiBenchOptions {
    fn validate(&self) -> Result<(), BenchError> {
        let invalid = |text: &str| Err(BenchError::Options(text.to_owned()));
        if self.concurrency < 2 {
            return invalid("--concurrency must be at least 2 (a caseworker and a partner client)");
        }
        if self.loops.is_none() && self.duration.is_zero() {
            return invalid("--duration must be longer than zero");
        }
        if self.loops == Some(0) {
            return invalid("--loops must be at least 1");
        }
        if self.store_messages == 0 || self.store_aggregates == 0 {
            return invalid("--store-messages and --store-aggregates must be at least 1");
        }
        if let Some(url) = &self.postgres_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return invalid("--postgres-url must be a postgres:// URL");
        }
        Ok(())
    }

    fn store_options(&self) -> StoreBenchOptions {
        StoreBenchOptions {
            messages: self.store_messages,
            aggregates: self.store_aggregates,
            in_flight: self.concurrency,
            sync_always: false,
            nats_url: self.nats_url.clone(),
        }
    }
}

/// One kind of request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    OpenCase,
    GiveConsent,
    RequestReferral,
    Inbox,
    Receive,
    Accept,
    Start,
    Complete,
    Worklist,
    FollowUp,
}

const OPS: usize = 10;

impl Op {
    const ALL: [Self; OPS] = [
        Self::OpenCase,
        Self::GiveConsent,
        Self::RequestReferral,
        Self::Inbox,
        Self::Receive,
        Self::Accept,
        Self::Start,
        Self::Complete,
        Self::Worklist,
        Self::FollowUp,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Self::OpenCase => "open case",
            Self::GiveConsent => "give consent",
            Self::RequestReferral => "request referral",
            Self::Inbox => "inbox",
            Self::Receive => "receive",
            Self::Accept => "accept",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Worklist => "worklist",
            Self::FollowUp => "follow-up",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Self::OpenCase => "POST /v1/cases",
            Self::GiveConsent => "POST /v1/cases/{id}/consents",
            Self::RequestReferral => "POST /v1/referrals",
            Self::Inbox => "GET /v1/inbox + Wasl-Min-Position",
            Self::Receive => "POST /v1/referrals/{id}/receive",
            Self::Accept => "POST /v1/referrals/{id}/accept",
            Self::Start => "POST /v1/referrals/{id}/start",
            Self::Complete => "POST /v1/referrals/{id}/complete",
            Self::Worklist => "GET /v1/worklist + Wasl-Min-Position",
            Self::FollowUp => "POST /v1/referrals/{id}/follow-up",
        }
    }

    fn actor(self) -> &'static str {
        match self {
            Self::Inbox | Self::Receive | Self::Accept | Self::Start | Self::Complete => "partner system (B)",
            _ => "caseworker (A)",
        }
    }

    fn is_command(self) -> bool {
        !matches!(self, Self::Inbox | Self::Worklist)
    }
}

/// One operation of the mix, as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationReport {
    /// What it is (`open case`, `inbox`, …).
    pub name: &'static str,
    /// Method and route.
    pub route: &'static str,
    /// Who sends it.
    pub actor: &'static str,
    /// A command (it appends events) rather than a query.
    pub command: bool,
    /// Successful requests: how many, per second over the whole load, p50 and p99 from sending
    /// the request to the end of the answer's body.
    pub requests: Throughput,
    /// Requests answered with anything but 2xx, or not answered.
    pub errors: u64,
    /// For queries: the mean number of items a page held.
    pub mean_items: Option<f64>,
}

/// How many referrals went how far during the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReferralCounts {
    /// Cases opened.
    pub cases: u64,
    /// Referrals requested.
    pub requested: u64,
    /// Referrals the partner completed.
    pub completed: u64,
    /// Referrals followed up by their caseworker.
    pub followed_up: u64,
}

/// CPU time of one group of this process's threads during the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadGroupCpu {
    /// The group.
    pub group: &'static str,
    /// CPU seconds.
    pub seconds: f64,
    /// Microseconds per successful request.
    pub us_per_request: f64,
}

/// Where the CPU time of the load went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuReport {
    /// This process (clients, API, store, projector, SQLite), µs per successful request.
    pub bench_us_per_request: Option<f64>,
    /// The temporary nats-server, µs per successful request.
    pub server_us_per_request: Option<f64>,
    /// Every `postgres` process on this machine (PostgreSQL read models on a local server).
    pub postgres_us_per_request: Option<f64>,
    /// This process by thread group (threads that ended during the load are missing).
    pub threads: Vec<ThreadGroupCpu>,
    /// CPU seconds of all the above per second of load: how many cores were busy.
    pub cores_busy: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiBenchReport {
    /// The nats-server of the API phase.
    pub server: ServerReport,
    /// The read models' database.
    pub database: String,
    /// Clients at once.
    pub concurrency: usize,
    /// Of which caseworkers of A.
    pub caseworkers: usize,
    /// Of which partner-system clients of B.
    pub partners: usize,
    /// The duration asked for, in seconds (without `loops`).
    pub duration_seconds: Option<f64>,
    /// Referrals per caseworker client, when asked for instead of a duration.
    pub loops: Option<usize>,
    /// Every operation of the mix.
    pub operations: Vec<OperationReport>,
    /// All successful commands together: this is the API's command rate.
    pub commands: Throughput,
    /// All successful queries together.
    pub queries: Throughput,
    /// All successful requests, with the CPU time per request.
    pub requests: Throughput,
    /// Failed requests; the run fails if there are any.
    pub errors: u64,
    /// The first few failures: operation, status, problem type.
    pub error_samples: Vec<String>,
    /// How far the referrals got.
    pub referrals: ReferralCounts,
    /// Events appended to the log during the load.
    pub events: u64,
    /// Transactions the projector committed during the load.
    pub projector_transactions: u64,
    /// Where the CPU time went.
    pub cpu: CpuReport,
    /// The store benchmark of the same run.
    pub store: StoreBenchReport,
    /// Its (b): `EventStore::execute` commands per second.
    pub store_commands_per_second: f64,
    /// API commands per second ÷ store commands per second.
    pub ratio: f64,
    /// The goal for [`ratio`](Self::ratio).
    pub target_ratio: f64,
    /// `ratio >= target_ratio`.
    pub passes: bool,
    /// Peak resident memory of this process during the API phase (`VmHWM` reset before it).
    pub peak_rss_bytes: Option<u64>,
    /// Peak resident memory of the nats-server of the API phase.
    pub server_peak_rss_bytes: Option<u64>,
}

impl ApiBenchReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Runs the whole benchmark; `progress` hears what is being done (for a terminal). Ctrl-C or
/// SIGTERM stops it; the temporary servers, the SQLite files, the scratch database and what was
/// created on a given server are removed all the same.
pub async fn run(options: &ApiBenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Result<ApiBenchReport, BenchError> {
    options.validate()?;
    let store_options = options.store_options();
    progress(&format!(
        "1/2 wasl bench store: N = {}, {} aggregates, {} in flight",
        store_options.messages, store_options.aggregates, store_options.in_flight
    ));
    let store_progress = |line: &str| progress(&format!("store: {line}"));
    let store_report = tokio::select! {
        report = crate::store::run(&store_options, &store_progress) => report?,
        () = stop_signal() => return Err(BenchError::Interrupted),
    };
    progress(&format!(
        "store: EventStore::execute {} cmd/s",
        thousands(store_report.appends.per_second)
    ));

    let RunServer {
        temporary: server,
        client,
        report: server_report,
    } = start_or_connect(options.nats_url.as_deref(), false, "2/2 API: ", progress).await?;
    let js = jetstream::new(client.clone());
    if server.is_none() {
        // A given server must not hold a Wasl: the accounts and the audit have fixed names.
        for name in [wasl_api::auth::accounts::STREAM, wasl_api::audit::STREAM] {
            if js.get_stream(name).await.is_ok() {
                return Err(BenchError::Options(format!(
                    "the server at --nats-url holds the stream {name} (a Wasl); use a server without one"
                )));
            }
        }
    }

    let scratch = Scratch::default();
    let phase = ApiPhase {
        options,
        progress,
        client: &client,
        js: &js,
        server_pid: server.as_ref().map(TempServer::pid),
        scratch: &scratch,
    };
    let outcome = tokio::select! {
        outcome = phase.measure() => outcome,
        () = stop_signal() => Err(BenchError::Interrupted),
    };
    if let Some(url) = &options.postgres_url {
        scratch.drop_databases(url, progress).await;
    }
    if server.is_none() {
        // A given server outlives the run: leave nothing behind.
        let key_stream = format!("KV_{KEY_BUCKET}");
        for name in [
            EVENT_STREAM,
            key_stream.as_str(),
            wasl_api::auth::accounts::STREAM,
            wasl_api::audit::STREAM,
        ] {
            delete_stream_if_present(&js, name).await?;
        }
    }
    let measured = outcome?;
    let server_peak_rss_bytes = server.as_ref().and_then(|s| peak_rss_bytes(Some(s.pid())));
    Ok(measured.report(server_report, options, store_report, server_peak_rss_bytes))
}

/// What the API phase measured, before it is put beside the store's numbers.
struct Measured {
    database: String,
    caseworkers: usize,
    partners: usize,
    recorder: Recorder,
    elapsed: Duration,
    cpu: CpuUsed,
    postgres_seconds: Option<f64>,
    threads: Vec<(&'static str, f64)>,
    events: u64,
    projector_transactions: u64,
    peak_rss_bytes: Option<u64>,
}

impl Measured {
    fn report(
        self,
        server: ServerReport,
        options: &ApiBenchOptions,
        store: StoreBenchReport,
        server_peak_rss_bytes: Option<u64>,
    ) -> ApiBenchReport {
        let Self {
            database,
            caseworkers,
            partners,
            mut recorder,
            elapsed,
            cpu,
            postgres_seconds,
            threads,
            events,
            projector_transactions,
            peak_rss_bytes,
        } = self;
        let mut operations = Vec::with_capacity(OPS);
        let (mut commands, mut queries) = (Vec::new(), Vec::new());
        for op in Op::ALL {
            let latencies = std::mem::take(&mut recorder.latencies[op.index()]);
            let count = latencies.len();
            if op.is_command() {
                commands.extend_from_slice(&latencies);
            } else {
                queries.extend_from_slice(&latencies);
            }
            operations.push(OperationReport {
                name: op.name(),
                route: op.route(),
                actor: op.actor(),
                command: op.is_command(),
                requests: Throughput::from_latencies(latencies, elapsed),
                errors: recorder.errors[op.index()],
                mean_items: (!op.is_command() && count > 0).then(|| recorder.items[op.index()] as f64 / count as f64),
            });
        }
        let all: Vec<Duration> = commands.iter().chain(&queries).copied().collect();
        let requests = Throughput::from_latencies(all, elapsed).with_cpu(cpu);
        let commands = Throughput::from_latencies(commands, elapsed);
        let queries = Throughput::from_latencies(queries, elapsed);
        let per_request = |seconds: f64| {
            if requests.count > 0 {
                seconds * 1e6 / requests.count as f64
            } else {
                0.0
            }
        };
        let busy = cpu
            .bench_seconds
            .map(|b| b + cpu.server_seconds.unwrap_or(0.0) + postgres_seconds.unwrap_or(0.0));
        let cpu_report = CpuReport {
            bench_us_per_request: requests.bench_cpu_us_per_op,
            server_us_per_request: requests.server_cpu_us_per_op,
            postgres_us_per_request: postgres_seconds.map(per_request),
            threads: threads
                .into_iter()
                .map(|(group, seconds)| ThreadGroupCpu {
                    group,
                    seconds,
                    us_per_request: per_request(seconds),
                })
                .collect(),
            cores_busy: busy.filter(|_| !elapsed.is_zero()).map(|s| s / elapsed.as_secs_f64()),
        };
        let store_commands_per_second = store.appends.per_second;
        let ratio = if store_commands_per_second > 0.0 {
            commands.per_second / store_commands_per_second
        } else {
            0.0
        };
        let errors: u64 = recorder.errors.iter().sum();
        ApiBenchReport {
            server,
            database,
            concurrency: options.concurrency,
            caseworkers,
            partners,
            duration_seconds: options.loops.is_none().then_some(options.duration.as_secs_f64()),
            loops: options.loops,
            operations,
            commands,
            queries,
            requests,
            errors,
            error_samples: recorder.samples,
            referrals: recorder.referrals,
            events,
            projector_transactions,
            cpu: cpu_report,
            store,
            store_commands_per_second,
            ratio,
            target_ratio: TARGET_RATIO,
            passes: ratio >= TARGET_RATIO,
            peak_rss_bytes,
            server_peak_rss_bytes,
        }
    }
}

/// The API phase: everything `wasl api` runs, in this process, under the load.
struct ApiPhase<'a> {
    options: &'a ApiBenchOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    client: &'a async_nats::Client,
    js: &'a jetstream::Context,
    server_pid: Option<u32>,
    scratch: &'a Scratch,
}

impl ApiPhase<'_> {
    async fn measure(&self) -> Result<Measured, BenchError> {
        let progress = self.progress;
        let sqlite_dir = tempfile::Builder::new()
            .prefix("wasl-bench-api-")
            .tempdir()
            .map_err(|e| BenchError::Database(format!("cannot create a temporary directory: {e}")))?;
        let (database_url, database) = match &self.options.postgres_url {
            None => {
                let file = sqlite_dir.path().join("models.db");
                (
                    format!("sqlite:{}", file.display()),
                    format!("sqlite: {} (temporary)", file.display()),
                )
            }
            Some(admin_url) => {
                let name = self.scratch_database(admin_url).await?;
                (
                    with_database(admin_url, &name),
                    format!("postgresql: {} (scratch database {name}, dropped)", redact(admin_url)),
                )
            }
        };
        progress(&format!("API: read models on {database}"));

        delete_stream_if_present(self.js, EVENT_STREAM).await?;
        let master = LocalMasterKey::from_hex("bench-1", MASTER_KEY).map_err(|e| BenchError::Data(e.to_string()))?;
        // The benchmark's own stream and key bucket, so a server holding a real Wasl is untouched.
        let settings = AppSettings {
            store: StoreConfig {
                stream: EVENT_STREAM.to_owned(),
                ..StoreConfig::default()
            },
            vault: VaultConfig {
                bucket: KEY_BUCKET.to_owned(),
                ..VaultConfig::default()
            },
            session_lifetime: Duration::from_secs(3600),
            ..AppSettings::new(database_url.clone(), master)
        };
        let app = Application::build(self.client.clone(), settings, ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| {
                BenchError::JetStream(format!(
                    "cannot build the API ({e}); if another stream (a Wasl event log) already holds the subjects \
                     wasl.evt.>, this server cannot be used for the benchmark"
                ))
            })?;
        let state = app.state().clone();
        let models = state.models().clone();
        let mut event_stream = state.store().stream().clone();
        let projector = Projector::new(
            models.clone(),
            state.store().stream().clone(),
            Projection::ALL,
            ProjectorConfig::default(),
        );
        let metrics = projector.metrics();

        let shutdown = CancellationToken::new();
        let projector_task = tokio::spawn({
            let stop = shutdown.clone().cancelled_owned();
            async move { projector.run(stop).await }
        });
        let address = app.address();
        let api_task = tokio::spawn(app.run(shutdown.clone()));
        let base = format!("http://{address}");
        progress(&format!(
            "API: listening on {base}; the projector follows {EVENT_STREAM}"
        ));

        let outcome = async {
            let caseworkers = self.options.concurrency / 2;
            let partners = self.options.concurrency - caseworkers;
            let network = Network::set_up(&state, &base, caseworkers).await?;
            progress(&format!(
                "API: organisations A and B registered through the API; {caseworkers} caseworker tokens, {partners} \
                 partner-system clients; load: {}",
                match self.options.loops {
                    Some(n) => format!("{n} referrals per caseworker"),
                    None => format!("{:?}", self.options.duration),
                }
            ));
            let events_before = stream_messages(&mut event_stream).await?;
            let transactions_before = metrics.batches.load(Ordering::Relaxed);
            // Best effort: where the reset fails, the peak read after the load is the run's so far.
            let _ = reset_peak_rss();
            let postgres_local = self.options.postgres_url.as_deref().is_some_and(is_local);
            let postgres_before = postgres_local.then(postgres_cpu_seconds).flatten();
            let threads_before = thread_cpu();
            let cpu = CpuMeter::start(self.server_pid);
            let plan = LoadPlan {
                base: base.clone(),
                network,
                caseworkers,
                partners,
                duration: self.options.duration,
                loops: self.options.loops,
            };
            let load = run_load(plan, cpu).await?;
            let (recorder, elapsed, cpu) = (load.recorder, load.elapsed, load.cpu);
            let threads = thread_groups(&threads_before, &load.threads);
            let postgres_seconds = postgres_local
                .then(postgres_cpu_seconds)
                .flatten()
                .zip(postgres_before)
                .map(|(after, before)| after - before);
            let peak_rss_bytes = peak_rss_bytes(None);
            let events = stream_messages(&mut event_stream).await? - events_before;
            let projector_transactions = metrics.batches.load(Ordering::Relaxed) - transactions_before;
            progress(&format!(
                "API: {} requests in {:.1} s, {} errors",
                recorder.latencies.iter().map(Vec::len).sum::<usize>(),
                elapsed.as_secs_f64(),
                recorder.errors.iter().sum::<u64>()
            ));
            Ok::<_, BenchError>(Measured {
                database: database.clone(),
                caseworkers,
                partners,
                recorder,
                elapsed,
                cpu,
                postgres_seconds,
                threads,
                events,
                projector_transactions,
                peak_rss_bytes,
            })
        }
        .await;

        shutdown.cancel();
        for task in [api_task.abort_handle(), projector_task.abort_handle()] {
            // Both stop on the signal; a request stuck in flight must not hold the run.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !task.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            task.abort();
        }
        drop(state);
        models.close().await;
        drop(sqlite_dir);
        outcome
    }

    /// A fresh scratch database on the PostgreSQL server, registered to be dropped at the end.
    async fn scratch_database(&self, admin_url: &str) -> Result<String, BenchError> {
        let mut admin = postgres_admin(admin_url)
            .await
            .map_err(|e| BenchError::Database(format!("cannot connect to {}: {e}", redact(admin_url))))?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let name = format!("wasl_bench_api_{}_{stamp}", std::process::id());
        // Registered first: a database half-created by an interrupted statement is dropped too.
        self.scratch.add(&name);
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .map_err(|e| {
                BenchError::Database(format!(
                    "cannot create a scratch database on {}: {e}",
                    redact(admin_url)
                ))
            })?;
        let _ = admin.close().await;
        Ok(name)
    }
}

async fn stream_messages(stream: &mut jetstream::stream::Stream) -> Result<u64, BenchError> {
    let info = stream
        .info()
        .await
        .map_err(|e| BenchError::JetStream(format!("cannot read the event stream's state: {e}")))?;
    Ok(info.state.messages)
}

/// The organisations and credentials of the load, all made through the API (organisations)
/// and the account store (tokens), as an admin would.
struct Network {
    partner_org: String,
    service: String,
    /// One token per caseworker client (each has a worklist of its own).
    caseworker_tokens: Vec<String>,
    /// The partner system's token, shared by its clients.
    partner_token: String,
}

impl Network {
    async fn set_up(state: &AppState, base: &str, caseworkers: usize) -> Result<Self, BenchError> {
        let admin = UserId::from_uuid(uuid::Uuid::now_v7()).map_err(|e| BenchError::Data(e.to_string()))?;
        let hub = OrgId::from_uuid(uuid::Uuid::now_v7()).map_err(|e| BenchError::Data(e.to_string()))?;
        let token = |org: OrgId, role: Role, label: String| async move {
            let expires = Timestamp::from_unix_millis(now_millis()).plus_hours(24);
            state
                .accounts()
                .issue_token(admin, org, role, &label, expires)
                .await
                .map(|(_, secret)| secret)
                .map_err(|e| BenchError::Data(format!("cannot issue a token: {e}")))
        };
        let coordinator = Caller::new(
            base,
            &token(hub, Role::Coordinator, "wasl bench api coordinator".to_owned()).await?,
        )?;
        let made = |what: &'static str, request: reqwest::RequestBuilder| {
            let coordinator = &coordinator;
            async move {
                coordinator
                    .send::<CommandAnswer>(request)
                    .await
                    .1
                    .map_err(|e| BenchError::Data(format!("cannot {what} through the API: {e}")))
            }
        };
        let register = |name: &'static str| {
            coordinator
                .post("/v1/organisations")
                .json(&json!({"name": name, "kind": "national_ngo"}))
        };
        let referring = made("register organisation A", register("Test Referring NGO")).await?;
        let partner = made("register organisation B", register("Test Health Partner")).await?;
        let service = made(
            "add B's health service",
            coordinator
                .post(&format!("/v1/organisations/{}/services", partner.id))
                .json(&json!({"name": "Test Health Partner clinic", "category": "health",
                              "areas": ["IQ-NI"], "languages": ["ar"]})),
        )
        .await?;
        let referring_org = OrgId::parse(&referring.id).map_err(|e| BenchError::Data(e.to_string()))?;
        let partner_org = OrgId::parse(&partner.id).map_err(|e| BenchError::Data(e.to_string()))?;
        let mut caseworker_tokens = Vec::with_capacity(caseworkers);
        for n in 0..caseworkers {
            caseworker_tokens.push(
                token(
                    referring_org,
                    Role::Caseworker,
                    format!("wasl bench api caseworker {n}"),
                )
                .await?,
            );
        }
        let partner_token = token(
            partner_org,
            Role::PartnerSystem,
            "wasl bench api partner system".to_owned(),
        )
        .await?;
        Ok(Self {
            partner_org: partner.id,
            service: service.id,
            caseworker_tokens,
            partner_token,
        })
    }
}

/// A command's answer (the fields the clients use).
#[derive(Debug, Deserialize)]
struct CommandAnswer {
    id: String,
    position: u64,
}

/// A page of a list, counted.
#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<IgnoredAny>,
}

/// A page of the worklist, with the referral ids.
#[derive(Debug, Deserialize)]
struct WorkPage {
    items: Vec<WorkItem>,
}

#[derive(Debug, Deserialize)]
struct WorkItem {
    referral: IdOnly,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// The `type` of a problem document.
#[derive(Debug, Deserialize)]
struct ProblemType {
    #[serde(rename = "type")]
    kind: String,
}

/// What one client (or all, merged) saw.
#[derive(Debug, Default)]
struct Recorder {
    latencies: [Vec<Duration>; OPS],
    errors: [u64; OPS],
    items: [u64; OPS],
    samples: Vec<String>,
    referrals: ReferralCounts,
}

impl Recorder {
    fn ok(&mut self, op: Op, latency: Duration) {
        self.latencies[op.index()].push(latency);
    }

    fn fail(&mut self, op: Op, what: String) {
        self.errors[op.index()] += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(format!("{}: {what}", op.name()));
        }
    }

    fn merge(&mut self, other: Self) {
        for op in 0..OPS {
            self.latencies[op].extend_from_slice(&other.latencies[op]);
            self.errors[op] += other.errors[op];
            self.items[op] += other.items[op];
        }
        for sample in other.samples {
            if self.samples.len() < ERROR_SAMPLES {
                self.samples.push(sample);
            }
        }
        let (a, b) = (&mut self.referrals, other.referrals);
        a.cases += b.cases;
        a.requested += b.requested;
        a.completed += b.completed;
        a.followed_up += b.followed_up;
    }
}

/// One principal's HTTP client: its own connection pool, so one keep-alive connection per
/// client that sends one request at a time.
#[derive(Clone)]
struct Caller {
    http: reqwest::Client,
    base: Arc<str>,
    authorization: HeaderValue,
}

impl Caller {
    fn new(base: &str, token: &str) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| BenchError::Data(format!("cannot build an HTTP client: {e}")))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| BenchError::Data(format!("a token is not a header value: {e}")))?;
        authorization.set_sensitive(true);
        Ok(Self {
            http,
            base: Arc::from(base),
            authorization,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// Sends `request` as this principal and times it to the end of the answer's body. Any
    /// answer but 2xx with the expected JSON is an error, described by its status and problem
    /// type, never by its body.
    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> (Duration, Result<T, String>) {
        let sent = Instant::now();
        let answered = async {
            let response = request.header(AUTHORIZATION, self.authorization.clone()).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let latency = sent.elapsed();
        let result = match answered {
            Ok((status, body)) if status.is_success() => {
                serde_json::from_slice::<T>(&body).map_err(|_| format!("{} with an unexpected body", status.as_u16()))
            }
            Ok((status, body)) => {
                let kind = serde_json::from_slice::<ProblemType>(&body)
                    .map_or_else(|_| "no problem document".to_owned(), |p| p.kind);
                Err(format!("{} {kind}", status.as_u16()))
            }
            Err(err) => Err(format!("no answer: {err}")),
        };
        (latency, result)
    }

    /// [`send`](Self::send), recorded as `op`: its latency when it succeeds, an error otherwise.
    async fn call<T: DeserializeOwned>(
        &self,
        recorder: &mut Recorder,
        op: Op,
        request: reqwest::RequestBuilder,
    ) -> Option<T> {
        match self.send(request).await {
            (latency, Ok(value)) => {
                recorder.ok(op, latency);
                Some(value)
            }
            (_, Err(what)) => {
                recorder.fail(op, what);
                None
            }
        }
    }
}

/// The load to put on the API.
struct LoadPlan {
    base: String,
    network: Network,
    caseworkers: usize,
    partners: usize,
    duration: Duration,
    loops: Option<usize>,
}

/// A requested referral, for the partner (the notification a partner would get).
#[derive(Debug)]
struct Work {
    referral: String,
    position: u64,
    owner: usize,
}

/// A referral the partner is done with, for its caseworker.
#[derive(Debug)]
struct Done {
    referral: String,
    /// The position of the completion, when it was completed.
    completed_at: Option<u64>,
}

/// What every client shares.
struct Shared {
    run: String,
    partner_org: String,
    service: String,
    cases: AtomicU64,
    errors: AtomicU64,
    stopper: watch::Sender<bool>,
    done: Vec<mpsc::UnboundedSender<Done>>,
}

impl Shared {
    /// Counts the errors a client saw; too many stop the run.
    fn count_errors(&self, recorder: &Recorder, before: u64) {
        let now: u64 = recorder.errors.iter().sum();
        if now > before && self.errors.fetch_add(now - before, Ordering::Relaxed) + (now - before) >= MAX_ERRORS {
            self.stopper.send_replace(true);
        }
    }
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// `future`'s output, or `None` if the run stops first.
async fn unless_stopped<F: Future>(stop: &mut watch::Receiver<bool>, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => None,
        output = future => Some(output),
    }
}

/// What the clients saw, and what the load cost.
struct LoadOutcome {
    recorder: Recorder,
    elapsed: Duration,
    /// CPU time from `cpu`'s start to the end of the load.
    cpu: CpuUsed,
    /// Every thread's CPU time at the end of the load, taken while the clients' threads still
    /// exist.
    threads: ThreadCpu,
}

/// Runs the clients on a runtime of their own (threads named [`LOAD_THREAD_NAME`]), so that
/// their CPU time can be told apart from the API's; returns what they saw and how long the
/// load lasted.
async fn run_load(plan: LoadPlan, cpu: CpuMeter) -> Result<LoadOutcome, BenchError> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name(LOAD_THREAD_NAME.to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(LOAD_THREADS)
                .thread_name(LOAD_THREAD_NAME)
                .enable_all()
                .build()
                .map_err(|e| BenchError::Data(format!("cannot start the load generator's runtime: {e}")))
                .and_then(|runtime| {
                    let (recorder, elapsed) = runtime.block_on(drive(plan))?;
                    Ok(LoadOutcome {
                        recorder,
                        elapsed,
                        cpu: cpu.stop(),
                        threads: thread_cpu(),
                    })
                });
            let _ = answer.send(result);
        })
        .map_err(|e| BenchError::Data(format!("cannot start the load generator's thread: {e}")))?;
    answered
        .await
        .map_err(|_| BenchError::Data("the load generator stopped".to_owned()))?
}

async fn drive(plan: LoadPlan) -> Result<(Recorder, Duration), BenchError> {
    let (stopper, stop) = watch::channel(false);
    let mut done_senders = Vec::with_capacity(plan.caseworkers);
    let mut done_receivers = Vec::with_capacity(plan.caseworkers);
    for _ in 0..plan.caseworkers {
        let (tx, rx) = mpsc::unbounded_channel();
        done_senders.push(tx);
        done_receivers.push(rx);
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let shared = Arc::new(Shared {
        run: format!("bench-{}-{stamp}", std::process::id()),
        partner_org: plan.network.partner_org.clone(),
        service: plan.network.service.clone(),
        cases: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stopper,
        done: done_senders,
    });
    // New referrals wait here for the partner; a full queue holds the caseworkers back.
    let (queue, inbox) = mpsc::channel::<Work>(2 * plan.partners);
    let inbox = Arc::new(Mutex::new(inbox));

    let mut clients = Vec::with_capacity(plan.caseworkers + plan.partners);
    for (index, (token, done)) in plan.network.caseworker_tokens.iter().zip(done_receivers).enumerate() {
        clients.push(Client::Caseworker(Caseworker {
            index,
            caller: Caller::new(&plan.base, token)?,
            shared: shared.clone(),
            queue: queue.clone(),
            done,
            stop: stop.clone(),
            recorder: Recorder::default(),
            keys: 0,
        }));
    }
    drop(queue);
    for index in 0..plan.partners {
        clients.push(Client::Partner(Partner {
            index,
            caller: Caller::new(&plan.base, &plan.network.partner_token)?,
            shared: shared.clone(),
            inbox: inbox.clone(),
            stop: stop.clone(),
            recorder: Recorder::default(),
            keys: 0,
        }));
    }

    let started = Instant::now();
    let timer = plan.loops.is_none().then(|| {
        let (shared, duration) = (shared.clone(), plan.duration);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            shared.stopper.send_replace(true);
        })
    });
    let loops = plan.loops;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                match client {
                    Client::Caseworker(c) => c.run(loops).await,
                    Client::Partner(p) => p.run().await,
                }
            })
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        let seen = task
            .await
            .map_err(|e| BenchError::Data(format!("a client stopped: {e}")))?;
        recorder.merge(seen);
    }
    let elapsed = started.elapsed();
    if let Some(timer) = timer {
        timer.abort();
    }
    Ok((recorder, elapsed))
}

enum Client {
    Caseworker(Caseworker),
    Partner(Partner),
}

/// A caseworker of A: opens cases, records consent, refers to B; follows up what B completed.
struct Caseworker {
    index: usize,
    caller: Caller,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Work>,
    done: mpsc::UnboundedReceiver<Done>,
    stop: watch::Receiver<bool>,
    recorder: Recorder,
    keys: u64,
}

impl Caseworker {
    fn key(&mut self) -> String {
        self.keys += 1;
        format!("{}-c{}-{}", self.shared.run, self.index, self.keys)
    }

    async fn run(mut self, loops: Option<usize>) -> Recorder {
        let (mut started, mut outstanding) = (0usize, 0usize);
        loop {
            let next = if loops.is_some_and(|n| started >= n) {
                if outstanding == 0 {
                    break;
                }
                match unless_stopped(&mut self.stop, self.done.recv()).await {
                    Some(Some(done)) => Some(done),
                    _ => break,
                }
            } else {
                self.done.try_recv().ok()
            };
            if stopped(&self.stop) {
                break;
            }
            let errors: u64 = self.recorder.errors.iter().sum();
            if let Some(done) = next {
                outstanding -= 1;
                if let Some(position) = done.completed_at {
                    self.follow_up(&done.referral, position).await;
                }
            } else {
                started += 1;
                if let Some(work) = self.refer().await {
                    outstanding += 1;
                    match unless_stopped(&mut self.stop, self.queue.send(work)).await {
                        Some(Ok(())) => {}
                        _ => break,
                    }
                }
            }
            self.shared.count_errors(&self.recorder, errors);
        }
        self.recorder
    }

    /// Opens a case, records consent and refers the client to B.
    async fn refer(&mut self) -> Option<Work> {
        let n = self.shared.cases.fetch_add(1, Ordering::Relaxed) + 1;
        let case = json!({
            "profile": {
                "survivor_code": format!("TEST-{n:06}"),
                "sex": "female",
                "age_years": 29,
                "population_group": "idp",
                "nationality": "IQ",
                "governorate": "IQ-NI",
                "language": "ar",
                "vulnerabilities": []
            },
            "personal": {
                "name": format!("Test Person {n:04}"),
                "phone": format!("+964-000-{:04}", n % 10_000),
                "address": "Test Street 1, Mosul"
            }
        });
        let key = self.key();
        let opened: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::OpenCase,
                self.caller.post("/v1/cases").header(IDEMPOTENCY_KEY, key).json(&case),
            )
            .await?;
        self.recorder.referrals.cases += 1;
        if stopped(&self.stop) {
            return None;
        }
        let key = self.key();
        let _: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::GiveConsent,
                self.caller
                    .post(&format!("/v1/cases/{}/consents", opened.id))
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&json!({})),
            )
            .await?;
        if stopped(&self.stop) {
            return None;
        }
        let key = self.key();
        let referral = json!({
            "case_id": opened.id,
            "to_org": self.shared.partner_org,
            "service_id": self.shared.service,
            "priority": "routine",
            "notes": "Test note for the partner: the client prefers morning appointments."
        });
        let requested: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::RequestReferral,
                self.caller
                    .post("/v1/referrals")
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&referral),
            )
            .await?;
        self.recorder.referrals.requested += 1;
        Some(Work {
            referral: requested.id,
            position: requested.position,
            owner: self.index,
        })
    }

    /// Told that `referral` was completed at `position`: reads the worklist as of then, and
    /// records the follow-up.
    async fn follow_up(&mut self, referral: &str, position: u64) {
        let Some(page): Option<WorkPage> = self
            .caller
            .call(
                &mut self.recorder,
                Op::Worklist,
                self.caller.get("/v1/worklist").header(MIN_POSITION, position),
            )
            .await
        else {
            return;
        };
        let items = page.items.len();
        self.recorder.items[Op::Worklist.index()] += items as u64;
        let limit = wasl_projections::query::DEFAULT_LIMIT as usize;
        if items < limit && !page.items.iter().any(|item| item.referral.id == referral) {
            self.recorder
                .fail(Op::Worklist, "the completed referral is not on the worklist".to_owned());
        }
        if stopped(&self.stop) {
            return;
        }
        let key = self.key();
        let followed: Option<CommandAnswer> = self
            .caller
            .call(
                &mut self.recorder,
                Op::FollowUp,
                self.caller
                    .post(&format!("/v1/referrals/{referral}/follow-up"))
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&json!({"client_reached": true, "service_received": "yes", "satisfaction": 5})),
            )
            .await;
        if followed.is_some() {
            self.recorder.referrals.followed_up += 1;
        }
    }
}

/// B's partner system: told of a new referral, reads its inbox, then receives, accepts, starts
/// and completes it.
struct Partner {
    index: usize,
    caller: Caller,
    shared: Arc<Shared>,
    inbox: Arc<Mutex<mpsc::Receiver<Work>>>,
    stop: watch::Receiver<bool>,
    recorder: Recorder,
    keys: u64,
}

impl Partner {
    fn key(&mut self) -> String {
        self.keys += 1;
        format!("{}-p{}-{}", self.shared.run, self.index, self.keys)
    }

    async fn run(mut self) -> Recorder {
        loop {
            if stopped(&self.stop) {
                break;
            }
            let inbox = self.inbox.clone();
            let work = match unless_stopped(&mut self.stop, async move { inbox.lock().await.recv().await }).await {
                Some(Some(work)) => work,
                _ => break,
            };
            let errors: u64 = self.recorder.errors.iter().sum();
            let completed_at = self.handle(&work).await;
            if completed_at.is_some() {
                self.recorder.referrals.completed += 1;
            }
            if let Some(owner) = self.shared.done.get(work.owner) {
                let _ = owner.send(Done {
                    referral: work.referral,
                    completed_at,
                });
            }
            self.shared.count_errors(&self.recorder, errors);
        }
        self.recorder
    }

    /// The referral's course at B; the position of its completion.
    async fn handle(&mut self, work: &Work) -> Option<u64> {
        let page: Page = self
            .caller
            .call(
                &mut self.recorder,
                Op::Inbox,
                self.caller.get("/v1/inbox").header(MIN_POSITION, work.position),
            )
            .await?;
        self.recorder.items[Op::Inbox.index()] += page.items.len() as u64;
        let mut position = work.position;
        for (op, verb) in [
            (Op::Receive, "receive"),
            (Op::Accept, "accept"),
            (Op::Start, "start"),
            (Op::Complete, "complete"),
        ] {
            if stopped(&self.stop) {
                return None;
            }
            let key = self.key();
            let answer: CommandAnswer = self
                .caller
                .call(
                    &mut self.recorder,
                    op,
                    self.caller
                        .post(&format!("/v1/referrals/{}/{verb}", work.referral))
                        .header(IDEMPOTENCY_KEY, key),
                )
                .await?;
            position = answer.position;
        }
        Some(position)
    }
}

/// The group a thread belongs to, by its name.
fn thread_group(name: &str) -> &'static str {
    if name.starts_with(LOAD_THREAD_NAME) {
        "load generator (HTTP clients)"
    } else if name.starts_with("sqlx-sqlite") {
        "SQLite (sqlx worker threads)"
    } else {
        "API, store, projector (tokio)"
    }
}

/// CPU seconds per thread group between two snapshots; threads new in `after` count from zero.
fn thread_groups(before: &ThreadCpu, after: &ThreadCpu) -> Vec<(&'static str, f64)> {
    let mut groups: Vec<(&'static str, f64)> = Vec::new();
    for (tid, (name, seconds)) in after {
        let used = seconds - before.get(tid).map_or(0.0, |(_, s)| *s);
        let group = thread_group(name);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, total)) => *total += used,
            None => groups.push((group, used)),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    groups
}

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

impl fmt::Display for ApiBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
        let kind = if s.temporary { "temporary" } else { "given" };
        writeln!(f, "Wasl API benchmark")?;
        writeln!(
            f,
            "  nats-server {} ({kind}, {}); API in this process on 127.0.0.1, HTTP/1.1 keep-alive",
            s.version, s.url
        )?;
        writeln!(f, "  read models: {}; projector in this process", self.database)?;
        let load = match (self.loops, self.duration_seconds) {
            (Some(n), _) => format!("{n} referrals per caseworker client"),
            (None, Some(seconds)) => format!("{seconds:.0} s"),
            (None, None) => String::new(),
        };
        writeln!(
            f,
            "  {} clients, one connection each: {} caseworkers of A (a token each), {} partner-system clients of B (one token); {load}",
            self.concurrency, self.caseworkers, self.partners
        )?;
        let r = &self.referrals;
        writeln!(
            f,
            "  load: {:.1} s; {} cases opened, {} referrals requested, {} completed, {} followed up; {} events appended",
            self.requests.seconds,
            thousands(r.cases as f64),
            thousands(r.requested as f64),
            thousands(r.completed as f64),
            thousands(r.followed_up as f64),
            thousands(self.events as f64)
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  {:<18} {:<38} {:>10} {:>10} {:>10} {:>7} {:>6}",
            "operation", "route", "req/s", "p50", "p99", "errors", "items"
        )?;
        for op in &self.operations {
            writeln!(
                f,
                "  {:<18} {:<38} {:>10} {:>10} {:>10} {:>7} {:>6}",
                op.name,
                op.route,
                thousands(op.requests.per_second),
                ms(op.requests.p50_ms),
                ms(op.requests.p99_ms),
                op.errors,
                op.mean_items.map_or_else(String::new, |m| format!("{m:.1}"))
            )?;
        }
        let total = |f: &mut fmt::Formatter<'_>, name: &str, t: &Throughput, errors: u64| {
            writeln!(
                f,
                "  {name:<57} {:>10} {:>10} {:>10} {:>7}",
                thousands(t.per_second),
                ms(t.p50_ms),
                ms(t.p99_ms),
                errors
            )
        };
        let command_errors: u64 = self.operations.iter().filter(|o| o.command).map(|o| o.errors).sum();
        let query_errors: u64 = self.operations.iter().filter(|o| !o.command).map(|o| o.errors).sum();
        total(f, "all commands (8 kinds)", &self.commands, command_errors)?;
        total(f, "all queries (2 kinds)", &self.queries, query_errors)?;
        total(f, "all requests", &self.requests, self.errors)?;
        writeln!(f)?;
        let b = &self.store.appends;
        writeln!(
            f,
            "  store, same run: EventStore::execute {} cmd/s (p50 {}, p99 {}; {} in flight, N = {})",
            thousands(b.per_second),
            ms(b.p50_ms),
            ms(b.p99_ms),
            self.store.in_flight,
            thousands(self.store.messages as f64)
        )?;
        writeln!(
            f,
            "  API commands / store commands: {} / {} = {:.2} (target ≥ {:.2}: {})",
            thousands(self.commands.per_second),
            thousands(self.store_commands_per_second),
            self.ratio,
            self.target_ratio,
            if self.passes { "PASS" } else { "BELOW" }
        )?;
        writeln!(f)?;
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        writeln!(
            f,
            "  CPU µs per request: bench process {} (of which {}), nats-server {}{}; cores busy {}",
            us(self.cpu.bench_us_per_request),
            self.cpu
                .threads
                .iter()
                .map(|t| format!("{} {:.0}", t.group, t.us_per_request))
                .collect::<Vec<_>>()
                .join(", "),
            us(self.cpu.server_us_per_request),
            self.cpu
                .postgres_us_per_request
                .map_or_else(String::new, |p| format!(", postgres {p:.0}")),
            self.cpu
                .cores_busy
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}"))
        )?;
        let per_tx = if self.projector_transactions > 0 {
            self.events as f64 / self.projector_transactions as f64
        } else {
            0.0
        };
        writeln!(
            f,
            "  projector: {} transactions during the load, {per_tx:.1} events each",
            thousands(self.projector_transactions as f64)
        )?;
        writeln!(
            f,
            "  peak RSS: bench {} (API phase), {} (store phase); nats-server {} (API phase), {} (store phase)",
            mib(self.peak_rss_bytes),
            mib(self.store.peak_rss_bytes),
            mib(self.server_peak_rss_bytes),
            mib(self.store.server_peak_rss_bytes)
        )?;
        if self.errors > 0 {
            writeln!(f)?;
            writeln!(f, "  !!! {} requests failed; the first:", self.errors)?;
            for sample in &self.error_samples {
                writeln!(f, "    {sample}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_eight_commands_and_two_queries() {
        assert_eq!(Op::ALL.iter().filter(|op| op.is_command()).count(), 8);
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPS);
        assert!(Op::Inbox.route().contains("Wasl-Min-Position"));
    }

    #[test]
    fn options_are_checked() {
        assert!(ApiBenchOptions::default().validate().is_ok());
        for bad in [
            ApiBenchOptions {
                concurrency: 1,
                ..Default::default()
            },
            ApiBenchOptions {
                loops: Some(0),
                ..Default::default()
            },
            ApiBenchOptions {
                duration: Duration::ZERO,
                ..Default::default()
            },
            ApiBenchOptions {
                postgres_url: Some("sqlite:x.db".to_owned()),
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(BenchError::Options(_))), "{bad:?}");
        }
        let by_loops = ApiBenchOptions {
            loops: Some(2),
            duration: Duration::ZERO,
            ..Default::default()
        };
        assert!(by_loops.validate().is_ok());
        assert_eq!(by_loops.store_options().in_flight, 64);
    }

    #[test]
    fn threads_are_grouped_by_name() {
        assert_eq!(thread_group("bench-load"), "load generator (HTTP clients)");
        assert_eq!(thread_group("sqlx-sqlite-wor"), "SQLite (sqlx worker threads)");
        assert_eq!(thread_group("tokio-runtime-w"), "API, store, projector (tokio)");
        let before = std::collections::HashMap::from([(1, ("bench-load".to_owned(), 1.0))]);
        let after = std::collections::HashMap::from([
            (1, ("bench-load".to_owned(), 3.0)),
            (2, ("bench-load".to_owned(), 0.5)),
            (3, ("wasl".to_owned(), 4.0)),
        ]);
        let groups = thread_groups(&before, &after);
        assert_eq!(groups[0], ("API, store, projector (tokio)", 4.0));
        assert_eq!(groups[1], ("load generator (HTTP clients)", 2.5));
    }

    #[test]
    fn a_recorder_counts_and_keeps_a_few_samples() {
        let mut a = Recorder::default();
        a.ok(Op::Inbox, Duration::from_millis(2));
        for _ in 0..(ERROR_SAMPLES + 3) {
            a.fail(Op::Accept, "422 urn:wasl:problem:refused".to_owned());
        }
        let mut total = Recorder::default();
        total.merge(a);
        assert_eq!(total.latencies[Op::Inbox.index()].len(), 1);
        assert_eq!(total.errors[Op::Accept.index()], (ERROR_SAMPLES + 3) as u64);
        assert_eq!(total.samples.len(), ERROR_SAMPLES);
        assert!(total.samples[0].starts_with("accept: 422"));
    }
}
