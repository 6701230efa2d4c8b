//! `wasl bench projections`: the projector's full rebuild against the raw rates that bound it
//! (reading the log, inserting rows), on SQLite and PostgreSQL. The benchmark itself lives in
//! `wasl_bench::projections`; this file parses the options and prints the report.

use std::error::Error;

/// Options of `wasl bench projections`.
#[derive(Debug, clap::Args)]
pub struct ProjectionsBenchArgs {
    /// Events written into a fresh stream (N): a synthetic history of organisations, cases and
    /// referrals, cut at N.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Rows per transaction in the raw insert, events per batch (transaction) in the rebuild.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: usize,
    /// PostgreSQL server to measure; the benchmark creates two scratch databases on it and
    /// drops them at the end. If it cannot be reached, its rows are reported as not measured.
    #[arg(long, value_name = "URL", default_value = wasl_bench::projections::DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// Use this nats-server instead of starting one. It must not hold a Wasl event log; the
    /// benchmark creates and deletes the stream WASL_BENCH_PROJECTIONS.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Rows per INSERT statement in the raw insert (default: the whole batch, at most 30,000
    /// parameters per statement, as the projector writes).
    #[arg(long, value_name = "ROWS")]
    pub rows_per_statement: Option<usize>,
    /// Seed of the synthetic history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark on a fresh runtime and returns the report to print. Ctrl-C stops it; the
/// temporary nats-server, the SQLite files and the scratch databases are removed all the same.
pub fn run(args: ProjectionsBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::ProjectionsBenchOptions {
        events: args.events,
        batch_size: args.batch_size,
        postgres_url: args.postgres_url,
        nats_url: args.nats_url,
        rows_per_statement: args.rows_per_statement,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench projections: {line}");
    let report = runtime.block_on(wasl_bench::projections::run(&options, &progress))?;
    Ok(if args.json {
        report.to_json() + "\n"
    } else {
        report.to_string()
    })
}
