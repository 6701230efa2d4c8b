//! `wasl demo-data` and `wasl up --demo`: the demo network (`wasl_demo`, docs/demo-data.md),
//! loaded through the real command path; running it again adds nothing.

use std::error::Error;
use std::path::PathBuf;
use wasl_api::auth::accounts::Accounts;
use wasl_demo::{DemoConfig, DemoParts, DemoReport};
use wasl_store::EventStore;
use wasl_vault::{LocalMasterKey, Vault};

/// Loads the demo data with the default seed and window, ending now (or where an earlier load
/// ended).
pub async fn load(
    store: &EventStore,
    vault: &Vault<LocalMasterKey>,
    accounts: &Accounts,
) -> Result<DemoReport, Box<dyn Error>> {
    let now = wasl_domain::time::Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis());
    let parts = DemoParts { store, vault, accounts };
    Ok(wasl_demo::load(parts, &DemoConfig::new(now)).await?)
}

/// Options of `wasl demo-data`.
#[derive(Debug, clap::Args)]
pub struct DemoDataArgs {
    /// The NATS server holding Wasl's event log, keys and accounts.
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// File holding the master key as 64 hex characters (the personal data is sealed with it).
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    pub master_key_file: PathBuf,
    /// The master key's id.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    pub master_key_id: String,
    /// Replicas of the streams created here: 1 for a single server, 3 in a cluster.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// Seed of the demo network; every later load must use the same.
    #[arg(long, default_value_t = DemoConfig::DEFAULT_SEED)]
    pub seed: u64,
    /// Days of history, ending now.
    #[arg(long, default_value_t = DemoConfig::DEFAULT_DAYS)]
    pub days: u32,
}

/// `wasl demo-data`.
pub fn demo_data(args: DemoDataArgs) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None).await?;
        let store = EventStore::open(
            client.clone(),
            wasl_store::StoreConfig {
                replicas: args.replicas,
                ..wasl_store::StoreConfig::default()
            },
        )
        .await?;
        let js = async_nats::jetstream::new(client);
        let master = LocalMasterKey::from_file(&args.master_key_id, &args.master_key_file)?;
        let vault = Vault::connect(
            &js,
            master,
            &wasl_vault::VaultConfig {
                replicas: args.replicas,
                ..wasl_vault::VaultConfig::default()
            },
        )
        .await?;
        let accounts = Accounts::open(js, args.replicas).await?;
        let now = wasl_domain::time::Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis());
        let config = DemoConfig {
            seed: args.seed,
            days: args.days,
            ..DemoConfig::new(now)
        };
        let report = wasl_demo::load(
            DemoParts {
                store: &store,
                vault: &vault,
                accounts: &accounts,
            },
            &config,
        )
        .await?;
        Ok(report.to_string())
    })
}
