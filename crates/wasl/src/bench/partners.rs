//! `wasl bench partners`: the router's lag from append to partner message under a steady load
//! of referral events addressed to many organisations, and its catch-up rate. The benchmark
//! lives in `wasl_bench::partners`; this file parses the options and prints the report.

use std::error::Error;
use std::time::Duration;

/// Options of `wasl bench partners`.
#[derive(Debug, clap::Args)]
pub struct PartnersBenchArgs {
    /// Organisations in the synthetic network, each with its own feed `WASL_OUT_<org>`.
    #[arg(long, default_value_t = 100)]
    pub organisations: usize,
    /// Referral events appended per second in the paced phase.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// How long the paced phase lasts (e.g. 20s, 1m).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Referral events appended while the router is stopped, to measure how fast it catches up.
    #[arg(long, default_value_t = 50_000)]
    pub backlog: usize,
    /// Use this nats-server instead of starting one. It must not hold a Wasl event log; the
    /// benchmark creates and deletes the stream WASL_BENCH_PARTNERS, the bucket
    /// WASL_BENCH_ROUTER and the WASL_OUT_<org> feeds of its own organisations, nothing else.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Seed of the synthetic history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start the temporary nats-server with `sync_interval: always` (fsync before every
    /// acknowledgement), as production runs.
    #[arg(long, conflicts_with = "nats_url")]
    pub sync_always: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark on a fresh runtime; a p99 lag over the target is reported, not an error.
pub fn run(args: PartnersBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::PartnersBenchOptions {
        organisations: args.organisations,
        rate: args.rate,
        duration: args.duration,
        backlog: args.backlog,
        nats_url: args.nats_url,
        seed: args.seed,
        sync_always: args.sync_always,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench partners: {line}");
    let report = runtime.block_on(wasl_bench::partners::run(&options, &progress))?;
    Ok(if args.json {
        report.to_json() + "\n"
    } else {
        report.to_string()
    })
}
