//! `wasl bench signin`: the API's memory under many concurrent sign-ins. The benchmark lives in
//! `wasl_bench::signin`; this file parses the options and prints the report.

use std::error::Error;

#[derive(Debug, clap::Args)]
pub struct SigninBenchArgs {
    /// Sign-ins sent at once in each round, each on its own connection.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Rounds, one after the other.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Distinct users signing in.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
}

pub fn run(args: SigninBenchArgs) -> Result<String, Box<dyn Error>> {
    let options = wasl_bench::signin::SigninBenchOptions {
        concurrency: args.concurrency,
        rounds: args.rounds,
        users: args.users,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |line: &str| eprintln!("wasl bench {line}");
    let report = runtime.block_on(wasl_bench::signin::run(&options, &progress))?;
    Ok(report.render())
}
