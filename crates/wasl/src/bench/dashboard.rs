//! `wasl bench dashboard`: the coordinators' dashboards over a national network's history (p50
//! and p99 of the headline and the indicator report, with and without filters, on SQLite and
//! PostgreSQL), and the dashboard projection's cost to the projector. The benchmark itself lives
//! in `wasl_bench::dashboard`; this file parses the options and prints the report.

use std::error::Error;

/// Options of `wasl bench dashboard`.
#[derive(Debug, clap::Args)]
pub struct DashboardBenchArgs {
    /// Referrals in the history the queries run over (three years of a national network).
    #[arg(long, default_value_t = 1_000_000)]
    pub referrals: usize,
    /// Events applied, with and without the dashboard projection, for its cost.
    #[arg(long, default_value_t = 200_000)]
    pub projector_events: usize,
    /// Runs of each query (after one unmeasured).
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
    /// Events per projector batch (transaction).
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: usize,
    /// PostgreSQL server for a scratch database (dropped at the end). If it cannot be reached,
    /// its rows are reported as not measured.
    #[arg(long, value_name = "URL", default_value = wasl_bench::projections::DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// Seed of the synthetic history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the benchmark on a fresh runtime and returns the report to print.
pub fn run(args: DashboardBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::DashboardBenchOptions {
        referrals: args.referrals,
        projector_events: args.projector_events,
        samples: args.samples,
        batch_size: args.batch_size,
        postgres_url: args.postgres_url,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench dashboard: {line}");
    let report = runtime.block_on(wasl_bench::dashboard::run(&options, &progress))?;
    Ok(report.to_string())
}
