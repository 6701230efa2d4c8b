//! Generates the NATS server configuration and the per-organisation credentials that keep partners
//! apart.
//!
//! One JetStream account ([`ACCOUNT`]) holds the hub's services and every partner organisation.
//! Each hub service has a user of its own with the least it needs, and nobody may delete the
//! log, the audit or the data keys ([`services::HubUser`]); each organisation's user,
//! authenticated by an NKey, may only pull from its own feed `WASL_OUT_<org>` through the
//! consumers the hub keeps there, send commands on `wasl.cmd.<org>.>` and receive replies on its
//! own inbox prefix `_INBOX_<org>` ([`permissions::partner_permissions`]). The names come
//! from [`wasl_events::partner`], the same place the router takes them from.
//!
//! [`generate`] writes, into one directory:
//!
//! | file | what |
//! |---|---|
//! | `auth.conf` | the `accounts { … }` block (and `tls { … }` when asked), to `include` from the server's config |
//! | `hub.nk`, `api.nk`, `store.nk`, `router.nk`, `projector.nk` | the seeds of the hub's users (mode 0600): the operator's and each service's |
//! | `partners/<org>/<org>.nk` | the seed of the organisation's user (mode 0600), to hand over |
//! | `partners/<org>/README.md` | what the organisation needs to connect: public key, stream, subjects, inbox prefix |
//!
//! Seeds already in the directory are reused, so regenerating (a partner added, TLS turned on)
//! never invalidates a credential that was handed over. Files are only rewritten when their
//! content changes. Why this model and every permission: `docs/nats-security.md`.

mod files;
pub mod permissions;
mod render;
pub mod services;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wasl_domain::ids::OrgId;

pub use permissions::{Grant, PartnerPermissions, partner_permissions};
pub use services::{HubPermissions, HubUser};

/// The one account holding the hub's services, every partner and the JetStream streams.
pub const ACCOUNT: &str = "WASL";

/// The file name of the generated server configuration fragment.
pub const AUTH_FILE: &str = "auth.conf";

/// The file name of the hub's seed.
pub const HUB_SEED_FILE: &str = "hub.nk";

/// The folder holding one sub-folder per partner organisation.
pub const PARTNERS_DIR: &str = "partners";

/// A partner organisation to give a credential to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerOrg {
    /// The organisation's id, the `<org>` of its stream and subjects.
    pub id: OrgId,
    /// Its display name, for comments and the README only.
    pub name: String,
}

/// The server's TLS settings, written as the `tls { … }` block of `auth.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The server's certificate chain (PEM), `cert_file`.
    pub cert_file: PathBuf,
    /// The server's private key (PEM), `key_file`.
    pub key_file: PathBuf,
    /// The CA bundle (PEM) that client certificates are checked against, `ca_file`. Without it
    /// the server uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Require and verify a client certificate (mutual TLS), `verify: true`. The NKey is still
    /// required: the certificate is a second factor, not the identity.
    pub verify_clients: bool,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfigOptions {
    /// Every partner organisation that gets a credential. An organisation left out loses its
    /// access when the server reloads the config (its seed file stays in the directory).
    pub orgs: Vec<PartnerOrg>,
    /// The directory to write into; created if missing.
    pub out_dir: PathBuf,
    /// TLS for the client port, or `None` for plain TCP (development, or TLS terminated in front).
    pub tls: Option<TlsOptions>,
    /// The URL partners connect to, e.g. `tls://nats.wasl.example:4222`, printed in their README.
    /// `None` prints a placeholder.
    pub server_url: Option<String>,
}

/// A user's credential as generated (or found and reused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user's public NKey (`U…`), the identity in `auth.conf`; safe to show.
    pub public_key: String,
    /// The seed file (secret, mode 0600).
    pub seed_file: PathBuf,
    /// Whether the seed was created by this run (false: an existing seed was reused).
    pub created: bool,
}

/// One partner organisation's generated files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PartnerCredential {
    pub org: PartnerOrg,
    /// Its user's credential.
    pub credential: Credential,
    /// Its README with what to connect with.
    pub readme: PathBuf,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The server configuration fragment to `include`.
    pub auth_conf: PathBuf,
    /// The operator's credential (`hub.nk`).
    pub hub: Credential,
    /// Every hub user's credential, the operator's included, in [`HubUser::ALL`]'s order.
    pub services: Vec<(HubUser, Credential)>,
    /// One entry per organisation, in the order given.
    pub partners: Vec<PartnerCredential>,
    /// The files whose content changed (or were created) in this run.
    pub changed: Vec<PathBuf>,
}

/// Why generating failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A seed file exists but does not hold a user seed; it is left alone rather than replaced,
    /// since replacing it would lock out whoever holds it.
    #[error("{path} does not hold a NATS user seed")]
    BadSeed {
        /// The seed file.
        path: PathBuf,
    },
    /// The same organisation was listed twice.
    #[error("organisation {0} is listed more than once")]
    DuplicateOrg(OrgId),
    /// A path cannot be written into the config (it is not valid UTF-8).
    #[error("{0} is not valid UTF-8 and cannot go into the server config")]
    NonUtf8Path(PathBuf),
}

impl Error {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The NKey user seed in `path`, created there (mode 0600) when missing and tightened to 0600
/// when looser: its public key (`U…`, what a server config names) and whether it was created now.
pub fn user_seed(path: &Path) -> Result<(String, bool), Error> {
    files::load_or_create(path)
}

/// The seed file of `org` inside `out_dir`.
pub fn partner_seed_file(out_dir: &Path, org: OrgId) -> PathBuf {
    partner_dir(out_dir, org).join(format!("{org}.nk"))
}

fn partner_dir(out_dir: &Path, org: OrgId) -> PathBuf {
    out_dir.join(PARTNERS_DIR).join(org.to_string())
}

/// Writes `auth.conf`, the hub's seed and every partner's seed and README into
/// `options.out_dir`, reusing the seeds already there. Running it twice with the same options
/// changes nothing.
pub fn generate(options: &NatsConfigOptions) -> Result<Generated, Error> {
    let mut seen = BTreeSet::new();
    for org in &options.orgs {
        if !seen.insert(org.id) {
            return Err(Error::DuplicateOrg(org.id));
        }
    }
    let out = &options.out_dir;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let mut changed = Vec::new();

    let mut services = Vec::with_capacity(HubUser::ALL.len());
    for user in HubUser::ALL {
        let seed_file = out.join(user.seed_file());
        let (public_key, created) = files::load_or_create(&seed_file)?;
        if created {
            changed.push(seed_file.clone());
        }
        services.push((
            user,
            Credential {
                public_key,
                seed_file,
                created,
            },
        ));
    }
    let hub = services
        .iter()
        .find(|(user, _)| *user == HubUser::Operator)
        .map(|(_, credential)| credential.clone())
        .expect("the operator is one of the hub's users");

    let mut partners = Vec::with_capacity(options.orgs.len());
    for org in &options.orgs {
        let dir = partner_dir(out, org.id);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let seed_file = partner_seed_file(out, org.id);
        let (public_key, created) = files::load_or_create(&seed_file)?;
        if created {
            changed.push(seed_file.clone());
        }
        let readme = dir.join("README.md");
        let text = render::partner_readme(org, &public_key, options);
        if files::write_if_changed(&readme, &text)? {
            changed.push(readme.clone());
        }
        partners.push(PartnerCredential {
            org: org.clone(),
            credential: Credential {
                public_key,
                seed_file,
                created,
            },
            readme,
        });
    }

    let auth_conf = out.join(AUTH_FILE);
    let text = render::auth_conf(&services, &partners, options.tls.as_ref())?;
    if files::write_if_changed(&auth_conf, &text)? {
        changed.push(auth_conf.clone());
    }
    Ok(Generated {
        auth_conf,
        hub,
        services,
        partners,
        changed,
    })
}
