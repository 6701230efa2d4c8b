//! `wasl up`: every service in one process — the HTTP API, the projector, the router with the
//! partner command service and webhook delivery, the follow-up service — beside a supervised local nats-server (the
//! pinned binary, JetStream store under `<data>/nats`, loopback only, every write fsynced before
//! it is acknowledged, restarted if it dies, stopped cleanly on exit, and never outliving
//! `wasl up`; see [`wasl_nats_server`]) and the SQLite read models in `<data>/wasl.db`. The data
//! directory is locked (`<data>/wasl.lock`) for as long as `wasl up` or its server runs, so a
//! second `wasl up` on it is refused. The master key is created once in `<data>/master.key`, and
//! the NKey seed of its services in `<data>/nats.nk`: the server refuses every other client.
//! The data directory is owner-only (0700) and its files 0600.
//! Ctrl-C stops the services first, then NATS: what was acknowledged stays.
//!
//! A service that comes later joins by adding one entry to [`services`].

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use wasl_api::CancellationToken;
use wasl_projections::{Projection, ProjectorConfig, ReadModels, ReadModelsConfig};
use wasl_store::{EventStore, StoreConfig};

/// Options of `wasl up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Load the demo data first (a synthetic network and 90 days of referrals); running it again
    /// adds nothing.
    #[arg(long)]
    pub demo: bool,
    /// Where Wasl keeps its data: the NATS store, the read models, the master key.
    #[arg(long, env = "WASL_DATA_DIR", default_value = "./data")]
    pub data: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "WASL_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address to serve the API's Prometheus `/metrics` on (the API's own address answers 404
    /// there); none serves no metrics. Keep it on loopback.
    #[arg(long, env = "WASL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Start although the access audit went backwards since the API last saw it (the NATS
    /// store deleted or restored from a backup while wasl.db stayed): logged as an error, and
    /// the audit is trusted from its current head on. Run `wasl audit verify` first.
    #[arg(long, env = "WASL_ACCEPT_AUDIT_RESET")]
    pub accept_audit_reset: bool,
    /// Port of the local nats-server, on 127.0.0.1 only (not 4222, which another NATS may hold).
    #[arg(long, env = "WASL_UP_NATS_PORT", default_value_t = 4333)]
    pub nats_port: u16,
    #[command(flatten)]
    pub policy: crate::followup::PolicyArgs,
    #[command(flatten)]
    pub retention: crate::followup::RetentionArgs,
    #[command(flatten)]
    pub mail: crate::notify::MailArgs,
    #[command(flatten)]
    pub webhook_allow: crate::webhooks::AllowNetArgs,
    /// UNSAFE, for a throw-away demo only: let NATS acknowledge writes before they reach the
    /// disk. A power cut or a crash of the machine then loses what was acknowledged in the last
    /// two minutes — referrals, consent withdrawals, partners' answers.
    #[arg(long, env = "WASL_UP_UNSAFE_NO_FSYNC")]
    pub unsafe_no_fsync: bool,
}

/// How long a start waits for a nats-server left by a killed `wasl up` to finish shutting down
/// (it receives SIGTERM when its parent dies) before refusing.
const ORPHAN_WAIT: Duration = Duration::from_secs(20);

/// The NKey seed of `wasl up`'s services, in the data directory: the one credential its
/// nats-server accepts.
pub const NKEY_FILE: &str = "nats.nk";

/// The id of the master key `wasl up` creates.
const MASTER_KEY_ID: &str = "local-1";

/// Runs everything until Ctrl-C or SIGTERM.
pub fn up(args: UpArgs) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: UpArgs) -> Result<String, Box<dyn Error>> {
    private_dir(&args.data)?;
    private_dir(&args.data.join("nats"))?;
    let data = args.data.canonicalize()?;
    let lock = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || wasl_nats_server::StoreLock::acquire(&data, ORPHAN_WAIT)).await??
    };
    let master_key = ensure_master_key(&data.join("master.key"))?;
    // The only NATS user: the services of this `wasl up`. Its seed never leaves the data
    // directory; the server refuses every client that cannot prove it holds it.
    let nkey = data.join(NKEY_FILE);
    let (nkey_public, _) = wasl_nats_config::user_seed(&nkey)?;
    private_file(&data.join("wasl.db"))?;
    let mut server = wasl_nats_server::ServerConfig::new(
        wasl_nats_server::find_nats_server()?.path,
        data.join("nats"),
        args.nats_port,
    );
    server.sync_always = !args.unsafe_no_fsync;
    server.nkey_users = vec![nkey_public];
    let nats =
        tokio::task::spawn_blocking(move || wasl_nats_server::Supervised::start(server, &lock).map(|n| (n, lock)))
            .await??;
    let url = nats.0.url().to_owned();
    let result = services(&args, &data, &url, &nkey, &master_key).await;
    // The server first, then the lock (dropped with it).
    tokio::task::spawn_blocking(move || {
        let (server, lock) = nats;
        server.stop();
        drop(lock);
    })
    .await?;
    result?;
    Ok(format!("wasl up: stopped; the data is in {}\n", data.display()))
}

/// Starts the services, prints where they are, and runs them until a signal; a service that
/// fails stops the others.
async fn services(
    args: &UpArgs,
    data: &Path,
    nats_url: &str,
    nkey: &Path,
    master_key: &Path,
) -> Result<(), Box<dyn Error>> {
    let database_url = format!("sqlite:{}", data.join("wasl.db").display());
    let client = crate::connect::connect_with(nats_url, Some(nkey), None).await?;
    let master = wasl_vault::LocalMasterKey::from_file(MASTER_KEY_ID, master_key)?;
    let app = wasl_api::Application::build(
        client.clone(),
        wasl_api::AppSettings {
            metrics_listen: args.metrics_addr,
            accept_audit_reset: args.accept_audit_reset,
            ..wasl_api::AppSettings::new(database_url.clone(), master)
        },
        args.listen,
    )
    .await?;
    let state = app.state().clone();
    let demo = if args.demo {
        Some(crate::demo::load(state.store(), state.vault(), state.accounts()).await?)
    } else {
        None
    };
    let store = Arc::new(EventStore::open(client.clone(), StoreConfig::default()).await?);
    let models = ReadModels::open(&ReadModelsConfig::new(database_url.clone())).await?;

    let stop = CancellationToken::new();
    let until = |stop: &CancellationToken| stop.clone().cancelled_owned();
    let mut running: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    {
        let stop = stop.clone();
        running.spawn(async move { ("api", app.run(stop).await.map_err(|e| e.to_string())) });
    }
    {
        let projector = wasl_projections::Projector::new(
            models,
            store.stream().clone(),
            Projection::ALL,
            ProjectorConfig {
                skips: Some(store.skips().clone()),
                ..ProjectorConfig::default()
            },
        );
        let stopped = until(&stop);
        running.spawn(async move { ("projector", projector.run(stopped).await.map_err(|e| e.to_string())) });
    }
    {
        let api_base_url = format!("http://{}", args.listen);
        let router = wasl_router::router::Router::open(
            client.clone(),
            wasl_router::RouterConfig {
                api_base_url,
                ..wasl_router::RouterConfig::default()
            },
        )
        .await?;
        state.add_service_check("router", router_check(router.metrics()));
        let stopped = until(&stop);
        running.spawn(async move { ("router", router.run(stopped).await.map_err(|e| e.to_string())) });
    }
    {
        let service = wasl_router::CommandService::new(store.clone(), wasl_router::CommandServiceConfig::default());
        let stopped = until(&stop);
        running.spawn(async move {
            let r = service.run(stopped).await;
            ("partner commands", r.map_err(|e| e.to_string()))
        });
    }
    {
        let vault = if args.retention.retention_apply {
            let master = wasl_vault::LocalMasterKey::from_file(MASTER_KEY_ID, master_key)?;
            let js = async_nats::jetstream::new(client.clone());
            Some(wasl_vault::Vault::connect(&js, master, &wasl_vault::VaultConfig::default()).await?)
        } else {
            None
        };
        let followup = wasl_followup::Followup::open(
            &database_url,
            store.clone(),
            Arc::new(wasl_followup::SystemClock),
            wasl_followup::FollowupConfig {
                policy: args.policy.load()?,
                retention: Some(args.retention.schedule(vault)),
                ..wasl_followup::FollowupConfig::default()
            },
        )
        .await?;
        state.add_service_check("followup", followup_check(followup.metrics()));
        let stopped = until(&stop);
        running.spawn(async move { ("follow-up", followup.run(stopped).await.map_err(|e| e.to_string())) });
    }
    {
        let master = wasl_vault::LocalMasterKey::from_file(MASTER_KEY_ID, master_key)?;
        let webhooks = wasl_webhooks::Webhooks::connect(
            async_nats::jetstream::new(client.clone()),
            wasl_webhooks::WebhooksConfig {
                destinations: args.webhook_allow.destinations(),
                ..wasl_webhooks::WebhooksConfig::default()
            },
            wasl_webhooks::SecretsKey::from_master(&master),
        )
        .await?;
        let stopped = until(&stop);
        running.spawn(async move { ("webhooks", webhooks.run(stopped).await.map_err(|e| e.to_string())) });
    }

    if let Some(notify) = crate::notify::start(&args.mail, args.listen, &database_url, store.clone()).await? {
        state.add_service_check("notify", crate::notify::check(notify.metrics()));
        let stopped = until(&stop);
        running.spawn(async move { ("notify", notify.run(stopped).await.map_err(|e| e.to_string())) });
    }

    println!("{}", banner(args, data, nats_url, demo.as_ref()));
    let mut failure = None;
    tokio::select! {
        () = crate::api::shutdown_signal() => {
            eprintln!("wasl up: stopping (the services finish what they are doing, then NATS)");
        }
        Some(done) = running.join_next() => {
            let (name, result) = done.unwrap_or(("a service", Err("it panicked".to_owned())));
            let why = result.err().unwrap_or_else(|| "it stopped".to_owned());
            eprintln!("wasl up: {name} stopped ({why}); stopping the others");
            failure = Some(format!("{name}: {why}"));
        }
    }
    stop.cancel();
    while let Some(done) = running.join_next().await {
        if let Ok((name, Err(why))) = done {
            failure.get_or_insert(format!("{name}: {why}"));
        }
    }
    match failure {
        Some(why) => Err(why.into()),
        None => Ok(()),
    }
}

/// The router's part of `/readyz`: where it is, how many events it parked that no operator has
/// resolved (`wasl router parked`), and not ready while the event log is behind its checkpoint.
pub(crate) fn router_check(metrics: Arc<wasl_router::RouterMetrics>) -> wasl_api::ServiceCheck {
    Arc::new(move || {
        if let Some(why) = metrics.diverged() {
            return Err(why);
        }
        Ok(serde_json::json!({
            "position": metrics.position.load(std::sync::atomic::Ordering::Relaxed),
            "parked": metrics.open_parked.load(std::sync::atomic::Ordering::Relaxed),
        }))
    })
}

/// The follow-up service's part of `/readyz`: where it is, what it could not read, and not ready
/// while the event log is behind its checkpoint.
fn followup_check(metrics: Arc<wasl_followup::FollowupMetrics>) -> wasl_api::ServiceCheck {
    Arc::new(move || {
        if let Some(why) = metrics.diverged() {
            return Err(why);
        }
        Ok(serde_json::json!({
            "position": metrics.position.load(std::sync::atomic::Ordering::Relaxed),
            "parked": metrics.parked.load(std::sync::atomic::Ordering::Relaxed),
        }))
    })
}

fn banner(args: &UpArgs, data: &Path, nats_url: &str, demo: Option<&wasl_demo::DemoReport>) -> String {
    let nkey = data.join(NKEY_FILE);
    let mut out = format!(
        "\nWasl {} is up\n  HTTP API   http://{}  (OpenAPI: /openapi.json, health: /healthz, /readyz)\n  NATS       {nats_url} (loopback only, no anonymous clients; log: {})\n  NATS key   {} (the services' NKey seed: --nats-nkey or WASL_NATS_NKEY for wasl commands)\n  data       {} (owner-only: NATS store, read models wasl.db, master.key)\n",
        env!("CARGO_PKG_VERSION"),
        args.listen,
        data.join("nats").join("nats.log").display(),
        nkey.display(),
        data.display()
    );
    if let Some(metrics) = args.metrics_addr {
        out.push_str(&format!(
            "  metrics    http://{metrics}/metrics  (Prometheus; not on the API's address)\n"
        ));
    }
    out.push_str(&crate::notify::describe(&args.mail));
    match demo {
        Some(loaded) => out.push_str(&loaded.to_string()),
        None => out.push_str(&format!(
            "  no demo data: run `wasl up --demo`, or create the first admin with\n    wasl users add --nats-url {nats_url} --nats-nkey {} --username admin --org <org id> --role admin   (password on stdin)\n",
            nkey.display()
        )),
    }
    if args.unsafe_no_fsync {
        out.push_str(
            "  !! --unsafe-no-fsync: NATS acknowledges writes before they reach the disk; a power cut\n  !! or a crash of the machine can lose the last two minutes of referrals. Demo use only.\n",
        );
        out.push_str("  Ctrl-C stops everything.\n");
    } else {
        out.push_str("  Ctrl-C stops everything; nothing acknowledged is lost (every write is fsynced).\n");
    }
    out
}

/// Creates `dir` readable by its owner only (0700), or tightens an existing one that is looser:
/// it holds the event log, the read models, the master key and the NATS credential.
fn private_dir(dir: &Path) -> Result<(), Box<dyn Error>> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` empty and owner-only (0600) when missing, or tightens it: SQLite keeps the
/// mode of the database file for its journal files, which hold the same rows.
fn private_file(path: &Path) -> Result<(), Box<dyn Error>> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The master key file, created with a random key (mode 0600) when missing.
fn ensure_master_key(path: &Path) -> Result<PathBuf, Box<dyn Error>> {
    if !path.exists() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for the master key: {e}"))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(hex.as_bytes())?;
        file.sync_all()?;
    }
    Ok(path.to_owned())
}
