//! `wasl bench api`: the HTTP API under a realistic load, against the event store's command rate
//! measured in the same run. The benchmark itself lives in `wasl_bench::api`; this file parses
//! the options and prints the report.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

/// Options of `wasl bench api`.
#[derive(Debug, clap::Args)]
pub struct ApiBenchArgs {
    /// Clients sending requests at once, each on its own keep-alive connection: half are
    /// caseworkers of the referring organisation, half the receiving organisation's partner
    /// system. The store benchmark run first keeps as many commands in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long the load runs.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Instead of --duration: referrals each caseworker client makes and sees through to the
    /// follow-up; the load ends when all are done.
    #[arg(long, conflicts_with = "duration")]
    pub loops: Option<usize>,
    /// Commands of the store benchmark run first (`wasl bench store --messages`).
    #[arg(long, default_value_t = 20_000)]
    pub store_messages: usize,
    /// Referrals of the store benchmark run first (`wasl bench store --aggregates`).
    #[arg(long, default_value_t = 1_000)]
    pub store_aggregates: usize,
    /// Use this nats-server instead of starting temporary ones. It must hold no Wasl; the
    /// benchmark creates and deletes its streams (BENCH_RAW, WASL_BENCH, WASL_BENCH_API,
    /// KV_WASL_BENCH_API_KEYS, KV_WASL_SESSIONS, WASL_ACCOUNTS, WASL_AUDIT).
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Keep the read models in a scratch database on this PostgreSQL server (created and
    /// dropped by the benchmark) instead of a temporary SQLite file.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark on a fresh runtime and returns the report to print. Ctrl-C stops it; the
/// temporary servers, the SQLite file and the scratch database are removed all the same. If any
/// request failed, the report is printed and the command fails.
pub fn run(args: ApiBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::ApiBenchOptions {
        concurrency: args.concurrency,
        duration: args.duration,
        loops: args.loops,
        nats_url: args.nats_url,
        postgres_url: args.postgres_url,
        store_messages: args.store_messages,
        store_aggregates: args.store_aggregates,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench api: {line}");
    let report = runtime.block_on(wasl_bench::api::run(&options, &progress))?;
    let text = if args.json {
        report.to_json() + "\n"
    } else {
        report.to_string()
    };
    if report.errors > 0 {
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Err(format!("bench api: {} requests failed (see the report)", report.errors).into());
    }
    Ok(text)
}
