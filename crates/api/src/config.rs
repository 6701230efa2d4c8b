//! `wasl api`'s settings: every option is a flag and an environment variable, with defaults that
//! work for a local Wasl.

use crate::app::{AppSettings, Application, failed};
use crate::auth::oidc::OidcConfig;
use crate::state::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use wasl_store::StoreConfig;
use wasl_vault::{LocalMasterKey, VaultConfig};

/// Settings of the HTTP API.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    /// Address to listen on.
    #[arg(long, env = "WASL_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address to serve Prometheus `/metrics` on, apart from the public address (whose
    /// `/metrics` is not found): counts of the whole network, for the scraper only. None
    /// serves no metrics.
    #[arg(long, env = "WASL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// NATS server holding the event log, the key bucket, the accounts and the audit (a
    /// comma-separated list for the nodes of a cluster).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk` from `wasl nats-config`),
    /// when the server requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// Read-model database: `postgres://…` or `sqlite:PATH`.
    #[arg(long, env = "WASL_DATABASE_URL", default_value = "sqlite:./data/wasl.db")]
    pub database_url: String,
    /// File holding the master key as 64 hex characters.
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    pub master_key_file: PathBuf,
    /// The master key's id, as stored beside every key it wraps.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    pub master_key_id: String,
    /// Replicas of the accounts and audit streams (3 in a production cluster).
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// OIDC issuer whose access tokens are accepted (exact `iss`); none disables OIDC.
    #[arg(long, env = "WASL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience OIDC tokens must carry.
    #[arg(long, env = "WASL_OIDC_AUDIENCE", default_value = "wasl")]
    pub oidc_audience: String,
    /// JWKS URL; found by OIDC discovery when not given.
    #[arg(long, env = "WASL_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// The claim holding the user's organisation id.
    #[arg(long, env = "WASL_OIDC_ORG_CLAIM", default_value = "wasl_org")]
    pub oidc_org_claim: String,
    /// The claim holding the user's roles.
    #[arg(long, env = "WASL_OIDC_ROLES_CLAIM", default_value = "wasl_roles")]
    pub oidc_roles_claim: String,
    /// Wasl is served over HTTPS (TLS ends at the proxy in front of it): mark the session cookie
    /// Secure and send `Strict-Transport-Security`.
    #[arg(long, env = "WASL_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// How long a session lasts after sign-in.
    #[arg(long, env = "WASL_SESSION_LIFETIME", default_value = "12h", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,
    /// The largest request body, in bytes.
    #[arg(long, env = "WASL_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// The longest a query waits for the read model to reach `Wasl-Min-Position`.
    #[arg(long, env = "WASL_MAX_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub max_wait: Duration,
    /// `/readyz` answers 503 while a read model is more than this many events behind the log.
    #[arg(long, env = "WASL_READY_MAX_LAG", default_value_t = 10_000)]
    pub ready_max_lag: u64,
    /// Small-cell suppression threshold k of the dashboards and exports: counts from 1 to k − 1
    /// are hidden (at least 2).
    #[arg(long, env = "WASL_SUPPRESSION_K", default_value_t = 5, value_parser = suppression_k)]
    pub suppression_k: u64,
    /// Start although the access audit went backwards since this API last saw it — only after
    /// a deliberate reset (a restore from a backup) and `wasl audit verify`: logged as an
    /// error, and the audit checkpoint is anchored at the stream's current head.
    #[arg(long, env = "WASL_ACCEPT_AUDIT_RESET")]
    pub accept_audit_reset: bool,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum StartError {
    /// A dependency failed.
    #[error("{what}: {cause}")]
    Dependency {
        /// Which.
        what: &'static str,
        cause: String,
    },
    /// The access audit went backwards since this API last saw it (the stream deleted, cut
    /// short or replaced): not transient; an operator looks (docs/operations.md, "The access
    /// audit went backwards").
    #[error(
        "the access audit cannot be trusted: {cause}. Check it with `wasl audit verify{}`. Only if the reset was deliberate (a restore from a backup), start once with --accept-audit-reset (WASL_ACCEPT_AUDIT_RESET=true): the audit is then trusted from the stream's current head on",
        since(.checkpoint)
    )]
    AuditWentBack {
        cause: String,
        /// The head this API last saw (`SEQ:HASH`), if it had one.
        checkpoint: Option<String>,
    },
    /// A dependency did not answer (refused, timed out, no stream leader yet): worth trying
    /// again shortly.
    #[error("{what} is unavailable: {cause}")]
    Unavailable {
        /// Which.
        what: &'static str,
        cause: String,
    },
}

fn since(checkpoint: &Option<String>) -> String {
    checkpoint
        .as_ref()
        .map(|head| format!(" --since {head}"))
        .unwrap_or_default()
}

impl StartError {
    /// Whether trying again shortly may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

fn dep(what: &'static str) -> impl Fn(String) -> StartError {
    move |cause| StartError::Dependency { what, cause }
}

impl ApiConfig {
    /// Connects to NATS, reads the master key, and builds the API ([`Application::build`]).
    pub async fn build(&self) -> Result<Application, StartError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(path) = &self.nats_nkey {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| dep("NATS")(format!("cannot read the NKey seed file {}: {e}", path.display())))?;
            options = options.nkey(seed.trim().to_owned());
        }
        // One URL or a comma-separated list (the nodes of a cluster).
        let servers: Vec<&str> = self.nats_url.split(',').map(str::trim).collect();
        let client = options.connect(servers).await.map_err(|e| {
            let transient = matches!(
                e.kind(),
                async_nats::ConnectErrorKind::TimedOut | async_nats::ConnectErrorKind::Io
            );
            failed("NATS", transient, e)
        })?;
        let master = LocalMasterKey::from_file(&self.master_key_id, &self.master_key_file)
            .map_err(|e| dep("master key")(e.to_string()))?;
        let settings = AppSettings {
            store: StoreConfig {
                replicas: self.replicas,
                ..StoreConfig::default()
            },
            vault: VaultConfig {
                replicas: self.replicas,
                ..VaultConfig::default()
            },
            replicas: self.replicas,
            oidc: self.oidc_issuer.as_ref().map(|issuer| OidcConfig {
                issuer: issuer.clone(),
                audience: self.oidc_audience.clone(),
                jwks_url: self.oidc_jwks_url.clone(),
                org_claim: self.oidc_org_claim.clone(),
                roles_claim: self.oidc_roles_claim.clone(),
                ..OidcConfig::default()
            }),
            session_lifetime: self.session_lifetime,
            limits: Limits {
                max_wait: self.max_wait,
                body_limit: self.body_limit,
                secure_cookies: self.secure_cookies,
                ready_max_lag: self.ready_max_lag,
                suppression_k: wasl_domain::suppression::Threshold::new(self.suppression_k)
                    .map_err(|e| dep("suppression threshold")(e.to_string()))?,
                ..Limits::default()
            },
            metrics_listen: self.metrics_addr,
            accept_audit_reset: self.accept_audit_reset,
            ..AppSettings::new(self.database_url.clone(), master)
        };
        Application::build(client, settings, self.listen).await
    }
}

/// Parses `--suppression-k`: a whole number of at least 2.
fn suppression_k(text: &str) -> Result<u64, String> {
    let k: u64 = text.parse().map_err(|_| "must be a whole number".to_owned())?;
    wasl_domain::suppression::Threshold::new(k)
        .map(|t| t.get())
        .map_err(|e| e.to_string())
}
