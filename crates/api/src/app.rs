//! The one place the API is assembled: [`Application::build`] opens the event store, the read
//! models, the vault, the accounts, the sessions and the audit from [`AppSettings`] and binds the listener;
//! `wasl api`, `wasl up`, the API's tests and `wasl bench api` all call it, so none of them
//! wires the parts by hand. [`Application::run`] serves until a [`CancellationToken`] is
//! cancelled — the one shutdown signal every long-running part of Wasl takes.

use crate::audit::{Audit, AuditError};
use crate::auth::accounts::{AccountError, Accounts};
use crate::auth::oidc::{Oidc, OidcConfig};
use crate::auth::session::{SessionError, Sessions};
use crate::config::StartError;
use crate::state::{AppState, Limits, Parts};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
pub use tokio_util::sync::CancellationToken;
use wasl_projections::{ReadModels, ReadModelsConfig};
use wasl_store::{EventStore, StoreConfig, StoreError};
use wasl_vault::{LocalMasterKey, Vault, VaultConfig, VaultError};

/// What the API is built from, besides its NATS connection.
#[derive(Debug)]
pub struct AppSettings {
    /// The event log (its stream's name and replicas).
    pub store: StoreConfig,
    /// The key bucket (its name and replicas).
    pub vault: VaultConfig,
    /// The read models: `postgres://…` or `sqlite:PATH`.
    pub database_url: String,
    /// The master key that wraps the cases' keys.
    pub master: LocalMasterKey,
    /// Replicas of the accounts and audit streams and of the session bucket (3 in a production
    /// cluster).
    pub replicas: usize,
    /// The OIDC issuer whose tokens are accepted, if any.
    pub oidc: Option<OidcConfig>,
    /// How long a session lasts after sign-in.
    pub session_lifetime: Duration,
    /// Request limits.
    pub limits: Limits,
}

impl AppSettings {
    /// One server's settings: the default stream and bucket, one replica, no OIDC, sessions of
    /// 12 hours, the default limits.
    pub fn new(database_url: impl Into<String>, master: LocalMasterKey) -> Self {
        Self {
            store: StoreConfig::default(),
            vault: VaultConfig::default(),
            database_url: database_url.into(),
            master,
            replicas: 1,
            oidc: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            limits: Limits::default(),
        }
    }
}

/// The API, built and listening, not yet serving.
pub struct Application {
    state: AppState,
    listener: TcpListener,
}

impl Application {
    /// Opens every part the API needs on `client` and binds `listen` (port 0 for a free one).
    /// Errors say which part failed, and whether trying again shortly may help
    /// ([`StartError::is_transient`]).
    pub async fn build(
        client: async_nats::Client,
        settings: AppSettings,
        listen: SocketAddr,
    ) -> Result<Self, StartError> {
        let AppSettings {
            store,
            vault,
            database_url,
            master,
            replicas,
            oidc,
            session_lifetime,
            limits,
        } = settings;
        let store = EventStore::open(client.clone(), store)
            .await
            .map_err(|e| failed("event store", matches!(e, StoreError::Unavailable(_)), e))?;
        let models = ReadModels::open(&ReadModelsConfig::new(database_url))
            .await
            .map_err(|e| failed("read models", e.is_transient(), e))?;
        let js = async_nats::jetstream::new(client);
        let audit_key = crate::audit::AuditKey::from_master(&master);
        let vault = Vault::connect(&js, master, &vault)
            .await
            .map_err(|e| failed("key vault", matches!(e, VaultError::Unavailable(_)), e))?;
        let accounts = Accounts::open(js.clone(), replicas)
            .await
            .map_err(|e| failed("accounts", matches!(e, AccountError::Unavailable(_)), e))?;
        let sessions = Sessions::open(&js, session_lifetime, replicas, limits.concurrent_password_checks)
            .await
            .map_err(|e| failed("sessions", matches!(e, SessionError::Unavailable(_)), e))?;
        let audit = Audit::open(js, replicas, audit_key)
            .await
            .map_err(|e| failed("access audit", matches!(e, AuditError::Unavailable(_)), e))?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| failed("the API's listener", false, format!("cannot listen on {listen}: {e}")))?;
        let state = AppState::new(Parts {
            store,
            models,
            vault,
            accounts,
            sessions,
            oidc: oidc.map(Oidc::new),
            audit,
            limits,
        });
        Ok(Self { state, listener })
    }

    /// The state the routes work with (for a projector, the demo data or a test beside them).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        crate::run(self.listener, self.state, shutdown.cancelled_owned()).await
    }
}

/// A failure of `what`, as [`StartError::Unavailable`] when `transient`.
pub(crate) fn failed(what: &'static str, transient: bool, cause: impl std::fmt::Display) -> StartError {
    let cause = cause.to_string();
    if transient {
        StartError::Unavailable { what, cause }
    } else {
        StartError::Dependency { what, cause }
    }
}
