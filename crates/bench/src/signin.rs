//! `wasl bench signin`: the memory of many sign-ins at once. Every sign-in checks a password
//! with argon2 (19 MiB of memory per check); before the API capped and reused that memory, 64
//! concurrent sign-ins took a process from 286 to 1,484 MiB. The target (issue 18): 200
//! concurrent sign-ins keep the API's resident memory under 200 MiB.
//!
//! The API runs in this process (`Application::build`, as `wasl api` runs it, on a temporary
//! nats-server and a temporary SQLite file); `rounds` times, `concurrency` clients each open their
//! own connection and sign in at once, with the right password. The process's peak resident
//! size (`VmHWM`, reset before each round) is read after each round; it includes the clients'
//! connections (one shared HTTP client), so the number is an upper bound for the API.

use crate::error::BenchError;
use crate::probe::{peak_rss_bytes, reset_peak_rss};
use crate::server::start_or_connect;
use crate::table::Table;
use std::time::{Duration, Instant};
use wasl_api::{AppSettings, Application, CancellationToken};
use wasl_domain::Role;
use wasl_domain::ids::OrgId;
use wasl_vault::LocalMasterKey;

const MASTER_KEY: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
/// The synthetic users' password (never a real one).
const PASSWORD: &str = "bench-signin-password-0";
/// The target of issue 18.
pub const TARGET_BYTES: u64 = 200 * 1024 * 1024;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigninBenchOptions {
    /// Sign-ins sent at once in each round.
    pub concurrency: usize,
    /// Rounds, one after the other.
    pub rounds: usize,
    /// Distinct users signing in (spread over the clients; the per-name back-off does not come
    /// into it since every password is right).
    pub users: usize,
}

impl Default for SigninBenchOptions {
    fn default() -> Self {
        Self {
            concurrency: 200,
            rounds: 3,
            users: 50,
        }
    }
}

/// One round's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Peak resident size of the process during the round.
    pub peak_rss_bytes: Option<u64>,
    /// Sign-ins answered 200.
    pub signed_in: usize,
    /// Sign-ins answered 429 (waited their turn for a password check too long).
    pub throttled: usize,
    /// Any other answer or a failed request.
    pub other: usize,
    /// From the first request sent to the last answer.
    pub elapsed: Duration,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct SigninBenchReport {
    /// The options it ran with.
    pub options: SigninBenchOptions,
    /// Resident size once the API was built and its users created, before any sign-in.
    pub start_rss_bytes: Option<u64>,
    /// Each round.
    pub rounds: Vec<RoundReport>,
}

impl SigninBenchReport {
    /// The highest peak of any round.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.rounds.iter().filter_map(|r| r.peak_rss_bytes).max()
    }

    /// Whether every round stayed under [`TARGET_BYTES`] (`None`: not measurable here).
    pub fn within_target(&self) -> Option<bool> {
        self.peak_rss_bytes().map(|peak| peak < TARGET_BYTES)
    }

    /// The report as a table for a terminal.
    pub fn render(&self) -> String {
        let mib = |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.0} MiB", b as f64 / 1048576.0));
        let mut table = Table::new(["round", "peak RSS", "signed in", "429", "other", "time"]);
        table.row(["start", &mib(self.start_rss_bytes), "", "", "", ""]);
        for (i, round) in self.rounds.iter().enumerate() {
            table.row([
                (i + 1).to_string(),
                mib(round.peak_rss_bytes),
                round.signed_in.to_string(),
                round.throttled.to_string(),
                round.other.to_string(),
                format!("{:.1} s", round.elapsed.as_secs_f64()),
            ]);
        }
        let verdict = match self.within_target() {
            Some(true) => "under the 200 MiB target",
            Some(false) => "OVER the 200 MiB target",
            None => "peak RSS not measurable here",
        };
        format!(
            "wasl bench signin: {} concurrent sign-ins, {} rounds\n{table}peak {}: {verdict}\n",
            self.options.concurrency,
            self.options.rounds,
            mib(self.peak_rss_bytes())
        )
    }
}

fn api_error(what: &'static str) -> impl FnOnce(wasl_api::StartError) -> BenchError {
    move |e| BenchError::Api {
        what,
        answer: e.to_string(),
    }
}

/// Runs the benchmark; `progress` hears what is being done.
pub async fn run(
    options: &SigninBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SigninBenchReport, BenchError> {
    if options.concurrency == 0 || options.rounds == 0 || options.users == 0 {
        return Err(BenchError::Options(
            "--concurrency, --rounds and --users must be at least 1".to_owned(),
        ));
    }
    let server = start_or_connect(None, false, "signin: ", progress).await?;
    let dir = tempfile::Builder::new()
        .prefix("wasl-bench-signin-")
        .tempdir()
        .map_err(|source| BenchError::Io {
            what: "create a temporary directory",
            source,
        })?;
    let master = LocalMasterKey::from_hex("bench-signin", MASTER_KEY).map_err(BenchError::data("the master key"))?;
    let settings = AppSettings::new(format!("sqlite:{}", dir.path().join("models.db").display()), master);
    let app = Application::build(server.client.clone(), settings, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(api_error("build the API"))?;
    let org: OrgId = OrgId::from_uuid(uuid::Uuid::now_v7()).map_err(BenchError::data("an organisation id"))?;
    let mut names = Vec::with_capacity(options.users);
    for n in 0..options.users {
        let name = format!("bench-user-{n:04}");
        app.state()
            .accounts()
            .create_user(None, org, &name, &[Role::Caseworker], PASSWORD)
            .await
            .map_err(|e| BenchError::Api {
                what: "create a user",
                answer: e.to_string(),
            })?;
        names.push(name);
    }
    let base = format!("http://{}", app.address());
    let shutdown = CancellationToken::new();
    let api = tokio::spawn(app.run(shutdown.clone()));
    progress(&format!("signin: API on {base}, {} users", names.len()));
    let start_rss_bytes = current_rss_bytes();

    let mut rounds = Vec::with_capacity(options.rounds);
    for round in 0..options.rounds {
        let _ = reset_peak_rss();
        let began = Instant::now();
        // One client for all, keeping no idle connection: each sign-in opens its own
        // connection, and the clients' memory stays out of the number.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| BenchError::Http {
                what: "build the HTTP client",
                source,
            })?;
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..options.concurrency {
            let (http, base, name) = (http.clone(), base.clone(), names[client % names.len()].clone());
            tasks.spawn(async move { sign_in(&http, &base, &name).await });
        }
        let mut report = RoundReport {
            peak_rss_bytes: None,
            signed_in: 0,
            throttled: 0,
            other: 0,
            elapsed: Duration::ZERO,
        };
        while let Some(answer) = tasks.join_next().await {
            match answer.ok().flatten() {
                Some(200) => report.signed_in += 1,
                Some(429) => report.throttled += 1,
                _ => report.other += 1,
            }
        }
        report.elapsed = began.elapsed();
        report.peak_rss_bytes = peak_rss_bytes(None);
        progress(&format!(
            "signin: round {}: {} signed in, {} throttled, {} other",
            round + 1,
            report.signed_in,
            report.throttled,
            report.other
        ));
        rounds.push(report);
    }
    shutdown.cancel();
    let _ = api.await;
    drop(server);
    Ok(SigninBenchReport {
        options: options.clone(),
        start_rss_bytes,
        rounds,
    })
}

/// One sign-in: the status of `POST /v1/login`, `None` when the request failed.
async fn sign_in(client: &reqwest::Client, base: &str, name: &str) -> Option<u16> {
    let answer = client
        .post(format!("{base}/v1/login"))
        .json(&serde_json::json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    Some(answer.status().as_u16())
}

/// This process's resident size now (`VmRSS`).
fn current_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
