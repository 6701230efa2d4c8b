//! What every request handler can reach: the event store, the read models, the vault, the
//! accounts, the sessions, the OIDC verifier and the audit.

use crate::audit::Audit;
use crate::auth::accounts::Accounts;
use crate::auth::oidc::Oidc;
use crate::auth::session::Sessions;
use std::sync::Arc;
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
    /// Mark the session cookie `Secure` (Wasl is served over TLS).
    pub secure_cookies: bool,
    /// `/readyz` answers 503 while a projection is more than this many events behind the log.
    pub ready_max_lag: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(5),
            body_limit: 1024 * 1024,
            secure_cookies: false,
            ready_max_lag: 10_000,
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
    /// Sessions and login back-off.
    pub sessions: Sessions,
    /// The OIDC verifier, when an issuer is configured.
    pub oidc: Option<Oidc>,
    /// The access audit.
    pub audit: Audit,
    /// Request limits.
    pub limits: Limits,
}

/// Shared, cheaply cloned state of the API.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    /// Wraps the parts.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.0.store
    }

    /// The read models.
    pub fn models(&self) -> &ReadModels {
        &self.0.models
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
