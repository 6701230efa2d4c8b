//! What every request handler can reach: the event store, the read models, the vault, the
//! accounts, the sessions, the OIDC verifier and the audit.

use crate::audit::Audit;
use crate::auth::accounts::Accounts;
use crate::auth::oidc::Oidc;
use crate::auth::session::Sessions;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use wasl_projections::ReadModels;
use wasl_store::EventStore;
use wasl_vault::{LocalMasterKey, Vault};

/// Settings that shape request handling.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest a query waits for `Wasl-Min-Position`.
    pub max_wait: Duration,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// Wasl is served over TLS (ended in front of it): mark the session cookie `Secure` and
    /// send `Strict-Transport-Security`.
    pub secure_cookies: bool,
    /// `/readyz` answers 503 while a projection is more than this many events behind the log.
    pub ready_max_lag: u64,
    /// The HTTP server's timeouts, header limit and connection cap.
    pub server: crate::serve::ServerLimits,
    /// Passwords checked at once (argon2id takes 19 MiB and tens of milliseconds each); more
    /// sign-ins wait, and after a few seconds are answered 429.
    pub concurrent_password_checks: usize,
    /// Small-cell suppression of the dashboards and exports: counts from 1 to k − 1 are hidden.
    pub suppression_k: wasl_domain::suppression::Threshold,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(5),
            body_limit: 1024 * 1024,
            secure_cookies: false,
            ready_max_lag: 10_000,
            server: crate::serve::ServerLimits::default(),
            concurrent_password_checks: 2,
            suppression_k: wasl_domain::suppression::Threshold::DEFAULT,
        }
    }
}

/// The parts the API works with.
pub struct Parts {
    /// The event store and command handler.
    pub store: EventStore,
    /// The read models.
    pub models: ReadModels,
    /// The case keys.
    pub vault: Vault<LocalMasterKey>,
    /// Local accounts and tokens.
    pub accounts: Accounts,
    /// Sessions (in the KV bucket every instance shares) and login back-off.
    pub sessions: Sessions,
    /// The OIDC verifier, when an issuer is configured.
    pub oidc: Option<Oidc>,
    /// The access audit.
    pub audit: Audit,
    /// Request limits.
    pub limits: Limits,
}

/// A readiness check of another service running in the same process (`wasl up`'s router):
/// what it reports for `/readyz`, or why it cannot serve.
pub type ServiceCheck = Arc<dyn Fn() -> Result<serde_json::Value, String> + Send + Sync>;

/// Shared, cheaply cloned state of the API.
#[derive(Clone)]
pub struct AppState(
    Arc<Parts>,
    Arc<RwLock<Vec<(String, ServiceCheck)>>>,
    Arc<crate::asof::AsOf>,
);

impl AppState {
    /// Wraps the parts.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts), Arc::default(), Arc::default())
    }

    /// Adds a check of another service in this process to `/readyz`: its report appears under
    /// `services.<name>`, and an error makes `/readyz` answer 503 with it.
    pub fn add_service_check(&self, name: &str, check: ServiceCheck) {
        self.1
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), check));
    }

    /// What the other services in this process report, by name; the first error.
    pub fn service_checks(&self) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String> {
        let checks = self.1.read().unwrap_or_else(|p| p.into_inner()).clone();
        checks
            .into_iter()
            .map(|(name, check)| {
                check()
                    .map(|report| (name.clone(), report))
                    .map_err(|why| format!("{name}: {why}"))
            })
            .collect()
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.0.store
    }

    /// The read models.
    pub fn models(&self) -> &ReadModels {
        &self.0.models
    }

    /// The dashboards' replays of past days.
    pub fn as_of(&self) -> &crate::asof::AsOf {
        &self.2
    }

    /// The vault.
    pub fn vault(&self) -> &Vault<LocalMasterKey> {
        &self.0.vault
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// The OIDC verifier.
    pub fn oidc(&self) -> Option<&Oidc> {
        self.0.oidc.as_ref()
    }

    /// The audit.
    pub fn audit(&self) -> &Audit {
        &self.0.audit
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }
}
