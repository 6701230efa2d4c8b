//! `wasl bench followup`: the follow-up service (`wasl followup`, run as its own process) with a
//! million open referrals, ten thousand of whose acknowledgement deadlines fall due in the same
//! minute.
//!
//! One nats-server, the benchmark in this process, the service in another (so that its memory is
//! its own), a SQLite database in a temporary directory:
//!
//! 1. **Load**: a network of `organisations` organisations, then cases with consent and
//!    `referrals - due` referrals requested in the two hours before the run (urgent and routine:
//!    their deadlines lie at least six hours ahead), written into the real event stream
//!    `WASL_EVENTS` (the service reads no other). Every event is decided by the domain's own
//!    `decide`, as the command handler would, and published with the store's headers
//!    ([`wasl_synth::Publisher`]).
//! 2. **First catch-up**: `wasl followup --database-url sqlite:…` starts on that log; the time
//!    until its `/readyz` reports the log's end gives its catch-up rate.
//! 3. **Deadlines**: `due` more emergency referrals are written, each requested so that its
//!    acknowledgement deadline (per the default [`DeadlinePolicy`]) falls `due_after` after this
//!    second load, spread evenly over `due_within`. The service follows the system clock, so the
//!    benchmark waits in real time. Every `response_overdue` and `escalated` event is read back
//!    from the log with the time JetStream stored it: the delay from the deadline to the stored
//!    event, p50, p99 and max. Each due referral must be marked overdue and escalated exactly
//!    once, and no other referral at all; anything else fails the run.
//! 4. **Restart**: SIGTERM, then a new process on the same database; the time until its
//!    `/readyz` answers 200 at the log's end is the takeover of every waiting deadline. The
//!    restart must append nothing.
//!
//! Targets (issue 16): deadline → overdue p99 under 5 s, the service's peak RSS (`VmHWM`) under
//! 200 MiB, the restart under 60 s. A missed target is reported (`BELOW`), never an error.

use crate::BenchError;
use crate::probe::{cpu_seconds, peak_rss_bytes};
use crate::projections::stop_signal;
use crate::server::start_or_connect;
use crate::stats::percentile;
use crate::store::{ServerReport, delete_stream_if_present, mib, thousands};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasl_domain::case::{Case, CaseCommand, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{Priority, ServiceCategory};
use wasl_domain::client::{
    Age, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, Sex, SurvivorCode,
};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, CommandId, ConsentId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{OverdueKind, Referral, ReferralCommand, ReferralEvent, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::{DomainEvent, EventMeta, StoredEvent};
use wasl_followup::DeadlinePolicy;
use wasl_store::{StoreConfig, StoredAggregate};
use wasl_synth::Publisher;

/// The deadline → overdue event p99 the service must stay under.
pub const TARGET_P99: Duration = Duration::from_secs(5);
/// The service's peak RSS must stay under this.
pub const TARGET_RSS_BYTES: u64 = 200 * 1024 * 1024;
/// A restart must be ready at the log's end within this.
pub const TARGET_RESTART: Duration = Duration::from_secs(60);
/// Services per organisation.
const SERVICES_PER_ORG: usize = 3;
/// Cases generated and published at a time.
const CASES_PER_CHUNK: usize = 5_000;
/// How often `/readyz` is asked during the first catch-up. Each answer counts the waiting
/// deadlines (`SELECT COUNT(*)`), which is not free with two million rows.
const CATCH_UP_POLL: Duration = Duration::from_secs(1);
/// How often `/readyz` is asked after the restart.
const RESTART_POLL: Duration = Duration::from_millis(50);
/// A service whose position does not move for this long has failed.
const STALL: Duration = Duration::from_secs(300);
/// How long the service may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long, after the last expected event, the log is watched for a second one.
const GRACE: Duration = Duration::from_secs(2);
const MINUTE_MS: i64 = 60_000;

/// Options of a run.
#[derive(Debug, Clone)]
pub struct FollowupBenchOptions {
    /// Open referrals in the log, each with an acknowledgement and a decision deadline.
    pub referrals: usize,
    /// Of those, how many have their acknowledgement deadline fall due during the run.
    pub due: usize,
    /// Referrals per case (each case opened with one consent covering them all).
    pub referrals_per_case: usize,
    /// Organisations in the network, each with three services; cases refer to the others.
    pub organisations: usize,
    /// From the end of the second load (the due referrals) to the first deadline.
    pub due_after: Duration,
    /// The deadlines are spread evenly over this window.
    pub due_within: Duration,
    /// How long after the last deadline the service may take to record them all before the
    /// run fails.
    pub overdue_timeout: Duration,
    /// A nats-server to use instead of a temporary one; it must not hold a Wasl event log.
    pub nats_url: Option<String>,
    /// Start the temporary nats-server with `sync_interval: always`, as production runs.
    pub sync_always: bool,
    /// The `wasl` binary whose `wasl followup` is measured; `None`: this process's executable
    /// when it is `wasl`, else a `wasl` next to it or one directory up (`target/<profile>/`
    /// for a test binary in `target/<profile>/deps/`).
    pub wasl_binary: Option<PathBuf>,
}

impl Default for FollowupBenchOptions {
    fn default() -> Self {
        Self {
            referrals: 1_000_000,
            due: 10_000,
            referrals_per_case: 2,
            organisations: 20,
            due_after: Duration::from_secs(120),
            due_within: Duration::from_secs(60),
            overdue_timeout: Duration::from_secs(900),
            nats_url: None,
            sync_always: false,
            wasl_binary: None,
        }
    }
}

impl FollowupBenchOptions {
    fn validate(&self) -> Result<(), BenchError> {
        if self.due == 0 || self.due > self.referrals {
            return Err(BenchError::Options(
                "--due must be at least 1 and at most --referrals".to_owned(),
            ));
        }
        if self.referrals_per_case == 0 || self.organisations < 2 || self.due_within.is_zero() {
            return Err(BenchError::Options(
                "--referrals-per-case must be at least 1, --organisations at least 2, --due-within above zero"
                    .to_owned(),
            ));
        }
        if self.sync_always && self.nats_url.is_some() {
            return Err(BenchError::Options(
                "--sync-always configures the temporary server; it cannot change one given with --nats-url".to_owned(),
            ));
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct FollowupBenchReport {
    /// The nats-server used.
    pub server: ServerReport,
    /// Organisations in the network.
    pub organisations: usize,
    /// Open referrals in the log.
    pub referrals: u64,
    /// Cases they belong to.
    pub cases: u64,
    /// Referrals whose acknowledgement deadline fell due during the run.
    pub due: u64,
    /// Writing the log.
    pub load: LoadReport,
    /// The service's first catch-up on the log.
    pub catch_up: CatchUpReport,
    /// The deadlines falling due.
    pub deadlines: DeadlinesReport,
    pub restart: RestartReport,
    /// Peak memory.
    pub memory: MemoryReport,
    /// Bytes of the service's SQLite database at the end (with its WAL).
    pub database_bytes: Option<u64>,
    /// Every due referral was marked overdue and escalated exactly once, no other referral at
    /// all, and the restart appended nothing.
    pub exactly_once: bool,
}

/// Writing the log.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Events of the first load (directory, cases, the referrals not due).
    pub events: u64,
    /// Its wall time.
    pub seconds: f64,
    /// Events published per second (generation by the domain included).
    pub events_per_second: f64,
    /// Events of the second load (the due referrals and their cases), after the catch-up.
    pub due_events: u64,
    /// Its wall time.
    pub due_seconds: f64,
}

/// The first catch-up.
#[derive(Debug, Clone, Serialize)]
pub struct CatchUpReport {
    /// Events in the log when the service started.
    pub events: u64,
    /// From starting the process to `/readyz` reporting the log's end.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
    /// From starting the process to its first 200 from `/readyz`.
    pub first_ready_seconds: f64,
    /// Deadlines waiting when it had caught up.
    pub deadlines: u64,
    /// CPU time of the service per event, in microseconds.
    pub service_cpu_us_per_event: Option<f64>,
    /// CPU time of the nats-server per event, in microseconds (temporary server only).
    pub server_cpu_us_per_event: Option<f64>,
}

/// The deadlines falling due.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlinesReport {
    /// Seconds from the end of the second load to the first deadline.
    pub first_due_after_load_seconds: f64,
    /// Seconds between the first and the last deadline.
    pub window_seconds: f64,
    /// The `response_overdue` events.
    pub overdue: Outcome,
    /// The `escalated` events that followed them.
    pub escalated: Outcome,
    /// Whether the overdue p99 stays under [`TARGET_P99`].
    pub pass: bool,
    /// CPU seconds the service used from the second load until the last event was stored.
    pub service_cpu_seconds: Option<f64>,
}

/// The events one kind of deadline action left in the log, against what was due.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Due referrals, each of which should have exactly one.
    pub expected: u64,
    /// Due referrals that have one.
    pub found: u64,
    /// Due referrals that have none.
    pub missing: u64,
    /// Events beyond the first for the same due referral.
    pub doubled: u64,
    /// Events for a referral that was not due, of another kind, or for another due time.
    pub unexpected: u64,
    /// From the deadline to the time JetStream stored the event, p50, in milliseconds.
    pub p50_ms: f64,
    /// The same, p99.
    pub p99_ms: f64,
    /// The same, largest.
    pub max_ms: f64,
}

impl Outcome {
    fn exactly_once(&self) -> bool {
        self.missing == 0 && self.doubled == 0 && self.unexpected == 0 && self.found == self.expected
    }
}

/// The restart.
#[derive(Debug, Clone, Serialize)]
pub struct RestartReport {
    /// From SIGTERM to the process's exit.
    pub stop_seconds: f64,
    /// From starting the new process to `/readyz` answering 200 at the log's end.
    pub takeover_seconds: f64,
    /// The log's last sequence it was ready at.
    pub position: u64,
    /// Deadlines waiting, as its `/readyz` reported them.
    pub deadlines: u64,
    /// Events appended to the log from the restart until the end of the run (should be none).
    pub appended: u64,
    /// Whether the takeover stays under [`TARGET_RESTART`].
    pub pass: bool,
}

/// Peak memory.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// `VmHWM` of the first service process (load, catch-up, the deadlines), in bytes.
    pub service_peak_rss_bytes: Option<u64>,
    /// `VmHWM` of the restarted process when it was stopped, in bytes.
    pub restarted_peak_rss_bytes: Option<u64>,
    /// `VmHWM` of the temporary nats-server.
    pub server_peak_rss_bytes: Option<u64>,
    /// `VmHWM` of this process (generating and checking).
    pub bench_peak_rss_bytes: Option<u64>,
    /// Whether the service's peak stays under [`TARGET_RSS_BYTES`].
    pub pass: bool,
}

impl FollowupBenchReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Runs the benchmark; `progress` receives one-line updates. Ctrl-C or SIGTERM stops it; the
/// service process, the temporary server and the database go in any case.
pub async fn run(
    options: &FollowupBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<FollowupBenchReport, BenchError> {
    options.validate()?;
    let wasl = match &options.wasl_binary {
        Some(path) => path.clone(),
        None => find_wasl()?,
    };
    let server = start_or_connect(options.nats_url.as_deref(), options.sync_always, "", progress).await?;
    let js = jetstream::new(server.client.clone());
    let store = StoreConfig::default();
    match wasl_store::provision::existing_stream(&js, &store).await {
        Ok(None) => {}
        Ok(Some(_)) | Err(wasl_store::StoreError::IncompatibleStream { .. }) => {
            return Err(BenchError::Options(format!(
                "the server already holds a stream {}: the follow-up benchmark writes its own event log and needs a \
                 server without one",
                store.stream
            )));
        }
        Err(other) => return Err(other.into()),
    }
    wasl_store::provision::ensure_stream(&js, &store).await.map_err(|e| {
        BenchError::JetStream(format!(
            "cannot create the stream {} on wasl.evt.> ({e}); the server must not hold a Wasl event log",
            store.stream
        ))
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("wasl-bench-followup-")
        .tempdir()
        .map_err(|e| BenchError::Database(format!("cannot create a temporary directory: {e}")))?;
    let bench = Bench {
        options,
        progress,
        wasl: &wasl,
        nats_url: &server.report.url,
        js: &js,
        store: &store,
        server_pid: server.temporary.as_ref().map(|s| s.pid()),
        dir: scratch.path(),
    };
    let outcome = tokio::select! {
        outcome = bench.measure(server.report.clone()) => outcome,
        () = stop_signal() => Err(BenchError::Interrupted),
    };
    // The service processes are gone by now (dropped with the measurement); a given server
    // keeps nothing of the run.
    if server.temporary.is_none() {
        delete_stream_if_present(&js, &store.stream).await?;
    }
    let mut report = outcome?;
    report.memory.server_peak_rss_bytes = server.temporary.as_ref().and_then(|s| peak_rss_bytes(Some(s.pid())));
    Ok(report)
}

/// The `wasl` binary next to this executable (see [`FollowupBenchOptions::wasl_binary`]).
pub fn find_wasl() -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe()
        .map_err(|e| BenchError::Options(format!("cannot tell where this executable is: {e}")))?;
    if exe.file_stem().is_some_and(|name| name == "wasl") {
        return Ok(exe);
    }
    let name = format!("wasl{}", std::env::consts::EXE_SUFFIX);
    let dir = exe.parent().unwrap_or(Path::new("."));
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            BenchError::Options(format!(
                "no wasl binary next to {} to run `wasl followup` with: build it (cargo build -p wasl)",
                exe.display()
            ))
        })
}

struct Bench<'a> {
    options: &'a FollowupBenchOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    wasl: &'a Path,
    nats_url: &'a str,
    js: &'a jetstream::Context,
    store: &'a StoreConfig,
    server_pid: Option<u32>,
    dir: &'a Path,
}

impl Bench<'_> {
    async fn measure(&self, server: ServerReport) -> Result<FollowupBenchReport, BenchError> {
        let options = self.options;
        let progress = self.progress;
        let policy = DeadlinePolicy::default();
        let start = now();
        let mut network = Network::new(options.organisations, start.plus_millis(-120 * MINUTE_MS))?;
        let mut publisher = Publisher::new(self.js, self.store).await.map_err(data_error)?;

        // 1. The first load: every referral that is not due, requested over the two hours
        //    before the run (from 120 to 65 minutes ago), urgent or routine.
        let far = options.referrals - options.due;
        let per_case = options.referrals_per_case;
        let far_cases = far.div_ceil(per_case);
        progress(&format!(
            "load: {} organisations, {} referrals not due in {} cases",
            options.organisations,
            thousands(far as f64),
            thousands(far_cases as f64)
        ));
        let began = Instant::now();
        publisher.publish(network.directory()?).await.map_err(data_error)?;
        let spread_ms = 55 * MINUTE_MS;
        let mut made = 0usize;
        let mut next_report = far_cases / 10;
        for first_case in (0..far_cases).step_by(CASES_PER_CHUNK) {
            let mut events = Vec::new();
            for case in first_case..(first_case + CASES_PER_CHUNK).min(far_cases) {
                let plans: Vec<Plan> = (0..per_case.min(far - made))
                    .map(|k| {
                        let n = (made + k) as i64;
                        Plan {
                            priority: if n % 3 == 0 {
                                Priority::Urgent
                            } else {
                                Priority::Routine
                            },
                            at: When::Occurred(start.plus_millis(-120 * MINUTE_MS + n * spread_ms / far.max(1) as i64)),
                        }
                    })
                    .collect();
                made += plans.len();
                network.case(case, &plans, &policy, &mut events)?;
            }
            publisher.publish(events).await.map_err(data_error)?;
            if first_case + CASES_PER_CHUNK >= next_report && next_report > 0 {
                progress(&format!(
                    "load: {} of {} referrals, {} events/s",
                    thousands(made as f64),
                    thousands(far as f64),
                    thousands(publisher.last_sequence() as f64 / began.elapsed().as_secs_f64())
                ));
                next_report += far_cases / 10;
            }
        }
        let loaded = publisher.last_sequence();
        let load_seconds = began.elapsed().as_secs_f64();
        progress(&format!(
            "load: {} events in {load_seconds:.1} s",
            thousands(loaded as f64)
        ));

        // 2. The service's first catch-up.
        let database_url = format!("sqlite:{}", self.dir.join("followup.db").display());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BenchError::Options(format!("an HTTP client: {e}")))?;
        progress(&format!("catch-up: starting {} followup", self.wasl.display()));
        let mut first = Service::start(self.wasl, self.nats_url, &database_url, self.dir.join("followup-1.log"))?;
        let server_cpu = self.server_pid.and_then(|pid| cpu_seconds(Some(pid)));
        let began = Instant::now();
        let caught_up = first
            .wait_until_at(&http, loaded, CATCH_UP_POLL, progress, "catch-up")
            .await?;
        let catch_up_seconds = began.elapsed().as_secs_f64();
        let service_cpu = cpu_seconds(Some(first.pid()));
        let server_cpu = self
            .server_pid
            .and_then(|pid| Some(cpu_seconds(Some(pid))? - server_cpu?));
        let per_event = |cpu: Option<f64>| cpu.filter(|_| loaded > 0).map(|s| s * 1e6 / loaded as f64);
        let catch_up = CatchUpReport {
            events: loaded,
            seconds: catch_up_seconds,
            events_per_second: loaded as f64 / catch_up_seconds,
            first_ready_seconds: caught_up.first_ready.as_secs_f64(),
            deadlines: caught_up.ready.deadlines,
            service_cpu_us_per_event: per_event(service_cpu),
            server_cpu_us_per_event: per_event(server_cpu),
        };
        progress(&format!(
            "catch-up: {} events in {catch_up_seconds:.1} s = {} events/s, {} deadlines waiting",
            thousands(loaded as f64),
            thousands(catch_up.events_per_second),
            thousands(catch_up.deadlines as f64)
        ));

        // 3. The due referrals: emergency, requested so that each acknowledgement deadline falls
        //    in the window; the log is read from here on.
        let collector = Collector::start(self.js, self.store, loaded + 1).await?;
        let due_cases = options.due.div_ceil(per_case);
        let first_due = now().plus_millis(millis(options.due_after));
        let window_ms = millis(options.due_within);
        let mut events = Vec::new();
        let mut expected: HashMap<ReferralId, i64> = HashMap::with_capacity(options.due);
        let mut planned = 0usize;
        for case in 0..due_cases {
            let plans: Vec<Plan> = (0..per_case.min(options.due - planned))
                .map(|k| {
                    let n = (planned + k) as i64;
                    let step = if options.due > 1 {
                        n * window_ms / (options.due as i64 - 1)
                    } else {
                        0
                    };
                    Plan {
                        priority: Priority::Emergency,
                        at: When::Due(first_due.plus_millis(step)),
                    }
                })
                .collect();
            planned += plans.len();
            for (referral, due) in network.case(far_cases + case, &plans, &policy, &mut events)? {
                expected.insert(referral, due);
            }
        }
        let due_events = events.len() as u64;
        let began = Instant::now();
        let service_cpu_before = cpu_seconds(Some(first.pid()));
        publisher.publish(events).await.map_err(data_error)?;
        let due_seconds = began.elapsed().as_secs_f64();
        let load_end = now();
        let last_due = first_due.plus_millis(window_ms);
        progress(&format!(
            "deadlines: {} due from {:.0} s to {:.0} s from now; waiting for them in real time",
            thousands(options.due as f64),
            (first_due.unix_millis() - load_end.unix_millis()) as f64 / 1e3,
            (last_due.unix_millis() - load_end.unix_millis()) as f64 / 1e3
        ));
        let give_up = last_due.plus_millis(millis(options.overdue_timeout));
        let mut next_report = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            first.check_running()?;
            collector.check_running()?;
            let (overdue, escalated) = collector.counts();
            if overdue >= options.due as u64 && escalated >= options.due as u64 {
                break;
            }
            if now() > give_up {
                progress(&format!(
                    "deadlines: giving up {:?} after the last deadline",
                    options.overdue_timeout
                ));
                break;
            }
            if Instant::now() >= next_report {
                progress(&format!(
                    "deadlines: {} overdue, {} escalated of {}",
                    thousands(overdue as f64),
                    thousands(escalated as f64),
                    thousands(options.due as f64)
                ));
                next_report = Instant::now() + Duration::from_secs(15);
            }
        }
        let service_cpu_seconds = cpu_seconds(Some(first.pid())).and_then(|after| Some(after - service_cpu_before?));
        // A second event for the same deadline would come right after the first.
        tokio::time::sleep(GRACE).await;

        // 4. The restart.
        let service_peak = peak_rss_bytes(Some(first.pid()));
        let log_end = stream_last_sequence(self.js, self.store).await?;
        progress(&format!(
            "restart: SIGTERM to the service at sequence {}",
            thousands(log_end as f64)
        ));
        let stop_seconds = first.terminate().await?.as_secs_f64();
        let mut second = Service::start(self.wasl, self.nats_url, &database_url, self.dir.join("followup-2.log"))?;
        let began = Instant::now();
        let taken_over = second
            .wait_until_at(&http, log_end, RESTART_POLL, progress, "restart")
            .await?;
        let takeover_seconds = began.elapsed().as_secs_f64();
        progress(&format!(
            "restart: ready at sequence {} with {} deadlines after {takeover_seconds:.2} s",
            thousands(taken_over.ready.position as f64),
            thousands(taken_over.ready.deadlines as f64)
        ));
        tokio::time::sleep(GRACE).await;
        second.check_running()?;
        let appended = stream_last_sequence(self.js, self.store).await?.saturating_sub(log_end);
        let restarted_peak = peak_rss_bytes(Some(second.pid()));
        second.terminate().await?;
        let seen = collector.finish();
        let database_bytes = ["followup.db", "followup.db-wal", "followup.db-shm"]
            .iter()
            .filter_map(|name| std::fs::metadata(self.dir.join(name)).ok().map(|m| m.len()))
            .reduce(|a, b| a + b);

        let (overdue, escalated) = seen.outcomes(&expected);
        let exactly_once = overdue.exactly_once() && escalated.exactly_once() && appended == 0;
        if !exactly_once {
            return Err(BenchError::Check(format!(
                "the due referrals were not each marked overdue and escalated exactly once: overdue {} of {} \
                 (missing {}, doubled {}, unexpected {}), escalated {} of {} (missing {}, doubled {}, unexpected {}); \
                 {appended} events appended by the restart",
                overdue.found,
                overdue.expected,
                overdue.missing,
                overdue.doubled,
                overdue.unexpected,
                escalated.found,
                escalated.expected,
                escalated.missing,
                escalated.doubled,
                escalated.unexpected
            )));
        }
        let pass = overdue.p99_ms < TARGET_P99.as_secs_f64() * 1e3;
        Ok(FollowupBenchReport {
            server,
            organisations: options.organisations,
            referrals: options.referrals as u64,
            cases: (far_cases + due_cases) as u64,
            due: options.due as u64,
            load: LoadReport {
                events: loaded,
                seconds: load_seconds,
                events_per_second: loaded as f64 / load_seconds,
                due_events,
                due_seconds,
            },
            catch_up,
            deadlines: DeadlinesReport {
                first_due_after_load_seconds: (first_due.unix_millis() - load_end.unix_millis()) as f64 / 1e3,
                window_seconds: window_ms as f64 / 1e3,
                overdue,
                escalated,
                pass,
                service_cpu_seconds,
            },
            restart: RestartReport {
                stop_seconds,
                takeover_seconds,
                position: taken_over.ready.position,
                deadlines: taken_over.ready.deadlines,
                appended,
                pass: takeover_seconds < TARGET_RESTART.as_secs_f64(),
            },
            memory: MemoryReport {
                service_peak_rss_bytes: service_peak,
                restarted_peak_rss_bytes: restarted_peak,
                server_peak_rss_bytes: None,
                bench_peak_rss_bytes: peak_rss_bytes(None),
                pass: service_peak.is_some_and(|b| b < TARGET_RSS_BYTES),
            },
            database_bytes,
            exactly_once,
        })
    }
}

// --- the history --------------------------------------------------------------------------

/// When a referral is requested.
#[derive(Debug, Clone, Copy)]
enum When {
    /// At this time.
    Occurred(Timestamp),
    /// So that its acknowledgement deadline falls at this time.
    Due(Timestamp),
}

/// One referral of a case.
#[derive(Debug, Clone, Copy)]
struct Plan {
    priority: Priority,
    at: When,
}

/// One organisation: its state as the domain built it, its services and a caseworker.
struct Org {
    id: OrgId,
    state: Organisation,
    services: Vec<(ServiceId, ServiceCategory)>,
    caseworker: Actor,
}

/// The synthetic network and the ids of the run.
struct Network {
    orgs: Vec<Org>,
    coordinator: Actor,
    at: Timestamp,
    ids: Ids,
}

impl Network {
    /// `count` organisations, registered at `at` by a coordinator.
    fn new(count: usize, at: Timestamp) -> Result<Self, BenchError> {
        let mut ids = Ids::new();
        let hub = ids.id(at, OrgId::from_uuid)?;
        let coordinator = Actor {
            user: ids.id(at, UserId::from_uuid)?,
            org: hub,
            roles: vec![Role::Coordinator],
        };
        let mut orgs = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ids.id(at, OrgId::from_uuid)?;
            orgs.push(Org {
                id,
                state: Organisation::default(),
                services: Vec::new(),
                caseworker: Actor {
                    user: ids.id(at, UserId::from_uuid)?,
                    org: id,
                    roles: vec![Role::Caseworker],
                },
            });
        }
        Ok(Self {
            orgs,
            coordinator,
            at,
            ids,
        })
    }

    /// The directory: every organisation registered with its services.
    fn directory(&mut self) -> Result<Vec<StoredEvent>, BenchError> {
        let mut out = Vec::new();
        let context = Context {
            now: self.at,
            actor: self.coordinator.clone(),
        };
        let arabic = Language::parse("ar").map_err(data_error)?;
        let categories = ServiceCategory::ALL;
        for (i, org) in self.orgs.iter_mut().enumerate() {
            let register = OrganisationCommand::Register {
                org_id: org.id,
                name: DisplayName::parse(&format!("Synthetic Partner {:02}", i + 1)).map_err(data_error)?,
                kind: OrgKind::NationalNgo,
            };
            record(&mut org.state, org.id, &register, &context, &mut self.ids, &mut out)?;
            for k in 0..SERVICES_PER_ORG {
                let category = categories[(i * SERVICES_PER_ORG + k) % categories.len()];
                let service_id = self.ids.id(self.at, ServiceId::from_uuid)?;
                let add = OrganisationCommand::AddService {
                    service_id,
                    spec: ServiceSpec {
                        name: DisplayName::parse(&format!("Synthetic service {:02}-{}", i + 1, k + 1))
                            .map_err(data_error)?,
                        category,
                        areas: vec![Location::governorate_only(Governorate::ALL[i % Governorate::ALL.len()])],
                        languages: vec![arabic.clone()],
                        eligibility: Eligibility::everyone(),
                    },
                };
                record(&mut org.state, org.id, &add, &context, &mut self.ids, &mut out)?;
                org.services.push((service_id, category));
            }
        }
        Ok(out)
    }

    /// Case number `n` of the run, opened with a consent to any referral, and its referrals as
    /// planned; returns each referral with its acknowledgement deadline (unix milliseconds).
    fn case(
        &mut self,
        n: usize,
        plans: &[Plan],
        policy: &DeadlinePolicy,
        out: &mut Vec<StoredEvent>,
    ) -> Result<Vec<(ReferralId, i64)>, BenchError> {
        let count = self.orgs.len();
        let owner = n % count;
        // Each referral to another organisation, to one of its services, in turn.
        let targets: Vec<(usize, ServiceId, ServiceCategory, Timestamp, Timestamp)> = plans
            .iter()
            .enumerate()
            .map(|(k, plan)| {
                let to = (owner + 1 + (n / count + k) % (count - 1)) % count;
                let services = &self.orgs[to].services;
                let (service, category) = services[(n + k) % services.len()];
                let acknowledge = policy.windows(category, plan.priority).acknowledge;
                let (at, due) = match plan.at {
                    When::Occurred(at) => (at, at.plus_millis(millis(acknowledge))),
                    When::Due(due) => (due.plus_millis(-millis(acknowledge)), due),
                };
                (to, service, category, at, due)
            })
            .collect();
        let Some(opened) = targets.iter().map(|t| t.3).min() else {
            return Ok(Vec::new());
        };
        let caseworker = self.orgs[owner].caseworker.clone();
        let case_id = self.ids.id(opened, CaseId::from_uuid)?;
        let mut case = Case::default();
        let context = |now: Timestamp| Context {
            now,
            actor: caseworker.clone(),
        };
        let open = CaseCommand::Open(OpenCase {
            case_id,
            caseworker: None,
            profile: profile(n, case_id)?,
            personal: PersonalData::default(),
        });
        record(&mut case, case_id, &open, &context(opened), &mut self.ids, out)?;
        let consent = CaseCommand::GiveConsent {
            consent_id: self.ids.id(opened, ConsentId::from_uuid)?,
            scope: ConsentScope {
                categories: Scope::Any,
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        record(&mut case, case_id, &consent, &context(opened), &mut self.ids, out)?;
        let mut made = Vec::with_capacity(plans.len());
        for ((to, service_id, _, at, due), plan) in targets.into_iter().zip(plans) {
            let referral_id = self.ids.id(at, ReferralId::from_uuid)?;
            let request = ReferralCommand::Request(Box::new(RequestReferral {
                referral_id,
                case: case.clone(),
                provider: self.orgs[to].state.clone(),
                service_id,
                priority: plan.priority,
                redirected_from: None,
                consent_override: None,
                notes: None,
            }));
            record(
                &mut Referral::default(),
                referral_id,
                &request,
                &context(at),
                &mut self.ids,
                out,
            )?;
            made.push((referral_id, due.unix_millis()));
        }
        Ok(made)
    }
}

/// A client profile of case `case` with the synthetic survivor code `SYN-<n>`, its identifying
/// facts sealed by stand-ins (nothing here opens them).
fn profile(n: usize, case: CaseId) -> Result<ClientProfile, BenchError> {
    let age = Age::years(18 + (n % 50) as u8).map_err(data_error)?;
    let profile = ClientProfile {
        sex: if n.is_multiple_of(2) { Sex::Female } else { Sex::Male },
        age_group: age.group(),
        population_group: PopulationGroup::Returnee,
        nationality: Nationality::parse("IQ").map_err(data_error)?,
        location: Location::governorate_only(Governorate::Ninawa),
        language: Language::parse("ar").map_err(data_error)?,
        identifying: Identifying::Clear(IdentifyingFacts {
            survivor_code: SurvivorCode::parse(&format!("SYN-{n:07}")).map_err(data_error)?,
            age_years: age.exact_years(),
            vulnerabilities: vec![],
        }),
    };
    Ok(wasl_synth::profile::with_stand_in_seals(
        &mut wasl_synth::Rng::new(n as u64),
        case,
        profile,
    ))
}

/// Decides `command` on `state` as the command handler would, applies the events to it and
/// appends them to `out` with the metadata the store gives them.
fn record<A: StoredAggregate>(
    state: &mut A,
    id: A::Id,
    command: &A::Command,
    context: &Context,
    ids: &mut Ids,
    out: &mut Vec<StoredEvent>,
) -> Result<(), BenchError> {
    let events = state
        .decide(command, context)
        .map_err(|e| BenchError::data(format!("the events of a {} command", A::command_name(command)))(e))?;
    let command_id = ids.id(context.now, CommandId::from_uuid)?;
    for (index, event) in events.into_iter().enumerate() {
        *state = std::mem::take(state).evolve(&event);
        out.push(StoredEvent {
            meta: EventMeta {
                event_id: wasl_store::event_id(command_id, context.now, index),
                command_id,
                occurred_at: context.now,
                actor: context.actor.clone(),
            },
            event: A::wrap(id, event),
        });
    }
    Ok(())
}

/// UUIDv7 ids carrying the time of what they name, unique to the run: a random part from the
/// run's start and the process id, and a counter.
struct Ids {
    nonce: [u8; 2],
    next: u64,
}

impl Ids {
    fn new() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mixed = since_epoch.subsec_nanos() ^ std::process::id().rotate_left(16);
        let [a, b, ..] = mixed.to_be_bytes();
        Self { nonce: [a, b], next: 1 }
    }

    fn id<T, E: Into<crate::error::BoxError>>(
        &mut self,
        at: Timestamp,
        make: impl FnOnce(uuid::Uuid) -> Result<T, E>,
    ) -> Result<T, BenchError> {
        let mut random = [0u8; 10];
        random[..2].copy_from_slice(&self.nonce);
        random[2..].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        let millis = u64::try_from(at.unix_millis()).unwrap_or(0);
        make(uuid_v7_from_parts(millis, random)).map_err(BenchError::data("an id"))
    }
}

// --- reading the log back -----------------------------------------------------------------

/// One overdue or escalation event as read back.
#[derive(Debug, Clone, Copy)]
struct Seen {
    kind: OverdueKind,
    /// The deadline the event names (overdues only).
    due_at: Option<i64>,
    /// When JetStream stored it, unix milliseconds.
    stored_ms: f64,
}

/// Every overdue and escalation in the log from where the collector started.
#[derive(Debug, Default)]
struct Found {
    overdue: HashMap<ReferralId, Vec<Seen>>,
    escalated: HashMap<ReferralId, Vec<Seen>>,
    overdue_count: u64,
    escalated_count: u64,
    error: Option<String>,
}

impl Found {
    /// Compares what was found with the due referrals and their deadlines.
    fn outcomes(&self, expected: &HashMap<ReferralId, i64>) -> (Outcome, Outcome) {
        let outcome = |found: &HashMap<ReferralId, Vec<Seen>>, is_overdue: bool| {
            let mut outcome = Outcome {
                expected: expected.len() as u64,
                ..Outcome::default()
            };
            let mut delays = Vec::with_capacity(expected.len());
            for (referral, events) in found {
                let Some(&due) = expected.get(referral) else {
                    outcome.unexpected += events.len() as u64;
                    continue;
                };
                let (right, wrong): (Vec<&Seen>, Vec<&Seen>) = events.iter().partition(|seen| {
                    seen.kind == OverdueKind::Acknowledgement && (!is_overdue || seen.due_at == Some(due))
                });
                outcome.unexpected += wrong.len() as u64;
                outcome.doubled += right.len().saturating_sub(1) as u64;
                if let Some(first) = right.first() {
                    outcome.found += 1;
                    delays.push(Duration::from_secs_f64((first.stored_ms - due as f64).max(0.0) / 1e3));
                }
            }
            outcome.missing = outcome.expected - outcome.found;
            delays.sort_unstable();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            outcome.p50_ms = ms(percentile(&delays, 50));
            outcome.p99_ms = ms(percentile(&delays, 99));
            outcome.max_ms = delays.last().copied().map(ms).unwrap_or(0.0);
            outcome
        };
        (outcome(&self.overdue, true), outcome(&self.escalated, false))
    }
}

/// Reads the log from a sequence on, keeping every overdue and escalation with the time it was
/// stored.
struct Collector {
    found: Arc<Mutex<Found>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start(js: &jetstream::Context, store: &StoreConfig, from: u64) -> Result<Self, BenchError> {
        let stream = js
            .get_stream(&store.stream)
            .await
            .map_err(|e| BenchError::JetStream(e.to_string()))?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: "wasl.evt.referral.>".to_owned(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
                ..Default::default()
            })
            .await
            .map_err(|e| BenchError::JetStream(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| BenchError::JetStream(e.to_string()))?;
        let found: Arc<Mutex<Found>> = Arc::default();
        let task = {
            let found = found.clone();
            tokio::spawn(async move {
                let fail = |why: String| found.lock().unwrap_or_else(|p| p.into_inner()).error = Some(why);
                while let Some(message) = messages.next().await {
                    let message = match message {
                        Ok(message) => message,
                        Err(e) => return fail(format!("reading the log back: {e}")),
                    };
                    let (sequence, stored_ms) = match message.info() {
                        Ok(info) => (info.stream_sequence, info.published.unix_timestamp_nanos() as f64 / 1e6),
                        Err(e) => return fail(format!("reading the log back: {e}")),
                    };
                    let event = match wasl_store::load::decode_message(
                        sequence,
                        &message.subject,
                        message.headers.as_ref(),
                        &message.payload,
                    ) {
                        Ok(event) => event,
                        Err(e) => return fail(format!("reading the log back: {e}")),
                    };
                    let DomainEvent::Referral(referral, event) = event.event else {
                        continue;
                    };
                    let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
                    match event {
                        ReferralEvent::ResponseOverdue { kind, due_at } => {
                            found.overdue_count += 1;
                            found.overdue.entry(referral).or_default().push(Seen {
                                kind,
                                due_at: Some(due_at.unix_millis()),
                                stored_ms,
                            });
                        }
                        ReferralEvent::FollowUpOverdue { due_at } => {
                            found.overdue_count += 1;
                            found.overdue.entry(referral).or_default().push(Seen {
                                kind: OverdueKind::FollowUp,
                                due_at: Some(due_at.unix_millis()),
                                stored_ms,
                            });
                        }
                        ReferralEvent::Escalated { kind } => {
                            found.escalated_count += 1;
                            found.escalated.entry(referral).or_default().push(Seen {
                                kind,
                                due_at: None,
                                stored_ms,
                            });
                        }
                        _ => {}
                    }
                }
            })
        };
        Ok(Self { found, task })
    }

    /// Overdue and escalation events read so far.
    fn counts(&self) -> (u64, u64) {
        let found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        (found.overdue_count, found.escalated_count)
    }

    fn check_running(&self) -> Result<(), BenchError> {
        let found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        match &found.error {
            Some(why) => Err(BenchError::JetStream(why.clone())),
            None => Ok(()),
        }
    }

    /// Stops reading; what was found.
    fn finish(self) -> Found {
        self.task.abort();
        std::mem::take(&mut *self.found.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn stream_last_sequence(js: &jetstream::Context, store: &StoreConfig) -> Result<u64, BenchError> {
    let mut stream = js
        .get_stream(&store.stream)
        .await
        .map_err(|e| BenchError::JetStream(e.to_string()))?;
    let info = stream.info().await.map_err(|e| BenchError::JetStream(e.to_string()))?;
    Ok(info.state.last_sequence)
}

// --- the service process ------------------------------------------------------------------

/// What `/readyz` of `wasl followup` reports.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
struct Ready {
    position: u64,
    deadlines: u64,
}

/// How a wait for the service went.
struct Reached {
    ready: Ready,
    /// From the wait's start to the first 200.
    first_ready: Duration,
}

/// `wasl followup` running as a child process; killed on `Drop` if still running.
struct Service {
    child: Child,
    health: SocketAddr,
    log: PathBuf,
}

impl Service {
    fn start(wasl: &Path, nats_url: &str, database_url: &str, log: PathBuf) -> Result<Self, BenchError> {
        let failed = |what: &str, e: std::io::Error| BenchError::Options(format!("{what}: {e}"));
        let health = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| failed("cannot find a free port for /readyz", e))?;
        let out = File::create(&log).map_err(|e| failed("cannot create the service's log", e))?;
        let err = out
            .try_clone()
            .map_err(|e| failed("cannot open the service's log", e))?;
        let child = Command::new(wasl)
            .arg("followup")
            .args([
                "--nats-url",
                nats_url,
                "--database-url",
                database_url,
                "--replicas",
                "1",
            ])
            .arg("--health-listen")
            .arg(health.to_string())
            // The default policy and no erasure, whatever this shell has set.
            .env_remove("WASL_FOLLOWUP_POLICY")
            .env_remove("WASL_RETENTION_APPLY")
            .env_remove("WASL_NATS_NKEY")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| failed(&format!("cannot run {} followup", wasl.display()), e))?;
        Ok(Self { child, health, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::Check(format!(
                "the follow-up service exited ({status}); its log ends with:\n{}",
                wasl_nats_server::log_tail(&self.log)
            ))),
            Err(e) => Err(BenchError::Check(format!("cannot watch the follow-up service: {e}"))),
        }
    }

    /// `/readyz` when it answers 200.
    async fn ready(&self, http: &reqwest::Client) -> Option<Ready> {
        let answer = http.get(format!("http://{}/readyz", self.health)).send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.json::<Ready>().await.ok()
    }

    /// Asks `/readyz` every `poll` until it answers 200 with its position at `sequence` or
    /// beyond; fails when the process exits or its position stops moving for [`STALL`].
    async fn wait_until_at(
        &mut self,
        http: &reqwest::Client,
        sequence: u64,
        poll: Duration,
        progress: &(dyn Fn(&str) + Sync),
        label: &str,
    ) -> Result<Reached, BenchError> {
        let began = Instant::now();
        let mut first_ready = None;
        let (mut position, mut moved) = (0, Instant::now());
        let mut next_report = Instant::now() + Duration::from_secs(10);
        loop {
            self.check_running()?;
            if let Some(ready) = self.ready(http).await {
                first_ready.get_or_insert_with(|| began.elapsed());
                if ready.position >= sequence {
                    return Ok(Reached {
                        ready,
                        first_ready: first_ready.unwrap_or_default(),
                    });
                }
                if ready.position != position {
                    (position, moved) = (ready.position, Instant::now());
                }
            }
            if moved.elapsed() > STALL {
                return Err(BenchError::Check(format!(
                    "the follow-up service stayed at sequence {position} of {sequence} for {STALL:?}; its log ends \
                     with:\n{}",
                    wasl_nats_server::log_tail(&self.log)
                )));
            }
            if Instant::now() >= next_report {
                progress(&format!(
                    "{label}: sequence {} of {} after {:.0} s",
                    thousands(position as f64),
                    thousands(sequence as f64),
                    began.elapsed().as_secs_f64()
                ));
                next_report += Duration::from_secs(10);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// SIGTERM, then waits for the exit; how long it took.
    async fn terminate(&mut self) -> Result<Duration, BenchError> {
        let began = Instant::now();
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .map_err(|e| BenchError::Check(format!("cannot send SIGTERM to the follow-up service: {e}")))?;
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(began.elapsed()),
                Ok(None) if began.elapsed() > STOP_TIMEOUT => {
                    return Err(BenchError::Check(format!(
                        "the follow-up service did not stop within {STOP_TIMEOUT:?} of SIGTERM"
                    )));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => return Err(BenchError::Check(format!("cannot watch the follow-up service: {e}"))),
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    Timestamp::from_unix_millis(millis)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn data_error<E: Into<crate::error::BoxError>>(e: E) -> BenchError {
    BenchError::data("the synthetic events")(e)
}

impl fmt::Display for FollowupBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = |pass: bool| if pass { "PASS" } else { "BELOW" };
        let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
        let s = &self.server;
        writeln!(f, "Wasl follow-up benchmark")?;
        writeln!(
            f,
            "  nats-server {} ({}, {}{}); wasl followup in its own process, SQLite",
            s.version,
            if s.temporary { "temporary" } else { "given" },
            s.url,
            match s.sync_always {
                Some(true) => ", sync_interval: always",
                Some(false) => ", sync_interval: default (2 min)",
                None => "",
            }
        )?;
        writeln!(
            f,
            "  {} open referrals in {} cases of {} organisations; {} of them due within {:.0} s, from {:.0} s after \
             the last load",
            thousands(self.referrals as f64),
            thousands(self.cases as f64),
            self.organisations,
            thousands(self.due as f64),
            self.deadlines.window_seconds,
            self.deadlines.first_due_after_load_seconds
        )?;
        writeln!(f)?;
        let l = &self.load;
        writeln!(
            f,
            "  load: {} events in {:.1} s = {} events/s; then {} events of due referrals in {:.1} s",
            thousands(l.events as f64),
            l.seconds,
            thousands(l.events_per_second),
            thousands(l.due_events as f64),
            l.due_seconds
        )?;
        let c = &self.catch_up;
        writeln!(
            f,
            "  first catch-up: {} events in {:.1} s = {} events/s (first /readyz 200 after {:.2} s); {} deadlines \
             waiting",
            thousands(c.events as f64),
            c.seconds,
            thousands(c.events_per_second),
            c.first_ready_seconds,
            thousands(c.deadlines as f64)
        )?;
        writeln!(
            f,
            "    CPU µs per event: service {}, nats-server {}",
            us(c.service_cpu_us_per_event),
            us(c.server_cpu_us_per_event)
        )?;
        let d = &self.deadlines;
        for (label, o) in [("overdue", &d.overdue), ("escalated", &d.escalated)] {
            writeln!(
                f,
                "  deadline → {label:<9} event stored: p50 {:>9.1} ms, p99 {:>9.1} ms, max {:>9.1} ms; {} of {} \
                 exactly once",
                o.p50_ms,
                o.p99_ms,
                o.max_ms,
                thousands(o.found as f64),
                thousands(o.expected as f64)
            )?;
        }
        writeln!(
            f,
            "    target overdue p99 < {} s: {}; service CPU during the deadlines {}",
            TARGET_P99.as_secs(),
            verdict(d.pass),
            d.service_cpu_seconds.map_or("–".to_owned(), |s| format!("{s:.1} s"))
        )?;
        let m = &self.memory;
        writeln!(
            f,
            "  peak RSS: service {} (target < {}: {}); restarted service {}; nats-server {}; bench {}",
            mib(m.service_peak_rss_bytes),
            mib(Some(TARGET_RSS_BYTES)),
            verdict(m.pass),
            mib(m.restarted_peak_rss_bytes),
            mib(m.server_peak_rss_bytes),
            mib(m.bench_peak_rss_bytes)
        )?;
        let r = &self.restart;
        writeln!(
            f,
            "  restart: SIGTERM → exit {:.2} s; start → /readyz 200 at sequence {} with {} deadlines {:.2} s \
             (target < {} s: {})",
            r.stop_seconds,
            thousands(r.position as f64),
            thousands(r.deadlines as f64),
            r.takeover_seconds,
            TARGET_RESTART.as_secs(),
            verdict(r.pass)
        )?;
        writeln!(
            f,
            "  events appended by the restart: {}; database {}",
            r.appended,
            mib(self.database_bytes)
        )?;
        writeln!(
            f,
            "  every due referral overdue and escalated exactly once, no other: {}",
            if self.exactly_once { "yes" } else { "NO" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let ok = FollowupBenchOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            FollowupBenchOptions { due: 0, ..ok.clone() },
            FollowupBenchOptions {
                due: ok.referrals + 1,
                ..ok.clone()
            },
            FollowupBenchOptions {
                organisations: 1,
                ..ok.clone()
            },
            FollowupBenchOptions {
                sync_always: true,
                nats_url: Some("nats://127.0.0.1:1".to_owned()),
                ..ok.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(BenchError::Options(_))), "{bad:?}");
        }
    }

    #[test]
    fn every_planned_referral_is_decided_by_the_domain_with_the_deadline_asked_for() {
        let policy = DeadlinePolicy::default();
        let at = Timestamp::from_unix_millis(1_800_000_000_000);
        let mut network = Network::new(3, at).expect("network");
        let directory = network.directory().expect("directory");
        assert_eq!(directory.len(), 3 * (1 + SERVICES_PER_ORG));
        let due = at.plus_millis(3 * MINUTE_MS);
        let plans = [
            Plan {
                priority: Priority::Emergency,
                at: When::Due(due),
            },
            Plan {
                priority: Priority::Routine,
                at: When::Occurred(at),
            },
        ];
        let mut events = Vec::new();
        let made = network.case(7, &plans, &policy, &mut events).expect("case");
        // open, consent, two requests
        assert_eq!(events.len(), 4);
        assert_eq!(made.len(), 2);
        assert_eq!(made[0].1, due.unix_millis());
        assert!(made[1].1 >= at.plus_millis(48 * 60 * MINUTE_MS).unix_millis());
        let requested_at = events[2].meta.occurred_at;
        assert_eq!(
            requested_at,
            due.plus_millis(-60 * MINUTE_MS),
            "an emergency is acknowledged within an hour"
        );
        assert!(
            events[0].meta.occurred_at <= requested_at,
            "the case is opened before its referrals"
        );
    }
}
