//! Webhooks for partner organisations without NATS: each partner message of an organisation's
//! feed (`WASL_OUT_<org>`, written by the router) is POSTed as JSON to the organisation's
//! endpoint, signed after the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<HMAC-SHA256>`), retried with exponential backoff and full jitter,
//! dead-lettered after a limit, and redeliverable by an administrator, who also sees each
//! organisation's delivery status.
//!
//! - [`signature`]: signing, and [`verify`], the helper receivers use.
//! - [`Webhooks`]: endpoints (KV bucket `WASL_WEBHOOKS`, no history; the secret is generated
//!   here and shown once, and stored sealed with a key derived from the master key:
//!   [`SecretsKey`]), status, dead letters (`WASL_WEBHOOK_DEAD`), redelivery, and the delivery
//!   worker [`Webhooks::run`].
//! - [`Destinations`]: endpoints reach public addresses only (not loopback, private, link-local
//!   such as the cloud metadata service, unique-local, …) unless an operator allowed a range;
//!   checked when an endpoint is set and again at every delivery, connecting only to the
//!   addresses checked. Redirects are never followed.
//!
//! Delivery is at least once: a message is acknowledged in its feed only after a 2xx or once
//! its dead letter is stored. Nothing here logs a message body, a URL or a secret. See
//! `docs/webhooks.md`.
//!
//! ```no_run
//! # async fn example(js: async_nats::jetstream::Context, org: wasl_domain::ids::OrgId, master: wasl_vault::LocalMasterKey) -> Result<(), wasl_webhooks::WebhookError> {
//! use wasl_webhooks::{SecretsKey, Webhooks, WebhooksConfig};
//! let key = SecretsKey::from_master(&master);
//! let webhooks = Webhooks::connect(js, WebhooksConfig::default(), key).await?;
//! let secret = webhooks.set_endpoint(org, "https://partner.example/wasl", "admin").await?;
//! println!("give the organisation {}", secret.expose().as_str());
//! // Until the future completes (the service passes its shutdown signal here).
//! webhooks.run(std::future::pending::<()>()).await?;
//! # Ok(()) }
//! ```

mod config;
pub mod dead;
mod delivery;
mod endpoint;
mod error;
mod net;
mod seal;
mod service;
pub mod signature;
mod status;
mod worker;

pub use config::{RetryPolicy, WebhooksConfig};
pub use dead::DeadLetter;
pub use delivery::{Failure, Invalid};
pub use endpoint::{Change, EndpointInfo, validate_url};
pub use error::WebhookError;
pub use net::{Destinations, InvalidNet, IpNet, is_public};
pub use seal::SecretsKey;
pub use service::{RedeliverReport, Webhooks, dead_stream_config};
pub use signature::{DEFAULT_TOLERANCE, Secret, VerifyError, verify};
pub use status::{DeliveryStatus, LastFailure};
