//! `wasl bench`: measures Wasl against a real nats-server and the databases (see
//! docs/performance.md). Each benchmark lives in `wasl_bench`; these files parse the options
//! and print the reports. Built only with the `bench` feature.

mod api;
mod dashboard;
mod followup;
mod partners;
mod projections;
mod signin;

use clap::Subcommand;
use std::error::Error;

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// The event store: raw JetStream publishing vs `EventStore::execute` with the same
    /// concurrency, and loading by direct gets vs an ordered consumer. Starts its own temporary
    /// nats-server unless given --nats-url.
    Store(StoreBenchArgs),
    /// The projector: raw log read rate, raw batched insert rate and full rebuild rate on
    /// SQLite and PostgreSQL.
    Projections(projections::ProjectionsBenchArgs),
    /// The coordinators' dashboards over a national network's history: p50/p99 of the
    /// headline and the indicator report on SQLite and PostgreSQL, and what the dashboard
    /// projection costs the projector.
    Dashboard(dashboard::DashboardBenchArgs),
    /// The HTTP API under a realistic load of caseworker and partner-system clients, against
    /// the store's command rate measured in the same run.
    Api(api::ApiBenchArgs),
    /// The router: lag from append to partner message at a steady rate of referral events
    /// addressed to 100 organisations, and how fast it catches up on a backlog.
    Partners(partners::PartnersBenchArgs),
    /// The follow-up service as its own process on a million open referrals: catch-up rate,
    /// memory, the delay from ten thousand deadlines falling due at once to their overdue
    /// events, and how long a restart takes.
    Followup(followup::FollowupBenchArgs),
    /// The API's resident memory while many users sign in at once (argon2 takes 19 MiB per
    /// password check): against the 200 MiB target for 200 concurrent sign-ins.
    Signin(signin::SigninBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct StoreBenchArgs {
    /// Messages published raw, and commands sent through the store (N).
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Referrals commanded and loaded; also the number of subjects of the raw stream.
    #[arg(long, default_value_t = 1_000)]
    aggregates: usize,
    /// Publishes, commands or loads outstanding at a time (at most --aggregates: never two
    /// commands on one aggregate at once).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Start the temporary nats-server with `sync_interval: always` (fsync before every ack).
    #[arg(long, conflicts_with = "nats_url")]
    sync_always: bool,
    /// Use this nats-server instead of starting one. It must not hold a Wasl event log; the
    /// benchmark creates and deletes the streams BENCH_RAW and WASL_BENCH.
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs one benchmark and returns its report.
pub fn run(what: BenchTarget) -> Result<String, Box<dyn Error>> {
    match what {
        BenchTarget::Store(args) => store(args),
        BenchTarget::Projections(args) => projections::run(args),
        BenchTarget::Api(args) => api::run(args),
        BenchTarget::Dashboard(args) => dashboard::run(args),
        BenchTarget::Partners(args) => partners::run(args),
        BenchTarget::Followup(args) => followup::run(args),
        BenchTarget::Signin(args) => signin::run(args),
    }
}

/// Runs the store benchmark on a fresh runtime and returns the report to print. Ctrl-C stops
/// it, and with it the temporary nats-server.
fn store(args: StoreBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::StoreBenchOptions {
        messages: args.messages,
        aggregates: args.aggregates,
        in_flight: args.in_flight,
        sync_always: args.sync_always,
        nats_url: args.nats_url,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench store: {line}");
    let report = runtime.block_on(async {
        tokio::select! {
            report = wasl_bench::store::run(&options, &progress) => report.map_err(Box::<dyn Error>::from),
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    })?;
    Ok(if args.json {
        report.to_json() + "\n"
    } else {
        report.to_string()
    })
}
