//! `wasl followup`: the follow-up service against external NATS and a database (production; `wasl
//! up` runs it too), and `wasl followup policy`, which prints the deadline policy in force.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use wasl_followup::{DeadlinePolicy, Followup, FollowupConfig, SystemClock};
use wasl_store::{EventStore, StoreConfig};

/// Options of `wasl followup`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct FollowupArgs {
    /// Print the policy instead of running the service.
    #[command(subcommand)]
    pub command: Option<FollowupCommand>,
    /// The NATS server holding Wasl's event log (or a comma-separated list of a cluster's nodes).
    #[arg(long, env = "WASL_NATS_URL", required = true)]
    pub nats_url: Option<String>,
    /// NKey seed file of Wasl's own services (hub.nk from `wasl nats-config`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// Replicas of the event log (3 in a cluster).
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// The database the service keeps its deadlines in (the read models' database):
    /// `postgres://user@host/db` or `sqlite:path/to/file.db`.
    #[arg(long, env = "WASL_DATABASE_URL", default_value = "sqlite:./data/wasl.db")]
    pub database_url: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// The master key file, to erase with `--retention-apply`.
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The master key's id.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    pub master_key_id: String,
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
}

/// Where the deadline policy comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// A JSON file with the deadline policy (see docs/followup.md); the defaults when omitted.
    #[arg(long = "policy", env = "WASL_FOLLOWUP_POLICY")]
    pub file: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy in force.
    pub fn load(&self) -> Result<DeadlinePolicy, Box<dyn Error>> {
        match &self.file {
            None => Ok(DeadlinePolicy::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the policy file {}: {e}", path.display()))?;
                Ok(DeadlinePolicy::from_json(&text)?)
            }
        }
    }
}

/// The retention policy the service runs daily.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Personal data of a case closed longer ago than this many days is due for erasure (the
    /// same policy as `wasl retention`); checked daily.
    #[arg(long, env = "WASL_RETENTION_DAYS", default_value_t = 730)]
    pub retention_days: u64,
    /// Erase what is due each day. Without it the daily run only reports what is due.
    #[arg(long, env = "WASL_RETENTION_APPLY")]
    pub retention_apply: bool,
}

impl RetentionArgs {
    /// The schedule, erasing with `vault` when `--retention-apply` is given.
    pub fn schedule(
        &self,
        vault: Option<wasl_vault::Vault<wasl_vault::LocalMasterKey>>,
    ) -> wasl_followup::RetentionSchedule {
        wasl_followup::RetentionSchedule {
            period: std::time::Duration::from_secs(self.retention_days.saturating_mul(24 * 3_600)),
            every: std::time::Duration::from_secs(24 * 3_600),
            apply: vault.filter(|_| self.retention_apply).map(Arc::new),
        }
    }
}

/// What else `wasl followup` does.
#[derive(Debug, clap::Subcommand)]
pub enum FollowupCommand {
    /// Print the deadline policy in force: per category and priority, the time to acknowledge,
    /// to decide and to record follow-up; when a referral is escalated and when it expires.
    Policy(PolicyArgs),
    /// Forget what the service derived from the log (its deadlines, outbox and checkpoint) so
    /// that it derives it again from the start: the repair after the log went backwards and was
    /// accepted as it is (docs/operations.md). Nothing is done twice: every command comes again
    /// under the same id. Safe while the service runs (also inside `wasl up`).
    Reset {
        /// The service's database.
        #[arg(long, env = "WASL_DATABASE_URL", default_value = "sqlite:./data/wasl.db")]
        database_url: String,
    },
}

/// Runs `wasl followup`; returns what to print.
pub fn run(args: FollowupArgs) -> Result<String, Box<dyn Error>> {
    match &args.command {
        Some(FollowupCommand::Policy(policy)) => return Ok(policy.load()?.table()),
        Some(FollowupCommand::Reset { database_url }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(wasl_followup::reset(database_url))?;
            return Ok("the follow-up service derives its deadlines again from the start of the log\n".to_owned());
        }
        None => {}
    }
    let policy = args.policy.load()?;
    let nats_url = args.nats_url.clone().ok_or("wasl followup needs --nats-url")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::patiently("the follow-up service", || {
            crate::connect::connect_with(&nats_url, args.nats_nkey.as_deref(), None)
        })
        .await?;
        let config = StoreConfig {
            replicas: args.replicas,
            ..StoreConfig::default()
        };
        let store = crate::connect::patiently("the follow-up service", || {
            EventStore::open_existing(client.clone(), config.clone())
        })
        .await?
        .ok_or("the NATS server holds no Wasl event log (stream WASL_EVENTS)")?;
        let vault = match (&args.master_key_file, args.retention.retention_apply) {
            (Some(file), true) => {
                let master = wasl_vault::LocalMasterKey::from_file(&args.master_key_id, file)?;
                let js = async_nats::jetstream::new(client.clone());
                Some(wasl_vault::Vault::connect(&js, master, &wasl_vault::VaultConfig::default()).await?)
            }
            (None, true) => return Err("--retention-apply needs --master-key-file".into()),
            _ => None,
        };
        let service = Followup::open(
            &args.database_url,
            Arc::new(store),
            Arc::new(SystemClock),
            FollowupConfig {
                policy,
                retention: Some(args.retention.schedule(vault)),
                ..FollowupConfig::default()
            },
        )
        .await?;
        let stop = crate::api::on_signal();
        if let Some(listen) = args.health.health_listen {
            let service = service.clone();
            let check: crate::health::Check = Arc::new(move || {
                let service = service.clone();
                Box::pin(async move { readiness(&service).await })
            });
            let bound = crate::health::serve(listen, check, stop.clone().cancelled_owned()).await?;
            eprintln!("wasl followup: /healthz and /readyz on http://{bound}");
        }
        eprintln!("wasl followup: following the event log and its deadlines; Ctrl-C stops it");
        let finished = service.run(stop.clone().cancelled_owned()).await;
        stop.cancel();
        finished?;
        let position = service.metrics().position.load(std::sync::atomic::Ordering::Relaxed);
        Ok(format!("stopped at sequence {position}\n"))
    })
}

/// The follow-up service's part of a readiness check: where it is and what waits; not ready
/// while it has stopped because the log went backwards.
pub(crate) async fn readiness(service: &Followup) -> Result<serde_json::Value, String> {
    let metrics = service.metrics();
    if let Some(why) = metrics.diverged() {
        return Err(why);
    }
    let pending = service.pending().await.map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "position": metrics.position.load(std::sync::atomic::Ordering::Relaxed),
        "deadlines": pending.deadlines,
        "outbox": pending.outbox,
        "parked": metrics.parked.load(std::sync::atomic::Ordering::Relaxed),
    }))
}
