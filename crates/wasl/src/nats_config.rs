//! `wasl nats-config`: writes the nats-server authorisation (`auth.conf`), the hub's NKeys (one
//! per service, `wasl_nats_config::HubUser`) and
//! one folder of credentials per partner organisation (see docs/nats-security.md). The
//! organisations come from the event log's directory (`--nats-url`), from `--org`, or both.
//! The generator lives in `wasl_nats_config`.

use futures_util::TryStreamExt;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use wasl_domain::directory::Organisation;
use wasl_domain::ids::OrgId;
use wasl_nats_config::{NatsConfigOptions, PartnerOrg, TlsOptions};
use wasl_store::{EventStore, StoreConfig};

/// Options of `wasl nats-config`.
#[derive(Debug, clap::Args)]
pub struct NatsConfigArgs {
    /// Folder to write into: auth.conf, the hub's seeds (hub.nk for the operator, api.nk,
    /// store.nk, router.nk, projector.nk), partners/<org>/. Seeds already there are kept,
    /// so regenerating never invalidates a credential handed out.
    #[arg(long, env = "WASL_NATS_CONFIG_DIR", default_value = "./data/nats-config")]
    pub out: PathBuf,
    /// Read the organisations registered in the directory from the event log on this NATS
    /// server (connecting without credentials, as on first set-up, or with --nats-nkey).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: Option<String>,
    /// NKey seed file to connect to --nats-url with (the hub's hub.nk once auth is on). When it
    /// is the hub.nk this run creates in --out (the services' WASL_NATS_NKEY on a first run), the
    /// directory is not read this time: no server knows that key yet.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// An organisation to give a credential, as ID or ID=NAME (repeatable); added to those of
    /// the directory.
    #[arg(long = "org", value_name = "ID[=NAME]")]
    pub orgs: Vec<String>,
    /// The server URL partners connect to, printed in their READMEs (e.g. tls://nats.example.org:4222).
    #[arg(long)]
    pub server_url: Option<String>,
    /// TLS certificate of the server (PEM); turns TLS on together with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key of the server (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate to verify clients and for partners to verify the server (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Require client certificates signed by --tls-ca in addition to the NKeys.
    #[arg(long, requires = "tls_ca")]
    pub tls_verify: bool,
}

/// Generates the files and returns what to print.
pub fn run(args: NatsConfigArgs) -> Result<String, Box<dyn Error>> {
    let mut orgs: Vec<PartnerOrg> = Vec::new();
    let mut unread_directory = None;
    if let Some(url) = &args.nats_url {
        match hub_seed_to_create(&args)? {
            Some(seed) => unread_directory = Some(seed),
            None => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                orgs = runtime.block_on(directory(url, args.nats_nkey.as_ref()))?;
            }
        }
    }
    for given in &args.orgs {
        let (id, name) = given.split_once('=').unwrap_or((given.as_str(), ""));
        let id: OrgId = id
            .parse()
            .map_err(|_| format!("--org {id:?}: not an organisation id (a UUIDv7)"))?;
        if !orgs.iter().any(|o| o.id == id) {
            orgs.push(PartnerOrg {
                id,
                name: name.to_owned(),
            });
        }
    }
    let none_yet = orgs.is_empty();
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert_file), Some(key_file)) => Some(TlsOptions {
            cert_file,
            key_file,
            ca_file: args.tls_ca,
            verify_clients: args.tls_verify,
        }),
        _ => None,
    };
    let generated = wasl_nats_config::generate(&NatsConfigOptions {
        orgs,
        out_dir: args.out.clone(),
        tls,
        server_url: args.server_url,
    })?;
    let mut out = String::new();
    writeln!(out, "NATS configuration in {}", args.out.display())?;
    if let Some(seed) = unread_directory {
        writeln!(
            out,
            "  the directory was not read: the NKey seed to connect with (--nats-nkey / WASL_NATS_NKEY), {}, is the hub's, created by this run, and no server knows it yet. Start the server with this auth.conf, then run this again to add the organisations registered there.",
            seed.display()
        )?;
    }
    writeln!(
        out,
        "  {}: include it from the server's configuration (include ./{}); JetStream must be on",
        generated.auth_conf.display(),
        wasl_nats_config::AUTH_FILE
    )?;
    for (user, credential) in &generated.services {
        writeln!(
            out,
            "  {}: {} ({}) — for {}",
            user.name(),
            credential.seed_file.display(),
            if credential.created { "new" } else { "kept" },
            user.runs()
        )?;
    }
    for partner in &generated.partners {
        writeln!(
            out,
            "  {} {}: {} ({}), hand over the folder {}",
            partner.org.id,
            partner.org.name,
            partner.credential.seed_file.display(),
            if partner.credential.created { "new" } else { "kept" },
            partner
                .readme
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )?;
    }
    if none_yet {
        writeln!(
            out,
            "  no partner organisations yet: only the hub can connect. Run this again with --nats-url (the directory) or --org ID=NAME as organisations join; the hub's key stays."
        )?;
    }
    writeln!(out, "  {} file(s) written", generated.changed.len())?;
    Ok(out)
}

/// The hub's seed this run creates (the operator's or a service's), when it is the one to
/// connect with and does not exist yet.
///
/// The services' environment names the hub's seed (`WASL_NATS_URL`, `WASL_NATS_NKEY=<out>/hub.nk`),
/// and `--nats-url` and `--nats-nkey` read the same variables, so with it exported the first run
/// would try to connect with the seed it is about to write. No server can know that key yet, so
/// that run writes the files without reading the directory (the next run reads it). A missing
/// seed anywhere else is a mistake and fails here, before anything is written. So does a missing
/// hub seed next to an existing `auth.conf`: the run would replace the hub's key and write an
/// `auth.conf` without the directory's organisations, locking out every partner on reload.
fn hub_seed_to_create(args: &NatsConfigArgs) -> Result<Option<PathBuf>, Box<dyn Error>> {
    let Some(seed) = args.nats_nkey.as_deref() else {
        return Ok(None);
    };
    // There, or not readable: connecting reads it and says why it cannot.
    if !matches!(seed.try_exists(), Ok(false)) {
        return Ok(None);
    }
    let Some(hub) = wasl_nats_config::HubUser::ALL
        .iter()
        .map(|user| args.out.join(user.seed_file()))
        .find(|file| same_file(seed, file))
    else {
        return Err(format!(
            "the NKey seed file {} (--nats-nkey or WASL_NATS_NKEY) does not exist",
            seed.display()
        )
        .into());
    };
    let auth = args.out.join(wasl_nats_config::AUTH_FILE);
    if auth.exists() {
        return Err(format!(
            "{} does not exist but {} does: this run would give the hub a new key and leave the directory's organisations out of auth.conf. Put the hub's seed back, or leave out --nats-url (and WASL_NATS_URL) and name every organisation with --org",
            seed.display(),
            auth.display()
        )
        .into());
    }
    Ok(Some(hub))
}

/// Whether two paths name the same file, which need not exist: by their folders where those
/// exist (links resolved), else by their absolute forms.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |path: &Path| {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(folder.canonicalize().ok()?.join(path.file_name()?))
    };
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => absolute(a) == absolute(b),
    }
}

/// Every organisation registered in the event log's directory, with its name.
async fn directory(url: &str, nkey: Option<&PathBuf>) -> Result<Vec<PartnerOrg>, Box<dyn Error>> {
    let client = crate::connect::connect_with(url, nkey.map(PathBuf::as_path), None).await?;
    let store = EventStore::open_existing(client, StoreConfig::default())
        .await?
        .ok_or("there is no Wasl event log on this NATS server")?;
    let prefix = "wasl.evt.org.";
    let stream = store.stream().clone();
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(format!("{prefix}>"))
        .await?
        .try_collect()
        .await?;
    let mut orgs = Vec::new();
    for (subject, _) in subjects {
        let Some(id) = subject.strip_prefix(prefix).and_then(|id| id.parse::<OrgId>().ok()) else {
            return Err(format!("the event log holds an organisation subject that is not an id: {subject}").into());
        };
        let loaded = store.load::<Organisation>(id).await?;
        if let Some(state) = loaded.state.state() {
            orgs.push(PartnerOrg {
                id,
                name: state.name.as_str().to_owned(),
            });
        }
    }
    orgs.sort_by_key(|o| o.id);
    Ok(orgs)
}
