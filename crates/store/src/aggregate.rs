//! Ties each domain aggregate to its place in the log: its id type and the envelope variant.

use uuid::Uuid;
use wasl_domain::case::Case;
use wasl_domain::directory::Organisation;
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::Referral;
use wasl_domain::{Aggregate, AggregateKind};
use wasl_events::DomainEvent;

/// An aggregate whose events the store keeps on `wasl.evt.<kind>.<id>`.
pub trait StoredAggregate: Aggregate + Send + Sync + 'static {
    /// Its id.
    type Id: Copy + Send + Sync + std::fmt::Display + 'static;

    /// The id as a UUID.
    fn uuid(id: Self::Id) -> Uuid;

    /// Wraps one of its events for the envelope.
    fn wrap(id: Self::Id, event: Self::Event) -> DomainEvent;

    /// Unwraps an event of this aggregate; `None` for another aggregate's event.
    fn unwrap(event: DomainEvent) -> Option<Self::Event>;

    /// The aggregate's subject.
    fn subject(id: Self::Id) -> String {
        subject(Self::KIND, Self::uuid(id))
    }
}

/// The subject of an aggregate instance: `wasl.evt.<kind>.<uuid>`.
pub fn subject(kind: AggregateKind, id: Uuid) -> String {
    format!("wasl.evt.{}.{}", kind.subject_token(), id.hyphenated())
}

macro_rules! stored {
    ($aggregate:ty, $id:ty, $variant:ident) => {
        impl StoredAggregate for $aggregate {
            type Id = $id;

            fn uuid(id: Self::Id) -> Uuid {
                id.as_uuid()
            }

            fn wrap(id: Self::Id, event: Self::Event) -> DomainEvent {
                DomainEvent::$variant(id, event)
            }

            fn unwrap(event: DomainEvent) -> Option<Self::Event> {
                match event {
                    DomainEvent::$variant(_, event) => Some(event),
                    _ => None,
                }
            }
        }
    };
}

stored!(Case, CaseId, Case);
stored!(Referral, ReferralId, Referral);
stored!(Organisation, OrgId, Organisation);
