//! The one place the API is assembled: [`Application::build`] opens the event store, the read
//! models, the vault, the accounts, the sessions and the audit from [`AppSettings`], checks the
//! audit against its checkpoint ([`Audit::anchor`]), and binds the listeners (the public one
//! and, if asked for, the metrics one);
//! `wasl api`, `wasl up`, the API's tests and `wasl bench api` all call it, so none of them
//! wires the parts by hand. [`Application::run`] serves until a [`CancellationToken`] is
//! cancelled — the one shutdown signal every long-running part of Wasl takes.

use crate::audit::{Audit, AuditError, Checkpoint};
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
    /// Where `/metrics` is served, apart from the public address; none serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// The operator's word that the access audit was reset on purpose (a restore from a
    /// backup): start even though the stream no longer holds the checkpoint, and anchor it at
    /// the stream's current head. See [`Audit::anchor`].
    pub accept_audit_reset: bool,
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
            metrics_listen: None,
            accept_audit_reset: false,
        }
    }
}

/// The API, built and listening, not yet serving.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    metrics: Option<TcpListener>,
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
            metrics_listen,
            accept_audit_reset,
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
        // Before anything is served: a stream that went backwards is refused here.
        let checkpoint = Checkpoint::open(models.pool().clone())
            .await
            .map_err(|e| failed("audit checkpoint", true, e))?;
        audit
            .anchor(checkpoint, accept_audit_reset)
            .await
            .map_err(|e| match e {
                AuditError::Unavailable(_) => failed("access audit", true, e),
                AuditError::WentBack { checkpoint, reason } => StartError::AuditWentBack {
                    cause: reason,
                    checkpoint: Some(checkpoint.to_string()),
                },
                AuditError::Broken { .. } => StartError::AuditWentBack {
                    cause: e.to_string(),
                    checkpoint: None,
                },
            })?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| failed("the API's listener", false, format!("cannot listen on {listen}: {e}")))?;
        let metrics = match metrics_listen {
            Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
                failed(
                    "the metrics listener",
                    false,
                    format!("cannot listen on {address}: {e}"),
                )
            })?),
            None => None,
        };
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
        Ok(Self {
            state,
            listener,
            metrics,
        })
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

    /// Where `/metrics` is served, if anywhere.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(|l| l.local_addr().expect("a bound TCP listener has a local address"))
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight and writes
    /// the audit checkpoint.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let state = self.state.clone();
        let limits = state.limits().server;
        let metrics = self.metrics.map(|listener| {
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(crate::serve::serve(listener, crate::metrics_router(), limits, stop))
        });
        let served = crate::run(self.listener, self.state, shutdown.cancelled_owned()).await;
        if let Some(metrics) = metrics {
            // It stops with the same token; a failure of its own is logged there.
            let _ = metrics.await;
        }
        if let Err(error) = state.audit().flush_checkpoint().await {
            tracing::warn!(%error, "cannot write the audit checkpoint on shutdown; it stays behind");
        }
        served
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
