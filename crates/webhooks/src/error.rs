//! The crate's error.

use crate::delivery::{Failure, Invalid};
use wasl_domain::ids::OrgId;

/// What can go wrong administering or running webhooks.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum WebhookError {
    /// The endpoint URL is refused (not https, or http to a host other than loopback, or not a
    /// URL). Where its host points is [`WebhookError::NotPublic`].
    #[error("invalid endpoint URL: {0}")]
    InvalidUrl(String),
    /// The endpoint's host is, or resolves to, an address that is not public (loopback, private,
    /// link-local, unique-local, …) and not in a range the operator allowed
    /// ([`crate::Destinations`]). Neither the host nor the address is in the message: errors
    /// are logged, URLs are not.
    #[error(
        "the endpoint's host is or resolves to an address that is not public (loopback, private, link-local, unique-local, …); an operator may allow a range with --webhook-allow-net"
    )]
    NotPublic,
    /// A signing secret was sealed by another master key than the one given.
    #[error("the signing secret was sealed by master key {sealed_by:?}, not by {given:?}")]
    WrongMasterKey {
        /// The id recorded with the sealed secret.
        sealed_by: String,
        /// The id of the key given to this process.
        given: String,
    },
    /// The organisation has no endpoint.
    #[error("organisation {0} has no webhook endpoint")]
    NoEndpoint(OrgId),
    /// The organisation's endpoint is disabled.
    #[error("the webhook endpoint of organisation {0} is disabled")]
    Disabled(OrgId),
    /// No dead letter of this organisation at this sequence.
    #[error("no dead letter {sequence} for organisation {org}")]
    NoDeadLetter {
        org: OrgId,
        /// The dead-letter stream sequence asked for.
        sequence: u64,
    },
    /// A redelivery attempt failed; the dead letter stays.
    #[error("redelivery failed: {0}")]
    DeliveryFailed(Failure),
    /// The dead letter is not a partner message (it was set aside as [`Failure::Invalid`]): it
    /// is never sent, not even on an administrator's request.
    #[error("not a partner message ({0}); it is never sent")]
    NotPartnerMessage(Invalid),
    /// A stored record could not be read.
    #[error("corrupt record in {0}")]
    Corrupt(String),
    /// Another administrator changed the endpoint at the same time; read and try again.
    #[error("the endpoint was changed concurrently")]
    Conflict,
    /// The operating system's random generator failed.
    #[error("no randomness for a secret")]
    Random,
    /// NATS or JetStream failed.
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
}

impl WebhookError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}
