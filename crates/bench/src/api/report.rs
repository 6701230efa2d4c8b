//! What `wasl bench api` reports: the numbers of one run beside the store's, as JSON and as
//! the table a terminal shows.

use super::load::{OPS, Op, Recorder};
use super::{ApiBenchOptions, TARGET_RATIO};
use crate::probe::CpuUsed;
use crate::stats::Throughput;
use crate::store::{ServerReport, StoreBenchReport, mib, thousands};
use crate::table::Table;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

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
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ThreadGroupCpu {
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

/// What the API phase measured, before it is put beside the store's numbers.
pub(super) struct Measured {
    pub(super) database: String,
    pub(super) caseworkers: usize,
    pub(super) partners: usize,
    pub(super) recorder: Recorder,
    pub(super) elapsed: Duration,
    pub(super) cpu: CpuUsed,
    pub(super) postgres_seconds: Option<f64>,
    pub(super) threads: Vec<(&'static str, f64)>,
    pub(super) events: u64,
    pub(super) projector_transactions: u64,
    pub(super) peak_rss_bytes: Option<u64>,
}

impl Measured {
    pub(super) fn report(
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

pub(super) fn ms(value: f64) -> String {
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
        // The route is text: it stands beside the operation, left-aligned, in the first column.
        let mut table = Table::new([
            format!("{:<18} {}", "operation", "route").as_str(),
            "req/s",
            "p50",
            "p99",
            "errors",
            "items",
        ]);
        for op in &self.operations {
            table.row([
                format!("{:<18} {}", op.name, op.route),
                thousands(op.requests.per_second),
                ms(op.requests.p50_ms),
                ms(op.requests.p99_ms),
                op.errors.to_string(),
                op.mean_items.map_or_else(String::new, |m| format!("{m:.1}")),
            ]);
        }
        let total = |table: &mut Table, name: &str, t: &Throughput, errors: u64| {
            table.row([
                name.to_owned(),
                thousands(t.per_second),
                ms(t.p50_ms),
                ms(t.p99_ms),
                errors.to_string(),
            ]);
        };
        let command_errors: u64 = self.operations.iter().filter(|o| o.command).map(|o| o.errors).sum();
        let query_errors: u64 = self.operations.iter().filter(|o| !o.command).map(|o| o.errors).sum();
        total(&mut table, "all commands (8 kinds)", &self.commands, command_errors);
        total(&mut table, "all queries (2 kinds)", &self.queries, query_errors);
        total(&mut table, "all requests", &self.requests, self.errors);
        write!(f, "{table}")?;
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
