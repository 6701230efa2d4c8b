//! Wasl's domain: cases, referrals and the service directory, with every rule of the referral
//! lifecycle and of consent. Pure by design — no IO, no async, no clock, no randomness: time,
//! ids and the acting user come in through [`Context`] and the commands, so the same command on
//! the same state always decides the same events, and replaying events always rebuilds the
//! same state.
//!
//! Each aggregate implements [`Aggregate`]: `decide` holds every rule and answers a command with
//! events or a [`DomainError`]; `evolve` applies an event and never fails on a stored event.

#![forbid(unsafe_code)]

pub mod case;
pub mod catalogue;
pub mod client;
mod codes;
pub mod directory;
pub mod error;
pub mod gcm;
pub mod geo;
pub mod ids;
pub mod pii;
pub mod referral;
pub mod suppression;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use error::{DomainError, Forbidden, ValidationError};

use ids::{OrgId, UserId};
use time::Timestamp;

codes::code_enum!(
    /// What a user may do, within their organisation.
    Role, "role" {
        /// Opens and closes cases, makes and cancels referrals, records follow-up.
        Caseworker => "caseworker",
        /// A caseworker's rights for the whole organisation, plus consent override and
        /// entered-in-error.
        Supervisor => "supervisor",
        /// Handles the referrals addressed to the organisation.
        FocalPoint => "focal_point",
        /// A partner organisation's system acting by machine, as a focal point would.
        PartnerSystem => "partner_system",
        /// Watches dashboards, acknowledges escalations, maintains the directory.
        Coordinator => "coordinator",
        /// Configures organisations, users and keys.
        Admin => "admin",
        /// Wasl's own services (deadlines, process managers).
        System => "system",
    }
);

/// Who is acting: a user of an organisation, with the roles they act under.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Actor {
    pub user: UserId,
    pub org: OrgId,
    /// Their roles in that organisation.
    pub roles: Vec<Role>,
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the actor holds any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Fails with [`Forbidden::MissingRole`] unless the actor holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), DomainError> {
        if self.has_any(roles) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(Forbidden::MissingRole))
        }
    }
}

/// What a decision may depend on besides the state and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The time of the decision.
    pub now: Timestamp,
    /// Who asks.
    pub actor: Actor,
}

/// Which kind of aggregate, as it appears in event subjects (`wasl.evt.<kind>.<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    /// A case.
    Case,
    /// A referral.
    Referral,
    /// An organisation and its services.
    Organisation,
}

impl AggregateKind {
    /// The subject token: `case`, `referral`, `org`.
    pub const fn subject_token(self) -> &'static str {
        match self {
            Self::Case => "case",
            Self::Referral => "referral",
            Self::Organisation => "org",
        }
    }
}

/// An event-sourced aggregate: state built from its events, deciding on commands.
pub trait Aggregate: Default + Clone + std::fmt::Debug {
    /// What can be asked of it.
    type Command;
    /// What it records.
    type Event: Clone + std::fmt::Debug + PartialEq;
    /// Its kind.
    const KIND: AggregateKind;

    /// Answers a command with the events it causes, or refuses it. Holds every rule.
    fn decide(&self, command: &Self::Command, ctx: &Context) -> Result<Vec<Self::Event>, DomainError>;

    /// Applies one event. Holds no rule and never fails: stored events are facts.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// Rebuilds state from a history.
    #[must_use]
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}
