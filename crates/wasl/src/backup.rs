//! `wasl backup` and `wasl restore`: every Wasl stream to a directory of plain files, and back
//! into a NATS server that has none of them. The logic lives in `wasl_backup`
//! (docs/deploy.md, "Backup and restore").

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;
use wasl_backup::{BackupOptions, RestoreOptions};

/// How long to wait for one JetStream answer: a cluster's new stream elects its leader first.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `wasl backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The directory to write; it must not exist or be empty. It is made readable by its owner
    /// only: it holds sealed personal data and the sealed webhook signing secrets.
    pub dir: PathBuf,
    /// The NATS server holding Wasl's streams (or a comma-separated list of a cluster's nodes).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk` from `wasl nats-config`),
    /// when the server requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// Also back up the data keys (KV_WASL_KEYS). Only to survive the loss of the whole cluster:
    /// keep such a backup no longer than you promise erasure takes, encrypted, and never beside
    /// the master key.
    #[arg(long)]
    pub with_keys: bool,
}

/// Options of `wasl restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup directory (written by `wasl backup`).
    pub dir: PathBuf,
    /// The NATS server to restore into (or a comma-separated list of a cluster's nodes). It must
    /// have none of the backup's streams; stop Wasl's services first.
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// Replicas of every restored stream (1 for a single server, 3 in a cluster); the services
    /// check it against their own WASL_REPLICAS. Without it, each stream keeps the backup's.
    #[arg(long, env = "WASL_REPLICAS")]
    pub replicas: Option<usize>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn Error>> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn jetstream(
    url: &str,
    nkey: Option<&std::path::Path>,
) -> Result<async_nats::jetstream::Context, Box<dyn Error>> {
    let client = crate::connect::connect_with(url, nkey, None).await?;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(TIMEOUT);
    Ok(js)
}

/// `wasl backup`.
pub fn backup(args: BackupArgs) -> Result<String, Box<dyn Error>> {
    runtime()?.block_on(async {
        let js = jetstream(&args.nats_url, args.nats_nkey.as_deref()).await?;
        let options = BackupOptions {
            with_keys: args.with_keys,
        };
        tokio::select! {
            report = wasl_backup::backup(&js, &args.dir, &options) => Ok(report?.to_string()),
            // The backup is written beside the directory and renamed at the end: nothing is left.
            _ = tokio::signal::ctrl_c() => Err("interrupted; no backup was written".into()),
        }
    })
}

/// `wasl restore`.
pub fn restore(args: RestoreArgs) -> Result<String, Box<dyn Error>> {
    if args.replicas == Some(0) {
        return Err("--replicas must be at least 1".into());
    }
    runtime()?.block_on(async {
        let js = jetstream(&args.nats_url, args.nats_nkey.as_deref()).await?;
        let options = RestoreOptions {
            replicas: args.replicas,
        };
        let report = wasl_backup::restore(&js, &args.dir, &options).await?;
        Ok(report.to_string())
    })
}
