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

mod load;
mod report;

pub use report::{ApiBenchReport, CpuReport, OperationReport, ReferralCounts, ThreadGroupCpu};

use crate::error::BenchError;
use crate::probe::{CpuMeter, peak_rss_bytes, postgres_cpu_seconds, reset_peak_rss, thread_cpu};
use crate::projections::{Scratch, is_local, postgres_admin, redact, stop_signal, with_database};
use crate::server::{RunServer, TempServer, start_or_connect};
use crate::store::{StoreBenchOptions, delete_stream_if_present, thousands};
use async_nats::jetstream;
use load::*;
use report::Measured;
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasl_api::{AppSettings, Application, CancellationToken};
use wasl_projections::{Projection, Projector, ProjectorConfig};
use wasl_store::StoreConfig;
use wasl_vault::{LocalMasterKey, VaultConfig};

/// The event stream of the API phase (on `wasl.evt.>`, like the real log).
pub const EVENT_STREAM: &str = "WASL_BENCH_API";
/// The vault's key bucket in the API phase.
pub const KEY_BUCKET: &str = "WASL_BENCH_API_KEYS";
/// The goal: the API carries out at least this fraction of the store's command rate.
pub const TARGET_RATIO: f64 = 0.5;
/// A master key for the benchmark's synthetic data only.
const MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

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
        let session_stream = format!("KV_{}", wasl_api::auth::session::BUCKET);
        for name in [
            EVENT_STREAM,
            key_stream.as_str(),
            session_stream.as_str(),
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
        let master = LocalMasterKey::from_hex("bench-1", MASTER_KEY).map_err(BenchError::data("the master key"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
