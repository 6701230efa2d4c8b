//! `wasl bench followup`: the follow-up service, as its own process, with a million open
//! referrals and ten thousand deadlines falling due in the same minute — its memory, the delay
//! from a deadline to its overdue event, and how long a restart takes to take over. The
//! benchmark lives in `wasl_bench::followup`; this file parses the options and prints the report.

use std::error::Error;
use std::time::Duration;

/// Options of `wasl bench followup`.
#[derive(Debug, clap::Args)]
pub struct FollowupBenchArgs {
    /// Open referrals in the event log, each with an acknowledgement and a decision deadline.
    #[arg(long, default_value_t = 1_000_000)]
    pub referrals: usize,
    /// Of those, referrals whose acknowledgement deadline falls due during the run (emergency
    /// referrals, written after the service has caught up on the others).
    #[arg(long, default_value_t = 10_000)]
    pub due: usize,
    /// Referrals per case; each case is opened with one consent that covers them all.
    #[arg(long, default_value_t = 2)]
    pub referrals_per_case: usize,
    /// Organisations in the synthetic network, each with three services.
    #[arg(long, default_value_t = 20)]
    pub organisations: usize,
    /// From writing the due referrals to their first deadline (e.g. 2m). The service follows
    /// the system clock, so the benchmark waits this long in real time.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub due_after: Duration,
    /// The deadlines are spread evenly over this window (e.g. 1m).
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub due_within: Duration,
    /// How long after the last deadline the service may take to record every overdue and
    /// escalation before the run fails.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub overdue_timeout: Duration,
    /// Use this nats-server instead of starting one. It must hold no Wasl event log: the
    /// benchmark creates the stream WASL_EVENTS (the one `wasl followup` reads) and deletes it
    /// at the end.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Start the temporary nats-server with `sync_interval: always` (fsync before every
    /// acknowledgement), as production runs.
    #[arg(long, conflicts_with = "nats_url")]
    pub sync_always: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark on a fresh runtime, with this executable's `wasl followup` as the service;
/// a missed target is reported, not an error; a missing or doubled overdue is.
pub fn run(args: FollowupBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::FollowupBenchOptions {
        referrals: args.referrals,
        due: args.due,
        referrals_per_case: args.referrals_per_case,
        organisations: args.organisations,
        due_after: args.due_after,
        due_within: args.due_within,
        overdue_timeout: args.overdue_timeout,
        nats_url: args.nats_url,
        sync_always: args.sync_always,
        wasl_binary: Some(std::env::current_exe()?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench followup: {line}");
    let report = runtime.block_on(wasl_bench::followup::run(&options, &progress))?;
    Ok(if args.json {
        report.to_json() + "\n"
    } else {
        report.to_string()
    })
}
